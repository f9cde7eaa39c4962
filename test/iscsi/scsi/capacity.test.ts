import { describe, expect, it } from 'vitest';
import type { BlockDevice } from '../../../src/iscsi/backing/block-device.js';
import { LogicalUnit } from '../../../src/iscsi/scsi/logical-unit.js';
import { BS, cdb, expectGood, IDENTITY, makeUnit, Op, run, expectSense, Key } from './helpers.js';

/** A device that only claims a size: enough for capacity reporting and range checks. */
function hugeDevice(bytes: number): BlockDevice {
  const never = async (): Promise<never> => {
    throw new Error('not backed');
  };
  return { blockSize: BS, size: bytes, readOnly: false, thin: true, read: never, write: never, flush: never, discard: never, extents: never, close: async () => {} };
}

describe('READ CAPACITY', () => {
  it('(10) reports the last LBA and the block length', async () => {
    const { lu } = makeUnit();
    const r = await run(lu, cdb.readCapacity10());
    expectGood(r);
    expect(r.dataIn!.readUInt32BE(0)).toBe(1023);
    expect(r.dataIn!.readUInt32BE(4)).toBe(512);
  });

  it('(10) reports FFFFFFFFh when the last LBA needs more than 32 bits, and (16) the real one', async () => {
    const blocks = 2 ** 33 + 5;
    const lu = new LogicalUnit({ device: hugeDevice(blocks * BS), identity: IDENTITY });
    const r10 = await run(lu, cdb.readCapacity10());
    expect(r10.dataIn!.readUInt32BE(0)).toBe(0xffffffff);
    const r16 = await run(lu, cdb.readCapacity16());
    expect(r16.dataIn!.readBigUInt64BE(0)).toBe(BigInt(blocks - 1));
    // Reads past 2 TiB are range-checked with 64-bit arithmetic.
    expectSense(await run(lu, cdb.rw16(Op.Read16, blocks, 1)), Key.Illegal, 0x21);
  });

  it('(10) still reports FFFFFFFFh exactly at the boundary (last LBA FFFFFFFFh)', async () => {
    const lu = new LogicalUnit({ device: hugeDevice(2 ** 32 * BS), identity: IDENTITY });
    expect((await run(lu, cdb.readCapacity10())).dataIn!.readUInt32BE(0)).toBe(0xffffffff);
  });

  it('(16) reports block length, no protection, and LBPME/LBPRZ only on a thin unit', async () => {
    const thick = (await run(makeUnit().lu, cdb.readCapacity16())).dataIn!;
    expect(thick.length).toBe(32);
    expect(thick.readBigUInt64BE(0)).toBe(1023n);
    expect(thick.readUInt32BE(8)).toBe(512);
    expect(thick[12]).toBe(0); // P_TYPE / PROT_EN
    expect(thick[13]! & 0x0f).toBe(0); // LBPPBE
    expect(thick[14]! & 0xc0).toBe(0);
    const thin = (await run(makeUnit({ thin: true }).lu, cdb.readCapacity16())).dataIn!;
    expect(thin[14]! & 0xc0).toBe(0xc0);
  });

  it('(16) honours the allocation length, including 0', async () => {
    const { lu } = makeUnit();
    for (let alloc = 0; alloc < 40; alloc++) {
      const r = await run(lu, cdb.readCapacity16(alloc));
      expectGood(r);
      expect(r.dataIn?.length ?? 0).toBe(Math.min(alloc, 32));
    }
  });

  it('sees a backend that grew', async () => {
    const { lu, dev } = makeUnit();
    Object.defineProperty(dev, 'size', { value: 2048 * BS });
    expect((await run(lu, cdb.readCapacity10())).dataIn!.readUInt32BE(0)).toBe(2047);
  });
});

describe('a 4096-byte block unit', () => {
  it('reports 4096-byte blocks everywhere and scales its limits, reads and writes', async () => {
    const { lu, dev } = makeUnit({ blockSize: 4096, size: 256 * 4096 });
    expect((await run(lu, cdb.readCapacity10())).dataIn!.readUInt32BE(4)).toBe(4096);
    const bl = (await run(lu, cdb.inquiry(64, true, 0xb0))).dataIn!;
    expect(bl.readUInt16BE(6)).toBe(1); // 4 KiB granularity = 1 block
    expect(bl.readUInt32BE(8)).toBe(8192); // 32 MiB
    const ms = (await run(lu, cdb.modeSense6(0x08))).dataIn!;
    expect(ms.readUIntBE(4 + 5, 3)).toBe(4096);
    expectGood(await run(lu, cdb.rw10(Op.Write10, 3, 2), Buffer.alloc(8192, 9)));
    expect(dev.callsOf('write')[0]).toMatchObject({ offset: 3 * 4096, length: 8192 });
    expect((await run(lu, cdb.rw10(Op.Read10, 3, 2))).dataIn!.every((x) => x === 9)).toBe(true);
  });
});

describe('configuration', () => {
  it('refuses limits an initiator could not be told, and a malformed identity', () => {
    expect(() => makeUnit({}, { limits: { maxTransferBlocks: 0 } })).toThrow(RangeError);
    expect(() => makeUnit({}, { limits: { maxUnmapBlocks: 2 ** 32 } })).toThrow(RangeError);
    expect(() => makeUnit({}, { identity: { naaId: Buffer.alloc(8) } })).toThrow(RangeError);
  });
});
