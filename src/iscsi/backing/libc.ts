import { getSystemErrorName } from 'node:util';
import koffi from 'koffi';
import { PoolCalls } from '../../pool-calls.js';

/**
 * The few libc calls Node's fs lacks: hole punching (fallocate), allocation queries (lseek
 * SEEK_DATA/SEEK_HOLE) and advisory whole-file locks (flock).
 *
 * fallocate and lseek walk and change the file's extent tree, which may have to be read from disk,
 * so they run through koffi's `.async` (a worker thread of the libuv pool), never on the event loop.
 *
 * errno is per thread and koffi cannot hand back the worker's, so when an async call fails (-1) it is
 * repeated synchronously on this thread, where koffi.errno() can read the reason. Both calls are
 * idempotent (punching a hole twice, seeking twice) and the first attempt has just brought the
 * metadata into memory, so the repeat does not wait on the disk. Failures are rare except
 * SEEK_DATA's ENXIO ("no data after here"), which happens once per extent walk.
 */

const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const EOPNOTSUPP = 95;
const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;

type CFunction = ReturnType<koffi.IKoffiLib['func']>;

interface Libc {
  fallocate: CFunction;
  lseek: CFunction;
  flock: CFunction;
  strerror: CFunction;
}

let libc: Libc | undefined;
function load(): Libc {
  if (libc) return libc;
  const lib = koffi.load('libc.so.6');
  libc = {
    fallocate: lib.func('int fallocate(int fd, int mode, int64_t offset, int64_t len)'),
    lseek: lib.func('int64_t lseek(int fd, int64_t offset, int whence)'),
    flock: lib.func('int flock(int fd, int operation)'),
    strerror: lib.func('const char *strerror(int errnum)'),
  };
  return libc;
}

function errnoError(syscall: string, errno: number): NodeJS.ErrnoException {
  const c = load();
  const err: NodeJS.ErrnoException = new Error(`${syscall}: ${c.strerror(errno) as string}`);
  err.errno = -errno;
  // 95 is both EOPNOTSUPP and ENOTSUP on Linux; fallocate(2) documents it under the first name.
  err.code = errno === EOPNOTSUPP ? 'EOPNOTSUPP' : getSystemErrorName(-errno);
  err.syscall = syscall;
  return err;
}

/**
 * At most this many of our calls occupy the libuv pool at once: punching a hole in gigabytes can take
 * a while, and an fstrim from several hosts must not starve their reads.
 */
const MAX_CONCURRENT = 2;
const pool = new PoolCalls(MAX_CONCURRENT);

function callAsync(fn: CFunction, args: number[]): Promise<number> {
  return pool.call(fn, ...args);
}

/** Runs `fn` on a worker thread; on -1 repeats it here to learn errno (see the module comment). */
async function callChecked(syscall: string, fn: CFunction, args: number[]): Promise<number> {
  const result = await callAsync(fn, args);
  if (result !== -1) return result;
  const again = Number(fn(...args));
  if (again !== -1) return again;
  throw errnoError(syscall, koffi.errno());
}

/** Deallocates [offset, offset+length) without changing the file size; reads of it return zeroes. */
export async function punchHole(fd: number, offset: number, length: number): Promise<void> {
  await callChecked('fallocate', load().fallocate, [fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length]);
}

/** The first offset ≥ `offset` holding data, or null when only holes follow (ENXIO). */
export async function seekData(fd: number, offset: number): Promise<number | null> {
  try {
    return await callChecked('lseek(SEEK_DATA)', load().lseek, [fd, offset, SEEK_DATA]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENXIO') return null;
    throw err;
  }
}

/** The first offset ≥ `offset` in a hole (the end of the file counts as one). */
export function seekHole(fd: number, offset: number): Promise<number> {
  return callChecked('lseek(SEEK_HOLE)', load().lseek, [fd, offset, SEEK_HOLE]);
}

/**
 * Takes a non-blocking flock on the whole file (exclusive for writers, shared for readers), so two
 * opens of one disk — two daemons, or a stale LUN next to a new one — refuse instead of corrupting
 * it. The lock goes away with the descriptor, also on kill -9. Throws EWOULDBLOCK when held.
 */
export function lockFile(fd: number, exclusive: boolean): void {
  const c = load();
  if (Number(c.flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB)) === -1) throw errnoError('flock', koffi.errno());
}
