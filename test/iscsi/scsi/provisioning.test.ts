import { describe, expect, it } from 'vitest';
import { WRITE_SAME_CHUNK_BYTES } from '../../../src/iscsi/scsi/commands/provisioning.js';
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
  unmapList,
} from './helpers.js';

interface Status {
  lba: bigint;
  blocks: number;
  deallocated: boolean;
}

function lbaStatus(d: Buffer): { length: number; descriptors: Status[] } {
  const descriptors: Status[] = [];
  for (let at = 8; at + 16 <= d.length; at += 16) {
    descriptors.push({ lba: d.readBigUInt64BE(at), blocks: d.readUInt32BE(at + 8), deallocated: (d[at + 12]! & 0x0f) === 1 });
  }
  return { length: d.readUInt32BE(0), descriptors };
}

describe('UNMAP', () => {
  it('deallocates the listed ranges on a thin unit: they read back as zeroes', async () => {
    const { lu, dev } = makeUnit({ thin: true });
    expectGood(await run(lu, cdb.rw10(Op.Write10, 0, 64), pattern(64)));
    const list = unmapList([[8, 8], [40, 4]]);
    expectGood(await run(lu, cdb.unmap(list.length), list));
    expect(dev.callsOf('discard').map((c) => [c.offset! / BS, c.length! / BS])).toEqual([[8, 8], [40, 4]]);
    const r = await run(lu, cdb.rw10(Op.Read10, 0, 64));
    expect(r.dataIn!.subarray(8 * BS, 16 * BS).every((x) => x === 0)).toBe(true);
    expect(r.dataIn!.subarray(40 * BS, 44 * BS).every((x) => x === 0)).toBe(true);
    expect(r.dataIn!.subarray(0, 8 * BS).equals(pattern(64).subarray(0, 8 * BS))).toBe(true);
  });

  it('is not offered by a fully provisioned unit: INVALID COMMAND OPERATION CODE', async () => {
    const { lu } = makeUnit();
    const list = unmapList([[0, 1]]);
    expectSense(await run(lu, cdb.unmap(list.length), list), Key.Illegal, 0x20);
  });

  it('accepts an empty parameter list, zero-length descriptors and a descriptor ending at the last LBA', async () => {
    const { lu, dev } = makeUnit({ thin: true });
    expectGood(await run(lu, cdb.unmap(0)));
    const list = unmapList([[0, 0], [1024, 0], [1000, 24]]);
    expectGood(await run(lu, cdb.unmap(list.length), list));
    expect(dev.callsOf('discard')).toHaveLength(1);
  });

  it('a list shorter than its 8-byte header is PARAMETER LIST LENGTH ERROR', async () => {
    const { lu } = makeUnit({ thin: true });
    expectSense(await run(lu, cdb.unmap(6), Buffer.alloc(6)), Key.Illegal, 0x1a);
  });

  it('ignores a trailing partial descriptor', async () => {
    const { lu, dev } = makeUnit({ thin: true });
    const list = Buffer.concat([unmapList([[5, 1]]), Buffer.alloc(10, 0xff)]);
    list.writeUInt16BE(26, 2);
    expectGood(await run(lu, cdb.unmap(list.length), list));
    expect(dev.callsOf('discard')).toHaveLength(1);
  });

  it('refuses an out-of-range descriptor without deallocating any of the list', async () => {
    const { lu, dev } = makeUnit({ thin: true });
    const list = unmapList([[0, 8], [1020, 8]]);
    expectSense(await run(lu, cdb.unmap(list.length), list), Key.Illegal, 0x21);
    const huge = unmapList([[0, 8], [Number.MAX_SAFE_INTEGER, 1]]);
    expectSense(await run(lu, cdb.unmap(huge.length), huge), Key.Illegal, 0x21);
    expect(dev.callsOf('discard')).toHaveLength(0);
  });

  it('holds lists to MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT and MAXIMUM UNMAP LBA COUNT', async () => {
    const { lu } = makeUnit({ thin: true }, { limits: { maxUnmapDescriptors: 2, maxUnmapBlocks: 16 } });
    const many = unmapList([[0, 1], [2, 1], [4, 1]]);
    const s1 = expectSense(await run(lu, cdb.unmap(many.length), many), Key.Illegal, 0x26);
    expect(s1.inCdb).toBe(false);
    const big = unmapList([[0, 10], [20, 10]]);
    const s2 = expectSense(await run(lu, cdb.unmap(big.length), big), Key.Illegal, 0x26);
    expect(s2.fieldPointer).toBe(8 + 16 + 8);
  });

  it('refuses ANCHOR (ANC_SUP=0)', async () => {
    const { lu } = makeUnit({ thin: true });
    const list = unmapList([[0, 1]]);
    expectInvalidCdbField(await run(lu, cdb.unmap(list.length, true), list), 1, 0);
  });

  it('a failed deallocation is MEDIUM ERROR', async () => {
    const { lu, dev } = makeUnit({ thin: true });
    dev.failNext('discard');
    const list = unmapList([[0, 1]]);
    expectSense(await run(lu, cdb.unmap(list.length), list), Key.Medium, 0x0c);
  });
});

