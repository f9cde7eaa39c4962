// Shared by the transport's crash, reinstatement and fuzz tests: self-describing 512-byte blocks (so a
// block read back says which write put it there, and a torn or foreign block is recognised), and the
// memory of a child process.
import { readFileSync, readdirSync } from 'node:fs';

export const BLOCK = 512;
const MAGIC = 0x48425354; // "HBST"

/**
 * One block of write `gen` at `lba`: a 16-byte header (magic, gen, lba, checksum of the three) and a
 * body derived from gen and lba, so the whole block is checked, not only its header.
 */
export function stampBlock(gen: number, lba: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.writeUInt32BE(MAGIC, 0);
  b.writeUInt32BE(gen >>> 0, 4);
  b.writeUInt32BE(lba >>> 0, 8);
  b.writeUInt32BE((MAGIC ^ gen ^ Math.imul(lba, 2654435761)) >>> 0, 12);
  let x = (gen * 7919 + lba * 104729 + 1) >>> 0;
  for (let i = 16; i < BLOCK; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32BE(x >>> 0, i);
  }
  return b;
}

export function stampRange(gen: number, lba: number, blocks: number): Buffer {
  return Buffer.concat(Array.from({ length: blocks }, (_, i) => stampBlock(gen, lba + i)));
}

/** The write a block came from: its generation, or 'foreign' (not a whole stamped block of this lba). */
export function readStamp(block: Buffer, lba: number): number | 'foreign' {
  if (block.length !== BLOCK || block.readUInt32BE(0) !== MAGIC) return 'foreign';
  const gen = block.readUInt32BE(4);
  if (block.readUInt32BE(8) !== lba >>> 0) return 'foreign';
  return stampBlock(gen, lba).equals(block) ? gen : 'foreign';
}

/** VmRSS and VmHWM (peak) of a process in bytes, from /proc. */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Open file descriptors of a process (sockets included). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Whether a process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export const MiB = 1024 * 1024;
