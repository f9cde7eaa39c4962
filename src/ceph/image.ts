import koffi from 'koffi';
import { aio, diffReceiver, ignoreProgress } from './aio.js';
import { CephError, check, cephError } from './errors.js';
import { stableMemory } from './memory.js';
import { callAsync, imageInfoT, loadCeph, snapInfoT } from './native.js';
import type { CephPool } from './pool.js';

export interface OpenImageOptions {
  /** Open without write access (no watch, no lock; writes fail with EROFS). */
  readOnly?: boolean;
  /** Open this snapshot (always read-only). */
  snapshot?: string;
}

export interface ImageStat {
  size: number;
  objectSize: number;
  objects: number;
  /** log2 of objectSize. */
  order: number;
}

export interface SnapshotInfo {
  id: number;
  name: string;
  /** The image's size when the snapshot was taken. */
  size: number;
}

export interface ParentInfo {
  pool: string;
  image: string;
  snapshot: string;
}

/** A byte range of the image that holds data (an RBD object exists for it, in the image or its parent). */
export interface AllocatedExtent {
  offset: number;
  length: number;
}

const RBD_LOCK_MODE_EXCLUSIVE = 0;
const ERANGE = 34;
const POINTER_SIZE = 8;

/**
 * An open RBD image: metadata, snapshots, the exclusive lock, and asynchronous I/O.
 *
 * Reads and writes go through librbd's aio (rbd_aio_*), any number in flight; each copies between
 * the caller's Buffer and stable memory (memory.ts). Everything else that may wait on the cluster
 * runs on a worker thread (native.ts explains why that matters beyond not freezing the event loop).
 * close() waits for the requests in flight.
 */
