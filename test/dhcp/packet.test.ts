import { describe, expect, it } from 'vitest';
import {
  BOOTREPLY,
  BOOTREQUEST,
  BROADCAST_FLAG,
  clientMac,
  decodePacket,
  DhcpParseError,
  encodePacket,
  ipToBuffer,
  MIN_REPLY_LENGTH,
  replyTo,
  type DhcpPacket,
} from '../../src/dhcp/packet.js';
import { thrown } from '../support/thrown.js';
import { fixtureFiles, golden, GOLDEN_NAMES, goldenPacket, MAC, SERVER_IP, type GoldenName } from './golden.js';

/** A hand-made DHCP message: 236-byte header, cookie, then the given option bytes (no END added). */
function raw(
  opts: { op?: number; hlen?: number; cookie?: number; options?: number[]; file?: number[]; sname?: number[] } = {},
): Buffer {
  const options = opts.options ?? [53, 1, 1, 255];
  const buf = Buffer.alloc(240 + options.length);
  buf[0] = opts.op ?? BOOTREQUEST;
  buf[1] = 1;
  buf[2] = opts.hlen ?? 6;
  buf.writeUInt32BE(0x12345678, 4);
  Buffer.from([0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc]).copy(buf, 28);
  Buffer.from(opts.sname ?? []).copy(buf, 44);
  Buffer.from(opts.file ?? []).copy(buf, 108);
  buf.writeUInt32BE(opts.cookie ?? 0x63825363, 236);
  Buffer.from(options).copy(buf, 240);
  return buf;
}

const parseError = (bytes: Buffer) => thrown(() => decodePacket(bytes), DhcpParseError);

/** Options as sorted [code, hex] pairs: what a semantic comparison of two packets looks at. */
const optionList = (p: DhcpPacket) =>
  [...p.options].map(([code, v]) => [code, v.toString('hex')] as const).sort(([a], [b]) => a - b);

const fields = (p: DhcpPacket) => ({ ...p, chaddr: p.chaddr.toString('hex'), options: optionList(p) });

const codes = (p: DhcpPacket) => [...p.options.keys()];

const clientPackets: GoldenName[] = GOLDEN_NAMES.filter((n) => !n.startsWith('dnsmasq-'));
const serverPackets: GoldenName[] = GOLDEN_NAMES.filter((n) => n.startsWith('dnsmasq-'));

