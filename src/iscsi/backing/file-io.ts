import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import koffi from 'koffi';
import type { BlockExtent } from './block-device.js';
import { BackingError, isUnsupported } from './errors.js';
import { seekData, seekHole } from './libc.js';

/**
 * Positioned I/O on a kept-open descriptor, with the short-transfer loops pread/pwrite need, and the
 * pieces both file-based backings share.
 */

export const BLOCK_SIZE = 512;
/** GET LBA STATUS needs a few extents, not a map of the whole disk; bounds the work of one call. */
export const MAX_EXTENTS = 1024;

/** The hole-punching call, replaceable in tests to play a file system without it. */
export type PunchHole = (fd: number, offset: number, length: number) => Promise<void>;

/**
 * Whether the file system under `fd` punches holes, asked without touching data: a punch at end of
 * file, where there is nothing to lose. A file system without the operation refuses it whatever the
 * range (EOPNOTSUPP).
 */
export async function probePunchHole(fd: number, fileSize: number, punch: PunchHole): Promise<boolean> {
  try {
    await punch(fd, fileSize, BLOCK_SIZE);
    return true;
  } catch (err) {
    if (isUnsupported(err)) return false;
    throw err;
  }
}

/**
 * Reads up to this size first try the page cache from the event loop itself (readCached), and go
 * through the libuv pool only for what is not cached. A pool round trip (queue, futex wake-up of a
 * worker, completion back through the loop) costs ~10 µs of CPU on top of the read, and the data
 * arrives in another core's cache just before the socket write copies it again: measured on a 2-core
 * VM, a cached 4 KiB read costs ~2 µs instead of ~12, a 1 MiB read ~440 µs of target CPU per command
 * instead of ~570 (and 15-20 % more MB/s). The price is the event loop copying up to 1 MiB (~0.1-0.2 ms)
 * itself; larger transfers stay in the pool.
 */
export const CACHED_READ_MAX = 1024 * 1024;

const RWF_NOWAIT = 0x08;
/** EINVAL, ENOSYS, EOPNOTSUPP: the kernel or the file system has no non-blocking buffered reads. */
const NOWAIT_UNSUPPORTED = new Set([22, 38, 95]);
type PreadV2 = (fd: number, iov: { iov_base: Buffer; iov_len: number }, iovcnt: number, offset: number, flags: number) => number | bigint;
/** undefined: not loaded yet; null: unavailable here (no koffi, or the file system refuses RWF_NOWAIT). */
let preadv2: PreadV2 | null | undefined;

function loadPreadv2(): PreadV2 | null {
  try {
    const iovec = koffi.struct({ iov_base: 'void *', iov_len: 'size_t' });
    const fn = koffi.load('libc.so.6').func('preadv2', 'intptr_t', ['int', koffi.pointer(iovec), 'int', 'int64_t', 'int']);
    return fn as unknown as PreadV2;
  } catch {
    return null;
  }
}

/**
 * What the page cache already holds of [position, position+buf.length), copied into `buf` on this
 * thread: preadv2 with RWF_NOWAIT returns at once — fewer bytes, or EAGAIN — where a plain read would
 * wait for the disk, so the event loop never blocks on I/O. Returns the bytes read from the start of
 * `buf` (0 when nothing was cached, at end of file, or on any error: the pool read that follows
 * reports real errors).
 */
export function readCached(fd: number, buf: Buffer, position: number): number {
  if (preadv2 === undefined) preadv2 = loadPreadv2();
  if (preadv2 === null || buf.length === 0) return 0;
  const n = Number(preadv2(fd, { iov_base: buf, iov_len: buf.length }, 1, position, RWF_NOWAIT));
  if (n >= 0) return n;
  // EAGAIN: not cached. Unsupported says so on every call: stop trying, for every file (one flag for
  // all, as this is only a fast path).
  if (NOWAIT_UNSUPPORTED.has(koffi.errno())) preadv2 = null;
  return 0;
}

/**
 * Fills `buf` from `position` on (one pread unless short); bytes past end of file read as zero.
 * Reads up to CACHED_READ_MAX take what the page cache holds without the pool.
 */
export async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = buf.length <= CACHED_READ_MAX ? readCached(fh.fd, buf, position) : 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) {
      buf.fill(0, done);
      return;
    }
    done += bytesRead;
  }
}

/** Writes the buffers back to back at `position` with one pwritev (repeated only if short). */
export async function writeFully(fh: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers.filter((b) => b.length > 0);
  let pos = position;
  while (pending.length > 0) {
    const { bytesWritten } = await fh.writev(pending, pos);
    if (bytesWritten === 0) throw new Error(`pwritev at ${pos} wrote nothing`);
    pos += bytesWritten;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (skip >= b.length) skip -= b.length;
      else {
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    pending = rest;
  }
}

/** Writes `length` zero bytes at `position`, a few MiB per pwritev (one shared zero buffer, repeated). */
const ZEROES = Buffer.alloc(1 << 20);
export async function writeZeroes(fh: FileHandle, position: number, length: number): Promise<void> {
  const perCall = 64; // × 1 MiB: large enough to stream, small enough not to hog a pool thread for long
  let pos = position;
  const end = position + length;
  while (pos < end) {
    const iov: Buffer[] = [];
    let chunk = 0;
    while (iov.length < perCall && pos + chunk < end) {
      const n = Math.min(ZEROES.length, end - pos - chunk);
      iov.push(n === ZEROES.length ? ZEROES : ZEROES.subarray(0, n));
      chunk += n;
    }
    await writeFully(fh, iov, pos);
    pos += chunk;
  }
}

/**
 * Allocation of [offset, offset+length) of a file as extents (SEEK_DATA/SEEK_HOLE), shifted by
 * `-base` so callers can report device offsets for a region that starts at `base` in the file.
 * Stops after `limit` extents. Data boundaries are rounded outwards to `blockSize`.
 */
export async function fileExtents(
  fd: number,
  base: number,
  offset: number,
  length: number,
  blockSize: number,
  limit: number,
): Promise<BlockExtent[]> {
  const out: BlockExtent[] = [];
  const end = offset + length;
  let pos = offset;
  while (pos < end && out.length < limit) {
    const data = await seekData(fd, base + pos);
    const dataStart = data === null ? end : Math.min(end, Math.floor((data - base) / blockSize) * blockSize);
    if (dataStart > pos) out.push({ offset: pos, length: dataStart - pos, mapped: false });
    if (dataStart >= end) break;
    const hole = await seekHole(fd, base + Math.max(pos, dataStart));
    const dataEnd = Math.min(end, Math.ceil((hole - base) / blockSize) * blockSize);
    const from = Math.max(pos, dataStart);
    out.push({ offset: from, length: dataEnd - from, mapped: true });
    pos = dataEnd;
  }
  return out;
}

/** fsync of a directory, so a file created or removed in it survives power loss. */
export async function syncDirectory(path: string): Promise<void> {
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Checks a block range against a device; the SCSI layer checks first, this keeps a bug from writing a header. */
export function checkRange(offset: number, length: number, size: number, blockSize: number): void {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset % blockSize !== 0 ||
    length % blockSize !== 0 ||
    offset + length > size
  ) {
    throw new BackingError('OUT_OF_RANGE', `range ${offset}+${length} is not ${blockSize}-byte aligned within ${size} bytes`);
  }
}
