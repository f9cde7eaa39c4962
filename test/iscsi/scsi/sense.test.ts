import { describe, expect, it } from 'vitest';
import { firstDifference } from '../../../src/iscsi/scsi/compare.js';
import { Asc, fixedSense, SenseKey } from '../../../src/iscsi/scsi/sense.js';
import { decodeSense } from './helpers.js';

describe('fixed-format sense data', () => {
  it('is 18 bytes with response code 70h and additional sense length 10', () => {
    const b = fixedSense({ key: SenseKey.IllegalRequest, asc: Asc.LbaOutOfRange });
    expect(b.length).toBe(18);
    expect(b[0]).toBe(0x70);
    expect(b[7]).toBe(10);
    expect(decodeSense(b)).toMatchObject({ key: 5, asc: 0x21, ascq: 0, valid: false, sksv: false });
  });

  it('sets VALID and the INFORMATION field when given', () => {
    const s = decodeSense(fixedSense({ key: SenseKey.Miscompare, asc: Asc.MiscompareDuringVerify, information: 0x0102_0304 }));
    expect(s).toMatchObject({ valid: true, information: 0x01020304, key: 0xe, asc: 0x1d });
  });

  it('codes the sense-key specific field pointer: SKSV, C/D, BPV and bit pointer', () => {
    const cdbField = decodeSense(fixedSense({ key: 5, asc: Asc.InvalidFieldInCdb, field: { inCdb: true, byte: 14, bit: 6 } }));
    expect(cdbField).toMatchObject({ sksv: true, inCdb: true, fieldPointer: 14, bitPointer: 6 });
    const param = fixedSense({ key: 5, asc: Asc.InvalidFieldInParameterList, field: { inCdb: false, byte: 300 } });
    expect(decodeSense(param)).toMatchObject({ sksv: true, inCdb: false, fieldPointer: 300, bitPointer: undefined });
    expect(param[15]).toBe(0x80);
  });
});

describe('firstDifference', () => {
  it('finds the first differing byte anywhere, including across the 64 KiB pieces', () => {
    const a = Buffer.alloc(300_000, 7);
    expect(firstDifference(a, Buffer.from(a))).toBe(-1);
    for (const at of [0, 1, 65535, 65536, 65537, 131071, 200_000, 299_999]) {
      const b = Buffer.from(a);
      b[at] = 8;
      b[Math.min(at + 10, b.length - 1)] = 9;
      expect(firstDifference(a, b)).toBe(at);
    }
  });
});
