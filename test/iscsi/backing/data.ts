import { prng } from '../../support/prng.js';

/** `length` bytes from a seeded PRNG (4 bytes per draw). No vitest import: the crash child uses it. */
export function randomBytesSeeded(seed: number, length: number): Buffer {
  const next = prng(seed);
  const buf = Buffer.allocUnsafe(length);
  let i = 0;
  for (; i + 4 <= length; i += 4) buf.writeUInt32LE((next() * 0x100000000) >>> 0, i);
  for (; i < length; i++) buf[i] = (next() * 256) & 0xff;
  return buf;
}

/** The bytes write `seq` of crash round `round` carries: the crash test regenerates them to check. */
export function crashData(round: number, seq: number, length: number): Buffer {
  return randomBytesSeeded(round * 1_000_003 + seq, length);
}
