// Importing a raw disk image file into a new RBD image (hiveboot image add … --rbd pool/image).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CephError } from '../../src/ceph/errors.js';
import { dataRuns, importImage, type ImportProgress } from '../../src/ceph/import.js';
import { cephDevAvailable, useTestPool } from '../support/ceph-cluster.js';

const MiB = 1024 * 1024;
const KiB = 1024;

describe('dataRuns', () => {
  it('finds the non-zero runs at 64 KiB granularity', () => {
    const buf = Buffer.alloc(512 * KiB);
    expect(dataRuns(buf)).toEqual([]);
    buf[70 * KiB] = 1; // granule 1
    buf[200 * KiB] = 1; // granule 3
    buf[512 * KiB - 1] = 1; // granule 7 (the last)
    expect(dataRuns(buf)).toEqual([
      [64 * KiB, 128 * KiB],
      [192 * KiB, 256 * KiB],
      [448 * KiB, 512 * KiB],
    ]);
    expect(dataRuns(Buffer.alloc(100 * KiB, 1))).toEqual([[0, 100 * KiB]]); // a short last granule
  });
});

describe.skipIf(!cephDevAvailable())('importImage', () => {
  const t = useTestPool();
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hiveboot-import-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('copies a sparse raw file, reports progress in order, and writes only the data', async () => {
    const size = 21 * MiB + 512; // not a multiple of the chunk size
    const content = Buffer.alloc(size);
    randomBytes(MiB).copy(content, 0);
    randomBytes(100 * KiB).copy(content, 9 * MiB + 512);
    content.fill(0xee, size - 512);
    const file = join(dir, 'golden.raw');
    writeFileSync(file, content);

    const name = t.name('import');
    const progress: ImportProgress[] = [];
    const result = await importImage(t.pool, name, file, { onProgress: (p) => progress.push(p), inFlight: 4 });
    expect(result.size).toBe(size);
    // Whole 64 KiB granules around the data (16 + 2), and the file's last, 512-byte granule.
    expect(result.written).toBe(MiB + 2 * 64 * KiB + 512);

    expect(progress.length).toBeGreaterThanOrEqual(6); // one per 4 MiB chunk
    expect(progress.at(-1)).toEqual({ done: size, total: size, written: result.written });
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.done).toBeGreaterThan(progress[i - 1]!.done);

    const img = await t.pool.openImage(name);
    try {
      expect(img.size).toBe(size);
      expect((await img.read(0, size)).equals(content)).toBe(true);
      // Objects 0 (head), 2 (9 MiB) and 5 (the tail) exist; the rest were never written.
      expect(await img.allocated(0, size)).toEqual([
        { offset: 0, length: 4 * MiB },
        { offset: 8 * MiB, length: 4 * MiB },
        { offset: 20 * MiB, length: MiB + 512 },
      ]);
    } finally {
      await img.close();
    }
  });

  it('refuses a name that exists and leaves that image alone', async () => {
    const name = t.name('import-exists');
    await t.pool.createImage(name, MiB);
    const file = join(dir, 'small.raw');
    writeFileSync(file, Buffer.alloc(2 * MiB, 1));
    await expect(importImage(t.pool, name, file)).rejects.toThrow(CephError);
    const img = await t.pool.openImage(name);
    expect(img.size).toBe(MiB);
    await img.close();
  });

  it('removes the half-made image when the import fails', async () => {
    const name = t.name('import-fails');
    const file = join(dir, 'data.raw');
    writeFileSync(file, randomBytes(9 * MiB));
    await expect(
      importImage(t.pool, name, file, {
        onProgress: () => {
          throw new Error('disk pulled');
        },
      }),
    ).rejects.toThrow('disk pulled');
    expect(await t.pool.imageExists(name)).toBe(false);
  });

  it('a missing file fails before any image is made', async () => {
    const name = t.name('import-nofile');
    await expect(importImage(t.pool, name, join(dir, 'absent.raw'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await t.pool.imageExists(name)).toBe(false);
  });
});