describe('WRITE SAME', () => {
  it.each([
    ['10', (lba: number, n: number, b1 = 0) => cdb.rw10(Op.WriteSame10, lba, n, { byte1: b1 })],
    ['16', (lba: number, n: number, b1 = 0) => cdb.rw16(Op.WriteSame16, lba, n, { byte1: b1 })],
  ])('(%s) writes the one block to every LBA of the range', async (_n, ws) => {
    const { lu, dev } = makeUnit();
    const block = pattern(1, 5);
    expectGood(await run(lu, ws(10, 7), block));
    for (let i = 10; i < 17; i++) expect(dev.data.subarray(i * BS, (i + 1) * BS).equals(block)).toBe(true);
    expect(dev.data.subarray(17 * BS, 18 * BS).every((x) => x === 0)).toBe(true);
  });

  it('writes large runs in large chunks, not block by block', async () => {
    const { lu, dev } = makeUnit({ size: 10_000 * BS });
    expectGood(await run(lu, cdb.rw16(Op.WriteSame16, 100, 9000), Buffer.alloc(BS, 0xa5)));
    const writes = dev.callsOf('write');
    expect(writes.length).toBe(Math.ceil((9000 * BS) / WRITE_SAME_CHUNK_BYTES));
    expect(writes.reduce((n, c) => n + c.length!, 0)).toBe(9000 * BS);
    expect(dev.data.subarray(100 * BS, 9100 * BS).every((x) => x === 0xa5)).toBe(true);
    expect(dev.data[9100 * BS]).toBe(0);
  });

  it('with UNMAP and a zero block deallocates on a thin unit', async () => {
    const { lu, dev } = makeUnit({ thin: true });
    expectGood(await run(lu, cdb.rw10(Op.Write10, 0, 16), Buffer.alloc(16 * BS, 0xff)));
    expectGood(await run(lu, cdb.rw10(Op.WriteSame10, 4, 8, { byte1: 0x08 }), Buffer.alloc(BS)));
    expect(dev.callsOf('discard')).toEqual([{ op: 'discard', offset: 4 * BS, length: 8 * BS }]);
    const r = await run(lu, cdb.rw10(Op.Read10, 0, 16));
    expect(r.dataIn!.subarray(4 * BS, 12 * BS).every((x) => x === 0)).toBe(true);
    expect(r.dataIn!.subarray(12 * BS).every((x) => x === 0xff)).toBe(true);
  });

  it('with UNMAP deallocates whatever the block holds, as LIO and tgtd do (reads return zeroes, LBPRZ)', async () => {
    const { lu, dev } = makeUnit({ thin: true });
    expectGood(await run(lu, cdb.rw16(Op.Write16, 0, 8), Buffer.alloc(8 * BS, 0x5a)));
    expectGood(await run(lu, cdb.rw16(Op.WriteSame16, 0, 4, { byte1: 0x08 }), Buffer.alloc(BS, 0xff)));
    expect(dev.callsOf('discard')).toEqual([{ op: 'discard', offset: 0, length: 4 * BS }]);
    const r = await run(lu, cdb.rw16(Op.Read16, 0, 8));
    expect(r.dataIn!.subarray(0, 4 * BS).every((x) => x === 0)).toBe(true);
    expect(r.dataIn!.subarray(4 * BS).every((x) => x === 0x5a)).toBe(true);
  });

  it('NDOB writes zeroes without Data-Out, and deallocates with UNMAP on a thin unit', async () => {
    const { lu, dev } = makeUnit({ thin: true, fill: 0x11 });
    dev.mapped.fill(1);
    expectGood(await run(lu, cdb.rw16(Op.WriteSame16, 0, 4, { byte1: 0x01 })));
    expect(dev.data.subarray(0, 4 * BS).every((x) => x === 0)).toBe(true);
    expect(dev.callsOf('write')).toHaveLength(1);
    expectGood(await run(lu, cdb.rw16(Op.WriteSame16, 8, 4, { byte1: 0x09 })));
    expect(dev.callsOf('discard')).toHaveLength(1);
  });

  it('UNMAP on a fully provisioned unit is INVALID FIELD IN CDB at the UNMAP bit', async () => {
    const { lu } = makeUnit();
    expectInvalidCdbField(await run(lu, cdb.rw10(Op.WriteSame10, 0, 1, { byte1: 0x08 }), Buffer.alloc(BS)), 1, 3);
  });

  it('refuses ANCHOR, WRPROTECT and the obsolete LBDATA/PBDATA', async () => {
    const { lu } = makeUnit({ thin: true });
    expectInvalidCdbField(await run(lu, cdb.rw10(Op.WriteSame10, 0, 1, { byte1: 0x18 }), Buffer.alloc(BS)), 1, 4);
    expectInvalidCdbField(await run(lu, cdb.rw16(Op.WriteSame16, 0, 1, { byte1: 0x20 }), Buffer.alloc(BS)), 1, 7);
    expectInvalidCdbField(await run(lu, cdb.rw10(Op.WriteSame10, 0, 1, { byte1: 0x02 }), Buffer.alloc(BS)), 1, 1);
  });

  it('a Data-Out that is not exactly one block is refused, writing nothing', async () => {
    const { lu, dev } = makeUnit();
    for (const size of [0, BS / 2, 2 * BS]) {
      expectSense(await run(lu, cdb.rw10(Op.WriteSame10, 0, 1), Buffer.alloc(size)), Key.Illegal, 0x1a);
    }
    expect(dev.callsOf('write')).toHaveLength(0);
  });

  it('NUMBER OF BLOCKS 0 means up to the last LBA (WSNZ=0), within MAXIMUM WRITE SAME LENGTH', async () => {
    const { lu, dev } = makeUnit({}, { limits: { maxWriteSameBlocks: 100 } });
    expectGood(await run(lu, cdb.rw10(Op.WriteSame10, 1024 - 100, 0), Buffer.alloc(BS, 3)));
    expect(dev.data.subarray((1024 - 100) * BS).every((x) => x === 3)).toBe(true);
    expectInvalidCdbField(await run(lu, cdb.rw10(Op.WriteSame10, 1024 - 101, 0), Buffer.alloc(BS)), 7);
    expectInvalidCdbField(await run(lu, cdb.rw16(Op.WriteSame16, 0, 101), Buffer.alloc(BS)), 10);
    expectSense(await run(lu, cdb.rw16(Op.WriteSame16, 1025, 0), Buffer.alloc(BS)), Key.Illegal, 0x21);
    expectSense(await run(lu, cdb.rw10(Op.WriteSame10, 1000, 50), Buffer.alloc(BS)), Key.Illegal, 0x21);
  });
});

