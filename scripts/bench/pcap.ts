// A reader for the classic pcap file format (what `tcpdump -w` writes) and a decoder for the few
// layers the boot benchmark looks at: Ethernet (with 802.1Q tags), IPv4, UDP, TCP, and DHCP/BOOTP.
//
// File layout: a 24-byte global header (magic, version, zone, sigfigs, snaplen, link type) and then
// records of a 16-byte header (seconds, micro- or nanoseconds, captured length, original length)
// followed by the captured bytes. The magic tells the byte order and the time resolution:
// a1b2c3d4 microseconds, a1b23c4d nanoseconds.

export interface Frame {
  /** Capture time, milliseconds since the Unix epoch (fractional). */
  t: number;
  data: Buffer;
}

export const LINKTYPE_ETHERNET = 1;

export function readPcap(buf: Buffer): { linkType: number; frames: Frame[] } {
  if (buf.length < 24) return { linkType: LINKTYPE_ETHERNET, frames: [] };
  let le: boolean;
  let nano: boolean;
  const magicLE = buf.readUInt32LE(0);
  const magicBE = buf.readUInt32BE(0);
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) {
    le = true;
    nano = magicLE === 0xa1b23c4d;
  } else if (magicBE === 0xa1b2c3d4 || magicBE === 0xa1b23c4d) {
    le = false;
    nano = magicBE === 0xa1b23c4d;
  } else {
    throw new Error(`not a pcap file (magic ${buf.subarray(0, 4).toString('hex')}; pcapng is not supported)`);
  }
  const u32 = (off: number) => (le ? buf.readUInt32LE(off) : buf.readUInt32BE(off));
  const linkType = u32(20) & 0x0fffffff;
  const frames: Frame[] = [];
  // A capture cut short (the writer killed mid-record) ends with a partial record: stop there.
  for (let off = 24; off + 16 <= buf.length; ) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    const start = off + 16;
    if (start + incl > buf.length) break;
    frames.push({ t: sec * 1000 + (nano ? frac / 1e6 : frac / 1e3), data: buf.subarray(start, start + incl) });
    off = start + incl;
  }
  return { linkType, frames };
}

export interface Packet {
  t: number;
  srcMac: string;
  dstMac: string;
  /** IPv4 only (the guests boot over IPv4); undefined for ARP, IPv6 and the rest. */
  src?: string;
  dst?: string;
  udp?: { sport: number; dport: number; payload: Buffer };
  tcp?: { sport: number; dport: number; flags: number; seq: number; payload: Buffer };
  /** ICMP type and code (e.g. 3/3: port unreachable). */
  icmp?: { type: number; code: number };
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

const mac = (b: Buffer, off: number) =>
  Array.from(b.subarray(off, off + 6), (x) => x.toString(16).padStart(2, '0')).join(':');
const ipv4 = (b: Buffer, off: number) => `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;

/** Decodes an Ethernet frame down to UDP/TCP/ICMP; undefined if it is too short to say anything. */
export function decodeEthernet(f: Frame): Packet | undefined {
  const d = f.data;
  if (d.length < 14) return undefined;
  const p: Packet = { t: f.t, dstMac: mac(d, 0), srcMac: mac(d, 6) };
  let off = 12;
  let type = d.readUInt16BE(off);
  while ((type === 0x8100 || type === 0x88a8) && d.length >= off + 6) {
    off += 4;
    type = d.readUInt16BE(off);
  }
  off += 2;
  if (type !== 0x0800 || d.length < off + 20) return p;
  const ihl = (d[off]! & 0x0f) * 4;
  const total = d.readUInt16BE(off + 2);
  const fragOffset = d.readUInt16BE(off + 6) & 0x1fff;
  const proto = d[off + 9]!;
  p.src = ipv4(d, off + 12);
  p.dst = ipv4(d, off + 16);
  // Only first fragments carry the transport header.
  if (fragOffset !== 0) return p;
  const l4 = off + ihl;
  const end = Math.min(d.length, off + total);
  if (proto === 17 && end >= l4 + 8) {
    p.udp = { sport: d.readUInt16BE(l4), dport: d.readUInt16BE(l4 + 2), payload: d.subarray(l4 + 8, end) };
  } else if (proto === 6 && end >= l4 + 20) {
    const dataOff = (d[l4 + 12]! >> 4) * 4;
    p.tcp = {
      sport: d.readUInt16BE(l4),
      dport: d.readUInt16BE(l4 + 2),
      seq: d.readUInt32BE(l4 + 4),
      flags: d[l4 + 13]!,
      payload: d.subarray(Math.min(end, l4 + dataOff), end),
    };
  } else if (proto === 1 && end >= l4 + 2) {
    p.icmp = { type: d[l4]!, code: d[l4 + 1]! };
  }
  return p;
}
