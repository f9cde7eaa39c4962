import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, openSync, readFileSync, statSync, truncateSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCowOverlay, deleteCowOverlay, openCowOverlay, readCowOverlayInfo } from '../../../src/iscsi/backing/cow.js';
import { openBacking } from '../../../src/iscsi/backing/index.js';
import { randomBytesSeeded, rejectsWith, sha256File, tempDir, writeGolden } from './helpers.js';

const KiB = 1024;
const MiB = 1 << 20;
const GiB = 1 << 30;

function eopnotsupp(): Promise<void> {
  const err: NodeJS.ErrnoException = new Error('fallocate: Operation not supported');
  err.code = 'EOPNOTSUPP';
  return Promise.reject(err);
}

/** A golden image of `size` random bytes and a fresh overlay over it. */
async function setup(size = 8 * MiB, seed = 1): Promise<{ dir: string; golden: string; overlay: string; content: Buffer }> {
  const dir = tempDir();
  const golden = join(dir, 'golden.img');
  const content = writeGolden(golden, size, seed);
  const overlay = join(dir, 'host.cow');
  await createCowOverlay(golden, overlay);
  return { dir, golden, overlay, content };
}

describe('cow overlay: cloning', () => {
  it('clones a 20 GiB golden image in well under 100 ms, as a header and a sparse file', async () => {
    const dir = tempDir();
    const golden = join(dir, 'golden.img');
    // Sparse 20 GiB with real data at the start, the middle and the end.
    writeFileSync(golden, '');
    truncateSync(golden, 20 * GiB);
    const fd = openSync(golden, 'r+');
    writeSync(fd, Buffer.alloc(MiB, 0xaa), 0, MiB, 0);
    writeSync(fd, Buffer.alloc(MiB, 0xbb), 0, MiB, 10 * GiB);
    writeSync(fd, Buffer.alloc(MiB, 0xcc), 0, MiB, 20 * GiB - MiB);
    closeSync(fd);
    const overlay = join(dir, 'host.cow');

    const t0 = performance.now();
    const info = await createCowOverlay(golden, overlay);
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeLessThan(100);

    expect(info.virtualSize).toBe(20 * GiB);
    expect(info.clusterSize).toBe(4096);
    expect(info.goldenPath).toBe(golden);
    // Header + nothing else allocated: a few blocks, not 1.25 MiB of map or any data.
    expect(statSync(overlay).blocks * 512).toBeLessThanOrEqual(64 * KiB);
    expect(await readCowOverlayInfo(overlay)).toEqual(info);

    const dev = await openCowOverlay(golden, overlay);
    expect((await dev.read(10 * GiB, MiB)).equals(Buffer.alloc(MiB, 0xbb))).toBe(true);
    expect((await dev.read(20 * GiB - MiB, MiB)).equals(Buffer.alloc(MiB, 0xcc))).toBe(true);
    expect((await dev.read(5 * GiB, 4096)).equals(Buffer.alloc(4096))).toBe(true);
    // The golden image's own holes are reported unmapped, its data mapped.
    expect(await dev.extents(0, 20 * GiB)).toEqual([
      { offset: 0, length: MiB, mapped: true },
      { offset: MiB, length: 10 * GiB - MiB, mapped: false },
      { offset: 10 * GiB, length: MiB, mapped: true },
      { offset: 10 * GiB + MiB, length: 10 * GiB - 2 * MiB, mapped: false },
      { offset: 20 * GiB - MiB, length: MiB, mapped: true },
    ]);
    await dev.close();
  });

  it('refuses to create over an existing overlay, and cleans up after itself', async () => {
    const { dir, golden, overlay } = await setup(MiB);
    await rejectsWith(createCowOverlay(golden, overlay), 'EXISTS');
    const names = spawnSync('ls', [dir], { encoding: 'utf8' }).stdout.trim().split('\n').sort();
    expect(names).toEqual(['golden.img', 'host.cow']);
    await rejectsWith(createCowOverlay(golden, join(dir, 'small.cow'), { size: 512 }), 'OUT_OF_RANGE');
    await rejectsWith(createCowOverlay(golden, join(dir, 'c.cow'), { clusterSize: 3000 }), 'OUT_OF_RANGE');
  });
});

