import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect } from 'vitest';
import { BackingError, type BackingErrorCode } from '../../../src/iscsi/backing/errors.js';
import { randomBytesSeeded } from './data.js';

export { randomBytesSeeded };

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

/** A temporary directory under os.tmpdir(), removed after the test. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hiveboot-backing-'));
  dirs.push(dir);
  return dir;
}


/** A golden image of random content. */
export function writeGolden(path: string, size: number, seed = 1): Buffer {
  const content = randomBytesSeeded(seed, size);
  writeFileSync(path, content);
  return content;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Awaits `promise` and checks it rejects with a BackingError of `code`; returns the message. */
export async function rejectsWith(promise: Promise<unknown>, code: BackingErrorCode): Promise<string> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a BackingError ${code}`).toBeInstanceOf(BackingError);
  expect((caught as BackingError).code).toBe(code);
  return (caught as BackingError).message;
}
