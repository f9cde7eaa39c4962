// RBD images through src/ceph against a real cluster: life cycle, snapshots, clones, aio, the lock.
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { aioInFlight } from '../../src/ceph/aio.js';
import { CephCluster } from '../../src/ceph/cluster.js';
import type { RbdImage } from '../../src/ceph/image.js';
import { RbdFeature, type CephPool } from '../../src/ceph/pool.js';
import { cephDevAvailable, cephFailure, useTestPool, type DevCeph } from '../support/ceph-cluster.js';

const MiB = 1024 * 1024;

/** The message of the CephError of `code` the promise fails with. */
const rejects = async (promise: Promise<unknown>, code: string): Promise<string> => (await cephFailure(promise, code)).err.message;

describe.skipIf(!cephDevAvailable())('RBD images (src/ceph)', () => {
  const t = useTestPool();
  let ceph: DevCeph;
  let pool: CephPool;
  const fresh = (prefix: string) => t.name(prefix);
  beforeAll(() => {
    ceph = t.ceph;
    pool = t.pool;
  });

  async function withImage<T>(name: string, fn: (img: RbdImage) => Promise<T>, options?: Parameters<CephPool['openImage']>[1]): Promise<T> {
    const img = await pool.openImage(name, options);
    try {
      return await fn(img);
    } finally {
      await img.close();
    }
  }

  describe('life cycle', () => {
    it('creates, opens, stats, resizes, lists and removes an image', async () => {
      const name = fresh('life');
      await pool.createImage(name, 32 * MiB);
      expect(await pool.listImages()).toContain(name);
      expect(await pool.imageExists(name)).toBe(true);
      await withImage(name, async (img) => {
        expect(img.size).toBe(32 * MiB);
        expect(img.spec).toBe(`hiveboot/${name}`);
        expect(img.objectSize).toBe(4 * MiB);
        expect(img.features & RbdFeature.layering).toBeTruthy();
        expect(img.features & RbdFeature.exclusiveLock).toBeTruthy();
        expect(await img.stat()).toEqual({ size: 32 * MiB, objectSize: 4 * MiB, objects: 8, order: 22 });
        expect(await img.parent()).toBeNull();
        await img.resize(48 * MiB);
        expect((await img.stat()).size).toBe(48 * MiB);
        expect(await rejects(img.resize(16 * MiB), 'EINVAL')).toContain('allowShrink');
        await img.resize(16 * MiB, { allowShrink: true });
        expect((await img.stat()).size).toBe(16 * MiB);
      });
      await pool.removeImage(name);
      expect(await pool.imageExists(name)).toBe(false);
    });

    it('creates with explicit features and object size', async () => {
      const name = fresh('opts');
      await pool.createImage(name, 8 * MiB, { order: 20, features: RbdFeature.layering });
      await withImage(name, async (img) => {
        expect(img.objectSize).toBe(MiB);
        expect(img.features).toBe(RbdFeature.layering);
      });
    });

    it('names what is wrong: an existing name, a missing image, a missing snapshot', async () => {
      const name = fresh('errors');
      await pool.createImage(name, 4 * MiB);
      expect(await rejects(pool.createImage(name, 4 * MiB), 'EEXIST')).toBe(`RBD image hiveboot/${name}: already exists (EEXIST)`);
      const t0 = performance.now();
      expect(await rejects(pool.openImage('no-such-image'), 'ENOENT')).toBe('RBD image hiveboot/no-such-image: no such image (ENOENT)');
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(await rejects(pool.openImage(name, { snapshot: 'nope' }), 'ENOENT')).toContain(`hiveboot/${name}@nope`);
      expect(await rejects(pool.removeImage('no-such-image'), 'ENOENT')).toContain('does not exist');
      await pool.removeImage('no-such-image', { missingOk: true });
    });
  });

  describe('snapshots', () => {
    it('creates, protects, lists, unprotects and removes them', async () => {
      const name = fresh('snaps');
      await pool.createImage(name, 8 * MiB);
      await withImage(name, async (img) => {
        await img.createSnapshot('one');
        await img.createSnapshot('two');
        expect(await rejects(img.createSnapshot('one'), 'EEXIST')).toContain('snapshot one already exists');
        expect((await img.listSnapshots()).map((s) => [s.name, s.size])).toEqual([
          ['one', 8 * MiB],
          ['two', 8 * MiB],
        ]);
        expect(await img.isSnapshotProtected('one')).toBe(false);
        await img.protectSnapshot('one');
        expect(await img.isSnapshotProtected('one')).toBe(true);
        await rejects(img.protectSnapshot('one'), 'EBUSY');
        expect(await rejects(img.removeSnapshot('one'), 'EBUSY')).toContain('protected');
        await rejects(img.isSnapshotProtected('nope'), 'ENOENT');
        await img.unprotectSnapshot('one');
        await img.removeSnapshot('one');
        expect((await img.listSnapshots()).map((s) => s.name)).toEqual(['two']);
      });
      expect(await rejects(pool.removeImage(name), 'ENOTEMPTY')).toContain('has snapshots');
    });

    it('lists more snapshots than its first guess holds', async () => {
      const name = fresh('manysnaps');
      await pool.createImage(name, 4 * MiB);
      await withImage(name, async (img) => {
        for (let i = 0; i < 20; i++) await img.createSnapshot(`s${i}`);
        expect((await img.listSnapshots()).map((s) => s.name)).toEqual(Array.from({ length: 20 }, (_, i) => `s${i}`));
      });
    });
  });

  describe('clones', () => {
    it('round trip: the clone starts as the golden snapshot, and its writes never reach the golden image', async () => {
      const golden = fresh('golden');
      const child = fresh('child');
      const goldenData = randomBytes(6 * MiB);
      await pool.createImage(golden, 32 * MiB);
      await withImage(golden, async (img) => {
        await img.write(3 * MiB, goldenData); // spans objects 0, 1 and 2
        await img.flush();
        await img.createSnapshot('base');
        await img.protectSnapshot('base');
      });
      await pool.clone({ image: golden, snapshot: 'base' }, child);

      const mine = randomBytes(MiB);
      await withImage(child, async (img) => {
        expect(img.size).toBe(32 * MiB);
        expect(await img.parent()).toEqual({ pool: 'hiveboot', image: golden, snapshot: 'base' });
        expect((await img.read(3 * MiB, 6 * MiB)).equals(goldenData)).toBe(true);
        await img.write(4 * MiB, mine);
        // Zeroing over golden data must hide it, not uncover it.
        await img.writeZeroes(7 * MiB, MiB);
        const now = await img.read(3 * MiB, 6 * MiB);
        expect(now.subarray(0, MiB).equals(goldenData.subarray(0, MiB))).toBe(true);
        expect(now.subarray(MiB, 2 * MiB).equals(mine)).toBe(true);
        expect(now.subarray(4 * MiB, 5 * MiB).every((b) => b === 0)).toBe(true);
        expect(now.subarray(5 * MiB).equals(goldenData.subarray(5 * MiB))).toBe(true);
      });
      await withImage(golden, async (img) => expect((await img.read(3 * MiB, 6 * MiB)).equals(goldenData)).toBe(true));
      await withImage(golden, async (img) => expect((await img.read(3 * MiB, 6 * MiB)).equals(goldenData)).toBe(true), { snapshot: 'base' });
      await withImage(golden, async (img) => expect(await rejects(img.unprotectSnapshot('base'), 'EBUSY')).toContain('has clones'));
    });

    it('ensureClone is idempotent, protects the snapshot itself, survives a race, and refuses an impostor', async () => {
      const golden = fresh('egolden');
      await pool.createImage(golden, 8 * MiB);
      await withImage(golden, async (img) => {
        await img.write(0, Buffer.alloc(4096, 7));
        await img.createSnapshot('v1'); // not protected: ensureClone must do it
        await img.createSnapshot('v2');
      });
      const parent = { image: golden, snapshot: 'v1' };

      const one = fresh('eclone');
      expect(await pool.ensureClone(parent, one)).toEqual({ created: true });
      expect(await pool.ensureClone(parent, one)).toEqual({ created: false });
      await withImage(golden, async (img) => expect(await img.isSnapshotProtected('v1')).toBe(true));
      await withImage(one, async (img) => expect((await img.read(0, 4096)).equals(Buffer.alloc(4096, 7))).toBe(true));

      // Three callers at once (three provisioning requests for one host): one creates, all succeed.
      const raced = fresh('erace');
      const results = await Promise.all([1, 2, 3].map(() => pool.ensureClone(parent, raced)));
      expect(results.filter((r) => r.created)).toHaveLength(1);

      const plain = fresh('eplain');
      await pool.createImage(plain, 8 * MiB);
      expect(await rejects(pool.ensureClone(parent, plain), 'EEXIST')).toContain('is not a clone');
      expect(await rejects(pool.ensureClone({ image: golden, snapshot: 'v2' }, one), 'EEXIST')).toContain(`a clone of hiveboot/${golden}@v1`);
      expect(await rejects(pool.ensureClone({ image: golden, snapshot: 'v9' }, fresh('enosnap')), 'ENOENT')).toContain('v9');
    });
  });

  describe('asynchronous I/O', () => {
    it('keeps 64 requests in flight and returns the right data to each', async () => {
      const name = fresh('aio');
      await pool.createImage(name, 64 * MiB);
      await withImage(name, async (img) => {
        const chunk = 256 * 1024;
        const data = Array.from({ length: 64 }, () => randomBytes(chunk));
        // Scattered over the image, out of order.
        const offsets = data.map((_, i) => ((i * 37) % 64) * MiB + (i % 3) * 4096);
        const base = aioInFlight();
        const writes = data.map((d, i) => img.write(offsets[i]!, d));
        expect(aioInFlight() - base).toBe(64);
        await Promise.all(writes);
        expect(aioInFlight()).toBe(base);

        const reads = offsets.map((off) => img.read(off, chunk));
        expect(aioInFlight() - base).toBe(64);
        const back = await Promise.all(reads);
        back.forEach((b, i) => expect(b.equals(data[i]!), `request ${i}`).toBe(true));
      });
    });

    it('flushes, zeroes and deallocates, and reports allocation by object', async () => {
      const name = fresh('zero');
      await pool.createImage(name, 32 * MiB);
      await withImage(name, async (img) => {
        expect(await img.allocated(0, 32 * MiB)).toEqual([]);
        const data = randomBytes(12 * MiB);
        await img.write(4 * MiB, data); // objects 1, 2, 3
        await img.flush();
        expect(await img.allocated(0, 32 * MiB)).toEqual([{ offset: 4 * MiB, length: 12 * MiB }]);
        expect(await img.allocated(5 * MiB, MiB)).toEqual([{ offset: 5 * MiB, length: MiB }]); // clipped

        await img.writeZeroes(4 * MiB + 512, 512); // one sector inside object 1
        const head = await img.read(4 * MiB, 1536);
        expect(head.subarray(0, 512).equals(data.subarray(0, 512))).toBe(true);
        expect(head.subarray(512, 1024).every((b) => b === 0)).toBe(true);
        expect(head.subarray(1024).equals(data.subarray(1024, 1536))).toBe(true);

        await img.writeZeroes(8 * MiB, 4 * MiB); // all of object 2: gone
        expect((await img.read(8 * MiB, 4 * MiB)).every((b) => b === 0)).toBe(true);
        expect(await img.allocated(0, 32 * MiB)).toEqual([
          { offset: 4 * MiB, length: 4 * MiB },
          { offset: 12 * MiB, length: 4 * MiB },
        ]);

        await img.discard(12 * MiB, 4 * MiB); // whole object: removed as well
        expect(await img.allocated(0, 32 * MiB)).toEqual([{ offset: 4 * MiB, length: 4 * MiB }]);

        await img.writeSame(16 * MiB, 64 * 1024, Buffer.alloc(512, 0xab));
        expect((await img.read(16 * MiB, 64 * 1024)).equals(Buffer.alloc(64 * 1024, 0xab))).toBe(true);
      });
    });

    it('refuses writes on a read-only image and on a snapshot (EROFS)', async () => {
      const name = fresh('ro');
      await pool.createImage(name, 4 * MiB);
      await withImage(name, (img) => img.createSnapshot('s'));
      await withImage(name, async (img) => expect(await rejects(img.write(0, Buffer.alloc(512)), 'EROFS')).toContain('write of 512 bytes at 0'), { readOnly: true });
      await withImage(name, async (img) => {
        expect(img.readOnly).toBe(true);
        await rejects(img.write(0, Buffer.alloc(512)), 'EROFS');
      }, { snapshot: 's' });
    });

    it('close waits for requests in flight; the closed image refuses more', async () => {
      const name = fresh('close');
      await pool.createImage(name, 8 * MiB);
      const img = await pool.openImage(name);
      const writes = Array.from({ length: 16 }, (_, i) => img.write(i * 256 * 1024, Buffer.alloc(256 * 1024, i)));
      await img.close();
      await Promise.all(writes); // all landed before the close
      await rejects(img.read(0, 512), 'ESHUTDOWN');
      await withImage(name, async (again) => expect((await again.read(15 * 256 * 1024, 512)).equals(Buffer.alloc(512, 15))).toBe(true));
    });
  });

  describe('exclusive lock', () => {
    it('a held lock keeps other clients from writing, but not from reading, until it is let go', async () => {
      const name = fresh('lock');
      await pool.createImage(name, 8 * MiB);
      const owner = await pool.openImage(name);
      await owner.acquireExclusiveLock();
      expect(await owner.isLockOwner()).toBe(true);
      await owner.write(0, Buffer.alloc(4096, 1));

      // Another client (its own connection, as another hiveboot would be).
      const other = await CephCluster.connect(ceph.settings);
      try {
        const otherPool = await other.pool(ceph.pool);
        const intruder = await otherPool.openImage(name);
        const t0 = performance.now();
        const message = await rejects(intruder.acquireExclusiveLock(), 'EROFS');
        expect(performance.now() - t0).toBeLessThan(5000);
        expect(message).toMatch(/exclusive lock held by the client at 127\.0\.0\.1:\d+\/\d+/);
        // librbd's default would take the lock over for this write; the held lock refuses it.
        await rejects(intruder.write(0, Buffer.alloc(4096, 2)), 'EROFS');
        expect((await intruder.read(0, 4096)).equals(Buffer.alloc(4096, 1))).toBe(true);
        expect(await intruder.isLockOwner()).toBe(false);

        // A second open in the same process is no different.
        const twin = await pool.openImage(name);
        await rejects(twin.acquireExclusiveLock(), 'EROFS');
        await twin.close();

        await owner.close(); // releases the lock
        await intruder.acquireExclusiveLock();
        await intruder.write(0, Buffer.alloc(4096, 3));
        await intruder.close();
      } finally {
        await other.shutdown();
      }
      await withImage(name, async (img) => expect((await img.read(0, 4096)).equals(Buffer.alloc(4096, 3))).toBe(true));
    });

    it('an image without the exclusive-lock feature cannot be locked', async () => {
      const name = fresh('nolock');
      await pool.createImage(name, 4 * MiB, { features: RbdFeature.layering });
      await withImage(name, async (img) => expect(await rejects(img.acquireExclusiveLock(), 'EINVAL')).toContain('exclusive-lock feature'));
    });
  });
});