describe('golden packets from real clients', () => {
  it('the fixture folder holds exactly the captured packets, each saying where it came from', () => {
    expect(fixtureFiles()).toEqual([...GOLDEN_NAMES].sort());
    for (const name of GOLDEN_NAMES) {
      const g = golden(name);
      expect(g.name).toBe(name);
      expect(g.client.length, name).toBeGreaterThan(10);
      expect(g.captured, name).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect(g.capturedBy).toBe('scripts/capture-dhcp-fixtures.sh');
    }
  });

  it.each(clientPackets)('%s decodes as a BOOTREQUEST from the MAC that sent the frame', (name) => {
    const g = golden(name);
    const p = decodePacket(g.bytes);
    expect(p.op).toBe(BOOTREQUEST);
    expect(p.htype).toBe(1);
    expect(p.hlen).toBe(6);
    expect(clientMac(p)).toBe(g.frame.srcMac);
    expect(g.frame.dst).toMatch(/:67$/);
  });

  it.each(serverPackets)('%s decodes as a BOOTREPLY from dnsmasq with an address from its pool', (name) => {
    const p = goldenPacket(name);
    expect(p.op).toBe(BOOTREPLY);
    expect(p.siaddr).toBe(SERVER_IP);
    expect(p.yiaddr).toMatch(/^192\.0\.2\.1\d\d$/);
    expect(golden(name).frame.src).toBe(`${SERVER_IP}:67`);
  });

  it('udhcpc DISCOVER: header and options in the order busybox writes them', () => {
    const p = goldenPacket('udhcpc-discover');
    expect(clientMac(p)).toBe(MAC.udhcpc);
    expect(p.ciaddr).toBe('0.0.0.0');
    expect(p.flags).toBe(0);
    expect(p.sname).toBe('');
    expect(p.file).toBe('');
    expect(codes(p)).toEqual([53, 57, 55, 60, 61]);
    expect(golden('udhcpc-discover').bytes).toHaveLength(300);
  });

  it('one udhcpc transaction: the REQUEST asks for the offered address from the offering server, same xid', () => {
    const discover = goldenPacket('udhcpc-discover');
    const offer = goldenPacket('dnsmasq-offer-udhcpc');
    const request = goldenPacket('udhcpc-request');
    const ack = goldenPacket('dnsmasq-ack-udhcpc');
    expect(offer.xid).toBe(discover.xid);
    expect(request.xid).toBe(discover.xid);
    expect(ack.xid).toBe(discover.xid);
    expect(request.ciaddr).toBe('0.0.0.0');
    expect([...request.options.get(50)!]).toEqual([...ipToBuffer(offer.yiaddr)]);
    expect([...request.options.get(54)!]).toEqual([...ipToBuffer(SERVER_IP)]);
    expect(ack.yiaddr).toBe(offer.yiaddr);
    expect(offer.file).toBe('snponly.efi');
  });

  it('udhcpc renewing REQUEST carries ciaddr and no 50/54; RELEASE names the server', () => {
    const offer = goldenPacket('dnsmasq-offer-udhcpc');
    const renew = goldenPacket('udhcpc-request-renew');
    expect(renew.ciaddr).toBe(offer.yiaddr);
    expect(renew.options.has(50)).toBe(false);
    expect(renew.options.has(54)).toBe(false);
    const release = goldenPacket('udhcpc-release');
    expect(release.ciaddr).toBe(offer.yiaddr);
    expect(codes(release)).toEqual([53, 54, 61]);
    expect(golden('udhcpc-release').frame.dst).toBe(`${SERVER_IP}:67`);
  });

  it('OVMF sets the broadcast flag and dnsmasq echoes it; iPXE does not', () => {
    expect(goldenPacket('ovmf-pxe-discover').flags).toBe(BROADCAST_FLAG);
    expect(goldenPacket('dnsmasq-offer-ovmf').flags).toBe(BROADCAST_FLAG);
    expect(golden('dnsmasq-offer-ovmf').frame.dst).toBe('255.255.255.255:68');
    expect(goldenPacket('ipxe-bios-discover').flags).toBe(0);
  });

  it('options of iPXE and OVMF are kept in wire order', () => {
    expect(codes(goldenPacket('ipxe-bios-discover'))).toEqual([53, 57, 93, 94, 60, 77, 55, 175, 61, 97]);
    expect(codes(goldenPacket('ovmf-pxe-discover'))).toEqual([53, 57, 55, 97, 94, 93, 60]);
  });
});

describe('encode(decode(x))', () => {
  it.each(GOLDEN_NAMES)('%s: decoding the re-encoded packet gives the same fields and options', (name) => {
    const p = goldenPacket(name);
    const again = decodePacket(encodePacket(p, { maxSize: 1500 }));
    expect(fields(again)).toEqual(fields(p));
  });

  it.each(GOLDEN_NAMES)('%s: re-encodes byte for byte (53 first, END, zero padding like the real sender)', (name) => {
    const g = golden(name);
    expect(encodePacket(decodePacket(g.bytes), { maxSize: 1500 }).toString('hex')).toBe(g.hex);
  });
});

