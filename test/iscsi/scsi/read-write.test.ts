import { describe, expect, it } from 'vitest';
import {
  BS,
  cdb,
  expectGood,
  expectInvalidCdbField,
  expectSense,
  Key,
  makeUnit,
  Op,
  pattern,
  run,
} from './helpers.js';

describe('READ and WRITE', () => {
  it.each([
    ['10', (lba: number, n: number) => cdb.rw10(Op.Write10, lba, n), (lba: number, n: number) => cdb.rw10(Op.Read10, lba, n)],
    ['12', (lba: number, n: number) => cdb.rw12(Op.Write12, lba, n), (lba: number, n: number) => cdb.rw12(Op.Read12, lba, n)],
    ['16', (lba: number, n: number) => cdb.rw16(Op.Write16, lba, n), (lba: number, n: number) => cdb.rw16(Op.Read16, lba, n)],
    ['6', cdb.write6, cdb.read6],
  ])('WRITE(%s) then READ returns the bytes written, at the right LBA', async (_n, w, r) => {
    const { lu, dev } = makeUnit();
    const data = pattern(3);
    expectGood(await run(lu, w(100, 3), data));
    expect(dev.data.subarray(100 * BS, 103 * BS).equals(data)).toBe(true);
    const res = await run(lu, r(100, 3));
    expectGood(res);
    expect(res.dataIn!.equals(data)).toBe(true);
    // The neighbours are untouched.
    expect(dev.data.subarray(99 * BS, 100 * BS).every((x) => x === 0)).toBe(true);
    expect(dev.data.subarray(103 * BS, 104 * BS).every((x) => x === 0)).toBe(true);
  });

  it('READ(6) with TRANSFER LENGTH 0 reads 256 blocks', async () => {
    const { lu } = makeUnit();
    const res = await run(lu, cdb.read6(0, 0));
    expectGood(res);
    expect(res.dataIn!.length).toBe(256 * BS);
  });

  it('READ(10)/(16) with TRANSFER LENGTH 0 transfer nothing and succeed', async () => {
    const { lu, dev } = makeUnit();
    for (const c of [cdb.rw10(Op.Read10, 5, 0), cdb.rw16(Op.Read16, 5, 0), cdb.rw12(Op.Read12, 1024, 0)]) {
      const res = await run(lu, c);
      expectGood(res);
      expect(res.dataIn?.length ?? 0).toBe(0);
    }
    expect(dev.callsOf('read')).toHaveLength(0);
  });

  it('reads the last block and refuses one block past it with LBA OUT OF RANGE', async () => {
    const { lu } = makeUnit();
    expectGood(await run(lu, cdb.rw10(Op.Read10, 1023, 1)));
    expectSense(await run(lu, cdb.rw10(Op.Read10, 1023, 2)), Key.Illegal, 0x21);
    expectSense(await run(lu, cdb.rw10(Op.Read10, 1024, 1)), Key.Illegal, 0x21);
  });

  it('refuses an LBA past the end even with a zero length, but accepts LBA == capacity with length 0', async () => {
    const { lu } = makeUnit();
    expectGood(await run(lu, cdb.rw10(Op.Read10, 1024, 0)));
    expectSense(await run(lu, cdb.rw10(Op.Read10, 1025, 0)), Key.Illegal, 0x21);
    expectSense(await run(lu, cdb.rw10(Op.Read10, 0xffffffff, 0)), Key.Illegal, 0x21);
  });

  it('handles 64-bit LBAs that would overflow LBA + length', async () => {
    const { lu } = makeUnit();
    for (const lba of [0xffffffffffffffffn, 0x8000000000000000n, 1n << 55n]) {
      expectSense(await run(lu, cdb.rw16(Op.Read16, lba, 1)), Key.Illegal, 0x21);
      expectSense(await run(lu, cdb.rw16(Op.Write16, lba, 1), Buffer.alloc(BS)), Key.Illegal, 0x21);
    }
  });

  it('refuses a transfer above MAXIMUM TRANSFER LENGTH with INVALID FIELD IN CDB at the length', async () => {
    const { lu, dev } = makeUnit({}, { limits: { maxTransferBlocks: 16 } });
    expectGood(await run(lu, cdb.rw10(Op.Read10, 0, 16)));
    expectInvalidCdbField(await run(lu, cdb.rw10(Op.Read10, 0, 17)), 7);
    expectInvalidCdbField(await run(lu, cdb.rw16(Op.Write16, 0, 17), Buffer.alloc(17 * BS)), 10);
    expectInvalidCdbField(await run(lu, cdb.rw12(Op.Read12, 0, 17)), 6);
    expect(dev.callsOf('write')).toHaveLength(0);
  });

  it('passes FUA to the backend as a write-through write, and accepts DPO and FUA_NV', async () => {
    const { lu, dev } = makeUnit();
    expectGood(await run(lu, cdb.rw10(Op.Write10, 0, 1, { byte1: 0x08 }), Buffer.alloc(BS, 1)));
    expectGood(await run(lu, cdb.rw16(Op.Write16, 1, 1, { byte1: 0x08 }), Buffer.alloc(BS, 1)));
    expectGood(await run(lu, cdb.rw10(Op.Write10, 2, 1, { byte1: 0x10 | 0x02 }), Buffer.alloc(BS, 1)));
    expect(dev.callsOf('write').map((c) => c.fua)).toEqual([true, true, false]);
    expectGood(await run(lu, cdb.rw10(Op.Read10, 0, 1, { byte1: 0x18 })));
  });

  it('WRITE(6) byte 1 is LBA, never FUA', async () => {
    const { lu, dev } = makeUnit({ size: 0x20_0000 * BS });
    expectGood(await run(lu, cdb.write6(0x08_0000, 1), Buffer.alloc(BS, 7)));
    expect(dev.callsOf('write')[0]).toMatchObject({ offset: 0x08_0000 * BS, fua: false });
  });

  it('refuses RDPROTECT/WRPROTECT (no protection information) pointing at the field', async () => {
    const { lu } = makeUnit();
    for (let p = 1; p < 8; p++) {
      expectInvalidCdbField(await run(lu, cdb.rw10(Op.Read10, 0, 1, { byte1: p << 5 })), 1, 7);
      expectInvalidCdbField(await run(lu, cdb.rw16(Op.Write16, 0, 1, { byte1: p << 5 }), Buffer.alloc(BS)), 1, 7);
    }
  });

  it('accepts any GROUP NUMBER and refuses NACA in the control byte', async () => {
    const { lu } = makeUnit();
    expectGood(await run(lu, cdb.rw10(Op.Read10, 0, 1, { group: 0x1f })));
    expectInvalidCdbField(await run(lu, cdb.rw10(Op.Read10, 0, 1, { control: 0x04 })), 9, 2);
    // Vendor-specific control bits are ignored.
    expectGood(await run(lu, cdb.rw10(Op.Read10, 0, 1, { control: 0xc0 })));
  });

  describe('Data-Out shorter or longer than the CDB asks (EDTL mismatch)', () => {
    it('writes only the first block when two blocks of data come for a one-block WRITE', async () => {
      const { lu, dev } = makeUnit();
      const data = Buffer.concat([Buffer.alloc(BS, 0x62), Buffer.alloc(BS, 0x61)]);
      expectGood(await run(lu, cdb.rw10(Op.Write10, 0, 1), data));
      expect(dev.data.subarray(0, BS).every((x) => x === 0x62)).toBe(true);
      expect(dev.data.subarray(BS, 2 * BS).every((x) => x === 0)).toBe(true);
    });

    it('writes the whole blocks received when a two-block WRITE gets one block, leaving the second', async () => {
      const { lu, dev } = makeUnit();
      dev.data.fill(0x61, 0, 2 * BS);
      expectGood(await run(lu, cdb.rw10(Op.Write10, 0, 2), Buffer.alloc(BS, 0x62)));
      expect(dev.data.subarray(0, BS).every((x) => x === 0x62)).toBe(true);
      expect(dev.data.subarray(BS, 2 * BS).every((x) => x === 0x61)).toBe(true);
    });

    it('succeeds without writing when no data came at all', async () => {
      const { lu, dev } = makeUnit();
      expectGood(await run(lu, cdb.rw10(Op.Write10, 0, 1)));
      expect(dev.callsOf('write')).toHaveLength(0);
    });

    it('refuses a partial block with INVALID FIELD IN INFORMATION UNIT, writing nothing', async () => {
      const { lu, dev } = makeUnit();
      expectSense(await run(lu, cdb.rw10(Op.Write10, 0, 1), Buffer.alloc(200, 1)), Key.Illegal, 0x0e, 0x03);
      expect(dev.callsOf('write')).toHaveLength(0);
    });
  });

  describe('backend failures', () => {
    it('a failed read is MEDIUM ERROR / UNRECOVERED READ ERROR', async () => {
      const { lu, dev } = makeUnit();
      dev.failNext('read');
      const r = await run(lu, cdb.rw10(Op.Read10, 0, 4));
      expectSense(r, Key.Medium, 0x11);
      expect(r.dataIn).toBeUndefined();
    });

    it('a failed write is MEDIUM ERROR / WRITE ERROR', async () => {
      const { lu, dev } = makeUnit();
      dev.failNext('write');
      expectSense(await run(lu, cdb.rw10(Op.Write10, 0, 1), Buffer.alloc(BS)), Key.Medium, 0x0c);
    });

    it('a thin backend out of space is DATA PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT', async () => {
      const { lu, dev } = makeUnit({ thin: true });
      dev.failNext('write', Object.assign(new Error('no space'), { code: 'ENOSPC' }));
      expectSense(await run(lu, cdb.rw10(Op.Write10, 0, 1), Buffer.alloc(BS)), Key.DataProtect, 0x27, 0x07);
    });

    it('a device being closed is NOT READY, not a medium error', async () => {
      const { lu, dev } = makeUnit();
      dev.failNext('read', Object.assign(new Error('closed'), { code: 'CLOSED' }));
      expectSense(await run(lu, cdb.rw10(Op.Read10, 0, 1)), Key.NotReady, 0x04);
    });

    it('a short read from the backend is a MEDIUM ERROR, not short data', async () => {
      const { lu, dev } = makeUnit();
      dev.read = async () => Buffer.alloc(BS);
      expectSense(await run(lu, cdb.rw10(Op.Read10, 0, 2)), Key.Medium, 0x11);
    });
  });

  describe('read-only unit', () => {
    it('refuses every writing command with DATA PROTECT / WRITE PROTECTED and never calls the backend', async () => {
      const { lu, dev } = makeUnit({ readOnly: true, thin: true });
      const one = Buffer.alloc(BS);
      const writes: Array<[Buffer, Buffer | undefined]> = [
        [cdb.write6(0, 1), one],
        [cdb.rw10(Op.Write10, 0, 1), one],
        [cdb.rw12(Op.Write12, 0, 1), one],
        [cdb.rw16(Op.Write16, 0, 1), one],
        [cdb.rw10(Op.WriteAndVerify10, 0, 1, { byte1: 0x02 }), one],
        [cdb.rw16(Op.WriteAndVerify16, 0, 1), one],
        [cdb.rw10(Op.WriteSame10, 0, 1), one],
        [cdb.rw16(Op.WriteSame16, 0, 1, { byte1: 0x08 }), undefined],
        [cdb.unmap(24), undefined],
      ];
      for (const [c, d] of writes) expectSense(await run(lu, c, d), Key.DataProtect, 0x27);
      expect(dev.callsOf('write').length + dev.callsOf('discard').length).toBe(0);
      // Reads still work.
      expectGood(await run(lu, cdb.rw10(Op.Read10, 0, 1)));
      expectGood(await run(lu, cdb.rw10(Op.SynchronizeCache10, 0, 0)));
    });
  });

  describe('caching page WCE', () => {
    it('with the write cache disabled every write is write-through', async () => {
      const { lu, dev } = makeUnit();
      lu.mode.writeCacheEnabled = false;
      expectGood(await run(lu, cdb.rw10(Op.Write10, 0, 1), Buffer.alloc(BS)));
      expect(dev.callsOf('write')[0]!.fua).toBe(true);
    });
  });
});

