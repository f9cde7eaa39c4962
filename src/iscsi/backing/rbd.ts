import { acquireCluster, type CephSettings, type ClusterLease } from '../../ceph/cluster.js';
import { isCephCode } from '../../ceph/errors.js';
import type { RbdImage } from '../../ceph/image.js';
import { RbdFeature } from '../../ceph/pool.js';
import type { BlockDevice, BlockExtent } from './block-device.js';
import { BackingError } from './errors.js';
import { BLOCK_SIZE, checkRange } from './file-io.js';
import { OpTracker } from './op-tracker.js';
import { RangeLock } from './range-lock.js';

/**
 * `rbd` backing: the LUN is an RBD image, through librbd (src/ceph), with no kernel module.
 *
 * - Reads and writes are librbd aio requests, as many in flight as the initiators send; overlapping
 *   ones take effect in call order (range-lock.ts), like the file backends.
 * - librbd's cache is off (cluster.ts), so a resolved write() is on the OSDs; with `fua` a flush
 *   follows anyway (rbd_aio_flush: cheap without a cache, and right if a cache is turned on).
 * - discard() is rbd_aio_write_zeroes: whole objects are deallocated (or, in a clone, hidden behind
 *   an empty object), partial ones zeroed, so later reads return zeroes (LBPRZ) whatever the client's
 *   discard granularity settings; `thin` is true.
 * - extents() asks librbd which objects exist (rbd_diff_iterate2, whole objects, the parent's
 *   included for a clone: the object map when the image has fast-diff).
 *
 * ONE WRITER. Opened for writing, the image's exclusive lock is taken and kept (rbd_lock_acquire).
 * A second hiveboot (or anyone) opening it for writing is refused with IN_USE naming the holder, and
 * writes from a client that did not take the lock fail (EROFS) instead of silently interleaving with
 * ours. librbd's default would hand the lock to whichever client writes next. An image without the
 * exclusive-lock feature is refused for writing: nothing would keep a second writer out. After a
 * crash, the dead process's lock is broken once its watch expires: a reopen waits up to ~30 s.
 * Read-only opens take no lock.
 *
 * The cluster connection is shared by every LUN with the same settings (acquireCluster).
 */

export interface RbdBackingOptions {
  /** How to reach the cluster (conf, client, keyring…). */
  cluster: CephSettings;
  pool: string;
  image: string;
  /** Serve this snapshot of the image (read-only). */
  snapshot?: string;
  readOnly?: boolean;
}

export class RbdBacking implements BlockDevice {
  readonly blockSize = BLOCK_SIZE;
  readonly thin = true;
  private readonly lock = new RangeLock();
  private readonly ops = new OpTracker();

  private constructor(
    private readonly lease: ClusterLease,
    private readonly image: RbdImage,
    readonly size: number,
    readonly readOnly: boolean,
  ) {}

  static async open(options: RbdBackingOptions): Promise<RbdBacking> {
    const readOnly = options.readOnly === true || options.snapshot !== undefined;
    const lease = await acquireCluster(options.cluster);
    let image: RbdImage | undefined;
    try {
      const pool = await lease.cluster.pool(options.pool);
      image = await pool.openImage(options.image, { readOnly, ...(options.snapshot ? { snapshot: options.snapshot } : {}) });
      const spec = image.spec;
      if (image.size === 0 || image.size % BLOCK_SIZE !== 0) {
        throw new BackingError('BAD_FORMAT', `RBD image ${spec} is ${image.size} bytes, not a positive multiple of ${BLOCK_SIZE}`);
      }
      if (!readOnly) {
        if ((image.features & RbdFeature.exclusiveLock) === 0) {
          throw new BackingError(
            'BAD_FORMAT',
            `RBD image ${spec} lacks the exclusive-lock feature, which keeps a second writer off it; enable it: rbd feature enable ${spec} exclusive-lock`,
          );
        }
        try {
          await image.acquireExclusiveLock();
        } catch (err) {
          if (isCephCode(err, 'EROFS') || isCephCode(err, 'EBUSY')) {
            throw new BackingError('IN_USE', (err as Error).message, { cause: err });
          }
          throw err;
        }
      }
      return new RbdBacking(lease, image, image.size, readOnly);
    } catch (err) {
      await image?.close().catch(() => {});
      await lease.release();
      throw err;
    }
  }

  /** "pool/image" (or pool/image@snapshot). */
  get spec(): string {
    return this.image.spec;
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.ranged(offset, length, false, () => this.image.read(offset, length));
  }

  write(offset: number, data: Buffer, options?: { fua?: boolean }): Promise<void> {
    return this.ranged(offset, data.length, true, async () => {
      await this.writing(() => this.image.write(offset, data));
      if (options?.fua) await this.image.flush();
    });
  }

  flush(): Promise<void> {
    return this.ops.run(() => this.image.flush());
  }

  discard(offset: number, length: number): Promise<void> {
    return this.ranged(offset, length, true, () => this.writing(() => this.image.writeZeroes(offset, length)));
  }

  extents(offset: number, length: number): Promise<BlockExtent[]> {
    return this.ops.run(async () => {
      checkRange(offset, length, this.size, BLOCK_SIZE);
      const extents: BlockExtent[] = [];
      let at = offset;
      for (const data of await this.image.allocated(offset, length)) {
        if (data.offset > at) extents.push({ offset: at, length: data.offset - at, mapped: false });
        extents.push({ offset: data.offset, length: data.length, mapped: true });
        at = data.offset + data.length;
      }
      if (at < offset + length) extents.push({ offset: at, length: offset + length - at, mapped: false });
      return extents;
    });
  }

  /** Waits for operations in flight, flushes, closes the image (releasing its lock) and lets go of the connection. */
  close(): Promise<void> {
    return this.ops.close(async () => {
      try {
        if (!this.readOnly) await this.image.flush();
      } finally {
        try {
          await this.image.close();
        } finally {
          await this.lease.release();
        }
      }
    });
  }

  /**
   * Runs an operation on [offset, offset+length): counted for close(), range-checked (and refused on
   * a read-only device when it writes), after the overlapping operations called before it.
   */
  private ranged<T>(offset: number, length: number, writes: boolean, run: () => Promise<T>): Promise<T> {
    return this.ops.run(async () => {
      if (writes && this.readOnly) throw new BackingError('READ_ONLY', `RBD image ${this.spec} is open read-only`);
      checkRange(offset, length, this.size, BLOCK_SIZE);
      const release = await this.lock.acquire(offset, offset + length, writes);
      try {
        return await run();
      } finally {
        release();
      }
    });
  }

  /** A write that fails because the lock was taken from us (we were blocklisted) is a write-protected medium, not a bad one. */
  private async writing(run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (err) {
      if (isCephCode(err, 'EROFS') || isCephCode(err, 'EBLOCKLISTED')) {
        throw new BackingError('READ_ONLY', `RBD image ${this.spec}: lost the exclusive lock to another client: ${(err as Error).message}`, {
          cause: err,
        });
      }
      throw err;
    }
  }
}