describe('encodePacket', () => {
  const request = goldenPacket('ovmf-pxe-discover');

  function offer(options: [number, Buffer][]): DhcpPacket {
    const r = replyTo(request);
    r.yiaddr = '192.0.2.150';
    r.siaddr = SERVER_IP;
    r.file = 'snponly.efi';
    for (const [code, value] of options) r.options.set(code, value);
    return r;
  }

  it('pads a short reply to 300 bytes, option 53 first even if set last, END after the last option', () => {
    const bytes = encodePacket(offer([[54, ipToBuffer(SERVER_IP)], [53, Buffer.from([2])]]));
    expect(bytes.length).toBe(MIN_REPLY_LENGTH);
    expect([...bytes.subarray(240, 250)]).toEqual([53, 1, 2, 54, 4, 192, 0, 2, 1, 255]);
    expect(bytes.subarray(250).every((b) => b === 0)).toBe(true);
  });

  it('a reply longer than 300 bytes is not padded, and still ends with END', () => {
    const bytes = encodePacket(offer([[53, Buffer.from([2])], [43, Buffer.alloc(100, 7)]]));
    expect(bytes.length).toBe(240 + 3 + 102 + 1);
    expect(bytes[bytes.length - 1]).toBe(255);
  });

  it('copies xid, flags, giaddr and chaddr from the request (RFC 2131 table 3)', () => {
    const relayed = { ...request, giaddr: '10.1.2.3', hops: 1 };
    const p = decodePacket(encodePacket(replyTo(relayed)));
    expect(p.op).toBe(BOOTREPLY);
    expect(p.xid).toBe(request.xid);
    expect(p.flags).toBe(BROADCAST_FLAG);
    expect(p.giaddr).toBe('10.1.2.3');
    expect(p.hops).toBe(0);
    expect(clientMac(p)).toBe(MAC.ovmf);
    expect(p.file).toBe('');
  });

  it('RFC 3396: an option over 255 bytes is split into consecutive instances and joined again', () => {
    const long = Buffer.from(Array.from({ length: 600 }, (_, i) => i % 251));
    const bytes = encodePacket(offer([[53, Buffer.from([2])], [43, long]]), { maxSize: 1472 });
    // 53 (3 bytes), then 43 as 255 + 255 + 90
    expect([bytes[243], bytes[244]]).toEqual([43, 255]);
    expect([bytes[243 + 257], bytes[244 + 257]]).toEqual([43, 255]);
    expect([bytes[243 + 514], bytes[244 + 514]]).toEqual([43, 90]);
    expect(bytes[243 + 514 + 92]).toBe(255);
    expect(decodePacket(bytes).options.get(43)).toEqual(long);
  });

  it('an option of exactly 255 bytes stays one instance; an empty option is code + length 0', () => {
    const bytes = encodePacket(offer([[53, Buffer.from([2])], [66, Buffer.alloc(255, 0x61)], [80, Buffer.alloc(0)]]));
    expect([bytes[243], bytes[244]]).toEqual([66, 255]);
    expect([...bytes.subarray(243 + 257, 243 + 260)]).toEqual([80, 0, 255]);
    const p = decodePacket(bytes);
    expect(p.options.get(66)).toHaveLength(255);
    expect(p.options.get(80)).toEqual(Buffer.alloc(0));
  });

  /** An offer of exactly `length` bytes: 53, then one long option 43 split per RFC 3396, then END. */
  function offerOfLength(length: number): DhcpPacket {
    for (let n = 0; n < 9000; n++) {
      if (240 + 3 + n + 2 * Math.ceil(n / 255) + 1 === length) return offer([[53, Buffer.from([2])], [43, Buffer.alloc(n)]]);
    }
    throw new Error(`no offer of ${length} bytes`);
  }

  it("respects the client's option 57, which counts the 28 bytes of IP and UDP headers", () => {
    // udhcpc sends 57 = 576: the whole datagram, so at most 548 bytes of DHCP message
    const udhcpcMax = goldenPacket('udhcpc-discover').options.get(57)!.readUInt16BE(0);
    expect(udhcpcMax).toBe(576);
    expect(encodePacket(offerOfLength(548), { maxSize: udhcpcMax })).toHaveLength(548);
    expect(thrown(() => encodePacket(offerOfLength(549), { maxSize: udhcpcMax }), RangeError).message).toMatch(
      /549 bytes exceeds the client's maximum of 548/,
    );
    // iPXE and OVMF send 57 = 1472
    const ipxeMax = goldenPacket('ipxe-bios-discover').options.get(57)!.readUInt16BE(0);
    expect(ipxeMax).toBe(1472);
    expect(encodePacket(offerOfLength(1444), { maxSize: ipxeMax })).toHaveLength(1444);
    expect(() => encodePacket(offerOfLength(1445), { maxSize: ipxeMax })).toThrow(RangeError);
  });

  it('without option 57 a reply stays within the 576-byte datagram every client accepts; 57 below 576 is ignored', () => {
    expect(encodePacket(offerOfLength(548))).toHaveLength(548);
    expect(() => encodePacket(offerOfLength(549))).toThrow(RangeError);
    expect(encodePacket(offerOfLength(548), { maxSize: 300 })).toHaveLength(548);
  });

  it('refuses option codes that are not plain options, and over-long sname/file', () => {
    for (const code of [0, 52, 255, 256, -1]) {
      expect(() => encodePacket(offer([[code, Buffer.from([1])]])), String(code)).toThrow(RangeError);
    }
    const p = offer([]);
    p.file = 'x'.repeat(128);
    expect(thrown(() => encodePacket(p), RangeError).message).toMatch(/file/);
    p.file = 'x'.repeat(127);
    expect(decodePacket(encodePacket(p)).file).toBe('x'.repeat(127));
    p.sname = 's'.repeat(64);
    expect(thrown(() => encodePacket(p), RangeError).message).toMatch(/sname/);
    p.sname = '';
    p.siaddr = '192.0.2.256';
    expect(() => encodePacket(p)).toThrow(RangeError);
  });
});