describe('VERIFY and WRITE AND VERIFY', () => {
  it('BYTCHK=0 checks the range only', async () => {
    const { lu, dev } = makeUnit();
    expectGood(await run(lu, cdb.rw10(Op.Verify10, 0, 8)));
    expectSense(await run(lu, cdb.rw10(Op.Verify10, 1020, 8)), Key.Illegal, 0x21);
    expectSense(await run(lu, cdb.rw16(Op.Verify16, 1025, 0)), Key.Illegal, 0x21);
    expect(dev.callsOf('read')).toHaveLength(0);
  });

  it.each([
    ['10', (lba: number, n: number) => cdb.rw10(Op.Verify10, lba, n, { byte1: 0x02 })],
    ['12', (lba: number, n: number) => cdb.rw12(Op.Verify12, lba, n, { byte1: 0x02 })],
    ['16', (lba: number, n: number) => cdb.rw16(Op.Verify16, lba, n, { byte1: 0x02 })],
  ])('VERIFY(%s) BYTCHK=1: GOOD on equal data, MISCOMPARE with the offset of the first difference', async (_n, v) => {
    const { lu, dev } = makeUnit();
    const data = pattern(4, 3);
    data.copy(dev.data, 10 * BS);
    expectGood(await run(lu, v(10, 4), data));
    const changed = Buffer.from(data);
    changed[1234] = changed[1234]! ^ 0x58;
    changed[1800] = changed[1800]! ^ 0x01;
    const s = expectSense(await run(lu, v(10, 4), changed), Key.Miscompare, 0x1d);
    expect(s.valid).toBe(true);
    expect(s.information).toBe(1234);
  });

  it('reports a difference in the very last byte of a large compare', async () => {
    const { lu, dev } = makeUnit({ size: 4096 * BS });
    const data = pattern(300);
    data.copy(dev.data, 0);
    const changed = Buffer.from(data);
    changed[changed.length - 1] = changed[changed.length - 1]! ^ 0xff;
    const s = expectSense(await run(lu, cdb.rw10(Op.Verify10, 0, 300, { byte1: 0x02 }), changed), Key.Miscompare, 0x1d);
    expect(s.information).toBe(300 * BS - 1);
  });

  it('refuses BYTCHK 10b and 11b and VRPROTECT', async () => {
    const { lu } = makeUnit();
    expectInvalidCdbField(await run(lu, cdb.rw10(Op.Verify10, 0, 1, { byte1: 0x04 })), 1, 2);
    expectInvalidCdbField(await run(lu, cdb.rw10(Op.Verify10, 0, 1, { byte1: 0x06 })), 1, 2);
    expectInvalidCdbField(await run(lu, cdb.rw10(Op.Verify10, 0, 1, { byte1: 0x20 })), 1, 7);
  });

  it.each([
    ['10', (lba: number, n: number, b1: number) => cdb.rw10(Op.WriteAndVerify10, lba, n, { byte1: b1 })],
    ['12', (lba: number, n: number, b1: number) => cdb.rw12(Op.WriteAndVerify12, lba, n, { byte1: b1 })],
    ['16', (lba: number, n: number, b1: number) => cdb.rw16(Op.WriteAndVerify16, lba, n, { byte1: b1 })],
  ])('WRITE AND VERIFY(%s) writes through to the medium and reads back equal', async (_n, wv) => {
    const { lu, dev } = makeUnit();
    const data = pattern(2, 9);
    expectGood(await run(lu, wv(7, 2, 0x02), data));
    expect(dev.data.subarray(7 * BS, 9 * BS).equals(data)).toBe(true);
    expect(dev.callsOf('write')[0]!.fua).toBe(true);
    expect(dev.callsOf('read')).toHaveLength(1);
    expectGood(await run(lu, wv(20, 1, 0x00), Buffer.alloc(BS, 5)));
    expect(dev.callsOf('read')).toHaveLength(1);
  });

  it('WRITE AND VERIFY reports a backend that does not keep the data as MISCOMPARE', async () => {
    const { lu, dev } = makeUnit();
    const write = dev.write.bind(dev);
    dev.write = async (offset, data, o) => write(offset, Buffer.alloc(data.length, 0xee), o);
    const s = expectSense(await run(lu, cdb.rw10(Op.WriteAndVerify10, 0, 1, { byte1: 0x02 }), Buffer.alloc(BS, 1)), Key.Miscompare, 0x1d);
    expect(s.information).toBe(0);
  });
});

