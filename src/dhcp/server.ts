import type dgram from 'node:dgram';
import type { Logger } from 'pino';
import { MESSAGE_TYPE_NAMES, maxMessageSize, messageType, MessageType } from './options.js';
import { BROADCAST_FLAG, decodePacket, DhcpParseError, encodePacket, type DhcpPacket } from './packet.js';
import type { DhcpOutcome, RequestContext } from './types.js';
import { openDeviceSocket, ReplySender } from './udp-device.js';

export interface DhcpInterface {
  name: string;
  address: string;
  netmask: string;
}

export interface DhcpServerOptions {
  interfaces: DhcpInterface[];
  /** 67, 4011 (null: do not listen) and 68; tests move them. */
  ports?: { server: number; pxe: number | null; client: number };
  handle: (req: DhcpPacket, ctx: RequestContext) => DhcpOutcome;
  /** Called after every handled request (events, discovery, metrics); errors in it are logged, not fatal. */
  onOutcome?: (outcome: DhcpOutcome, req: DhcpPacket, ctx: RequestContext) => void;
  onMalformed?: (reason: string, iface: string) => void;
  /** Called once the sockets are closed (the service writes what it still holds). */
  onStop?: () => void;
  logger: Logger;
}

export interface DhcpStats {
  received: number;
  malformed: number;
  replies: number;
  ignored: number;
  errors: number;
}

/**
 * The DHCP listener: one socket per interface and port, each pinned to its interface, so a request
 * is answered only through the interface it came in on and never on any other. Decodes, hands the
 * packet to the mode's handler, and sends the reply where RFC 2131 section 4.1 says.
 */
export class DhcpServer {
  readonly stats: DhcpStats = { received: 0, malformed: 0, replies: 0, ignored: 0, errors: 0 };
  private sockets: dgram.Socket[] = [];
  private readonly replies = new ReplySender();
  private readonly ports: { server: number; pxe: number | null; client: number };

  constructor(private readonly opts: DhcpServerOptions) {
    this.ports = opts.ports ?? { server: 67, pxe: 4011, client: 68 };
  }

  /** Per-packet debug lines build their fields only when they will be written. */
  private get debug(): boolean {
    return this.opts.logger.isLevelEnabled('debug');
  }

  async start(): Promise<void> {
    try {
      for (const iface of this.opts.interfaces) {
        const dhcp = await openDeviceSocket(this.ports.server, iface.name);
        this.listen(dhcp, iface, 'dhcp');
        if (this.ports.pxe !== null) {
          const pxe = await openDeviceSocket(this.ports.pxe, iface.name);
          this.listen(pxe, iface, 'pxe');
        }
        this.opts.logger.info({ iface: iface.name, address: iface.address }, 'DHCP listening');
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    const sockets = this.sockets;
    this.sockets = [];
    this.replies.flush();
    await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.replies.close();
    this.opts.onStop?.();
  }

  private listen(socket: dgram.Socket, iface: DhcpInterface, port: 'dhcp' | 'pxe'): void {
    this.sockets.push(socket);
    socket.on('error', (err) => this.opts.logger.error({ err, iface: iface.name }, 'DHCP socket error'));
    socket.on('message', (msg, rinfo) => this.onMessage(socket, msg, { iface: iface.name, serverIp: iface.address, serverNetmask: iface.netmask, port, source: { address: rinfo.address, port: rinfo.port } }));
  }

  private onMessage(socket: dgram.Socket, msg: Buffer, ctx: RequestContext): void {
    this.stats.received++;
    let req: DhcpPacket;
    try {
      req = decodePacket(msg);
    } catch (err) {
      if (!(err instanceof DhcpParseError)) throw err;
      this.stats.malformed++;
      this.opts.onMalformed?.(err.reason, ctx.iface);
      this.opts.logger.debug({ iface: ctx.iface, from: ctx.source.address, reason: err.reason }, 'dropped malformed DHCP packet');
      return;
    }
    let outcome: DhcpOutcome;
    try {
      outcome = this.opts.handle(req, ctx);
    } catch (err) {
      // One bad request (or a database hiccup) must never take the server down for everyone else.
      this.stats.errors++;
      this.opts.logger.error({ err, iface: ctx.iface, xid: req.xid }, 'DHCP handler failed');
      return;
    }
    if ('ignore' in outcome) {
      this.notify(outcome, req, ctx);
      this.stats.ignored++;
      if (this.debug) this.opts.logger.debug({ iface: ctx.iface, mac: outcome.mac, reason: outcome.ignore }, 'DHCP request not answered');
      return;
    }
    let bytes: Buffer;
    try {
      bytes = encodePacket(outcome.reply, { maxSize: maxMessageSize(req) });
    } catch (err) {
      this.stats.errors++;
      this.opts.logger.error({ err, mac: outcome.mac }, 'cannot encode DHCP reply');
      return;
    }
    const to = outcome.to ?? this.destination(req, outcome.reply);
    this.stats.replies++;
    // Sent with the other replies of this turn of the event loop; a failure surfaces as the
    // socket's 'error' event (logged in listen()).
    this.replies.send(socket, bytes, to.port, to.address);
    if (this.debug) {
      this.opts.logger.debug({ iface: ctx.iface, mac: outcome.mac, type: MESSAGE_TYPE_NAMES[messageType(outcome.reply) ?? 0], to }, 'DHCP reply');
    }
    // After the reply is on its way: bookkeeping never delays an answer.
    this.notify(outcome, req, ctx);
  }

  private notify(outcome: DhcpOutcome, req: DhcpPacket, ctx: RequestContext): void {
    try {
      this.opts.onOutcome?.(outcome, req, ctx);
    } catch (err) {
      this.opts.logger.error({ err }, 'DHCP outcome hook failed');
    }
  }

  /**
   * RFC 2131 section 4.1: through the relay if there is one; to the client's address if it has one
   * (and this is not a NAK); otherwise broadcast, since the client cannot receive unicast yet (we
   * cannot add an ARP entry for its offered address from userspace).
   */
  private destination(req: DhcpPacket, reply: DhcpPacket): { address: string; port: number } {
    if (req.giaddr !== '0.0.0.0') return { address: req.giaddr, port: this.ports.server };
    const nak = messageType(reply) === MessageType.NAK;
    if (!nak && req.ciaddr !== '0.0.0.0' && !(req.flags & BROADCAST_FLAG)) return { address: req.ciaddr, port: this.ports.client };
    return { address: '255.255.255.255', port: this.ports.client };
  }
}
