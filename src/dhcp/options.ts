import { ipToBuffer, type DhcpPacket } from './packet.js';

/** Option codes used by hiveboot (RFC 2132, 3004, 4578; iPXE's 175). */
export const Opt = {
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS_SERVERS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  BROADCAST_ADDRESS: 28,
  VENDOR_SPECIFIC: 43,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER_NAME: 66,
  BOOTFILE_NAME: 67,
  USER_CLASS: 77,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_UUID: 97,
  IPXE: 175,
} as const;

export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

export const MESSAGE_TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(MessageType).map(([name, n]) => [n, name.toLowerCase()]),
);

/** PXE vendor options inside option 43 (PXE spec 2.1, table 2-1). */
export const PxeOpt = {
  DISCOVERY_CONTROL: 6,
  BOOT_SERVERS: 8,
  BOOT_MENU: 9,
  MENU_PROMPT: 10,
  BOOT_ITEM: 71,
} as const;

/** iPXE encapsulated options inside 175 (iPXE's include/ipxe/dhcp.h). */
export const IpxeOpt = {
  /** Skip waiting for ProxyDHCP offers. */
  NO_PXEDHCP: 176,
} as const;

// ---- readers: each returns undefined when the option is absent or malformed ----

export function messageType(p: DhcpPacket): number | undefined {
  const v = p.options.get(Opt.MESSAGE_TYPE);
  return v && v.length === 1 ? v[0] : undefined;
}

export function ipOption(p: DhcpPacket, code: number): string | undefined {
  const v = p.options.get(code);
  return v && v.length === 4 ? `${v[0]}.${v[1]}.${v[2]}.${v[3]}` : undefined;
}

export const serverIdentifier = (p: DhcpPacket) => ipOption(p, Opt.SERVER_ID);
export const requestedIp = (p: DhcpPacket) => ipOption(p, Opt.REQUESTED_IP);

export function parameterRequestList(p: DhcpPacket): number[] {
  return [...(p.options.get(Opt.PARAMETER_REQUEST_LIST) ?? [])];
}

export function maxMessageSize(p: DhcpPacket): number | undefined {
  const v = p.options.get(Opt.MAX_MESSAGE_SIZE);
  return v && v.length === 2 ? v.readUInt16BE(0) : undefined;
}

/** Option 60, e.g. "PXEClient:Arch:00000:UNDI:002001" or "HTTPClient:Arch:00016:UNDI:003001". */
export function vendorClass(p: DhcpPacket): string | undefined {
  const v = p.options.get(Opt.VENDOR_CLASS);
  return v ? printable(v) : undefined;
}

export function clientId(p: DhcpPacket): Buffer | undefined {
  const v = p.options.get(Opt.CLIENT_ID);
  return v && v.length >= 2 ? v : undefined;
}

/**
 * Option 77 (RFC 3004): a list of length-prefixed classes. iPXE (and Windows) send a bare string
 * instead ("iPXE"), which does not parse as RFC 3004 — then the whole value is one class.
 */
export function userClasses(p: DhcpPacket): string[] {
  const v = p.options.get(Opt.USER_CLASS);
  if (!v || v.length === 0) return [];
  const classes: string[] = [];
  let i = 0;
  while (i < v.length) {
    const len = v[i]!;
    if (len === 0 || i + 1 + len > v.length) return [printable(v)];
    classes.push(printable(v.subarray(i + 1, i + 1 + len)));
    i += 1 + len;
  }
  return classes;
}

/** Option 93 (RFC 4578): client system architectures, 16-bit each; the first is the one in use. */
export function clientArchitectures(p: DhcpPacket): number[] {
  const v = p.options.get(Opt.CLIENT_ARCH);
  if (!v || v.length < 2 || v.length % 2 !== 0) return [];
  const out: number[] = [];
  for (let i = 0; i < v.length; i += 2) out.push(v.readUInt16BE(i));
  return out;
}

/** Option 94 (RFC 4578): network interface identifier (type 1 = UNDI, major, minor). */
export function clientNdi(p: DhcpPacket): { type: number; major: number; minor: number } | undefined {
  const v = p.options.get(Opt.CLIENT_NDI);
  return v && v.length === 3 ? { type: v[0]!, major: v[1]!, minor: v[2]! } : undefined;
}

