// The single-node Ceph cluster of scripts/ceph-dev-cluster.sh, for tests against real librbd. Started
// once (the script is idempotent and serialises concurrent starts with a lock) and never stopped by a
// test: every test file, in every worker process, and the next run reuse it. Each test works on images
// of its own name (imageName), so files can run side by side in the one pool.
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect } from 'vitest';
import { acquireCluster, type CephSettings, type ClusterLease } from '../../src/ceph/cluster.js';
import { CephError, isCephCode } from '../../src/ceph/errors.js';
import type { CephPool } from '../../src/ceph/pool.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/ceph-dev-cluster.sh', import.meta.url));

export interface DevCeph {
  conf: string;
  keyring: string;
  client: string;
  pool: string;
  /** What src/ceph wants to connect as client.hiveboot. */
  settings: CephSettings;
  /** Seconds `up` took in this process (about 1 when it was already running). */
  startSeconds: number;
}

/** Whether this machine can run the cluster: root, and Debian's ceph-mon/mgr/osd and ceph-common. */
export function cephDevAvailable(): boolean {
  if (process.getuid?.() !== 0) return false;
  return ['ceph', 'ceph-mon', 'ceph-mgr', 'ceph-osd', 'rbd'].every((bin) => {
    try {
      accessSync(`/usr/bin/${bin}`, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

let started: Promise<DevCeph> | undefined;

/** Starts the cluster if it is not running (first call in this process), and says how to reach it. */
export function devCeph(): Promise<DevCeph> {
  started ??= (async () => {
    const t0 = performance.now();
    try {
      await run('bash', [SCRIPT, 'up'], { timeout: 300_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`scripts/ceph-dev-cluster.sh up failed: ${e.stderr?.slice(-3000) ?? e.message}`);
    }
    const startSeconds = (performance.now() - t0) / 1000;
    const { stdout } = await run('bash', [SCRIPT, 'env']);
    const env = Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((line) => {
          const at = line.indexOf('=');
          return [line.slice(0, at), line.slice(at + 1)];
        }),
    ) as Record<string, string>;
    const conf = env.CEPH_CONF!;
    const keyring = env.CEPH_KEYRING!;
    const client = env.CEPH_CLIENT!;
    return { conf, keyring, client, pool: env.CEPH_POOL!, settings: { conf, keyring, client }, startSeconds };
  })();
  return started;
}

let counter = 0;

/** A name no other test (file, process or earlier run) uses at the same time. */
export function imageName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}`;
}

/**
 * Removes an image whatever it has become: its snapshots (unprotected first) and the image itself.
 * Clones of it must be removed first. Missing images are fine.
 */
export async function removeImageTree(pool: CephPool, name: string): Promise<void> {
  let image;
  try {
    image = await pool.openImage(name);
  } catch (err) {
    if (isCephCode(err, 'ENOENT')) return;
    throw err;
  }
  try {
    for (const snap of await image.listSnapshots()) {
      if (await image.isSnapshotProtected(snap.name)) await image.unprotectSnapshot(snap.name);
      await image.removeSnapshot(snap.name);
    }
  } finally {
    await image.close();
  }
  await pool.removeImage(name, { missingOk: true });
}

export interface TestPool {
  readonly ceph: DevCeph;
  /** The dev cluster's pool, through one shared connection as client.hiveboot. */
  readonly pool: CephPool;
  /** A fresh image name, removed (with its snapshots) after the file's tests; later names go first, so clones go before parents. */
  name(prefix: string): string;
}

/**
 * For a describe block: starts the cluster and connects in beforeAll, and afterwards removes every
 * image named through name() and lets go of the connection.
 */
export function useTestPool(): TestPool {
  let ceph: DevCeph | undefined;
  let lease: ClusterLease | undefined;
  let pool: CephPool | undefined;
  const names: string[] = [];
  beforeAll(async () => {
    ceph = await devCeph();
    lease = await acquireCluster(ceph.settings);
    pool = await lease.cluster.pool(ceph.pool);
  }, 300_000);
  afterAll(async () => {
    for (const name of names.reverse()) if (pool) await removeImageTree(pool, name);
    await lease?.release();
  }, 120_000);
  return {
    get ceph() {
      return ceph!;
    },
    get pool() {
      return pool!;
    },
    name(prefix: string) {
      const name = imageName(prefix);
      names.push(name);
      return name;
    },
  };
}

/** Awaits `promise`, expects it to fail with a CephError of `code`; returns the error and how long the failure took. */
export async function cephFailure(promise: Promise<unknown>, code: string): Promise<{ err: CephError; ms: number }> {
  const t0 = performance.now();
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  const ms = performance.now() - t0;
  expect(caught, `expected a CephError ${code}`).toBeInstanceOf(CephError);
  expect((caught as CephError).code, (caught as Error).message).toBe(code);
  return { err: caught as CephError, ms };
}
