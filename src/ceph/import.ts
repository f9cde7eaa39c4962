import { open } from 'node:fs/promises';
import type { RbdImage } from './image.js';
import type { CephPool, CreateImageOptions } from './pool.js';

/**
 * A raw disk image file → a new RBD image of the same size (what `hiveboot image add NAME FILE --rbd
 * pool/image` does, and `rbd import` does by hand). Runs of zeroes are not written, so the new image
 * is as thin as the file's data; chunks are read and written with several in flight.
 */

export interface ImportProgress {
  /** Bytes of the file dealt with so far (written or skipped as zeroes). */
  done: number;
  total: number;
  /** Bytes actually written to the cluster so far. */
  written: number;
}

export interface ImportOptions extends CreateImageOptions {
  /** Called after each chunk, in file order, and once at the end with done === total. */
  onProgress?: (progress: ImportProgress) => void;
  /** Bytes read from the file at a time (default 4 MiB, RBD's object size). */
  chunkSize?: number;
  /** Chunks in flight at once (default 8). */
  inFlight?: number;
}

export interface ImportResult {
  size: number;
  /** Bytes written (the rest were zeroes). */
  written: number;
}

/** Zero runs shorter than this are written anyway: skipping them would split writes for little gain. */
const ZERO_GRANULE = 64 * 1024;
const ZEROES = Buffer.alloc(ZERO_GRANULE);

/** The non-zero runs of `buf`, at ZERO_GRANULE granularity: [start, end) pairs. */
export function dataRuns(buf: Buffer): [number, number][] {
  const runs: [number, number][] = [];
  let start = -1;
  for (let at = 0; at < buf.length; at += ZERO_GRANULE) {
    const end = Math.min(buf.length, at + ZERO_GRANULE);
    const zero = buf.compare(ZEROES, 0, end - at, at, end) === 0;
    if (!zero && start < 0) start = at;
    if (zero && start >= 0) {
      runs.push([start, at]);
      start = -1;
    }
  }
  if (start >= 0) runs.push([start, buf.length]);
  return runs;
}

/**
 * Creates `image` in `pool` with the file's size and copies the file into it. The image must not
 * exist (EEXIST). On failure the half-made image is removed again.
 */
export async function importImage(pool: CephPool, image: string, file: string, options: ImportOptions = {}): Promise<ImportResult> {
  const chunkSize = options.chunkSize ?? 4 * 1024 * 1024;
  const inFlight = Math.max(1, options.inFlight ?? 8);
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    if (size === 0) throw new RangeError(`${file} is empty`);
    await pool.createImage(image, size, options);
    let target: RbdImage | undefined;
    try {
      target = await pool.openImage(image);
      const written = await copy(fh, target, size, chunkSize, inFlight, options.onProgress);
      await target.flush();
      await target.close();
      return { size, written };
    } catch (err) {
      await target?.close().catch(() => {});
      await pool.removeImage(image, { missingOk: true }).catch(() => {});
      throw err;
    }
  } finally {
    await fh.close();
  }
}

async function copy(
  fh: Awaited<ReturnType<typeof open>>,
  target: RbdImage,
  size: number,
  chunkSize: number,
  inFlight: number,
  onProgress: ImportOptions['onProgress'],
): Promise<number> {
  let next = 0;
  let written = 0;
  // Chunks finish out of order; progress reports the contiguous prefix that is done.
  const finished = new Set<number>();
  let done = 0;
  let failure: unknown;

  const worker = async () => {
    while (next < size && failure === undefined) {
      const offset = next;
      const length = Math.min(chunkSize, size - offset);
      next += length;
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) throw new Error(`the file ended at ${offset + got} bytes while reading; it was ${size} bytes`);
        got += bytesRead;
      }
      for (const [start, end] of dataRuns(buf)) {
        await target.write(offset + start, buf.subarray(start, end));
        written += end - start;
      }
      finished.add(offset);
      while (finished.has(done)) {
        finished.delete(done);
        done = Math.min(size, done + chunkSize);
        onProgress?.({ done, total: size, written });
      }
    }
  };
  const workers = Array.from({ length: inFlight }, () =>
    worker().catch((err: unknown) => {
      failure ??= err;
    }),
  );
  await Promise.all(workers);
  if (failure !== undefined) throw failure;
  return written;
}
