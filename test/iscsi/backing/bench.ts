/**
 * Throughput of the backings (not a test; numbers depend on the machine):
 *
 *   npx tsx test/iscsi/backing/bench.ts [directory]     (default: os.tmpdir())
 *
 * 1 MiB sequential writes and reads at queue depth 1 and 8 on a `file` and a `cow` backing (fresh
 * overlay: every write allocates; second pass: overwrites), reads from the golden image through a
 * fresh overlay, and 4 KiB random allocating writes with ordered and relaxed map updates (the cost of
 * data-before-map ordering). Reads come from the page cache (the files were just written), which is
 * what a booted fleet mostly sees for the shared golden image.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockDevice } from '../../../src/iscsi/backing/block-device.js';
import { createCowOverlay, openCowOverlay } from '../../../src/iscsi/backing/cow.js';
import { FileBacking } from '../../../src/iscsi/backing/file.js';
import { prng } from '../../support/prng.js';

const MiB = 1 << 20;
const SIZE = 1024 * MiB;
const dir = mkdtempSync(join(process.argv[2] ?? tmpdir(), 'hiveboot-bench-'));

async function timed(label: string, bytes: number, ops: number, fn: () => Promise<void>): Promise<void> {
  const t0 = performance.now();
  await fn();
  const s = (performance.now() - t0) / 1000;
  console.log(`${label.padEnd(52)} ${(bytes / MiB / s).toFixed(0).padStart(6)} MiB/s ${(ops / s).toFixed(0).padStart(8)} IOPS`);
}

/** Runs `count` operations with at most `depth` in flight. */
async function pool(count: number, depth: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: depth }, async () => {
      while (next < count) await op(next++);
    }),
  );
}

async function sequential(name: string, dev: BlockDevice, data: Buffer, what: 'write' | 'read', depth: number): Promise<void> {
  const count = SIZE / MiB;
  await timed(`${name} 1 MiB seq ${what} QD${depth}`, SIZE, count, () =>
    pool(count, depth, (i) => (what === 'write' ? dev.write(i * MiB, data) : dev.read(i * MiB, MiB))),
  );
  if (what === 'write') await dev.flush();
}

async function randomAllocating(name: string, dev: BlockDevice, depth: number, count: number): Promise<void> {
  const r = prng(depth * 31 + count);
  const block = randomBytes(4096);
  const clusters = dev.size / 4096;
  await timed(`${name} 4 KiB random allocating write QD${depth}`, count * 4096, count, () =>
    pool(count, depth, () => dev.write(Math.floor(r() * clusters) * 4096, block)),
  );
}

try {
  const data = randomBytes(MiB);
  console.log(`directory ${dir}, device ${SIZE / MiB} MiB`);

  for (const depth of [1, 8]) {
    const file = await FileBacking.open({ path: join(dir, `disk-${depth}.img`), size: SIZE });
    await sequential('file (allocating)', file, data, 'write', depth);
    await sequential('file (overwriting)', file, data, 'write', depth);
    await sequential('file', file, data, 'read', depth);
    await file.close();
  }

  const golden = join(dir, 'golden.img');
  const gdev = await FileBacking.open({ path: golden, size: SIZE });
  await pool(SIZE / MiB, 8, (i) => gdev.write(i * MiB, randomBytes(MiB)));
  await gdev.close();

  for (const depth of [1, 8]) {
    const overlay = join(dir, `host-${depth}.cow`);
    await createCowOverlay(golden, overlay);
    const cow = await openCowOverlay(golden, overlay);
    await sequential(`cow (golden reads, fresh clone)`, cow, data, 'read', depth);
    await sequential(`cow (allocating, ordered)`, cow, data, 'write', depth);
    await sequential(`cow (overwriting)`, cow, data, 'write', depth);
    await sequential(`cow (overlay reads)`, cow, data, 'read', depth);
    await cow.close();
    const relaxedPath = join(dir, `host-${depth}-relaxed.cow`);
    await createCowOverlay(golden, relaxedPath);
    const relaxed = await openCowOverlay(golden, relaxedPath, { ordered: false });
    await sequential(`cow (allocating, relaxed)`, relaxed, data, 'write', depth);
    await relaxed.close();
  }

  for (const ordered of [true, false]) {
    for (const depth of [1, 32]) {
      const overlay = join(dir, `rand-${ordered}-${depth}.cow`);
      await createCowOverlay(golden, overlay);
      const cow = await openCowOverlay(golden, overlay, { ordered });
      await randomAllocating(`cow ${ordered ? 'ordered' : 'relaxed'}`, cow, depth, depth === 1 ? 2000 : 20000);
      console.log(`${''.padEnd(52)} (${cow.stats.syncs} fdatasyncs, ${cow.stats.mapBatches} map batches)`);
      await cow.close();
    }
  }
  const file2 = await FileBacking.open({ path: join(dir, 'rand.img'), size: SIZE });
  await randomAllocating('file', file2, 32, 20000);
  await file2.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