describe('PRE-FETCH and SYNCHRONIZE CACHE', () => {
  it('PRE-FETCH answers GOOD (we hold no cache to fill) after the range check', async () => {
    const { lu, dev } = makeUnit();
    expectGood(await run(lu, cdb.rw10(Op.PreFetch10, 0, 256)));
    expectGood(await run(lu, cdb.rw16(Op.PreFetch16, 1023, 1, { byte1: 0x02, group: 3 })));
    expectSense(await run(lu, cdb.rw10(Op.PreFetch10, 1023, 2)), Key.Illegal, 0x21);
    expectSense(await run(lu, cdb.rw16(Op.PreFetch16, 0xffffffffffffffffn, 0)), Key.Illegal, 0x21);
    expect(dev.calls).toHaveLength(0);
  });

  it('SYNCHRONIZE CACHE(10)/(16) flushes the backend, for a range or the whole unit', async () => {
    const { lu, dev } = makeUnit();
    expectGood(await run(lu, cdb.rw10(Op.SynchronizeCache10, 0, 0)));
    expectGood(await run(lu, cdb.rw16(Op.SynchronizeCache16, 100, 10, { byte1: 0x02 })));
    expect(dev.flushes).toBe(2);
    expectSense(await run(lu, cdb.rw10(Op.SynchronizeCache10, 1020, 10)), Key.Illegal, 0x21);
    expect(dev.flushes).toBe(2);
  });

  it('a failed flush is reported, even with IMMED set', async () => {
    const { lu, dev } = makeUnit();
    dev.failNext('flush');
    expectSense(await run(lu, cdb.rw10(Op.SynchronizeCache10, 0, 0, { byte1: 0x02 })), Key.Medium, 0x0c);
  });
});
