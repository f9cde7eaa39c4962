/**
 * Hand-built DHCP requests for the policy-layer tests (proxy, full, boot choice), and readers that
 * look at a reply the way the client would: after it has been encoded and decoded again.
 */
import { expect } from 'vitest';
import { decodeEncapsulated, ip, maxMessageSize, MessageType, Opt, text, u16, u8 } from '../../src/dhcp/options.js';
import { BOOTREQUEST, decodePacket, encodePacket, MIN_REPLY_LENGTH, type DhcpPacket } from '../../src/dhcp/packet.js';
import type { DhcpOutcome, RequestContext } from '../../src/dhcp/types.js';

/** Option 60 as real firmware sends it. */
export const PXE_BIOS = 'PXEClient:Arch:00000:UNDI:002001';
export const PXE_UEFI = 'PXEClient:Arch:00007:UNDI:003016';
export const HTTP_UEFI = 'HTTPClient:Arch:00016:UNDI:003001';

/** A PXE ROM's parameter request list (SeaBIOS + iPXE and EDK2 ask for about this). */
export const PXE_PARAMS = [1, 2, 3, 5, 6, 11, 12, 13, 15, 16, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135];

export const MAC = '52:54:00:12:34:56';
export const UUID = '8a4c1e2f-3b5d-4e6f-9a0b-1c2d3e4f5a6b';

export interface ClientMessage {
  mac?: string;
  xid?: number;
  flags?: number;
  ciaddr?: string;
  giaddr?: string;
  /** 50 */
  requested?: string;
  /** 54 */
  serverId?: string;
  /** 55 */
  params?: number[];
  /** 57 */
  maxSize?: number;
  /** 60 */
  vendorClass?: string;
  /** 61 */
  clientId?: Buffer;
  /** 77, sent as iPXE sends it: the bare string. */
  userClass?: string | Buffer;
  /** 93: one architecture, or the list in order. */
  arch?: number | number[];
  /** 94: UNDI major.minor */
  ndi?: [number, number];
  /** 97: a UUID in 8-4-4-4-12 form, sent in EFI GUID byte order as firmware does. */
  uuid?: string;
  /** 175: iPXE's own options (encapsulated bytes). */
  ipxe?: Buffer;
  /** Any other option, raw. */
  extra?: [number, Buffer][];
}

/** What firmware sends, by kind of machine. */
export const CLIENTS = {
  /** SeaBIOS + a PXE ROM. */
  biosRom: { vendorClass: PXE_BIOS, arch: 0, ndi: [2, 1], uuid: UUID, params: PXE_PARAMS, maxSize: 1260 },
  /** A PXE ROM old enough to send no option 93 or 97. */
  oldBiosRom: { vendorClass: 'PXEClient:Arch:00000:UNDI:002001', params: PXE_PARAMS },
  /** EDK2 (OVMF) x64 UEFI PXE. */
  uefiRom: { vendorClass: PXE_UEFI, arch: 7, ndi: [3, 16], uuid: UUID, params: PXE_PARAMS, maxSize: 1472 },
  /** UEFI HTTP boot. */
  httpBoot: { vendorClass: HTTP_UEFI, arch: 16, ndi: [3, 1], uuid: UUID, params: PXE_PARAMS },
  /** iPXE after it was chained from a BIOS ROM: vendor class PXEClient, user class iPXE, option 175. */
  ipxe: {
    vendorClass: PXE_BIOS,
    arch: 0,
    ndi: [2, 1],
    uuid: UUID,
    userClass: 'iPXE',
    params: [1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203],
    maxSize: 1472,
    // iPXE feature indicators: PXE extensions (0x10), HTTP (0x13), iSCSI (0x11), bus id (0xb1)...
    ipxe: Buffer.from([0xb1, 0x05, 0x01, 0x10, 0xec, 0x81, 0x39, 0x10, 0x01, 0x01, 0x13, 0x01, 0x01, 0x11, 0x01, 0x01]),
  },
  /** A laptop with an ordinary DHCP client: no vendor class, not iPXE. */
  laptop: { params: [1, 3, 6, 12, 15, 28, 42], clientId: Buffer.from([1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56]) },
} satisfies Record<string, ClientMessage>;

let nextXid = 0x1000;

