/**
 * The command sequences real initiators send when they find a disk, with the conclusions they draw
 * from our answers (following Linux drivers/scsi/sd.c and iPXE src/drivers/block/scsi.c).
 */
import { describe, expect, it } from 'vitest';
import { BS, cdb, expectGood, makeUnit, Op, pattern, run } from './helpers.js';

describe('Linux sd probe', () => {
  it('sees a thin 512-byte-sector disk with write-back cache, FUA, UNMAP discards and WRITE SAME', async () => {
    const { lu } = makeUnit({ thin: true, size: 8192 * BS });
    expectGood(await run(lu, cdb.testUnitReady()));
    const inq = (await run(lu, cdb.inquiry(36))).dataIn!;
    expect(inq[0]! & 0x1f).toBe(0); // TYPE_DISK
    expect(inq[2]).toBeGreaterThan(0x02); // > SCSI-2: sd tries READ CAPACITY(16) first

    const rc16 = (await run(lu, cdb.readCapacity16(32))).dataIn!;
    expect(rc16.readBigUInt64BE(0) + 1n).toBe(8192n);
    expect(rc16.readUInt32BE(8)).toBe(512);
    const lbpme = (rc16[14]! & 0x80) !== 0;
    const lbprz = (rc16[14]! & 0x40) !== 0;
    expect([lbpme, lbprz]).toEqual([true, true]);

    const pages = [...(await run(lu, cdb.inquiry(255, true, 0))).dataIn!.subarray(4)];
    expect(pages).toEqual(expect.arrayContaining([0x80, 0x83, 0xb0, 0xb1, 0xb2]));
    const bl = (await run(lu, cdb.inquiry(64, true, 0xb0))).dataIn!;
    const maxUnmap = bl.readUInt32BE(20);
    const maxXfer = bl.readUInt32BE(8);
    expect(maxXfer * BS).toBeGreaterThanOrEqual(4 << 20); // no cap below Linux's usual max_sectors_kb
    const lbp = (await run(lu, cdb.inquiry(8, true, 0xb2))).dataIn!;
    const lbpu = (lbp[5]! & 0x80) !== 0;
    // sd_discard_mode(): LBPU with a MAXIMUM UNMAP LBA COUNT picks SD_LBP_UNMAP.
    expect(lbpu && maxUnmap > 0).toBe(true);
    expect((await run(lu, cdb.inquiry(64, true, 0xb1))).dataIn!.readUInt16BE(4)).toBe(1); // non-rotational

    // sd_read_write_protect_flag(): MODE SENSE(6), all pages.
    const ms = (await run(lu, cdb.modeSense6(0x3f, { alloc: 192 }))).dataIn!;
    expect(ms[2]! & 0x80).toBe(0); // not write-protected
    // sd_read_cache_type(): the caching page, header first then the whole page.
    const head = (await run(lu, cdb.modeSense6(0x08, { dbd: true, alloc: 4 }))).dataIn!;
    const full = (await run(lu, cdb.modeSense6(0x08, { dbd: true, alloc: head[0]! + 1 }))).dataIn!;
    const caching = full.subarray(4 + full[3]!);
    expect(caching[0]! & 0x3f).toBe(0x08);
    expect(caching[2]! & 0x04).toBe(0x04); // WCE: sd sends SYNCHRONIZE CACHE on flush
    expect(full[2]! & 0x10).toBe(0x10); // DPOFUA: sd sends FUA writes

    // sd_read_write_same(): REPORT SUPPORTED OPERATION CODES for WRITE SAME(16) and (10).
    for (const op of [0x93, 0x41, 0x42]) {
      const one = (await run(lu, cdb.rsoc({ options: 1, opcode: op, alloc: 512 }))).dataIn!;
      expect(one[1]! & 0x07).toBe(3);
    }
  });

  it('reads back what a filesystem writes, and survives its flush and discard traffic', async () => {
    const { lu, dev } = makeUnit({ thin: true, size: 8192 * BS });
    const data = pattern(256, 4);
    expectGood(await run(lu, cdb.rw10(Op.Write10, 2048, 256), data));
    expectGood(await run(lu, cdb.rw10(Op.Write10, 4096, 8, { byte1: 0x08 }), data.subarray(0, 8 * BS)));
    expectGood(await run(lu, cdb.rw10(Op.SynchronizeCache10, 0, 0)));
    expect(dev.flushes).toBe(1);
    expect(dev.fuaWrites).toBe(1);
    expect((await run(lu, cdb.rw10(Op.Read10, 2048, 256))).dataIn!.equals(data)).toBe(true);
  });
});

describe('iPXE sanboot', () => {
  it('finds the capacity and reads the boot sector with READ(10), or READ(16) past 2 TiB', async () => {
    const { lu, dev } = makeUnit({ size: 4096 * BS });
    const mbr = pattern(1, 2);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    mbr.copy(dev.data, 0);
    expectGood(await run(lu, cdb.testUnitReady()));
    const rc10 = (await run(lu, cdb.readCapacity10())).dataIn!;
    expect(rc10.readUInt32BE(0)).not.toBe(0xffffffff); // so iPXE stays with READ(10)
    const sector = (await run(lu, cdb.rw10(Op.Read10, 0, 1))).dataIn!;
    expect(sector.readUInt16BE(510)).toBe(0x55aa);
    expect((await run(lu, cdb.rw16(Op.Read16, 0, 1))).dataIn!.equals(sector)).toBe(true);
  });
});
