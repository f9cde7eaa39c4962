import type { DhcpPacket } from './packet.js';

/** Where a request came in: the listener fills this in for the handlers. */
export interface RequestContext {
  iface: string;
  /** Our IPv4 address on that interface: server identifier and next-server. */
  serverIp: string;
  serverNetmask: string;
  /** 'dhcp' = port 67, 'pxe' = port 4011 (PXE boot server requests). */
  port: 'dhcp' | 'pxe';
  source: { address: string; port: number };
}

/** What a handler decided: a reply (and where to send it, if not the RFC 2131 default) or nothing. */
export type DhcpOutcome =
  | {
      reply: DhcpPacket;
      mac: string;
      to?: { address: string; port: number };
      event: { message: string; reason: string; facts?: Record<string, string> };
    }
  | { ignore: string; mac?: string; event?: { message: string; reason: string } };
