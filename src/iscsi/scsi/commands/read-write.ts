/**
 * Medium access: READ, WRITE, VERIFY, WRITE AND VERIFY (6/10/12/16 where they exist), PRE-FETCH and
 * SYNCHRONIZE CACHE (SBC-4). The LBA range and the transfer limit are already checked
 * (LogicalUnit.prepare); these move the data, without copying it: a READ returns the backend's buffer
 * as the Data-In, a WRITE hands the Data-Out (or a view of it) straight to the backend.
 */
import { bytchk } from '../catalog.js';
import { firstDifference } from '../compare.js';
import { flushMedium, readMedium, writeMedium } from '../medium.js';
import { Op } from '../opcodes.js';
import { Asc, good, illegalRequest, invalidFieldInCdb, SenseError, SenseKey } from '../sense.js';
import { ScsiStatus, type ScsiResult } from '../types.js';
import type { BlockRange, Implementation, Unit } from '../unit.js';

/** FUA (SBC-4 WRITE): byte 1 bit 3 in every WRITE but WRITE(6), whose byte 1 holds LBA bits. */
const fuaBit = (cdb: Buffer): boolean => cdb[0] !== Op.Write6 && (cdb[1]! & 0x08) !== 0;

/**
 * The bytes to write or compare for a range. More Data-Out than the command needs is cut to size (the
 * transport reports the overflow). Less is taken as whole blocks from the start, as initiators expect
 * of an Expected Data Transfer Length smaller than the CDB's (libiscsi's residual tests: the blocks
 * received are written, the rest untouched); a partial block cannot be written and is refused.
 */
function blocksOf(unit: Unit, range: BlockRange, data: Buffer): Buffer {
  const need = range.blocks * unit.blockSize;
  if (data.length >= need) return data.length === need ? data : data.subarray(0, need);
  if (data.length % unit.blockSize !== 0) throw illegalRequest(Asc.InvalidFieldInInformationUnit);
  return data;
}

const offsetOf = (unit: Unit, lba: number) => lba * unit.blockSize;

async function compareWithMedium(unit: Unit, lba: number, expected: Buffer): Promise<ScsiResult> {
  if (expected.length === 0) return good();
  const actual = await readMedium(unit.device, offsetOf(unit, lba), expected.length);
  const at = firstDifference(actual, expected);
  if (at < 0) return good();
  // SBC-4 VERIFY: MISCOMPARE, with the offset of the first differing byte in the Data-Out buffer.
  throw new SenseError({ key: SenseKey.Miscompare, asc: Asc.MiscompareDuringVerify, information: at });
}

/** BYTCHK 10b is reserved and 11b (one block compared against every LBA) we do not implement. */
function checkBytchk(_unit: Unit, cdb: Buffer): void {
  if (bytchk(cdb) > 1) throw invalidFieldInCdb(1, 2);
}

export const read: Implementation = {
  run: async (unit, { range }) => {
    // SBC-4 READ(10/12/16): a TRANSFER LENGTH of 0 transfers nothing and is not an error.
    if (range.blocks === 0) return good();
    const dataIn = await readMedium(unit.device, offsetOf(unit, range.lba), range.blocks * unit.blockSize);
    return { status: ScsiStatus.Good, dataIn };
  },
};

export const write: Implementation = {
  run: async (unit, { cdb, data, range }) => {
    const payload = blocksOf(unit, range, data);
    if (payload.length === 0) return good();
    // With the write cache disabled (caching page WCE=0) every write is write-through.
    const fua = fuaBit(cdb) || !unit.mode.writeCacheEnabled;
    await writeMedium(unit.device, offsetOf(unit, range.lba), payload, fua);
    return good();
  },
};

export const verify: Implementation = {
  check: checkBytchk,
  run: async (unit, { cdb, data, range }) => {
    // BYTCHK 00b asks for a medium verification without compare: the range is checked, and a backend
    // that cannot read a block reports it on READ; we do not read the whole range just to discard it.
    if (bytchk(cdb) === 0 || range.blocks === 0) return good();
    return compareWithMedium(unit, range.lba, blocksOf(unit, range, data));
  },
};

export const writeAndVerify: Implementation = {
  check: checkBytchk,
  run: async (unit, { cdb, data, range }) => {
    const payload = blocksOf(unit, range, data);
    if (payload.length === 0) return good();
    // Verification is against the medium, so the data must be on it: always write-through (SBC-4 WRITE AND VERIFY).
    await writeMedium(unit.device, offsetOf(unit, range.lba), payload, true);
    return bytchk(cdb) === 1 ? compareWithMedium(unit, range.lba, payload) : good();
  },
};

/**
 * PRE-FETCH (SBC-4): we hold no cache of our own to load (backends have theirs), so after the range
 * check the answer is GOOD, "not all blocks were placed in the cache", never CONDITION MET — which
 * would claim they were. libiscsi's PreFetch tests expect exactly GOOD.
 */
export const preFetch: Implementation = {
  run: () => good(),
};

/**
 * SYNCHRONIZE CACHE (SBC-4): BlockDevice.flush() covers the whole device, which satisfies any
 * range. IMMED=1 allows returning before the flush completes, but we wait anyway: we report no deferred
 * errors, so waiting is the only way a failed flush can reach the initiator.
 */
export const synchronizeCache: Implementation = {
  run: async (unit) => {
    await flushMedium(unit.device);
    return good();
  },
};
