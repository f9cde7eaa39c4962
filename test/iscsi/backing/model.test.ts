import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BlockDevice } from '../../../src/iscsi/backing/block-device.js';
import { createCowOverlay } from '../../../src/iscsi/backing/cow.js';
import { openBacking } from '../../../src/iscsi/backing/index.js';
import { prng } from '../../support/prng.js';
import { randomBytesSeeded, sha256File, tempDir, writeGolden } from './helpers.js';

/**
 * Randomized concurrency against a reference model. Each round issues a burst of operations without
 * waiting (overlapping writes, partial-cluster writes racing copy-ups of the same cluster, reads of
 * clusters being copied up, discards, FUA, flushes), applying each to the model at call time. Both
 * backings apply overlapping operations in call order, so every read must return exactly the model
 * as it was when the read was called, and the device must equal the model after each burst and
 * after reopening. A failure names its seed.
 */

const SIZE = 300 * 1024 + 512; // not a whole number of 4 KiB clusters: the last one is partial
const SECTOR = 512;

interface Subject {
  name: string;
  open: () => Promise<BlockDevice>;
  initial: Buffer;
  golden?: string;
}

async function fileSubject(): Promise<Subject> {
  const path = join(tempDir(), 'disk.img');
  const dev = await openBacking({ kind: 'file', path, size: SIZE });
  await dev.close();
  return { name: 'file', open: () => openBacking({ kind: 'file', path }), initial: Buffer.alloc(SIZE) };
}

async function cowSubject(seed: number): Promise<Subject> {
  const dir = tempDir();
  const golden = join(dir, 'golden.img');
  const overlay = join(dir, 'host.cow');
  const initial = writeGolden(golden, SIZE, seed);
  await createCowOverlay(golden, overlay);
  return { name: 'cow', open: () => openBacking({ kind: 'cow', golden, overlay }), initial, golden };
}

async function runModel(subject: Subject, seed: number): Promise<void> {
  const r = prng(seed);
  const model = Buffer.from(subject.initial);
  const goldenSum = subject.golden ? sha256File(subject.golden) : undefined;
  let dev = await subject.open();
  const sectors = SIZE / SECTOR;
  const pick = (): { offset: number; length: number } => {
    // Mostly small and sector-aligned (partial clusters), sometimes tens of KiB, often near a hot spot.
    const hot = r() < 0.5;
    const start = hot ? 40 + Math.floor(r() * 24) : Math.floor(r() * sectors);
    const maxLen = r() < 0.2 ? 128 : 12;
    const count = Math.min(sectors - start, 1 + Math.floor(r() * maxLen));
    return { offset: start * SECTOR, length: count * SECTOR };
  };
  let writeId = 0;
  for (let round = 0; round < 12; round++) {
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 48; i++) {
      const what = r();
      const { offset, length } = pick();
      const label = `${subject.name} seed ${seed} round ${round} op ${i}`;
      if (what < 0.5) {
        const data = randomBytesSeeded(seed * 100_000 + ++writeId, length);
        data.copy(model, offset);
        pending.push(dev.write(offset, data, { fua: r() < 0.1 }));
      } else if (what < 0.85) {
        const expected = Buffer.from(model.subarray(offset, offset + length));
        pending.push(
          dev.read(offset, length).then((got) => {
            if (!got.equals(expected)) {
              const bad = got.findIndex((b, k) => b !== expected[k]);
              expect.fail(`${label}: read ${offset}+${length} differs from the model at byte ${offset + bad}`);
            }
          }),
        );
      } else if (what < 0.97) {
        model.fill(0, offset, offset + length);
        pending.push(dev.discard(offset, length));
      } else {
        pending.push(dev.flush());
      }
    }
    await Promise.all(pending);
    expect((await dev.read(0, SIZE)).equals(model), `${subject.name} seed ${seed} after round ${round}`).toBe(true);
    if (round % 4 === 3) {
      await dev.close();
      dev = await subject.open();
      expect((await dev.read(0, SIZE)).equals(model), `${subject.name} seed ${seed} reopened after round ${round}`).toBe(true);
    }
  }
  await dev.close();
  if (subject.golden) expect(sha256File(subject.golden)).toBe(goldenSum);
}

describe('concurrent operations match a reference model', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`file backing, seed ${seed}`, async () => {
      await runModel(await fileSubject(), seed);
    });
    it(`cow backing, seed ${seed}`, async () => {
      await runModel(await cowSubject(seed), seed);
    });
  }
});
