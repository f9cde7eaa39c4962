import { closeSync, constants, fstatSync, openSync, readlinkSync, realpathSync, statSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join, sep } from 'node:path';

/**
 * What the TFTP server may serve: regular files under one root, and nothing else. A requested name
 * is read relative to the root (a leading "/" included, as tftpd-hpa -s does); ".." is refused
 * outright, and a name that resolves — through any symlink — to a place outside the root, or to a
 * directory, device, FIFO or socket, is refused. Small files are served from memory, checked against
 * the file's identity, size and times on every open; big ones are read in chunks at positions.
 */

export type FileErrorKind = 'not-found' | 'refused' | 'unreadable';

/** Why a name cannot be served. The message is safe to send to the client: it never shows a real path. */
export class FileError extends Error {
  constructor(
    readonly kind: FileErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'FileError';
  }
}

export interface OpenedFile {
  /** The name as requested, for logs and events. */
  readonly name: string;
  readonly size: number;
  /** True when the bytes come from the in-memory cache. */
  readonly fromMemory: boolean;
  /** Exactly `length` bytes at `offset` (within size); throws a FileError if the file shrank. */
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * The same bytes as read(), at once, when they are already in memory (the whole cached file, or
   * the chunk last read); undefined when only read() can get them. Sending a block then costs no
   * promise and no copy: the view is handed to the socket as it is.
   */
  peek(offset: number, length: number): Buffer | undefined;
  close(): Promise<void>;
}

export interface FileStoreOptions {
  root: string;
  /** Files up to this size are kept in memory (default 4 MiB: every iPXE build fits). */
  cacheFileMaxBytes?: number;
  /** Memory the cache may use in all; least recently used files leave first (default 64 MiB). */
  cacheMaxBytes?: number;
}

export const DEFAULT_CACHE_FILE_MAX_BYTES = 4 * 1024 * 1024;
export const DEFAULT_CACHE_MAX_BYTES = 64 * 1024 * 1024;
/** Big files are read this much at a time (or one whole block, if larger) and served from the chunk. */
const READ_CHUNK_BYTES = 256 * 1024;

interface CacheEntry {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  data: Buffer;
}

export class FileStore {
  private readonly cacheFileMaxBytes: number;
  private readonly cacheMaxBytes: number;
  /** Keyed by real path; a Map keeps insertion order, which makes it the LRU list too. */
  private readonly cache = new Map<string, CacheEntry>();
  private cachedBytes = 0;
  readonly stats = { hits: 0, misses: 0 };

  constructor(private readonly opts: FileStoreOptions) {
    this.cacheFileMaxBytes = opts.cacheFileMaxBytes ?? DEFAULT_CACHE_FILE_MAX_BYTES;
    this.cacheMaxBytes = opts.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES;
  }

  async open(name: string): Promise<OpenedFile> {
    const segments = relativeSegments(name);
    // The checks are synchronous system calls on purpose. The root is a local directory and its
    // names and inodes sit in the kernel's caches: the whole sequence costs about 20 µs. Through the
    // thread pool each of the five calls costs 50-60 µs of the event loop's time, and 50 machines
    // powered on at once would each wait for all the others' checks before their first block.
    const root = this.realRoot();
    let real: string;
    let st: Stats;
    try {
      real = realpathSync(join(root, ...segments));
      if (!inside(root, real)) throw new FileError('refused', `${name} resolves outside the TFTP root`);
      // stat before open: opening a device or a FIFO can block or have side effects.
      st = statSync(real);
    } catch (err) {
      throw fsError(err, name);
    }
    if (!st.isFile()) throw new FileError('refused', `${name} is not a regular file (${fileKind(st)})`);
    const hit = this.cache.get(real);
    if (hit && sameFile(hit, st)) return memoryFile(name, this.reopenCached(real, hit, name, root));

    let fh: FileHandle;
    try {
      fh = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      throw fsError(err, name);
    }
    try {
      const fst = await fh.stat();
      // Whatever was swapped in between realpath and open is refused, not served.
      if (!fst.isFile() || fst.ino !== st.ino || fst.dev !== st.dev) throw new FileError('refused', `${name} changed while it was opened`);
      assertOpenedInside(fh.fd, root, name);
      if (fst.size <= this.cacheFileMaxBytes) {
        const data = await this.cached(real, fh, fst, name);
        await fh.close();
        return memoryFile(name, data);
      }
      return new ChunkedFile(fh, name, fst.size);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw fsError(err, name);
    }
  }

  /**
   * A file already in memory, opened and checked as any other (the same file, still inside the
   * root) but not read: its bytes are the cached ones.
   */
  private reopenCached(real: string, entry: CacheEntry, name: string, root: string): Buffer {
    let fd: number;
    try {
      fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      throw fsError(err, name);
    }
    try {
      const fst = fstatSync(fd);
      if (!fst.isFile() || !sameFile(entry, fst)) throw new FileError('refused', `${name} changed while it was opened`);
      assertOpenedInside(fd, root, name);
    } catch (err) {
      throw fsError(err, name);
    } finally {
      closeSync(fd);
    }
    this.stats.hits++;
    // Most recently used last: the eviction loop in cached() drops from the front.
    this.cache.delete(real);
    this.cache.set(real, entry);
    return entry.data;
  }