/** A client's DHCP message of the given type (option 53) with the chosen options. */
export function message(type: number, m: ClientMessage = {}): DhcpPacket {
  const options = new Map<number, Buffer>();
  options.set(Opt.MESSAGE_TYPE, u8(type));
  if (m.requested) options.set(Opt.REQUESTED_IP, ip(m.requested));
  if (m.serverId) options.set(Opt.SERVER_ID, ip(m.serverId));
  if (m.params) options.set(Opt.PARAMETER_REQUEST_LIST, Buffer.from(m.params));
  if (m.maxSize !== undefined) options.set(Opt.MAX_MESSAGE_SIZE, u16(m.maxSize));
  if (m.vendorClass !== undefined) options.set(Opt.VENDOR_CLASS, text(m.vendorClass));
  if (m.clientId) options.set(Opt.CLIENT_ID, m.clientId);
  if (m.userClass !== undefined) options.set(Opt.USER_CLASS, typeof m.userClass === 'string' ? text(m.userClass) : m.userClass);
  if (m.arch !== undefined) options.set(Opt.CLIENT_ARCH, Buffer.concat((Array.isArray(m.arch) ? m.arch : [m.arch]).map(u16)));
  if (m.ndi) options.set(Opt.CLIENT_NDI, Buffer.from([1, ...m.ndi]));
  if (m.uuid) options.set(Opt.CLIENT_UUID, uuidOption(m.uuid));
  if (m.ipxe) options.set(Opt.IPXE, m.ipxe);
  for (const [code, value] of m.extra ?? []) options.set(code, value);
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: m.xid ?? nextXid++,
    secs: 4,
    flags: m.flags ?? 0,
    ciaddr: m.ciaddr ?? '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: m.giaddr ?? '0.0.0.0',
    chaddr: macBytes(m.mac ?? MAC),
    sname: '',
    file: '',
    options,
  };
}

export const discover = (m: ClientMessage = {}) => message(MessageType.DISCOVER, m);
export const request = (m: ClientMessage = {}) => message(MessageType.REQUEST, m);
export const decline = (m: ClientMessage = {}) => message(MessageType.DECLINE, m);
export const release = (m: ClientMessage = {}) => message(MessageType.RELEASE, m);
export const inform = (m: ClientMessage = {}) => message(MessageType.INFORM, m);

export function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((x) => parseInt(x, 16)));
}

/** Option 97: type 0, then the UUID with its first three fields little-endian (EFI GUID order). */
export function uuidOption(uuid: string): Buffer {
  const h = Buffer.from(uuid.replace(/-/g, ''), 'hex');
  return Buffer.concat([
    Buffer.from([0]),
    Buffer.from(h.subarray(0, 4)).reverse(),
    Buffer.from(h.subarray(4, 6)).reverse(),
    Buffer.from(h.subarray(6, 8)).reverse(),
    h.subarray(8),
  ]);
}

export const SERVER_IP = '10.99.0.2';

/** Where a request came in, as the listener would fill it in. */
export function context(c: Partial<RequestContext> = {}): RequestContext {
  return {
    iface: 'boot0',
    serverIp: SERVER_IP,
    serverNetmask: '255.255.255.0',
    port: 'dhcp',
    source: { address: '0.0.0.0', port: 68 },
    ...c,
  };
}

export interface Answered {
  outcome: Extract<DhcpOutcome, { reply: unknown }>;
  /** The reply as the client receives it: encoded (within the client's option 57), then decoded. */
  wire: DhcpPacket;
  bytes: Buffer;
}

/** The handler answered: encodes the reply the way the listener does and decodes it again. */
export function answered(outcome: DhcpOutcome, req: DhcpPacket): Answered {
  if ('ignore' in outcome) expect.fail(`expected a reply, the request was ignored: ${outcome.ignore}`);
  const bytes = encodePacket(outcome.reply, { maxSize: maxMessageSize(req) });
  expect(bytes.length).toBeGreaterThanOrEqual(MIN_REPLY_LENGTH);
  const wire = decodePacket(bytes);
  // Every reply belongs to its request.
  expect(wire.op).toBe(2);
  expect(wire.xid).toBe(req.xid);
  expect(wire.chaddr.equals(req.chaddr)).toBe(true);
  return { outcome, wire, bytes };
}

/** The handler stayed silent: returns why. */
export function ignored(outcome: DhcpOutcome): string {
  if (!('ignore' in outcome)) expect.fail(`expected no reply, got message type ${outcome.reply.options.get(Opt.MESSAGE_TYPE)?.[0]}: ${outcome.event.message}`);
  return outcome.ignore;
}

// ---- readers of a reply's options ----

export const typeOf = (p: DhcpPacket) => p.options.get(Opt.MESSAGE_TYPE)?.[0];

export function optText(p: DhcpPacket, code: number): string | undefined {
  return p.options.get(code)?.toString('latin1');
}

export function optIps(p: DhcpPacket, code: number): string[] | undefined {
  const v = p.options.get(code);
  if (!v) return undefined;
  expect(v.length % 4).toBe(0);
  const out: string[] = [];
  for (let i = 0; i < v.length; i += 4) out.push(`${v[i]}.${v[i + 1]}.${v[i + 2]}.${v[i + 3]}`);
  return out;
}

export function optIp(p: DhcpPacket, code: number): string | undefined {
  const all = optIps(p, code);
  if (all) expect(all).toHaveLength(1);
  return all?.[0];
}

export function optU32(p: DhcpPacket, code: number): number | undefined {
  const v = p.options.get(code);
  if (!v) return undefined;
  expect(v.length).toBe(4);
  return v.readUInt32BE(0);
}

/** An encapsulated option (43, 175) as code → bytes, or undefined when absent. */
export function encapsulated(p: DhcpPacket, code: number): Record<number, number[]> | undefined {
  const v = p.options.get(code);
  if (!v) return undefined;
  const m = decodeEncapsulated(v);
  expect(m, `option ${code} is well formed`).toBeDefined();
  return Object.fromEntries([...m!].map(([k, b]) => [k, [...b]]));
}
