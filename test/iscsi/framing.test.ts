import { describe, expect, it } from 'vitest';
import { FrameReader, FramingError, digestOf, framePdu } from '../../src/iscsi/framing.js';
import { encodeNopIn } from '../../src/iscsi/pdu.js';
import { prng } from '../support/prng.js';

const seq = { statSN: 1, expCmdSN: 2, maxCmdSN: 3 };

function nopIn(dataLength: number): Buffer {
  return encodeNopIn({ itt: 7, ttt: 0xffffffff, lun: 0 }, seq, dataLength);
}

describe('iSCSI framing', () => {
  it('computes the iSCSI CRC32C of the RFC 3720 B.4 test vector (32 bytes of zeroes)', () => {
    // RFC 3720 Appendix B.4: 32 bytes of zeroes give aa 36 91 8a on the wire (little-endian 0x8a9136aa).
    expect(digestOf(Buffer.alloc(32))).toBe(0x8a9136aa);
    expect(digestOf(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
  });

  it('round-trips PDUs with digests, padding and chunking at every split point', () => {
    const data = Buffer.from('hello, initiator'); // 16 bytes: no padding
    const odd = Buffer.from('odd!!'); // 5 bytes: 3 of padding
    const digests = { header: true, data: true };
    const wire = Buffer.concat([...framePdu(nopIn(data.length), data, digests), ...framePdu(nopIn(odd.length), odd, digests)]);
    for (let split = 1; split < wire.length; split += 7) {
      const reader = new FrameReader({ headerDigest: true, dataDigest: true, maxDataSegmentLength: 8192 });
      reader.push(wire.subarray(0, split));
      const frames = [];
      for (let f = reader.next(); f; f = reader.next()) frames.push(f);
      reader.push(wire.subarray(split));
      for (let f = reader.next(); f; f = reader.next()) frames.push(f);
      expect(frames.map((f) => f.data.toString())).toEqual(['hello, initiator', 'odd!!']);
      expect(frames.every((f) => f.dataDigestOk)).toBe(true);
      expect(reader.pendingBytes).toBe(0);
    }
  });

  it('reports a data digest mismatch without losing the stream, and refuses a bad header digest', () => {
    const data = Buffer.from('payload!');
    const wire = Buffer.concat(framePdu(nopIn(data.length), data, { header: true, data: true }));
    const corruptData = Buffer.from(wire);
    corruptData.writeUInt8(corruptData.readUInt8(54) ^ 0xff, 54);
    const reader = new FrameReader({ headerDigest: true, dataDigest: true, maxDataSegmentLength: 8192 });
    reader.push(corruptData);
    reader.push(wire);
    expect(reader.next()?.dataDigestOk).toBe(false);
    expect(reader.next()?.dataDigestOk).toBe(true);

    const corruptHeader = Buffer.from(wire);
    corruptHeader.writeUInt8(corruptHeader.readUInt8(20) ^ 1, 20);
    const r2 = new FrameReader({ headerDigest: true, dataDigest: true, maxDataSegmentLength: 8192 });
    r2.push(corruptHeader);
    expect(() => r2.next()).toThrow(FramingError);
  });

  it('refuses a data segment larger than MaxRecvDataSegmentLength before buffering it', () => {
    const bhs = nopIn(0);
    bhs.writeUIntBE(0xffffff, 5, 3);
    const reader = new FrameReader({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 8192 });
    reader.push(bhs);
    expect(() => reader.next()).toThrow(/exceeds MaxRecvDataSegmentLength/);
  });

  it('never throws anything but FramingError on random bytes', () => {
    const random = prng(42);
    for (let round = 0; round < 2000; round++) {
      const reader = new FrameReader({ headerDigest: random() < 0.5, dataDigest: random() < 0.5, maxDataSegmentLength: 65536 });
      const bytes = Buffer.alloc(Math.floor(random() * 400));
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
      reader.push(bytes);
      try {
        while (reader.next());
      } catch (err) {
        expect(err).toBeInstanceOf(FramingError);
      }
    }
  });
});