describe('cow overlay: reads and writes', () => {
  it('reads the golden image until written, then the overlay; partial-cluster writes keep the golden bytes around them', async () => {
    const { golden, overlay, content } = await setup();
    const dev = await openCowOverlay(golden, overlay);
    expect((await dev.read(0, 8 * MiB)).equals(content)).toBe(true);

    const model = Buffer.from(content);
    const put = async (offset: number, data: Buffer): Promise<void> => {
      await dev.write(offset, data);
      data.copy(model, offset);
    };
    await put(512, randomBytesSeeded(10, 512)); // inside one cluster: copy-up of head and tail
    await put(4096 * 3 - 1024, randomBytesSeeded(11, 2048)); // straddles two clusters
    await put(MiB, randomBytesSeeded(12, MiB)); // whole clusters: no copy-up
    await put(3 * MiB + 512, randomBytesSeeded(13, MiB)); // head and tail partial, middle whole
    expect((await dev.read(0, 8 * MiB)).equals(model)).toBe(true);
    await dev.close();
    expect(readFileSync(golden).equals(content)).toBe(true);

    const again = await openCowOverlay(golden, overlay);
    expect((await again.read(0, 8 * MiB)).equals(model)).toBe(true);
    await again.close();
  });

  it('reads a 1 MiB range alternating golden, overlay and zero clusters correctly, in few or many pieces', async () => {
    const { golden, overlay, content } = await setup(4 * MiB);
    const dev = await openCowOverlay(golden, overlay);
    const model = Buffer.from(content);
    // Every third cluster written, every fifth discarded: dozens of pieces in one 1 MiB read.
    for (let c = 0; c < 256; c++) {
      const at = MiB + c * 4096;
      if (c % 5 === 0) {
        await dev.discard(at, 4096);
        model.fill(0, at, at + 4096);
      } else if (c % 3 === 0) {
        const data = randomBytesSeeded(100 + c, 4096);
        await dev.write(at, data);
        data.copy(model, at);
      }
    }
    expect((await dev.read(MiB, MiB)).equals(model.subarray(MiB, 2 * MiB))).toBe(true);
    for (const [o, l] of [
      [MiB + 4096 * 2, 4096 * 3],
      [MiB - 4096, 4096 * 3],
      [MiB + 512, 512],
      [0, 4 * MiB],
    ] as const) {
      expect((await dev.read(o, l)).equals(model.subarray(o, o + l)), `${o}+${l}`).toBe(true);
    }
    await dev.close();
  });

  it('serves a disk larger than its golden image (the part past the image reads as zeroes)', async () => {
    const dir = tempDir();
    const golden = join(dir, 'golden.img');
    const content = writeGolden(golden, MiB + 512, 5); // also not a whole number of clusters
    const overlay = join(dir, 'host.cow');
    await createCowOverlay(golden, overlay, { size: 4 * MiB });
    const dev = await openCowOverlay(golden, overlay);
    expect(dev.size).toBe(4 * MiB);
    const all = await dev.read(0, 4 * MiB);
    expect(all.subarray(0, MiB + 512).equals(content)).toBe(true);
    expect(all.subarray(MiB + 512).equals(Buffer.alloc(3 * MiB - 512))).toBe(true);
    await dev.write(MiB + 1024, Buffer.alloc(512, 9)); // copy-up of the cluster the image ends in
    const around = await dev.read(MiB, 4096);
    expect(around.subarray(0, 512).equals(content.subarray(MiB))).toBe(true);
    expect(around.subarray(512, 1024).equals(Buffer.alloc(512))).toBe(true);
    expect(around.subarray(1024, 1536).equals(Buffer.alloc(512, 9))).toBe(true);
    await dev.write(4 * MiB - 512, Buffer.alloc(512, 7));
    expect((await dev.read(4 * MiB - 1024, 1024)).equals(Buffer.concat([Buffer.alloc(512), Buffer.alloc(512, 7)]))).toBe(true);
    await dev.close();
  });

  it('works with larger clusters (64 KiB) too', async () => {
    const dir = tempDir();
    const golden = join(dir, 'golden.img');
    const content = writeGolden(golden, 2 * MiB, 6);
    const overlay = join(dir, 'host.cow');
    await createCowOverlay(golden, overlay, { clusterSize: 64 * KiB });
    const dev = await openCowOverlay(golden, overlay);
    const model = Buffer.from(content);
    const data = randomBytesSeeded(7, 4096);
    await dev.write(70 * KiB, data);
    data.copy(model, 70 * KiB);
    await dev.discard(200 * KiB, 100 * KiB);
    model.fill(0, 200 * KiB, 300 * KiB);
    expect((await dev.read(0, 2 * MiB)).equals(model)).toBe(true);
    await dev.close();
    const again = await openCowOverlay(golden, overlay);
    expect((await again.read(0, 2 * MiB)).equals(model)).toBe(true);
    await again.close();
  });

  it('leaves the golden image byte-identical after heavy writing and discarding', async () => {
    const { golden, overlay } = await setup(16 * MiB);
    const before = sha256File(golden);
    const mtime = statSync(golden).mtimeMs;
    const dev = await openCowOverlay(golden, overlay);
    const ops: Promise<void>[] = [];
    for (let i = 0; i < 400; i++) {
      const at = ((i * 7919) % 32000) * 512;
      if (i % 9 === 0) ops.push(dev.discard(at, 64 * KiB));
      else ops.push(dev.write(at, randomBytesSeeded(i, (1 + (i % 64)) * 512), { fua: i % 50 === 0 }));
    }
    await Promise.all(ops);
    await dev.write(0, Buffer.alloc(16 * MiB, 0xee));
    await dev.flush();
    await dev.close();
    expect(sha256File(golden)).toBe(before);
    expect(statSync(golden).mtimeMs).toBe(mtime);
  });
});

