/**
 * Where two equally long buffers first differ, for the MISCOMPARE sense INFORMATION field
 * (SBC-4 VERIFY: the offset of the first byte that did not match). The comparison stays native:
 * Buffer.equals on large pieces, then halving the first differing piece, so a 32 MiB VERIFY costs one
 * memcmp pass plus a few dozen small ones, never a JavaScript loop over every byte.
 */

const PIECE = 64 * 1024;

/** Offset of the first differing byte, or -1 when the buffers are equal. Both must be of equal length. */
export function firstDifference(a: Buffer, b: Buffer): number {
  if (a.equals(b)) return -1;
  for (let start = 0; start < a.length; start += PIECE) {
    const end = Math.min(start + PIECE, a.length);
    if (!a.subarray(start, end).equals(b.subarray(start, end))) return narrow(a, b, start, end);
  }
  return -1;
}

/** [lo, hi) holds a difference: halve until one byte is left, always keeping the earliest difference. */
function narrow(a: Buffer, b: Buffer, lo: number, hi: number): number {
  while (hi - lo > 1) {
    const mid = lo + ((hi - lo) >> 1);
    if (!a.subarray(lo, mid).equals(b.subarray(lo, mid))) hi = mid;
    else lo = mid;
  }
  return lo;
}
