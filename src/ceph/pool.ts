import type { CephCluster } from './cluster.js';
import { CephError, check, isCephCode } from './errors.js';
import { RbdImage, type OpenImageOptions } from './image.js';
import { callAsync, loadCeph } from './native.js';

/** RBD feature bits (librbd's features.h). */
export const RbdFeature = {
  layering: 1,
  stripingV2: 2,
  exclusiveLock: 4,
  objectMap: 8,
  fastDiff: 16,
  deepFlatten: 32,
  journaling: 64,
  dataPool: 128,
} as const;

/** How long an image without a parent may be a clone still being made by someone else. */
const CLONE_SETTLE_MS = 3000;

/** rbd_image_options_t keys (librbd.h). */
const ImageOption = { format: 0, features: 1, order: 2 } as const;

export interface CreateImageOptions {
  /** log2 of the object size: 22 (4 MiB, Ceph's default) unless given. */
  order?: number;
  /** Feature bits; default: the cluster's rbd_default_features (layering, exclusive-lock, object-map, fast-diff, deep-flatten). */
  features?: number;
}

/** The parent of a clone: an image's snapshot, in this pool unless `pool` says otherwise. */
export interface ParentSpec {
  pool?: string;
  image: string;
  snapshot: string;
}

/** Runs `fn` with an rbd_image_options_t holding format 2 and the given options. */
async function withImageOptions<T>(options: CreateImageOptions, fn: (opts: unknown) => Promise<T>): Promise<T> {
  const lib = loadCeph();
  const slot = [null as unknown];
  lib.rbd_image_options_create(slot);
  const opts = slot[0];
  try {
    const set = (key: number, value: number, what: string) =>
      check(lib.rbd_image_options_set_uint64(opts, key, value), 'rbd_image_options_set_uint64', `image option ${what}=${value}`);
    set(ImageOption.format, 2, 'format');
    if (options.order !== undefined) set(ImageOption.order, options.order, 'order');
    if (options.features !== undefined) set(ImageOption.features, options.features, 'features');
    return await fn(opts);
  } finally {
    lib.rbd_image_options_destroy(opts);
  }
}

/** A pool (librados io context) and the RBD image operations in it. */
export class CephPool {
  private destroyed = false;

  private constructor(
    readonly cluster: CephCluster,
    readonly name: string,
    /** The rados_ioctx_t handle. */
    readonly ioctx: unknown,
  ) {}

  /** Opens pool `name`; a missing pool is a CephError ENOENT that names it. */
  static async open(cluster: CephCluster, name: string): Promise<CephPool> {
    const slot = [null as unknown];
    const rc = await callAsync(loadCeph().rados_ioctx_create, cluster.handle, name, slot);
    check(rc, 'rados_ioctx_create', `pool "${name}" (${cluster.describe()})`, {
      ENOENT: 'no such pool',
      EACCES: `${cluster.client} may not use this pool (check its osd caps)`,
      EPERM: `${cluster.client} may not use this pool (check its osd caps)`,
    });
    return new CephPool(cluster, name, slot[0]);
  }

  /** "pool/image" (or "pool/image@snapshot"): how Ceph's tools write an image. */
  spec(image: string, snapshot?: string): string {
    return `${this.name}/${image}${snapshot ? `@${snapshot}` : ''}`;
  }