  private realRoot(): string {
    try {
      return realpathSync(this.opts.root);
    } catch (err) {
      throw new FileError('unreadable', `the TFTP root is unavailable (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }

  private async cached(real: string, fh: FileHandle, st: Stats, name: string): Promise<Buffer> {
    const hit = this.cache.get(real);
    // Another open may have filled the entry while this one waited for its descriptor.
    if (hit && sameFile(hit, st)) {
      this.stats.hits++;
      return hit.data;
    }
    this.stats.misses++;
    // In shared memory: the TFTP data plane thread sends from these very bytes, without a copy.
    const data = await readExactly(fh, st.size, 0, name, Buffer.from(new SharedArrayBuffer(st.size)));
    // A file being rewritten as we read it would be served half old, half new: refuse it instead.
    if (!sameFile(entryOf(await fh.stat(), data), st)) throw new FileError('unreadable', `${name} changed while it was read`);
    if (hit) this.forget(real, hit);
    if (data.length <= this.cacheMaxBytes) {
      this.cache.set(real, entryOf(st, data));
      this.cachedBytes += data.length;
      for (const [key, old] of this.cache) {
        if (this.cachedBytes <= this.cacheMaxBytes) break;
        this.forget(key, old);
      }
    }
    return data;
  }

  private forget(key: string, entry: CacheEntry): void {
    this.cache.delete(key);
    this.cachedBytes -= entry.data.length;
  }
}

/**
 * The path segments of a requested name inside the root. A leading "/" is relative to the root, empty
 * and "." segments vanish, and ".." anywhere is refused rather than resolved: nothing a boot ROM
 * asks for needs it. Percent signs and backslashes are ordinary characters on this side.
 */
function relativeSegments(name: string): string[] {
  if (name.includes('\0')) throw new FileError('refused', 'a file name cannot contain NUL');
  const segments = name.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw new FileError('refused', `${name}: ".." is not allowed in file names`);
  if (segments.length === 0) throw new FileError('refused', `${name} names the TFTP root, not a file`);
  return segments;
}

function inside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * The kernel's own name for what we opened (Linux /proc), checked against the root: this closes the
 * window in which a directory on the path could have been swapped for a symlink after realpath.
 * Where /proc is missing, the realpath check above stands alone.
 */
function assertOpenedInside(fd: number, root: string, name: string): void {
  let opened: string;
  try {
    opened = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return;
  }
  if (!inside(root, opened)) throw new FileError('refused', `${name} resolves outside the TFTP root`);
}

function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a file';
}

function fsError(err: unknown, name: string): FileError {
  if (err instanceof FileError) return err;
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
    case 'ENOTDIR':
    case 'ENAMETOOLONG':
      return new FileError('not-found', `${name}: no such file`);
    case 'EACCES':
    case 'EPERM':
      return new FileError('refused', `${name}: permission denied`);
    case 'ELOOP':
      return new FileError('refused', `${name}: too many levels of symbolic links`);
    default:
      return new FileError('unreadable', `${name}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function entryOf(st: Stats, data: Buffer): CacheEntry {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, data };
}

function sameFile(a: CacheEntry, st: Stats): boolean {
  return a.dev === st.dev && a.ino === st.ino && a.size === st.size && a.mtimeMs === st.mtimeMs && a.ctimeMs === st.ctimeMs;
}

async function readExactly(fh: FileHandle, length: number, position: number, name: string, buf: Buffer = Buffer.allocUnsafe(length)): Promise<Buffer> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new FileError('unreadable', `${name} shrank while it was read`);
    done += bytesRead;
  }
  return buf;
}

export function memoryFile(name: string, data: Buffer): OpenedFile {
  return {
    name,
    size: data.length,
    fromMemory: true,
    read: async (offset, length) => data.subarray(offset, offset + length),
    peek: (offset, length) => data.subarray(offset, offset + length),
    close: async () => undefined,
  };
}

/** A big file: kept open for the transfer, read a chunk at a time at explicit positions. */
class ChunkedFile implements OpenedFile {
  readonly fromMemory = false;
  private chunk: Buffer = Buffer.alloc(0);
  private chunkStart = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly name: string,
    readonly size: number,
  ) {}

  peek(offset: number, length: number): Buffer | undefined {
    if (offset >= this.chunkStart && offset + length <= this.chunkStart + this.chunk.length) {
      return this.chunk.subarray(offset - this.chunkStart, offset - this.chunkStart + length);
    }
    return undefined;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const held = this.peek(offset, length);
    if (held) return held;
    const n = Math.min(Math.max(READ_CHUNK_BYTES, length), this.size - offset);
    if (n < length) throw new RangeError(`read of ${length} bytes at ${offset} is past the end (${this.size})`);
    // A new buffer each time: slices handed out earlier may still be queued for sending.
    this.chunk = await readExactly(this.fh, n, offset, this.name);
    this.chunkStart = offset;
    return this.chunk.subarray(0, length);
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}