/**
 * Option 97 (RFC 4578): type 0 then a 16-byte machine UUID, returned in 8-4-4-4-12 form. Clients
 * send it in EFI GUID byte order, the first three fields little-endian (EDK2 copies the SMBIOS
 * bytes; iPXE swaps to that order on purpose), so those fields are swapped back: the result is the
 * UUID that dmidecode, the firmware setup screen and QEMU's -uuid show.
 */
export function clientUuid(p: DhcpPacket): string | undefined {
  const v = p.options.get(Opt.CLIENT_UUID);
  if (!v || v.length !== 17 || v[0] !== 0) return undefined;
  const g = v.subarray(1);
  const h = Buffer.concat([
    Buffer.from(g.subarray(0, 4)).reverse(),
    Buffer.from(g.subarray(4, 6)).reverse(),
    Buffer.from(g.subarray(6, 8)).reverse(),
    g.subarray(8),
  ]).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Encapsulated options (43, 175): code, length, value... until END or the end of the data. */
export function decodeEncapsulated(v: Buffer | undefined): Map<number, Buffer> | undefined {
  if (!v) return undefined;
  const out = new Map<number, Buffer>();
  let i = 0;
  while (i < v.length) {
    const code = v[i]!;
    if (code === 255) break;
    if (code === 0) {
      i++;
      continue;
    }
    if (i + 1 >= v.length) return undefined;
    const len = v[i + 1]!;
    if (i + 2 + len > v.length) return undefined;
    out.set(code, Buffer.from(v.subarray(i + 2, i + 2 + len)));
    i += 2 + len;
  }
  return out;
}

export function ipxeOptions(p: DhcpPacket): Map<number, Buffer> | undefined {
  return decodeEncapsulated(p.options.get(Opt.IPXE));
}

/** The client is iPXE: it says so in the user class or sends its own option 175. */
export function isIpxe(p: DhcpPacket): boolean {
  return p.options.has(Opt.IPXE) || userClasses(p).includes('iPXE');
}

/** PXE firmware (vendor class PXEClient) or UEFI HTTP boot (HTTPClient). */
export function pxeClientKind(p: DhcpPacket): 'PXEClient' | 'HTTPClient' | undefined {
  // Only the first ten bytes matter; both prefixes are printable, so vendorClass()'s replacement of
  // unprintable bytes could not make or break a match.
  const head = p.options.get(Opt.VENDOR_CLASS)?.toString('latin1', 0, 10);
  if (head?.startsWith('PXEClient')) return 'PXEClient';
  if (head?.startsWith('HTTPClient')) return 'HTTPClient';
  return undefined;
}

// ---- writers ----

export const u8 = (n: number) => Buffer.from([n & 0xff]);
/**
 * One shared, never-modified buffer per byte value, for option values a reply carries as they are
 * (message types): the encoder copies them out, so no reply needs a buffer of its own.
 */
const U8_CONSTANTS = Array.from({ length: 256 }, (_, n) => u8(n));
export const u8Constant = (n: number): Buffer => U8_CONSTANTS[n & 0xff]!;
export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
export const ip = (addr: string) => ipToBuffer(addr);
export const ips = (addrs: string[]) => Buffer.concat(addrs.map(ipToBuffer));
export const text = (s: string) => Buffer.from(s, 'latin1');
const TEXT_CONSTANTS = new Map<string, Buffer>();
/**
 * A shared, never-modified buffer for a text a server sends over and over (boot file names, URLs,
 * vendor classes): few distinct values, so they are kept — at most 256, then started afresh.
 */
export function textConstant(s: string): Buffer {
  let b = TEXT_CONSTANTS.get(s);
  if (!b) {
    if (TEXT_CONSTANTS.size >= 256) TEXT_CONSTANTS.clear();
    TEXT_CONSTANTS.set(s, (b = text(s)));
  }
  return b;
}

export function encodeEncapsulated(options: Map<number, Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [code, value] of options) {
    if (!Number.isInteger(code) || code < 1 || code > 254) throw new RangeError(`encapsulated option code ${code} must be 1-254`);
    if (value.length > 255) throw new RangeError(`encapsulated option ${code} longer than 255 bytes`);
    parts.push(Buffer.from([code, value.length]), value);
  }
  parts.push(Buffer.from([255]));
  return Buffer.concat(parts);
}

function printable(b: Buffer): string {
  return b.toString('latin1').replace(/[^\x20-\x7e]/g, '?');
}
