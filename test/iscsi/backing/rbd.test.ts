// The `rbd` backing against a real cluster (scripts/ceph-dev-cluster.sh): the BlockDevice contract,
// and one writer per image, also across processes and after a crash.
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { CephCluster, sharedClusterCount } from '../../../src/ceph/cluster.js';
import { CephError } from '../../../src/ceph/errors.js';
import { RbdFeature, type CephPool } from '../../../src/ceph/pool.js';
import { openBacking, RbdBacking, type BackingSpec } from '../../../src/iscsi/backing/index.js';
import { cephDevAvailable, useTestPool, type DevCeph } from '../../support/ceph-cluster.js';
import { spawnTestTarget } from '../../support/iscsi-target.js';
import { rejectsWith } from './helpers.js';

const MiB = 1024 * 1024;

describe.skipIf(!cephDevAvailable())('RbdBacking', () => {
  const t = useTestPool();
  let ceph: DevCeph;
  let pool: CephPool;
  beforeAll(() => {
    ceph = t.ceph;
    pool = t.pool;
  });

  async function newImage(prefix: string, size = 32 * MiB, features?: number): Promise<string> {
    const name = t.name(prefix);
    await pool.createImage(name, size, features === undefined ? {} : { features });
    return name;
  }
  const spec = (image: string, extra: Partial<Extract<BackingSpec, { kind: 'rbd' }>> = {}): Extract<BackingSpec, { kind: 'rbd' }> => ({
    kind: 'rbd',
    cluster: ceph.settings,
    pool: ceph.pool,
    image,
    ...extra,
  });

  it('opens from its spec as a thin 512-byte-block device', async () => {
    const dev = await openBacking(spec(await newImage('open')));
    expect(dev).toBeInstanceOf(RbdBacking);
    expect(dev.size).toBe(32 * MiB);
    expect(dev.blockSize).toBe(512);
    expect(dev.thin).toBe(true);
    expect(dev.readOnly).toBe(false);
    await dev.close();
  });

  it('reads what was written; writes with FUA and flushes are on the OSDs (another client sees them)', async () => {
    const name = await newImage('rw');
    const dev = await RbdBacking.open(spec(name));
    const a = randomBytes(MiB);
    const b = randomBytes(64 * 1024);
    await dev.write(3 * MiB + 512, a);
    await dev.write(20 * MiB, b, { fua: true });
    expect((await dev.read(3 * MiB + 512, MiB)).equals(a)).toBe(true);
    await dev.flush();

    // A separate connection, as another gateway would be: no cache of ours in between.
    const other = await CephCluster.connect(ceph.settings);
    try {
      const img = await (await other.pool(ceph.pool)).openImage(name, { readOnly: true });
      expect((await img.read(20 * MiB, b.length)).equals(b)).toBe(true);
      expect((await img.read(3 * MiB + 512, MiB)).equals(a)).toBe(true);
      await img.close();
    } finally {
      await other.shutdown();
    }
    await dev.close();
  });

  it('overlapping writes in flight take effect in call order', async () => {
    const dev = await RbdBacking.open(spec(await newImage('order')));
    const writes = Array.from({ length: 32 }, (_, i) => dev.write(MiB, Buffer.alloc(MiB, i)));
    const reads = [dev.read(MiB, MiB)];
    await Promise.all([...writes, ...reads]);
    expect((await reads[0]!).equals(Buffer.alloc(MiB, 31))).toBe(true);
    await dev.close();
  });

  it('discard reads back zeroes and shows as unmapped when it covers whole objects', async () => {
    const dev = await RbdBacking.open(spec(await newImage('discard')));
    expect(await dev.extents(0, dev.size)).toEqual([{ offset: 0, length: 32 * MiB, mapped: false }]);
    const data = randomBytes(12 * MiB);
    await dev.write(4 * MiB, data);
    expect(await dev.extents(0, dev.size)).toEqual([
      { offset: 0, length: 4 * MiB, mapped: false },
      { offset: 4 * MiB, length: 12 * MiB, mapped: true },
      { offset: 16 * MiB, length: 16 * MiB, mapped: false },
    ]);

    await dev.discard(5 * MiB, 512); // one sector: zeroed, the object stays
    const around = await dev.read(5 * MiB - 512, 1536);
    expect(around.subarray(0, 512).equals(data.subarray(MiB - 512, MiB))).toBe(true);
    expect(around.subarray(512, 1024).every((x) => x === 0)).toBe(true);
    expect(around.subarray(1024).equals(data.subarray(MiB + 512, MiB + 1024))).toBe(true);

    await dev.discard(8 * MiB, 4 * MiB); // object 2: gone
    expect((await dev.read(8 * MiB, 4 * MiB)).every((x) => x === 0)).toBe(true);
    // Extents start exactly where asked and cover the range.
    expect(await dev.extents(6 * MiB, 10 * MiB)).toEqual([
      { offset: 6 * MiB, length: 2 * MiB, mapped: true },
      { offset: 8 * MiB, length: 4 * MiB, mapped: false },
      { offset: 12 * MiB, length: 4 * MiB, mapped: true },
    ]);
    await dev.close();
  });

  it('checks ranges', async () => {
    const dev = await RbdBacking.open(spec(await newImage('range', 4 * MiB)));
    await rejectsWith(dev.read(100, 512), 'OUT_OF_RANGE');
    await rejectsWith(dev.write(4 * MiB, Buffer.alloc(512)), 'OUT_OF_RANGE');
    await rejectsWith(dev.discard(0, 4 * MiB + 512), 'OUT_OF_RANGE');
    await dev.close();
  });

  it('read-only: refuses writes and discards, takes no lock, and can serve a snapshot', async () => {
    const name = await newImage('ro');
    const writer = await RbdBacking.open(spec(name));
    await writer.write(0, Buffer.alloc(4096, 1));
    const img = await pool.openImage(name);
    await img.createSnapshot('s1');
    await img.close();
    await writer.write(0, Buffer.alloc(4096, 2));

    const ro = await RbdBacking.open(spec(name, { readOnly: true })); // beside the writer
    expect(ro.readOnly).toBe(true);
    await rejectsWith(ro.write(0, Buffer.alloc(512)), 'READ_ONLY');
    await rejectsWith(ro.discard(0, 512), 'READ_ONLY');
    expect((await ro.read(0, 4096)).equals(Buffer.alloc(4096, 2))).toBe(true);
    const snap = await RbdBacking.open(spec(name, { snapshot: 's1' }));
    expect(snap.readOnly).toBe(true);
    expect((await snap.read(0, 4096)).equals(Buffer.alloc(4096, 1))).toBe(true);
    await Promise.all([ro.close(), snap.close(), writer.close()]);
  });

  it('refuses a second writer (IN_USE, naming the holder) until the first closes', async () => {
    const name = await newImage('twowriters');
    const first = await RbdBacking.open(spec(name));
    const t0 = performance.now();
    const message = await rejectsWith(RbdBacking.open(spec(name)), 'IN_USE');
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(message).toContain(`RBD image hiveboot/${name}`);
    expect(message).toMatch(/exclusive lock held by the client at 127\.0\.0\.1/);
    await first.write(0, Buffer.alloc(512, 1)); // the holder is unaffected
    await first.close();
    const second = await RbdBacking.open(spec(name));
    await second.write(0, Buffer.alloc(512, 2));
    await second.close();
  });

  it('refuses writing an image without the exclusive-lock feature, but serves it read-only', async () => {
    const name = await newImage('nolock', 4 * MiB, RbdFeature.layering);
    expect(await rejectsWith(RbdBacking.open(spec(name)), 'BAD_FORMAT')).toContain('exclusive-lock');
    const ro = await RbdBacking.open(spec(name, { readOnly: true }));
    await ro.close();
  });

  it('passes on Ceph errors that name the missing image or pool', async () => {
    await expect(RbdBacking.open(spec('no-such-image'))).rejects.toThrow('RBD image hiveboot/no-such-image: no such image (ENOENT)');
    await expect(RbdBacking.open({ ...spec('x'), pool: 'no-such-pool' })).rejects.toThrow(CephError);
  });

  it('shares one connection between LUNs and lets it go with the last', async () => {
    const before = sharedClusterCount();
    const settings = { ...ceph.settings, timeoutSeconds: 7 }; // a key of its own, apart from the suite's lease
    const a = await RbdBacking.open({ ...spec(await newImage('share-a', 4 * MiB)), cluster: settings });
    const b = await RbdBacking.open({ ...spec(await newImage('share-b', 4 * MiB)), cluster: settings });
    expect(sharedClusterCount()).toBe(before + 1);
    await a.close();
    expect(sharedClusterCount()).toBe(before + 1);
    await b.close();
    expect(sharedClusterCount()).toBe(before);
  });

  it('close waits for writes in flight; later calls fail CLOSED', async () => {
    const name = await newImage('close');
    const dev = await RbdBacking.open(spec(name));
    const writes = Array.from({ length: 16 }, (_, i) => dev.write(i * MiB, Buffer.alloc(MiB, i + 1)));
    await dev.close();
    await Promise.all(writes);
    await rejectsWith(dev.read(0, 512), 'CLOSED');
    const again = await RbdBacking.open(spec(name, { readOnly: true }));
    expect((await again.read(15 * MiB, 512)).equals(Buffer.alloc(512, 16))).toBe(true);
    await again.close();
  });

  it('another process: refused while it serves the image, EROFS to a client that writes without the lock, usable after it is killed', async () => {
    const name = await newImage('crash');
    const child = await spawnTestTarget({ backing: spec(name), targets: [{ name: 'iqn.2026-01.io.hiveboot:rbd-crash', acl: [] }] });
    try {
      await rejectsWith(RbdBacking.open(spec(name)), 'IN_USE');
      // A client that does not ask for the lock (librbd's default: take it over on the first write).
      const img = await pool.openImage(name);
      const err = await img.write(0, Buffer.alloc(512, 9)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CephError);
      expect((err as CephError).code).toBe('EROFS');
      await img.close();
    } finally {
      await child.kill('SIGKILL');
    }
    // The dead process's lock goes once its watch expires (osd_client_watch_timeout, 30 s): open waits.
    const t0 = performance.now();
    const dev = await RbdBacking.open(spec(name));
    const waited = performance.now() - t0;
    expect(waited).toBeLessThan(45_000);
    await dev.write(0, Buffer.alloc(512, 1));
    await dev.close();
    console.log(`reopened after the holder's SIGKILL in ${(waited / 1000).toFixed(1)} s`);
  }, 90_000);
});

