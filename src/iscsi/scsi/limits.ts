/**
 * The limits a logical unit advertises in the Block Limits VPD page (SBC-4, Block Limits VPD page) and enforces.
 * Initiators size their I/O from these: Linux sets max_hw_sectors from MAXIMUM TRANSFER LENGTH,
 * io_min from OPTIMAL TRANSFER LENGTH GRANULARITY, and discard / write-zeroes limits from the unmap and
 * write-same fields.
 */

export interface BlockLimits {
  /**
   * MAXIMUM TRANSFER LENGTH, in blocks, for READ/WRITE/VERIFY/WRITE AND VERIFY. The transport buffers a
   * whole command's Data-Out before execute(), so this also bounds per-command memory.
   */
  maxTransferBlocks: number;
  /** OPTIMAL TRANSFER LENGTH, in blocks; 0 = not reported (Linux then keeps its own default I/O size). */
  optimalTransferBlocks: number;
  /** OPTIMAL TRANSFER LENGTH GRANULARITY, in blocks. */
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

/**
 * The defaults for a block size, set in bytes so they mean the same at 512 and 4096: 32 MiB transfers
 * (far above what Linux sends — its max_sectors_kb defaults to a few MiB — and the largest single
 * transfer libiscsi's suite issues), 4 KiB granularity (the page size of file and RBD backends), 512 MiB
 * per UNMAP or WRITE SAME (few enough commands for mkfs to discard a disk quickly, small enough that one
 * finishes well inside an initiator's 30 s timeout on RBD).
 */
export function defaultLimits(blockSize: number): Readonly<BlockLimits> {
  const blocks = (bytes: number) => Math.max(1, Math.floor(bytes / blockSize));
  return Object.freeze({
    maxTransferBlocks: blocks(32 << 20),
    optimalTransferBlocks: 0,
    optimalGranularityBlocks: blocks(4096),
    maxPrefetchBlocks: blocks(32 << 20),
    maxUnmapBlocks: blocks(512 << 20),
    maxUnmapDescriptors: 256,
    unmapGranularityBlocks: blocks(4096),
    maxWriteSameBlocks: blocks(512 << 20),
  });
}

/** Merges overrides with the defaults; every field must be a positive 32-bit integer. */
export function resolveLimits(blockSize: number, overrides: Partial<BlockLimits> = {}): Readonly<BlockLimits> {
  const limits: BlockLimits = { ...defaultLimits(blockSize), ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    const zeroAllowed = name === 'optimalTransferBlocks';
    if (!Number.isInteger(value) || value < (zeroAllowed ? 0 : 1) || value > 0xffff_ffff) {
      throw new RangeError(`block limit ${name} must be an integer in ${zeroAllowed ? 0 : 1}..2^32-1, got ${value}`);
    }
  }
  if (limits.optimalGranularityBlocks > 0xffff) throw new RangeError('optimalGranularityBlocks must fit 16 bits');
  return Object.freeze(limits);
}
