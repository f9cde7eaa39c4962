import { ipToInt } from './addresses.js';

/**
 * The DHCP/BOOTP wire format (RFC 2131 section 2, RFC 2132 section 2-3, RFC 3396): bytes in, typed
 * packet out, and back. Pure and policy-free. Options are kept as raw bytes by code; options.ts gives
 * them types.
 */

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
const MAGIC_COOKIE = 0x63825363;
const HEADER_LENGTH = 236;
const MIN_LENGTH = HEADER_LENGTH + 4;
/** BOOTP relays and old PXE ROMs drop replies shorter than a BOOTP packet (RFC 1542 section 2.1). */
export const MIN_REPLY_LENGTH = 300;
/** Every DHCP client accepts an IP datagram of 576 bytes (RFC 2131 section 2), 28 of them IP + UDP headers. */
const MIN_DATAGRAM = 576;
const IP_UDP_HEADERS = 28;
/** The largest packet we accept; an Ethernet MTU in practice, with room for jumbo frames. */
const MAX_LENGTH = 9000;

const OPT_PAD = 0;
const OPT_END = 255;
const OPT_OVERLOAD = 52;

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** Client hardware address: the first hlen bytes of chaddr. */
  chaddr: Buffer;
  sname: string;
  file: string;
  /** Options by code, each instance joined per RFC 3396, in the order first seen. */
  options: Map<number, Buffer>;
}

export class DhcpParseError extends Error {
  constructor(readonly reason: string) {
    super(`malformed DHCP packet: ${reason}`);
    this.name = 'DhcpParseError';
  }
}

export const BROADCAST_FLAG = 0x8000;

export function decodePacket(buf: Buffer): DhcpPacket {
  if (buf.length < MIN_LENGTH) throw new DhcpParseError(`truncated: ${buf.length} bytes, a DHCP packet has at least ${MIN_LENGTH}`);
  if (buf.length > MAX_LENGTH) throw new DhcpParseError(`oversized: ${buf.length} bytes`);
  const op = buf[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) throw new DhcpParseError(`bad op ${op}`);
  const hlen = buf[2]!;
  if (hlen > 16) throw new DhcpParseError(`bad hlen ${hlen}`);
  if (buf.readUInt32BE(HEADER_LENGTH) !== MAGIC_COOKIE) throw new DhcpParseError('bad magic cookie (BOOTP without DHCP options)');

  // One copy of the whole packet, and every field a view into it: the packet owns its bytes without
  // an allocation per option.
  const own = Buffer.from(buf);
  const options = new Map<number, Buffer>();
  const overload = parseOptions(own, MIN_LENGTH, own.length, 'options', options);
  // RFC 2131 section 4.1: with option 52, the file field then the sname field carry more options.
  if (overload !== undefined) {
    if (overload < 1 || overload > 3) throw new DhcpParseError(`bad overload value ${overload}`);
    if (overload & 1) parseOptions(own, 108, 236, 'file', options);
    if (overload & 2) parseOptions(own, 44, 108, 'sname', options);
  }
  return {
    op,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: ipAt(buf, 12),
    yiaddr: ipAt(buf, 16),
    siaddr: ipAt(buf, 20),
    giaddr: ipAt(buf, 24),
    chaddr: own.subarray(28, 28 + hlen),
    sname: overload !== undefined && overload & 2 ? '' : cString(own, 44, 108),
    file: overload !== undefined && overload & 1 ? '' : cString(own, 108, 236),
    options,
  };
}

/**
 * Parses the option area buf[from, to) into `into`; returns the overload value if option 52 was in
 * it. Offsets into the packet rather than a view of the area: one object less per area.
 */
function parseOptions(buf: Buffer, from: number, to: number, where: string, into: Map<number, Buffer>): number | undefined {
  let overload: number | undefined;
  let i = from;
  while (i < to) {
    const code = buf[i]!;
    if (code === OPT_END) break;
    if (code === OPT_PAD) {
      i++;
      continue;
    }
    if (i + 1 >= to) throw new DhcpParseError(`option ${code} in ${where} has no length byte`);
    const len = buf[i + 1]!;
    const start = i + 2;
    if (start + len > to) throw new DhcpParseError(`option ${code} in ${where} overruns the packet (${len} bytes)`);
    if (code === OPT_OVERLOAD) {
      if (where !== 'options') throw new DhcpParseError(`option 52 inside the ${where} field`);
      if (len !== 1) throw new DhcpParseError('option 52 must be 1 byte');
      overload = buf[start]!;
    } else {
      const value = buf.subarray(start, start + len);
      // A repeated code continues the first instance (RFC 3396); the Map keeps first-seen order.
      const before = into.get(code);
      into.set(code, before ? Buffer.concat([before, value]) : value);
    }
    i = start + len;
  }
  // A missing END is tolerated: some firmware ends the packet right after the last option.
  return overload;
}

