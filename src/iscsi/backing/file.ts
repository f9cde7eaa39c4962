import { open, stat, type FileHandle } from 'node:fs/promises';
import type { BlockDevice, BlockExtent } from './block-device.js';
import { BackingError, hasErrno, isUnsupported } from './errors.js';
import {
  BLOCK_SIZE,
  MAX_EXTENTS,
  checkRange,
  fileExtents,
  probePunchHole,
  readFully,
  syncDirectory,
  writeFully,
  writeZeroes,
  type PunchHole,
} from './file-io.js';
import { GroupSync } from './group-sync.js';
import { lockFile, punchHole } from './libc.js';
import { OpTracker } from './op-tracker.js';
import { RangeLock } from './range-lock.js';

/**
 * `file` backing: the LUN is a raw, sparse file, byte for byte.
 *
 * - One descriptor kept open; every read and write is a positioned pread/pwritev on it.
 * - write() resolves when the data is in the page cache (survives kill -9); with `fua`, and for
 *   flush(), an fdatasync shared by every caller waiting at that moment (group commit).
 * - discard() punches a hole (the file system frees the blocks, reads return zeroes). When the file
 *   system cannot punch holes (EOPNOTSUPP, checked at open), it writes zeroes and `thin` is false.
 * - extents() asks the file system (SEEK_DATA/SEEK_HOLE): holes are reported unmapped.
 * - Overlapping operations take effect in call order (see range-lock.ts).
 */

export interface FileBackingOptions {
  path: string;
  /** Creates the file (sparse) with this size when it does not exist; must match when it does. */
  size?: number;
  readOnly?: boolean;
  punchHole?: PunchHole;
}

async function createSparse(path: string, size: number): Promise<void> {
  const fh = await open(path, 'wx', 0o600);
  try {
    await fh.truncate(size);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await syncDirectory(path);
}

export class FileBacking implements BlockDevice {
  readonly blockSize = BLOCK_SIZE;
  private readonly lock = new RangeLock();
  private readonly syncer: GroupSync;
  private readonly ops = new OpTracker();
  private canPunch: boolean;

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    readonly size: number,
    readonly readOnly: boolean,
    canPunch: boolean,
    private readonly punch: PunchHole,
  ) {
    this.canPunch = canPunch;
    this.syncer = new GroupSync(() => fh.datasync());
  }

  static async open(options: FileBackingOptions): Promise<FileBacking> {
    const { path, size } = options;
    const readOnly = options.readOnly ?? false;
    const punch = options.punchHole ?? punchHole;
    if (size !== undefined && (!Number.isSafeInteger(size) || size <= 0 || size % BLOCK_SIZE !== 0)) {
      throw new BackingError('OUT_OF_RANGE', `size ${size} of ${path} is not a positive multiple of ${BLOCK_SIZE}`);
    }
    const existing = await stat(path).catch((err: unknown) => {
      if (hasErrno(err, 'ENOENT')) return undefined;
      throw err;
    });
    if (!existing) {
      if (size === undefined || readOnly) throw new BackingError('SIZE_MISMATCH', `${path} does not exist and no size was given to create it`);
      await createSparse(path, size).catch((err: unknown) => {
        if (hasErrno(err, 'EEXIST')) throw new BackingError('EXISTS', `${path} appeared while it was being created`, { cause: err });
        throw err;
      });
    } else {
      if (!existing.isFile()) throw new BackingError('BAD_FORMAT', `${path} is not a regular file`);
      if (size !== undefined && existing.size !== size) {
        // Growing or shrinking a disk under a host is an explicit operation, never a side effect of opening it.
        throw new BackingError('SIZE_MISMATCH', `${path} is ${existing.size} bytes, not the ${size} asked for`);
      }
      if (existing.size === 0 || existing.size % BLOCK_SIZE !== 0) {
        throw new BackingError('BAD_FORMAT', `${path} is ${existing.size} bytes, not a positive multiple of ${BLOCK_SIZE}`);
      }
    }

    const fh = await open(path, readOnly ? 'r' : 'r+');
    try {
      try {
        lockFile(fh.fd, !readOnly);
      } catch (err) {
        throw new BackingError('IN_USE', `${path} is open elsewhere (flock)`, { cause: err });
      }
      const actual = (await fh.stat()).size;
      const canPunch = !readOnly && (await probePunchHole(fh.fd, actual, punch));
      return new FileBacking(fh, path, actual, readOnly, canPunch, punch);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Holes are punched; false after a fallback to writing zeroes. */
  get thin(): boolean {
    return this.canPunch;
  }

  /** fdatasync calls so far (group commit makes this smaller than the number of FUA writes). */
  get syncCount(): number {
    return this.syncer.count;
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.ops.run(async () => {
      checkRange(offset, length, this.size, BLOCK_SIZE);
      const buf = Buffer.allocUnsafe(length);
      if (length === 0) return buf;
      const release = await this.lock.acquire(offset, offset + length, false);
      try {
        await readFully(this.fh, buf, offset);
      } finally {
        release();
      }
      return buf;
    });
  }

  write(offset: number, data: Buffer, options?: { fua?: boolean }): Promise<void> {
    return this.ops.run(async () => {
      this.checkWritable();
      checkRange(offset, data.length, this.size, BLOCK_SIZE);
      if (data.length > 0) {
        const release = await this.lock.acquire(offset, offset + data.length, true);
        try {
          await writeFully(this.fh, [data], offset);
        } finally {
          release();
        }
      }
      if (options?.fua) await this.syncer.sync();
    });
  }

  flush(): Promise<void> {
    return this.ops.run(() => this.syncer.sync());
  }

  discard(offset: number, length: number): Promise<void> {
    return this.ops.run(async () => {
      this.checkWritable();
      checkRange(offset, length, this.size, BLOCK_SIZE);
      if (length === 0) return;
      const release = await this.lock.acquire(offset, offset + length, true);
      try {
        if (this.canPunch) {
          try {
            await this.punch(this.fh.fd, offset, length);
            return;
          } catch (err) {
            if (!isUnsupported(err)) throw err;
            this.canPunch = false; // the file system changed its mind (e.g. a remount): stop advertising it
          }
        }
        await writeZeroes(this.fh, offset, length);
      } finally {
        release();
      }
    });
  }

  extents(offset: number, length: number): Promise<BlockExtent[]> {
    return this.ops.run(async () => {
      checkRange(offset, length, this.size, BLOCK_SIZE);
      return fileExtents(this.fh.fd, 0, offset, length, BLOCK_SIZE, MAX_EXTENTS);
    });
  }

  /** Waits for operations in flight, makes everything durable, releases the file. */
  close(): Promise<void> {
    return this.ops.close(async () => {
      try {
        if (!this.readOnly) await this.fh.datasync();
      } finally {
        await this.fh.close();
      }
    });
  }

  private checkWritable(): void {
    if (this.readOnly) throw new BackingError('READ_ONLY', `${this.path} is open read-only`);
  }
}