  /** Creates a format 2 image of `size` bytes; EEXIST when the name is taken. */
  async createImage(image: string, size: number, options: CreateImageOptions = {}): Promise<void> {
    if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`image size must be a positive integer, got ${size}`);
    await withImageOptions(options, async (opts) => {
      const rc = await callAsync(loadCeph().rbd_create4, this.ioctx, image, size, opts);
      check(rc, 'rbd_create4', `RBD image ${this.spec(image)}`, { EEXIST: 'already exists' });
    });
  }

  /**
   * Removes an image (and its data). ENOENT when it does not exist (unless `missingOk`), ENOTEMPTY
   * when it has snapshots, EBUSY while a client still has it open (or a crashed client's watch has not
   * yet expired, ~30 s).
   */
  async removeImage(image: string, options: { missingOk?: boolean } = {}): Promise<void> {
    const rc = await callAsync(loadCeph().rbd_remove, this.ioctx, image);
    if (rc === -2 && options.missingOk) return;
    check(rc, 'rbd_remove', `RBD image ${this.spec(image)}`, {
      ENOENT: 'does not exist',
      ENOTEMPTY: 'has snapshots; remove them first',
      EBUSY: 'is open by a client (or one that died less than ~30 s ago)',
    });
  }

  async imageExists(image: string): Promise<boolean> {
    try {
      const img = await this.openImage(image, { readOnly: true });
      await img.close();
      return true;
    } catch (err) {
      if (isCephCode(err, 'ENOENT')) return false;
      throw err;
    }
  }

  /** Names of the images in the pool. */
  async listImages(): Promise<string[]> {
    const lib = loadCeph();
    let size = 4096;
    for (;;) {
      const buf = Buffer.alloc(size);
      const sizeSlot = [size];
      const rc = await callAsync(lib.rbd_list, this.ioctx, buf, sizeSlot);
      if (rc === -34 /* ERANGE */ && sizeSlot[0]! > size) {
        size = sizeSlot[0]!;
        continue;
      }
      check(rc, 'rbd_list', `pool "${this.name}"`);
      return buf
        .subarray(0, Number(sizeSlot[0]))
        .toString()
        .split('\0')
        .filter((n) => n !== '');
    }
  }

  /** Opens an image (see RbdImage.open). */
  openImage(image: string, options: OpenImageOptions = {}): Promise<RbdImage> {
    return RbdImage.open(this, image, options);
  }

  /**
   * Clones parent@snapshot (format 2, layering) into `child` in this pool: the child shares the
   * parent's data until written. The snapshot must be protected unless the cluster uses clone v2.
   */
  async clone(parent: ParentSpec, child: string, options: CreateImageOptions = {}): Promise<void> {
    const parentPool = parent.pool && parent.pool !== this.name ? await this.cluster.pool(parent.pool) : this;
    const what = `clone of ${parentPool.spec(parent.image, parent.snapshot)} as ${this.spec(child)}`;
    await withImageOptions(options, async (opts) => {
      const rc = await callAsync(loadCeph().rbd_clone3, parentPool.ioctx, parent.image, parent.snapshot, this.ioctx, child, opts);
      check(rc, 'rbd_clone3', what, {
        EEXIST: `${this.spec(child)} already exists`,
        ENOENT: `${parentPool.spec(parent.image, parent.snapshot)} does not exist`,
        EINVAL: 'the parent snapshot is not protected (or the parent lacks layering)',
        ENOSYS: 'the parent image lacks the layering feature',
      });
    });
  }

  /**
   * Makes sure `child` is a clone of parent@snapshot, whatever was done before: creates it when it
   * does not exist (protecting the snapshot first if needed); accepts an existing clone of that same
   * snapshot (another call, or another process, made it); refuses (EEXIST) an image of that name
   * that is anything else. Returns whether this call created it.
   */
  async ensureClone(parent: ParentSpec, child: string, options: CreateImageOptions = {}): Promise<{ created: boolean }> {
    const parentPool = parent.pool ?? this.name;
    if (await this.verifyClone(parentPool, parent, child)) return { created: false };

    const source = await (parentPool === this.name ? this : await this.cluster.pool(parentPool)).openImage(parent.image);
    try {
      if (!(await source.isSnapshotProtected(parent.snapshot))) {
        try {
          await source.protectSnapshot(parent.snapshot);
        } catch (err) {
          if (!isCephCode(err, 'EBUSY')) throw err; // protected meanwhile by someone else
        }
      }
    } finally {
      await source.close();
    }
    try {
      await this.clone(parent, child, options);
      return { created: true };
    } catch (err) {
      // Lost a race with another creator: fine if what it made is the same clone.
      if (isCephCode(err, 'EEXIST') && (await this.verifyClone(parentPool, parent, child))) return { created: false };
      throw err;
    }
  }

  /**
   * True when `child` exists as a clone of parent@snapshot; false when it does not exist; throws when
   * it is something else. A clone being made by someone else exists for a moment before its parent
   * link does, so an image without a parent is looked at again for a few seconds before it is called
   * an impostor.
   */
  private async verifyClone(parentPool: string, parent: ParentSpec, child: string): Promise<boolean> {
    const wanted = `${parentPool}/${parent.image}@${parent.snapshot}`;
    const deadline = Date.now() + CLONE_SETTLE_MS;
    for (;;) {
      let existing: RbdImage;
      try {
        existing = await this.openImage(child, { readOnly: true });
      } catch (err) {
        if (isCephCode(err, 'ENOENT')) return false;
        throw err;
      }
      let actual;
      try {
        actual = await existing.parent();
      } finally {
        await existing.close();
      }
      if (actual && actual.pool === parentPool && actual.image === parent.image && actual.snapshot === parent.snapshot) return true;
      if (!actual && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      const found = actual ? `a clone of ${actual.pool}/${actual.image}@${actual.snapshot}` : 'not a clone';
      throw new CephError('EEXIST', 17, 'rbd_clone3', `RBD image ${this.spec(child)} already exists and is ${found}, not a clone of ${wanted}`);
    }
  }

  /** Releases the io context (the cluster does this on shutdown). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    loadCeph().rados_ioctx_destroy(this.ioctx);
  }
}