export interface EncodeOptions {
  /**
   * The client's option 57 (maximum DHCP message size); replies never exceed it. Like the IP
   * datagram it names (RFC 2131 section 2), it counts the 28 bytes of IP and UDP headers; without
   * it a client only has to accept 576.
   */
  maxSize?: number;
}

/**
 * Serialises a packet. Option 53 goes first (some ROMs look only there), options longer than 255
 * bytes are split into consecutive instances (RFC 3396), END closes the list, and the packet is
 * padded to 300 bytes.
 */
export function encodePacket(p: DhcpPacket, opts: EncodeOptions = {}): Buffer {
  // Sized first, then written into one buffer: no intermediate buffer per option.
  let optionLength = 1; // END
  for (const [code, value] of p.options) {
    if (code === OPT_PAD || code === OPT_END || code === OPT_OVERLOAD || code < 0 || code > 254) {
      throw new RangeError(`option code ${code} cannot be encoded as a plain option`);
    }
    optionLength += value.length === 0 ? 2 : value.length + 2 * Math.ceil(value.length / 255);
  }
  const length = Math.max(MIN_REPLY_LENGTH, MIN_LENGTH + optionLength);
  const max = Math.max(opts.maxSize ?? MIN_DATAGRAM, MIN_DATAGRAM) - IP_UDP_HEADERS;
  if (length > max) throw new RangeError(`DHCP reply of ${length} bytes exceeds the client's maximum of ${max}`);
  const buf = Buffer.alloc(length);
  buf[0] = p.op;
  buf[1] = p.htype;
  buf[2] = p.hlen;
  buf[3] = p.hops;
  buf.writeUInt32BE(p.xid >>> 0, 4);
  buf.writeUInt16BE(p.secs, 8);
  buf.writeUInt16BE(p.flags, 10);
  writeIp(buf, 12, p.ciaddr);
  writeIp(buf, 16, p.yiaddr);
  writeIp(buf, 20, p.siaddr);
  writeIp(buf, 24, p.giaddr);
  p.chaddr.copy(buf, 28, 0, Math.min(16, p.chaddr.length));
  writeCString(buf, 44, 64, p.sname, 'sname');
  writeCString(buf, 108, 128, p.file, 'file');
  buf.writeUInt32BE(MAGIC_COOKIE, HEADER_LENGTH);
  let at = MIN_LENGTH;
  const first = p.options.get(53);
  if (first) at = writeOption(buf, at, 53, first);
  for (const [code, value] of p.options) if (code !== 53) at = writeOption(buf, at, code, value);
  buf[at] = OPT_END;
  return buf;
}

/** One option at `at`, split into 255-byte instances (RFC 3396); returns where the next one goes. */
function writeOption(buf: Buffer, at: number, code: number, value: Buffer): number {
  if (value.length === 0) {
    buf[at] = code;
    buf[at + 1] = 0;
    return at + 2;
  }
  for (let off = 0; off < value.length; off += 255) {
    const n = Math.min(255, value.length - off);
    buf[at] = code;
    buf[at + 1] = n;
    value.copy(buf, at + 2, off, off + n);
    at += 2 + n;
  }
  return at;
}

/** A reply skeleton for a request: same xid, flags, giaddr and chaddr, as RFC 2131 table 3 says. */
export function replyTo(req: DhcpPacket): DhcpPacket {
  return {
    op: BOOTREPLY,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    xid: req.xid,
    secs: 0,
    flags: req.flags,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: req.giaddr,
    chaddr: req.chaddr,
    sname: '',
    file: '',
    options: new Map(),
  };
}

/** The client's MAC in lower-case colon form, or undefined if the hardware is not Ethernet. */
export function clientMac(p: DhcpPacket): string | undefined {
  if (p.htype !== 1 || p.hlen !== 6) return undefined;
  const c = p.chaddr;
  return `${HEX[c[0]!]}:${HEX[c[1]!]}:${HEX[c[2]!]}:${HEX[c[3]!]}:${HEX[c[4]!]}:${HEX[c[5]!]}`;
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

function ipAt(buf: Buffer, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

function writeIp(buf: Buffer, off: number, ip: string): void {
  buf.writeUInt32BE(ipToInt(ip), off);
}

export function ipToBuffer(ip: string): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(ipToInt(ip), 0);
  return b;
}

/** The NUL-terminated string in buf[from, to) (or all of it, with no NUL). */
function cString(buf: Buffer, from: number, to: number): string {
  let end = from;
  while (end < to && buf[end] !== 0) end++;
  return end === from ? '' : buf.toString('latin1', from, end);
}

function writeCString(buf: Buffer, off: number, size: number, s: string, field: string): void {
  // latin1 is one byte per character, so the string's length is its length in bytes.
  if (s.length >= size) throw new RangeError(`${field} "${s}" is longer than ${size - 1} bytes`);
  if (s.length > 0) buf.write(s, off, s.length, 'latin1');
}
