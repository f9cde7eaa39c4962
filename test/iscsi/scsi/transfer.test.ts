/** What the transport learns from a CDB before data moves, and the catalogue behind it. */
import { describe, expect, it } from 'vitest';
import { CATALOG } from '../../../src/iscsi/scsi/catalog.js';
import { IMPLEMENTATIONS } from '../../../src/iscsi/scsi/commands/index.js';
import { dataDirection, dataTransfer } from '../../../src/iscsi/scsi/transfer.js';
import { BS, cdb, makeUnit, Op, run, unmapList } from './helpers.js';

describe('dataTransfer', () => {
  it.each([
    ['READ(10) 8 blocks', cdb.rw10(Op.Read10, 0, 8), 'read', 8 * BS],
    ['READ(6) 0 = 256 blocks', cdb.read6(0, 0), 'read', 256 * BS],
    ['READ(16) 0 blocks', cdb.rw16(Op.Read16, 0, 0), 'none', 0],
    ['WRITE(12) 3 blocks', cdb.rw12(Op.Write12, 0, 3), 'write', 3 * BS],
    ['WRITE(16) 65536 blocks', cdb.rw16(Op.Write16, 0, 65536), 'write', 65536 * BS],
    ['VERIFY(10) BYTCHK=0', cdb.rw10(Op.Verify10, 0, 8), 'none', 0],
    ['VERIFY(16) BYTCHK=1', cdb.rw16(Op.Verify16, 0, 8, { byte1: 0x02 }), 'write', 8 * BS],
    ['WRITE AND VERIFY(10)', cdb.rw10(Op.WriteAndVerify10, 0, 2, { byte1: 0x02 }), 'write', 2 * BS],
    ['WRITE SAME(10)', cdb.rw10(Op.WriteSame10, 0, 1000), 'write', BS],
    ['WRITE SAME(16) NDOB', cdb.rw16(Op.WriteSame16, 0, 1000, { byte1: 0x01 }), 'none', 0],
    ['UNMAP', cdb.unmap(24), 'write', 24],
    ['MODE SELECT(6)', cdb.modeSelect6(28), 'write', 28],
    ['MODE SELECT(10)', cdb.modeSelect10(300), 'write', 300],
    ['INQUIRY', cdb.inquiry(255), 'read', 255],
    ['MODE SENSE(10)', cdb.modeSense10(0x3f, { alloc: 4096 }), 'read', 4096],
    ['READ CAPACITY(10)', cdb.readCapacity10(), 'read', 8],
    ['READ CAPACITY(16)', cdb.readCapacity16(32), 'read', 32],
    ['GET LBA STATUS', cdb.getLbaStatus(0, 24), 'read', 24],
    ['REPORT LUNS', cdb.reportLuns(16), 'read', 16],
    ['TEST UNIT READY', cdb.testUnitReady(), 'none', 0],
    ['SYNCHRONIZE CACHE(10)', cdb.rw10(Op.SynchronizeCache10, 0, 0), 'none', 0],
    ['unknown opcode', Buffer.from([0xc1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 'none', 0],
    ['truncated READ(16)', Buffer.from([0x88, 0, 0, 0]), 'none', 0],
    ['empty CDB', Buffer.alloc(0), 'none', 0],
  ])('%s', (_name, c, direction, length) => {
    expect(dataTransfer(c, BS)).toEqual({ direction, length });
    expect(dataDirection(c)).toBe(direction);
  });

  it('scales with the block size', () => {
    expect(dataTransfer(cdb.rw10(Op.Read10, 0, 2), 4096)).toEqual({ direction: 'read', length: 8192 });
  });

  it('agrees with what execute() produces for data-in commands', async () => {
    const { lu } = makeUnit({ thin: true });
    for (const c of [cdb.rw10(Op.Read10, 0, 3), cdb.inquiry(4096, true, 0x83), cdb.readCapacity16(32), cdb.getLbaStatus(0, 24)]) {
      const r = await run(lu, c);
      expect(r.dataIn!.length).toBeLessThanOrEqual(lu.dataTransfer(c).length);
    }
    const list = unmapList([[0, 1]]);
    expect(lu.dataTransfer(cdb.unmap(list.length)).length).toBe(list.length);
  });
});

describe('the command catalogue', () => {
  it('has an implementation for every entry and describes each CDB consistently', () => {
    expect(IMPLEMENTATIONS.size).toBe(CATALOG.length);
    for (const c of CATALOG) {
      expect(IMPLEMENTATIONS.has(c), c.name).toBe(true);
      expect(c.usage.length, c.name).toBe(c.cdbLength);
      expect(c.usage[0], c.name).toBe(c.opcode);
    }
  });
});
