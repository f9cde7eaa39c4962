import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileBacking } from '../../../src/iscsi/backing/file.js';
import { openBacking } from '../../../src/iscsi/backing/index.js';
import { randomBytesSeeded, rejectsWith, tempDir } from './helpers.js';

const MiB = 1 << 20;
const GiB = 1 << 30;

function eopnotsupp(): Promise<void> {
  const err: NodeJS.ErrnoException = new Error('fallocate: Operation not supported');
  err.code = 'EOPNOTSUPP';
  return Promise.reject(err);
}

describe('file backing', () => {
  it('creates a sparse file of the given size that reads as zeroes and uses no space', async () => {
    const path = join(tempDir(), 'disk.img');
    const dev = await FileBacking.open({ path, size: 8 * GiB });
    expect(dev.size).toBe(8 * GiB);
    expect(dev.blockSize).toBe(512);
    expect(dev.readOnly).toBe(false);
    expect(dev.thin).toBe(true);
    expect(statSync(path).size).toBe(8 * GiB);
    expect(statSync(path).blocks).toBe(0);
    expect((await dev.read(5 * GiB, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
    expect(await dev.extents(0, 8 * GiB)).toEqual([{ offset: 0, length: 8 * GiB, mapped: false }]);
    await dev.close();
  });

  it('reads back what was written, at offsets past 4 GiB too, and after reopening', async () => {
    const path = join(tempDir(), 'disk.img');
    const dev = await FileBacking.open({ path, size: 8 * GiB });
    const a = randomBytesSeeded(1, MiB);
    const b = randomBytesSeeded(2, 3 * 512);
    await dev.write(6 * GiB + 4096, a);
    await dev.write(512, b, { fua: true });
    expect((await dev.read(6 * GiB + 4096, MiB)).equals(a)).toBe(true);
    expect((await dev.read(0, 4096)).equals(Buffer.concat([Buffer.alloc(512), b, Buffer.alloc(4096 - 4 * 512)]))).toBe(true);
    await dev.close();
    const again = await openBacking({ kind: 'file', path });
    expect(again.size).toBe(8 * GiB);
    expect((await again.read(6 * GiB + 4096, MiB)).equals(a)).toBe(true);
    await again.close();
  });

  it('punches a hole on discard: the blocks are freed, the range reads as zeroes and is reported unmapped', async () => {
    const path = join(tempDir(), 'disk.img');
    const dev = await FileBacking.open({ path, size: 64 * MiB });
    await dev.write(0, randomBytesSeeded(3, 8 * MiB));
    await dev.flush();
    const before = statSync(path).blocks;
    expect(before).toBeGreaterThanOrEqual((8 * MiB) / 512);
    await dev.discard(2 * MiB, 4 * MiB);
    expect(statSync(path).blocks).toBeLessThanOrEqual(before - (4 * MiB) / 512);
    expect((await dev.read(2 * MiB, 4 * MiB)).equals(Buffer.alloc(4 * MiB))).toBe(true);
    expect(await dev.extents(0, 64 * MiB)).toEqual([
      { offset: 0, length: 2 * MiB, mapped: true },
      { offset: 2 * MiB, length: 4 * MiB, mapped: false },
      { offset: 6 * MiB, length: 2 * MiB, mapped: true },
      { offset: 8 * MiB, length: 56 * MiB, mapped: false },
    ]);
    // A discard smaller than a file system block still reads back as zeroes (the fs zeroes it in place).
    await dev.discard(512, 1024);
    const head = await dev.read(0, 4096);
    expect(head.subarray(512, 1536).equals(Buffer.alloc(1024))).toBe(true);
    expect(head.subarray(0, 512).equals(randomBytesSeeded(3, 512))).toBe(true);
    // Extents from an offset inside a hole start there.
    expect((await dev.extents(3 * MiB, MiB))[0]).toEqual({ offset: 3 * MiB, length: MiB, mapped: false });
    await dev.close();
  });

  it('falls back to writing zeroes, and reports thin=false, where holes cannot be punched', async () => {
    const path = join(tempDir(), 'disk.img');
    const dev = await FileBacking.open({ path, size: 16 * MiB, punchHole: eopnotsupp });
    expect(dev.thin).toBe(false);
    await dev.write(0, randomBytesSeeded(4, 4 * MiB));
    await dev.discard(MiB, 2 * MiB);
    expect((await dev.read(MiB, 2 * MiB)).equals(Buffer.alloc(2 * MiB))).toBe(true);
    expect((await dev.read(0, MiB)).equals(randomBytesSeeded(4, MiB))).toBe(true);
    await dev.close();

    // The file system refusing only later (found out at the first discard) switches the same way.
    let calls = 0;
    const late = await FileBacking.open({ path, punchHole: () => (calls++ === 0 ? Promise.resolve() : eopnotsupp()) });
    expect(late.thin).toBe(true);
    await late.discard(0, MiB);
    expect(late.thin).toBe(false);
    expect((await late.read(0, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
    await late.close();
  });

  it('makes FUA writes and flushes durable with group-committed fdatasyncs', async () => {
    const dev = await FileBacking.open({ path: join(tempDir(), 'disk.img'), size: 16 * MiB });
    await dev.write(0, Buffer.alloc(4096, 1), { fua: true });
    expect(dev.syncCount).toBe(1);
    await dev.write(4096, Buffer.alloc(4096, 2));
    expect(dev.syncCount).toBe(1);
    await Promise.all(Array.from({ length: 32 }, (_, i) => dev.write(i * 65536, Buffer.alloc(65536, i), { fua: true })));
    expect(dev.syncCount).toBeGreaterThan(1);
    expect(dev.syncCount).toBeLessThanOrEqual(1 + 32);
    await dev.flush();
    await dev.close();
  });

  it('refuses what it must: bad ranges, writes when read-only, size mismatches, a second open', async () => {
    const dir = tempDir();
    const path = join(dir, 'disk.img');
    const dev = await FileBacking.open({ path, size: MiB });
    await rejectsWith(dev.read(100, 512), 'OUT_OF_RANGE');
    await rejectsWith(dev.read(MiB - 512, 1024), 'OUT_OF_RANGE');
    await rejectsWith(dev.write(0, Buffer.alloc(100)), 'OUT_OF_RANGE');
    await rejectsWith(FileBacking.open({ path }), 'IN_USE');
    await dev.close();
    await rejectsWith(dev.read(0, 512), 'CLOSED');

    await rejectsWith(FileBacking.open({ path, size: 2 * MiB }), 'SIZE_MISMATCH');
    await rejectsWith(FileBacking.open({ path: join(dir, 'missing.img') }), 'SIZE_MISMATCH');
    await rejectsWith(FileBacking.open({ path: join(dir, 'odd.img'), size: 1000 }), 'OUT_OF_RANGE');
    writeFileSync(join(dir, 'short.img'), Buffer.alloc(700));
    await rejectsWith(FileBacking.open({ path: join(dir, 'short.img') }), 'BAD_FORMAT');

    const ro = await FileBacking.open({ path, readOnly: true });
    expect(ro.readOnly).toBe(true);
    expect(ro.thin).toBe(false);
    await rejectsWith(ro.write(0, Buffer.alloc(512)), 'READ_ONLY');
    await rejectsWith(ro.discard(0, 512), 'READ_ONLY');
    // Readers share the file; a writer does not get in meanwhile.
    const ro2 = await FileBacking.open({ path, readOnly: true });
    await rejectsWith(FileBacking.open({ path }), 'IN_USE');
    await ro.close();
    await ro2.close();
  });

  it('waits for operations in flight before closing', async () => {
    const dev = await FileBacking.open({ path: join(tempDir(), 'disk.img'), size: 64 * MiB });
    const data = randomBytesSeeded(9, 8 * MiB);
    const writes = Array.from({ length: 8 }, (_, i) => dev.write(i * 8 * MiB, data));
    const closed = dev.close();
    await expect(Promise.all(writes)).resolves.toBeDefined();
    await closed;
    const again = await FileBacking.open({ path: dev.path });
    expect((await again.read(56 * MiB, 8 * MiB)).equals(data)).toBe(true);
    await again.close();
  });
});