describe('decodePacket: option areas', () => {
  it('two instances of the same option are concatenated in order (RFC 3396)', () => {
    const p = decodePacket(raw({ options: [53, 1, 1, 12, 3, 0x61, 0x62, 0x63, 60, 1, 0x50, 12, 2, 0x64, 0x65, 255] }));
    expect(p.options.get(12)?.toString('latin1')).toBe('abcde');
    expect(codes(p)).toEqual([53, 12, 60]);
  });

  it('pad options are skipped anywhere, including between options and before END', () => {
    const p = decodePacket(raw({ options: [0, 0, 53, 1, 3, 0, 0, 0, 61, 2, 1, 2, 0, 255] }));
    expect(optionList(p)).toEqual([
      [53, '03'],
      [61, '0102'],
    ]);
  });

  it('a missing END is tolerated: the options run to the end of the packet', () => {
    const p = decodePacket(raw({ options: [53, 1, 1, 57, 2, 0x05, 0xc0] }));
    expect(p.options.get(57)?.readUInt16BE(0)).toBe(1472);
  });

  it('options after END are ignored', () => {
    const p = decodePacket(raw({ options: [53, 1, 1, 255, 60, 3, 0x61, 0x62, 0x63] }));
    expect(p.options.has(60)).toBe(false);
  });

  it('overload 1: options continue in the file field, which is then not a file name', () => {
    const p = decodePacket(
      raw({ options: [53, 1, 1, 52, 1, 1, 255], file: [67, 4, 0x61, 0x2e, 0x65, 0x66, 255], sname: [0x73, 0x72, 0x76] }),
    );
    expect(p.options.get(67)?.toString('latin1')).toBe('a.ef');
    expect(p.file).toBe('');
    expect(p.sname).toBe('srv');
    expect(p.options.has(52)).toBe(false);
  });

  it('overload 2: options continue in the sname field', () => {
    const p = decodePacket(raw({ options: [53, 1, 1, 52, 1, 2, 255], sname: [66, 2, 0x68, 0x62, 255], file: [0x66] }));
    expect(p.options.get(66)?.toString('latin1')).toBe('hb');
    expect(p.sname).toBe('');
    expect(p.file).toBe('f');
  });

  it('overload 3: both fields; a split option joins as options, then file, then sname (RFC 3396 section 7)', () => {
    const p = decodePacket(
      raw({ options: [53, 1, 1, 52, 1, 3, 43, 1, 0x41, 255], file: [43, 1, 0x42, 255], sname: [43, 1, 0x43, 255] }),
    );
    expect(p.options.get(43)?.toString('latin1')).toBe('ABC');
    expect(p.file).toBe('');
    expect(p.sname).toBe('');
  });

  it('without option 52, option-like bytes in file and sname are just names', () => {
    const p = decodePacket(raw({ file: [0x75, 0x6e, 0x64, 0x69], sname: [0x62, 0x6f, 0x6f, 0x74] }));
    expect(p.file).toBe('undi');
    expect(p.sname).toBe('boot');
    expect(codes(p)).toEqual([53]);
  });

  it('chaddr keeps only hlen bytes, so a non-Ethernet client has no MAC', () => {
    const p = decodePacket(raw({ hlen: 16 }));
    expect(p.chaddr).toHaveLength(16);
    expect(clientMac(p)).toBeUndefined();
    expect(clientMac({ ...p, htype: 6, hlen: 6 })).toBeUndefined();
  });
});