export class RbdImage {
  private inflight = 0;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly pool: CephPool,
    readonly name: string,
    /** The rbd_image_t handle. */
    readonly handle: unknown,
    readonly readOnly: boolean,
    readonly snapshot: string | undefined,
    /** Size in bytes when opened. */
    readonly size: number,
    /** Feature bits (RbdFeature). */
    readonly features: number,
    /** RBD object size in bytes. */
    readonly objectSize: number,
  ) {}

  static async open(pool: CephPool, name: string, options: OpenImageOptions = {}): Promise<RbdImage> {
    const lib = loadCeph();
    const readOnly = options.readOnly === true || options.snapshot !== undefined;
    const spec = pool.spec(name, options.snapshot);
    const slot = [null as unknown];
    const rc = await callAsync(readOnly ? lib.rbd_open_read_only : lib.rbd_open, pool.ioctx, name, slot, options.snapshot ?? null);
    check(rc, readOnly ? 'rbd_open_read_only' : 'rbd_open', `RBD image ${spec}`, {
      ENOENT: options.snapshot ? 'no such image or snapshot' : 'no such image',
      EACCES: `${pool.cluster.client} may not open it (check its caps)`,
      EPERM: `${pool.cluster.client} may not open it (check its caps)`,
    });
    const handle = slot[0];
    try {
      const info: Record<string, unknown> = {};
      check(await callAsync(lib.rbd_stat, handle, info, koffi.sizeof(imageInfoT)), 'rbd_stat', `RBD image ${spec}`);
      const features = [0];
      check(await callAsync(lib.rbd_get_features, handle, features), 'rbd_get_features', `RBD image ${spec}`);
      return new RbdImage(pool, name, handle, readOnly, options.snapshot, Number(info.size), Number(features[0]), Number(info.obj_size));
    } catch (err) {
      await callAsync(lib.rbd_close, handle);
      throw err;
    }
  }

  /** "pool/image" or "pool/image@snapshot". */
  get spec(): string {
    return this.pool.spec(this.name, this.snapshot);
  }

  private what(detail?: string): string {
    return `RBD image ${this.spec}${detail ? ` (${detail})` : ''}`;
  }

  /** Current size and layout, asked again (another client may have resized the image). */
  async stat(): Promise<ImageStat> {
    const info: Record<string, unknown> = {};
    check(await this.call(loadCeph().rbd_stat, info, koffi.sizeof(imageInfoT)), 'rbd_stat', this.what());
    return { size: Number(info.size), objectSize: Number(info.obj_size), objects: Number(info.num_objs), order: Number(info.order) };
  }

  /** Grows (or, with allowShrink, shrinks: the data past the new end is gone) the image. */
  async resize(size: number, options: { allowShrink?: boolean } = {}): Promise<void> {
    const rc = await this.call(loadCeph().rbd_resize2, size, options.allowShrink === true, ignoreProgress(), 0);
    check(rc, 'rbd_resize2', this.what(`resize to ${size}`), { EINVAL: 'shrinking needs allowShrink' });
  }

  /** The snapshot this image was cloned from, or null for an image that is not a clone (or was flattened). */
  async parent(): Promise<ParentInfo | null> {
    const bufs = [Buffer.alloc(256), Buffer.alloc(256), Buffer.alloc(256), Buffer.alloc(256)] as const;
    const rc = await this.call(loadCeph().rbd_get_parent_info2, ...bufs.flatMap((b) => [b, b.length]));
    if (rc === -2) return null;
    check(rc, 'rbd_get_parent_info2', this.what());
    const text = (b: Buffer) => b.subarray(0, Math.max(0, b.indexOf(0))).toString();
    return { pool: text(bufs[0]), image: text(bufs[1]), snapshot: text(bufs[3]) };
  }

  // ---- snapshots ------------------------------------------------------------------------------------

  async createSnapshot(snapshot: string): Promise<void> {
    check(await this.call(loadCeph().rbd_snap_create, snapshot), 'rbd_snap_create', this.what(`snapshot ${snapshot}`), {
      EEXIST: `snapshot ${snapshot} already exists`,
    });
  }

  /** Removes a snapshot; EBUSY while it is protected, ENOENT when there is none of that name. */
  async removeSnapshot(snapshot: string): Promise<void> {
    check(await this.call(loadCeph().rbd_snap_remove, snapshot), 'rbd_snap_remove', this.what(`snapshot ${snapshot}`), {
      ENOENT: `no snapshot ${snapshot}`,
      EBUSY: `snapshot ${snapshot} is protected; unprotect it first`,
    });
  }

  /** Protects a snapshot (clones need it, and it cannot be removed while protected); EBUSY when already protected. */
  async protectSnapshot(snapshot: string): Promise<void> {
    check(await this.call(loadCeph().rbd_snap_protect, snapshot), 'rbd_snap_protect', this.what(`snapshot ${snapshot}`), {
      ENOENT: `no snapshot ${snapshot}`,
      EBUSY: `snapshot ${snapshot} is already protected`,
    });
  }

  /** Unprotects a snapshot; EBUSY while clones of it exist, EINVAL when it is not protected. */
  async unprotectSnapshot(snapshot: string): Promise<void> {
    check(await this.call(loadCeph().rbd_snap_unprotect, snapshot), 'rbd_snap_unprotect', this.what(`snapshot ${snapshot}`), {
      ENOENT: `no snapshot ${snapshot}`,
      EBUSY: `snapshot ${snapshot} has clones`,
      EINVAL: `snapshot ${snapshot} is not protected`,
    });
  }

  async isSnapshotProtected(snapshot: string): Promise<boolean> {
    const slot = [0];
    check(await this.call(loadCeph().rbd_snap_is_protected, snapshot, slot), 'rbd_snap_is_protected', this.what(`snapshot ${snapshot}`), {
      ENOENT: `no snapshot ${snapshot}`,
    });
    return slot[0] === 1;
  }

  async listSnapshots(): Promise<SnapshotInfo[]> {
    const lib = loadCeph();
    const entry = koffi.sizeof(snapInfoT);
    let max = 16;
    for (;;) {
      // librbd wants room for one more entry than it fills (a terminator).
      const array = koffi.alloc('uint8_t', (max + 1) * entry);
      try {
        const slot = [max + 1];
        const rc = await this.call(lib.rbd_snap_list, array, slot);
        if (rc === -ERANGE) {
          max = Math.max(max * 2, slot[0]!);
          continue;
        }
        check(rc, 'rbd_snap_list', this.what());
        const snaps: SnapshotInfo[] = [];
        for (let i = 0; i < rc; i++) {
          const s = koffi.decode(array, i * entry, snapInfoT) as { id: number | bigint; size: number | bigint; name: string };
          snaps.push({ id: Number(s.id), name: s.name, size: Number(s.size) });
        }
        lib.rbd_snap_list_end(array);
        return snaps;
      } finally {
        koffi.free(array);
      }
    }
  }

  // ---- exclusive lock ---------------------------------------------------------------------------------

  /**
   * Takes the image's exclusive lock and keeps it: librbd then refuses other clients' requests for it,
   * so their writes fail with EROFS instead of taking the lock over (librbd's default hands the lock
   * to whoever writes next, which lets two writers interleave). Fails with EROFS/EBUSY while another
   * live client holds it. The lock of a client that died is broken once its watch expires (up to
   * ~30 s: this call waits that long). Needs the exclusive-lock feature (EINVAL without it).
   */
  async acquireExclusiveLock(): Promise<void> {
    const rc = await this.call(loadCeph().rbd_lock_acquire, RBD_LOCK_MODE_EXCLUSIVE);
    if (rc >= 0) return;
    const owners = await this.lockOwners().catch(() => []);
    const held = owners.length ? `held by the client at ${owners.join(', ')}` : 'held by another client';
    check(rc, 'rbd_lock_acquire', this.what(), {
      EROFS: `exclusive lock ${held}`,
      EBUSY: `exclusive lock ${held}`,
      EINVAL: 'the image lacks the exclusive-lock feature (rbd feature enable POOL/IMAGE exclusive-lock)',
      EOPNOTSUPP: 'the image lacks the exclusive-lock feature (rbd feature enable POOL/IMAGE exclusive-lock)',
    });
  }

  async releaseExclusiveLock(): Promise<void> {
    check(await this.call(loadCeph().rbd_lock_release), 'rbd_lock_release', this.what());
  }

  async isLockOwner(): Promise<boolean> {
    const slot = [0];
    check(await this.call(loadCeph().rbd_is_exclusive_lock_owner, slot), 'rbd_is_exclusive_lock_owner', this.what());
    return slot[0] === 1;
  }

  /** Who holds the exclusive lock, as librbd names them ("client.4211 …"); empty when nobody does. */
  async lockOwners(): Promise<string[]> {
    const lib = loadCeph();
    const max = 8;
    const array = koffi.alloc('uint8_t', max * POINTER_SIZE);
    try {
      const mode = [0];
      const count = [max];
      const rc = await this.call(lib.rbd_lock_get_owners, mode, array, count);
      if (rc === -2) return [];
      check(rc, 'rbd_lock_get_owners', this.what());
      const n = Number(count[0]);
      const owners: string[] = [];
      for (let i = 0; i < n; i++) owners.push(koffi.decode(array, i * POINTER_SIZE, 'str') as string);
      lib.rbd_lock_get_owners_cleanup(array, n);
      return owners;
    } finally {
      koffi.free(array);
    }
  }

  // ---- I/O ------------------------------------------------------------------------------------------------

  async read(offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const block = stableMemory.take(length);
    try {
      const lib = loadCeph();
      const rc = await this.io('read', offset, length, (c) => lib.rbd_aio_read(this.handle, offset, length, block.ptr, c));
      if (rc !== length) throw new CephError('EIO', 5, 'rbd_aio_read', `${this.what(`read of ${length} bytes at ${offset}`)}: got ${rc} bytes`);
      const out = Buffer.allocUnsafe(length);
      block.buf.copy(out, 0, 0, length);
      return out;
    } finally {
      stableMemory.give(block);
    }
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (data.length === 0) return;
    const block = stableMemory.take(data.length);
    try {
      data.copy(block.buf);
      const lib = loadCeph();
      await this.io('write', offset, data.length, (c) => lib.rbd_aio_write(this.handle, offset, data.length, block.ptr, c));
    } finally {
      stableMemory.give(block);
    }
  }

  /** Everything written before the call is on the OSDs when it resolves. */
  async flush(): Promise<void> {
    const lib = loadCeph();
    await this.io('flush', 0, 0, (c) => lib.rbd_aio_flush(this.handle, c));
  }

  /**
   * Deallocates the range (rbd_aio_discard). Whether a partial-object discard zeroes the bytes
   * depends on the client's rbd_skip_partial_discard / rbd_discard_granularity_bytes; use writeZeroes
   * where later reads must return zeroes.
   */
  async discard(offset: number, length: number): Promise<void> {
    if (length === 0) return;
    const lib = loadCeph();
    await this.io('discard', offset, length, (c) => lib.rbd_aio_discard(this.handle, offset, length, c));
  }

  /**
   * Makes the range read as zeroes, deallocating what it can: whole objects are removed (or, in a
   * clone, replaced by an empty object that hides the parent's data), partial ones zeroed.
   */
  async writeZeroes(offset: number, length: number): Promise<void> {
    if (length === 0) return;
    const lib = loadCeph();
    await this.io('write_zeroes', offset, length, (c) => lib.rbd_aio_write_zeroes(this.handle, offset, length, c, 0, 0));
  }

  /** Writes `pattern` repeated over [offset, offset+length) (length a multiple of the pattern's). */
  async writeSame(offset: number, length: number, pattern: Buffer): Promise<void> {
    if (length === 0) return;
    const block = stableMemory.take(pattern.length);
    try {
      pattern.copy(block.buf);
      const lib = loadCeph();
      await this.io('writesame', offset, length, (c) => lib.rbd_aio_writesame(this.handle, offset, length, block.ptr, pattern.length, c, 0));
    } finally {
      stableMemory.give(block);
    }
  }

  /**
   * The parts of [offset, offset+length) that hold data, at whole-object granularity (an object that
   * exists in the image, or in its parent for a clone, counts whole), clipped to the range, merged.
   * Uses the object map when the image has fast-diff, else one query per object.
   */
  async allocated(offset: number, length: number): Promise<AllocatedExtent[]> {
    const found: AllocatedExtent[] = [];
    const end = offset + length;
    const receiver = diffReceiver((off, len, exists) => {
      if (!exists) return;
      const from = Math.max(offset, off);
      const to = Math.min(end, off + len);
      if (to <= from) return;
      const last = found[found.length - 1];
      if (last && last.offset + last.length >= from) last.length = Math.max(last.offset + last.length, to) - last.offset;
      else found.push({ offset: from, length: to - from });
    });
    try {
      const rc = await this.call(loadCeph().rbd_diff_iterate2, null, offset, length, 1, 1, receiver.callback, receiver.arg);
      check(rc, 'rbd_diff_iterate2', this.what(`allocation of ${length} bytes at ${offset}`));
    } finally {
      receiver.done();
    }
    return found.sort((a, b) => a.offset - b.offset);
  }

  /** Waits for requests in flight, then closes the image (releasing its lock). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.inflight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      check(await callAsync(loadCeph().rbd_close, this.handle), 'rbd_close', this.what());
    })();
    return this.closing;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** A blocking call on this image, on a worker thread. */
  private call(fn: Parameters<typeof callAsync>[0], ...args: unknown[]): Promise<number> {
    return this.tracked(() => callAsync(fn, this.handle, ...args));
  }

  /** One aio request; throws the CephError of a negative result. */
  private async io(op: string, offset: number, length: number, submit: (completion: unknown) => number): Promise<number> {
    const rc = await this.tracked(() => aio(submit));
    if (rc < 0) {
      const detail = op === 'flush' ? 'flush' : `${op} of ${length} bytes at ${offset}`;
      throw cephError(rc, `rbd_aio_${op}`, this.what(detail), { EROFS: 'not writable: opened read-only, or another client took the exclusive lock' });
    }
    return rc;
  }

  private async tracked<T>(run: () => Promise<T>): Promise<T> {
    if (this.closing) throw new CephError('ESHUTDOWN', 108, 'rbd_close', `${this.what()} is closed`);
    this.inflight++;
    try {
      return await run();
    } finally {
      if (--this.inflight === 0) this.drained?.();
    }
  }
}
