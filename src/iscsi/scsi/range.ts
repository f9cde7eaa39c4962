/**
 * The LBA range check every medium-access command shares (SBC-4: LBA OUT OF RANGE when
 * LBA + count exceeds the capacity) and the length limits we advertise in VPD B0h (SBC-4 Block Limits: a count
 * above the limit is INVALID FIELD IN CDB, pointing at the count).
 *
 * Order matters and follows what initiators test: an LBA past the end is out of range whatever the
 * count (even 0); then the count is held to its limit; then the end of the run to the capacity.
 */
import type { LengthLimit, MediumRange } from './catalog.js';
import type { BlockLimits } from './limits.js';
import { invalidFieldInCdb, lbaOutOfRange } from './sense.js';
import type { BlockRange, Unit } from './unit.js';

function limitOf(limits: Readonly<BlockLimits>, kind: LengthLimit): number {
  switch (kind) {
    case 'transfer':
      return limits.maxTransferBlocks;
    case 'prefetch':
      return limits.maxPrefetchBlocks;
    case 'writeSame':
      return limits.maxWriteSameBlocks;
    case 'none':
      return Number.POSITIVE_INFINITY;
  }
}

export function checkRange(unit: Unit, spec: MediumRange, cdb: Buffer): BlockRange {
  const capacity = unit.blocks;
  const lba = spec.lba(cdb);
  if (lba > capacity) throw lbaOutOfRange();
  let blocks = spec.blocks(cdb);
  if (blocks === 0 && spec.zeroMeansToEnd) blocks = capacity - lba;
  if (blocks > limitOf(unit.limits, spec.limit)) throw invalidFieldInCdb(spec.lengthByte);
  if (lba + blocks > capacity) throw lbaOutOfRange();
  return { lba, blocks };
}
