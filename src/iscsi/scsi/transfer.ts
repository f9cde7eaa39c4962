/**
 * What the transport needs before any data moves: which way a command's data flows and how many bytes
 * it transfers at most, from the CDB alone (RFC 7143, R2T: the target solicits Data-Out with R2T, and
 * needs to know how much it wants). Pure; no logical-unit state involved.
 *
 * A command we do not implement, or a CDB too short for its opcode, transfers nothing: execute() will
 * answer it with CHECK CONDITION, so the transport has no reason to solicit data for it.
 */
import { lookup, type Transfer } from './catalog.js';

export type { Transfer } from './catalog.js';

const NONE: Transfer = Object.freeze({ direction: 'none', length: 0 });

/**
 * The data direction and the number of bytes the command transfers, given the unit's block size:
 * blocks × blockSize for medium access, the allocation length for data-in commands, the parameter list
 * length for MODE SELECT and UNMAP, one block for WRITE SAME. The transport compares it with the
 * initiator's Expected Data Transfer Length (solicit min(EDTL, length); report the difference as residual).
 */
export function dataTransfer(cdb: Buffer, blockSize: number): Transfer {
  const info = lookup(cdb);
  if (!info || cdb.length < info.cdbLength) return NONE;
  return info.transfer(cdb, blockSize);
}

export function dataDirection(cdb: Buffer): Transfer['direction'] {
  // The direction never depends on the block size; any non-zero size keeps zero-block commands honest.
  return dataTransfer(cdb, 512).direction;
}