describe('cow overlay: discard and allocation', () => {
  it('makes discarded ranges read as zeroes, frees the overlay blocks and reports them unmapped', async () => {
    const { golden, overlay, content } = await setup(8 * MiB);
    const dev = await openCowOverlay(golden, overlay);
    expect(dev.thin).toBe(true);
    await dev.write(0, randomBytesSeeded(20, 4 * MiB));
    await dev.flush();
    const used = statSync(overlay).blocks;
    expect(used * 512).toBeGreaterThanOrEqual(4 * MiB);

    await dev.discard(MiB, 2 * MiB); // overlay clusters: punched
    await dev.discard(6 * MiB, MiB); // golden clusters: only the map changes
    await dev.discard(4 * MiB + 512, 1024); // inside one cluster: zeroes written (a copy-up)
    expect(statSync(overlay).blocks).toBeLessThanOrEqual(used - (2 * MiB) / 512 + 64);
    expect((await dev.read(MiB, 2 * MiB)).equals(Buffer.alloc(2 * MiB))).toBe(true);
    expect((await dev.read(6 * MiB, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
    const partial = await dev.read(4 * MiB, 4096);
    expect(partial.subarray(0, 512).equals(content.subarray(4 * MiB, 4 * MiB + 512))).toBe(true);
    expect(partial.subarray(512, 1536).equals(Buffer.alloc(1024))).toBe(true);
    expect(partial.subarray(1536).equals(content.subarray(4 * MiB + 1536, 4 * MiB + 4096))).toBe(true);

    // Overlay [0,1), discarded [1,3), overlay [3,4) + the copied-up cluster + golden data up to 6, discarded [6,7), golden [7,8).
    expect(await dev.extents(0, 8 * MiB)).toEqual([
      { offset: 0, length: MiB, mapped: true },
      { offset: MiB, length: 2 * MiB, mapped: false },
      { offset: 3 * MiB, length: 3 * MiB, mapped: true },
      { offset: 6 * MiB, length: MiB, mapped: false },
      { offset: 7 * MiB, length: MiB, mapped: true },
    ]);
    expect(await dev.extents(MiB + 4096, 4096)).toEqual([{ offset: MiB + 4096, length: 4096, mapped: false }]);

    // A partial write into a discarded cluster fills around it with zeroes, not with the golden image.
    await dev.write(MiB + 1024, Buffer.alloc(512, 5));
    const c = await dev.read(MiB, 4096);
    expect(c.equals(Buffer.concat([Buffer.alloc(1024), Buffer.alloc(512, 5), Buffer.alloc(4096 - 1536)]))).toBe(true);
    await dev.close();

    const again = await openCowOverlay(golden, overlay);
    expect((await again.read(6 * MiB, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
    expect((await again.read(MiB, 4096)).equals(c)).toBe(true);
    await again.close();
  });

  it('still reads discarded ranges as zeroes where holes cannot be punched (thin=false)', async () => {
    const { golden, overlay } = await setup(2 * MiB);
    const dev = await openCowOverlay(golden, overlay, { punchHole: eopnotsupp });
    expect(dev.thin).toBe(false);
    await dev.write(0, randomBytesSeeded(30, MiB));
    await dev.discard(0, MiB);
    expect((await dev.read(0, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
    await dev.close();
  });

  it('resolves a write only once the map records it, also a write into a cluster another write is allocating', async () => {
    const { golden, overlay } = await setup(MiB);
    const dev = await openCowOverlay(golden, overlay);
    const a = dev.write(0, Buffer.alloc(4096, 1));
    const b = dev.write(512, Buffer.alloc(512, 2)); // runs after a (same cluster), finds it Overlay in memory
    await b;
    expect(dev.stats.mapBatches).toBe(1);
    await a;
    await dev.write(8192, Buffer.alloc(512, 3));
    expect(dev.stats.mapBatches).toBe(2);
    await dev.close();
  });

  it('records allocations with few map writes and, when ordered, an fdatasync before them', async () => {
    const { golden, overlay } = await setup(8 * MiB);
    const ordered = await openCowOverlay(golden, overlay);
    await Promise.all(Array.from({ length: 64 }, (_, i) => ordered.write(i * 64 * KiB, Buffer.alloc(4096, i))));
    const s = ordered.stats;
    expect(s.mapBatches).toBeGreaterThanOrEqual(1);
    expect(s.mapBatches).toBeLessThan(64); // group commit
    expect(s.syncs).toBe(s.mapBatches); // one fdatasync ahead of each batch of allocations
    // Overwriting allocated clusters needs neither.
    await Promise.all(Array.from({ length: 64 }, (_, i) => ordered.write(i * 64 * KiB, Buffer.alloc(4096, i + 1))));
    expect(ordered.stats).toEqual(s);
    await ordered.close();

    const relaxed = await openCowOverlay(golden, overlay, { ordered: false });
    await relaxed.write(5 * MiB, Buffer.alloc(4096, 1));
    expect(relaxed.stats.syncs).toBe(0);
    expect(relaxed.stats.mapBatches).toBe(1);
    await relaxed.write(5 * MiB + 8192, Buffer.alloc(4096, 1), { fua: true });
    expect(relaxed.stats.syncs).toBe(1);
    await relaxed.close();
  });
});

describe('cow overlay: identity and format checks', () => {
  it('refuses to open against a golden image that changed, and says what changed', async () => {
    const { dir, golden, overlay, content } = await setup(4 * MiB);
    const st = statSync(golden);

    // Changed in place (mtime moves).
    const fd = openSync(golden, 'r+');
    writeSync(fd, Buffer.from([content[2 * MiB + 7]! ^ 1]), 0, 1, 2 * MiB + 7);
    closeSync(fd);
    expect(await rejectsWith(openCowOverlay(golden, overlay), 'GOLDEN_MISMATCH')).toMatch(/modified at/);

    // Changed where the fingerprint samples, with the timestamp put back.
    writeFileSync(golden, Buffer.concat([Buffer.from([content[0]! ^ 1]), content.subarray(1)]));
    utimesSync(golden, st.atime, st.mtime);
    expect(await rejectsWith(openCowOverlay(golden, overlay), 'GOLDEN_MISMATCH')).toMatch(/content differs/);

    // Another size.
    writeFileSync(golden, content.subarray(0, 2 * MiB));
    expect(await rejectsWith(openCowOverlay(golden, overlay), 'GOLDEN_MISMATCH')).toMatch(/size is 2097152 bytes, was 4194304/);

    // A different image altogether.
    const other = join(dir, 'other.img');
    writeGolden(other, 4 * MiB, 99);
    await rejectsWith(openCowOverlay(other, overlay), 'GOLDEN_MISMATCH');

    // The right bytes copied without their timestamp: refused, with the command that fixes it.
    writeFileSync(golden, content);
    const message = await rejectsWith(openCowOverlay(golden, overlay), 'GOLDEN_MISMATCH');
    const touch = /(touch -m -d @\d+\.\d{9}) /.exec(message);
    expect(touch, message).not.toBeNull();
    const r = spawnSync('sh', ['-c', `${touch![1]} '${golden}'`]);
    expect(r.status).toBe(0);
    const dev = await openCowOverlay(golden, overlay);
    expect((await dev.read(0, 4 * MiB)).equals(content)).toBe(true);
    await dev.close();

    // Moved elsewhere with its timestamps (cp -p): still the same image.
    const moved = join(dir, 'moved.img');
    copyFileSync(golden, moved);
    const st2 = statSync(golden, { bigint: true });
    spawnSync('touch', ['-m', '-d', `@${st2.mtimeNs / 1_000_000_000n}.${(st2.mtimeNs % 1_000_000_000n).toString().padStart(9, '0')}`, moved]);
    const dev2 = await openBacking({ kind: 'cow', golden: moved, overlay });
    await dev2.close();
  });

  it('refuses damaged or foreign overlay files', async () => {
    const { dir, golden, overlay } = await setup(MiB);
    const header = readFileSync(overlay).subarray(0, 4096);
    const variant = (name: string, mutate: (b: Buffer) => void): string => {
      const path = join(dir, name);
      copyFileSync(overlay, path);
      const b = Buffer.from(header);
      mutate(b);
      const fd = openSync(path, 'r+');
      writeSync(fd, b, 0, b.length, 0);
      closeSync(fd);
      return path;
    };
    expect(await rejectsWith(openCowOverlay(golden, variant('magic.cow', (b) => b.write('QFI\xfb', 0, 'latin1'))), 'BAD_FORMAT')).toMatch(/magic/);
    expect(await rejectsWith(openCowOverlay(golden, variant('ver.cow', (b) => b.writeUInt32LE(2, 8))), 'BAD_FORMAT')).toMatch(/version 2/);
    expect(await rejectsWith(openCowOverlay(golden, variant('sum.cow', (b) => (b[30] = 1))), 'BAD_FORMAT')).toMatch(/checksum/);
    const truncated = join(dir, 'short.cow');
    copyFileSync(overlay, truncated);
    truncateSync(truncated, 8192);
    expect(await rejectsWith(openCowOverlay(golden, truncated), 'BAD_FORMAT')).toMatch(/truncated/);
    const badMap = join(dir, 'map.cow');
    copyFileSync(overlay, badMap);
    const fd = openSync(badMap, 'r+');
    writeSync(fd, Buffer.from([0xff]), 0, 1, 4096 + 3);
    closeSync(fd);
    expect(await rejectsWith(openCowOverlay(golden, badMap), 'BAD_FORMAT')).toMatch(/invalid map entry/);
  });

  it('allows one writer at a time, opens read-only, and deletes only overlays that are not in use', async () => {
    const { dir, golden, overlay } = await setup(MiB);
    const dev = await openCowOverlay(golden, overlay);
    await rejectsWith(openCowOverlay(golden, overlay), 'IN_USE');
    await rejectsWith(deleteCowOverlay(overlay), 'IN_USE');
    await dev.write(0, Buffer.alloc(4096, 1));
    await dev.close();

    const ro = await openCowOverlay(golden, overlay, { readOnly: true });
    expect(ro.readOnly).toBe(true);
    expect((await ro.read(0, 512)).equals(Buffer.alloc(512, 1))).toBe(true);
    await rejectsWith(ro.write(0, Buffer.alloc(512)), 'READ_ONLY');
    await rejectsWith(ro.discard(0, 512), 'READ_ONLY');
    await ro.close();

    await rejectsWith(deleteCowOverlay(golden), 'BAD_FORMAT');
    await deleteCowOverlay(overlay);
    expect(() => statSync(overlay)).toThrow(/ENOENT/);
    expect(statSync(join(dir, 'golden.img')).isFile()).toBe(true);
  });
});
