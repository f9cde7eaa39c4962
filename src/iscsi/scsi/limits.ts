/**
 * The limits a logical unit advertises in the Block Limits VPD page (SBC-4 §6.6.4) and enforces.
 * Initiators size their I/O from these: Linux sets max_hw_sectors from MAXIMUM TRANSFER LENGTH,
 * io_min from OPTIMAL TRANSFER LENGTH GRANULARITY, and discard / write-zeroes limits from the unmap and
 * write-same fields.
 */

export interface BlockLimits {
  /**
   * MAXIMUM TRANSFER LENGTH, in blocks, for READ/WRITE/VERIFY/WRITE AND VERIFY. The transport buffers a
   * whole command's Data-Out before execute(), so this also bounds per-command memory. The default,
   * 65536 blocks (32 MiB at 512 B), is far above what Linux sends (its max_sectors_kb defaults to a few
   * MiB) and is the largest single transfer libiscsi's suite issues.
   */
  maxTransferBlocks: number;
  /** OPTIMAL TRANSFER LENGTH, in blocks; 0 = not reported (Linux then keeps its own default I/O size). */
  optimalTransferBlocks: number;
  /** OPTIMAL TRANSFER LENGTH GRANULARITY, in blocks: 8 = 4 KiB, the page size of file and RBD backends. */
  optimalGranularityBlocks: number;
  /** MAXIMUM PREFETCH LENGTH, in blocks. */
  maxPrefetchBlocks: number;
  /** MAXIMUM UNMAP LBA COUNT: blocks per UNMAP command (only on thin units). */
  maxUnmapBlocks: number;
  /** MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT (only on thin units). */
  maxUnmapDescriptors: number;
  /** OPTIMAL UNMAP GRANULARITY, in blocks (only on thin units). */
  unmapGranularityBlocks: number;
  /** MAXIMUM WRITE SAME LENGTH, in blocks. */
  maxWriteSameBlocks: number;
}

export const DEFAULT_LIMITS: Readonly<BlockLimits> = Object.freeze({
  maxTransferBlocks: 65536,
  optimalTransferBlocks: 0,
  optimalGranularityBlocks: 8,
  maxPrefetchBlocks: 65536,
  // 1 Mi blocks = 512 MiB per command: large enough that mkfs discards a disk in a few dozen commands,
  // small enough that one command finishes well inside an initiator's 30 s timeout on RBD.
  maxUnmapBlocks: 1 << 20,
  maxUnmapDescriptors: 256,
  unmapGranularityBlocks: 8,
  maxWriteSameBlocks: 1 << 20,
});

/** Merges overrides with the defaults; every field must be a positive 32-bit integer. */
export function resolveLimits(overrides: Partial<BlockLimits> = {}): Readonly<BlockLimits> {
  const limits: BlockLimits = { ...DEFAULT_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    const zeroAllowed = name === 'optimalTransferBlocks';
    if (!Number.isInteger(value) || value < (zeroAllowed ? 0 : 1) || value > 0xffff_ffff) {
      throw new RangeError(`block limit ${name} must be an integer in ${zeroAllowed ? 0 : 1}..2^32-1, got ${value}`);
    }
  }
  if (limits.optimalGranularityBlocks > 0xffff) throw new RangeError('optimalGranularityBlocks must fit 16 bits');
  return Object.freeze(limits);
}