describe('GET LBA STATUS', () => {
  it('reports mapped and deallocated runs starting at the requested LBA', async () => {
    const { lu } = makeUnit({ thin: true });
    expectGood(await run(lu, cdb.rw10(Op.Write10, 10, 20), Buffer.alloc(20 * BS, 1)));
    const list = unmapList([[15, 5]]);
    expectGood(await run(lu, cdb.unmap(list.length), list));
    const r = await run(lu, cdb.getLbaStatus(12, 1024));
    expectGood(r);
    const { length, descriptors } = lbaStatus(r.dataIn!);
    expect(length).toBe(r.dataIn!.length - 4);
    expect(descriptors.slice(0, 3)).toEqual([
      { lba: 12n, blocks: 3, deallocated: false },
      { lba: 15n, blocks: 5, deallocated: true },
      { lba: 20n, blocks: 10, deallocated: false },
    ]);
    expect(descriptors[3]).toEqual({ lba: 30n, blocks: 1024 - 30, deallocated: true });
  });

  it('fits the descriptors to the allocation length (24 bytes: one)', async () => {
    const { lu } = makeUnit({ thin: true });
    expectGood(await run(lu, cdb.rw10(Op.Write10, 1, 1), Buffer.alloc(BS, 1)));
    const r = await run(lu, cdb.getLbaStatus(0, 24));
    expect(r.dataIn!.length).toBe(24);
    expect(lbaStatus(r.dataIn!).descriptors).toEqual([{ lba: 0n, blocks: 1, deallocated: true }]);
    const none = await run(lu, cdb.getLbaStatus(0, 0));
    expectGood(none);
    expect(none.dataIn?.length ?? 0).toBe(0);
  });

  it('a fully provisioned unit is mapped everywhere', async () => {
    const { lu } = makeUnit();
    const r = await run(lu, cdb.getLbaStatus(1000));
    expect(lbaStatus(r.dataIn!).descriptors).toEqual([{ lba: 1000n, blocks: 24, deallocated: false }]);
  });

  it('a starting LBA at or past the capacity is LBA OUT OF RANGE', async () => {
    const { lu } = makeUnit({ thin: true });
    expectGood(await run(lu, cdb.getLbaStatus(1023)));
    for (const lba of [1024n, 1025n, 0x8000000000000000n, 0xffffffffffffffffn]) {
      expectSense(await run(lu, cdb.getLbaStatus(lba)), Key.Illegal, 0x21);
    }
  });

  it('reports a stretch the backend does not describe as mapped', async () => {
    const { lu, dev } = makeUnit({ thin: true });
    dev.extents = async () => [{ offset: 50 * BS, length: 10 * BS, mapped: false }];
    const r = await run(lu, cdb.getLbaStatus(40, 1024));
    expect(lbaStatus(r.dataIn!).descriptors.slice(0, 2)).toEqual([
      { lba: 40n, blocks: 10, deallocated: false },
      { lba: 50n, blocks: 10, deallocated: true },
    ]);
  });

  it('a backend failure is MEDIUM ERROR', async () => {
    const { lu, dev } = makeUnit({ thin: true });
    dev.failNext('extents');
    expectSense(await run(lu, cdb.getLbaStatus(0)), Key.Medium, 0x11);
  });
});
