// `hiveboot image add NAME FILE --rbd pool/image`: the golden image file goes into RBD (zero runs
// skipped, so the image is as thin as the file's data), gets a protected snapshot, and is
// registered as rbd:pool/image@snapshot — the form both RBD provisioners clone hosts' disks from.
// Runs where the CLI runs (the gateway host, which has the cluster's ceph.conf and a keyring): the
// file never travels through the daemon's API.

import { acquireCluster, type CephSettings } from '../ceph/cluster.js';
import { isCephCode } from '../ceph/errors.js';
import { importImage, type ImportProgress } from '../ceph/import.js';
import { UsageError } from './commands/common.js';

export interface RbdTarget {
  pool: string;
  image: string;
}

/** Pool and image names as librbd and the Ceph iSCSI gateways both accept them. */
const RBD_NAME = /^[A-Za-z0-9_.-]{1,100}$/;

export function parseRbdTarget(value: string, defaultPool: string): RbdTarget {
  const [first, second, ...rest] = value.split('/');
  const target = second === undefined ? { pool: defaultPool, image: first! } : { pool: first!, image: second };
  if (rest.length > 0 || !RBD_NAME.test(target.pool) || !RBD_NAME.test(target.image)) {
    throw new UsageError(`--rbd: "${value}" is not pool/image (names of A-Z a-z 0-9 _ . -)`);
  }
  return target;
}

export interface ImportOutcome {
  location: string;
  size: number;
  written: number;
  /** false: the image and its snapshot were there already (an earlier run), nothing was copied. */
  imported: boolean;
}

/**
 * Copies `file` into pool/image and snapshots it; idempotent: an image that already has the
 * snapshot is taken as the result of an earlier run (its size must match the file).
 */
export async function importGolden(
  file: string,
  size: number,
  target: RbdTarget,
  snapshot: string,
  cluster: CephSettings,
  onProgress: (p: ImportProgress) => void,
): Promise<ImportOutcome> {
  const lease = await acquireCluster(cluster);
  try {
    const pool = await lease.cluster.pool(target.pool);
    const location = `rbd:${target.pool}/${target.image}@${snapshot}`;
    if (await pool.imageExists(target.image)) {
      const existing = await pool.openImage(target.image, { readOnly: true });
      try {
        const snaps = await existing.listSnapshots();
        const { size: existingSize } = await existing.stat();
        if (!snaps.some((s) => s.name === snapshot)) {
          throw new UsageError(`RBD image ${target.pool}/${target.image} already exists without a snapshot "${snapshot}": pick another name, or remove it (rbd rm ${target.pool}/${target.image})`);
        }
        if (existingSize !== size) {
          throw new UsageError(`RBD image ${target.pool}/${target.image} already exists with another size (${existingSize} bytes, the file has ${size})`);
        }
      } finally {
        await existing.close();
      }
      return { location, size, written: 0, imported: false };
    }
    const result = await importImage(pool, target.image, file, { onProgress });
    const image = await pool.openImage(target.image);
    try {
      await image.createSnapshot(snapshot);
      // Protected, so that clones work on clusters without clone v2 (and nobody deletes it under them).
      await image.protectSnapshot(snapshot);
    } finally {
      await image.close();
    }
    return { location, size: result.size, written: result.written, imported: true };
  } catch (err) {
    if (isCephCode(err, 'ENOENT') && !(err instanceof UsageError)) throw new UsageError((err as Error).message);
    throw err;
  } finally {
    await lease.release();
  }
}

/**
 * A progress line on stderr: redrawn in place on a terminal, a line every 10% otherwise (logs, CI).
 */
export function progressPrinter(stream: NodeJS.WriteStream = process.stderr): (p: ImportProgress) => void {
  const started = performance.now();
  let lastDecile = -1;
  return (p) => {
    const fraction = p.total === 0 ? 1 : p.done / p.total;
    const seconds = (performance.now() - started) / 1000;
    const rate = seconds > 0 ? p.done / seconds / 2 ** 20 : 0;
    const gib = (n: number) => (n / 2 ** 30).toFixed(2);
    const text = `${(fraction * 100).toFixed(0).padStart(3)}% ${gib(p.done)}/${gib(p.total)} GiB read, ${gib(p.written)} GiB written, ${rate.toFixed(0)} MiB/s`;
    if (stream.isTTY) {
      const width = 30;
      const filled = Math.round(fraction * width);
      stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}${p.done === p.total ? '\n' : ''}`);
      return;
    }
    const decile = Math.floor(fraction * 10);
    if (decile !== lastDecile) {
      lastDecile = decile;
      stream.write(`import: ${text}\n`);
    }
  };
}