describe('decodePacket: malformed input is rejected with DhcpParseError and a reason', () => {
  it.each([
    ['empty', Buffer.alloc(0), /truncated: 0 bytes/],
    ['a truncated header', raw().subarray(0, 200), /truncated: 200 bytes/],
    ['a header without the cookie', raw().subarray(0, 239), /truncated: 239 bytes/],
    ['an oversized datagram', Buffer.concat([raw(), Buffer.alloc(9000)]), /oversized/],
    ['op 0', raw({ op: 0 }), /bad op 0/],
    ['op 3', raw({ op: 3 }), /bad op 3/],
    ['hlen 17', raw({ hlen: 17 }), /bad hlen 17/],
    ['a bad magic cookie (plain BOOTP)', raw({ cookie: 0x63825364 }), /bad magic cookie/],
    ['an option length running past the packet', raw({ options: [53, 1, 1, 60, 9, 0x50, 0x58] }), /option 60 in options overruns/],
    ['an option code with no length byte', raw({ options: [53, 1, 1, 61] }), /option 61 in options has no length byte/],
    ['overload value 4', raw({ options: [53, 1, 1, 52, 1, 4, 255] }), /bad overload value 4/],
    ['overload value 0', raw({ options: [53, 1, 1, 52, 1, 0, 255] }), /bad overload value 0/],
    ['option 52 of 2 bytes', raw({ options: [53, 1, 1, 52, 2, 1, 1, 255] }), /option 52 must be 1 byte/],
    ['option 52 inside file', raw({ options: [52, 1, 1, 255], file: [52, 1, 2, 255] }), /option 52 inside the file field/],
    ['option 52 inside sname', raw({ options: [52, 1, 2, 255], sname: [52, 1, 1, 255] }), /option 52 inside the sname field/],
    ['an overrun inside the overloaded file field', raw({ options: [52, 1, 1, 255], file: [67, 200] }), /option 67 in file overruns/],
  ])('%s', (_what, bytes, reason) => {
    const err = parseError(bytes);
    expect(err.reason).toMatch(reason);
    expect(err.message).toBe(`malformed DHCP packet: ${err.reason}`);
    expect(err.name).toBe('DhcpParseError');
  });

  it('a golden packet cut anywhere inside its options is rejected or decodes to a prefix, never throws otherwise', () => {
    const bytes = golden('ipxe-bios-discover').bytes;
    for (let len = 0; len < bytes.length; len++) {
      try {
        const p = decodePacket(bytes.subarray(0, len));
        expect(len).toBeGreaterThanOrEqual(240);
        expect(p.xid).toBe(goldenPacket('ipxe-bios-discover').xid);
      } catch (err) {
        expect(err, `cut at ${len}`).toBeInstanceOf(DhcpParseError);
      }
    }
  });
});

describe('ipToBuffer', () => {
  it('converts dotted quads and rejects anything else', () => {
    expect([...ipToBuffer('192.0.2.255')]).toEqual([192, 0, 2, 255]);
    for (const bad of ['192.0.2', '192.0.2.1.5', '192.0.2.256', '192.0.2.x', '', '192.0.2.-1', '1.2.3.1000']) {
      expect(() => ipToBuffer(bad), bad).toThrow(RangeError);
    }
  });
});
