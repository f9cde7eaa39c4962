// Connecting to a real cluster (scripts/ceph-dev-cluster.sh), and every way it can go wrong failing
// fast with an error that names the cause.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CephCluster, acquireCluster, sharedClusterCount } from '../../src/ceph/cluster.js';
import { cephDevAvailable, cephFailure, devCeph, type DevCeph } from '../support/ceph-cluster.js';

describe.skipIf(!cephDevAvailable())('Ceph connections', () => {
  let ceph: DevCeph;
  let dir: string;

  beforeAll(async () => {
    ceph = await devCeph();
    dir = mkdtempSync(join(tmpdir(), 'hiveboot-ceph-'));
  }, 300_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('connects as client.hiveboot with the keyring the dev cluster wrote', async () => {
    const t0 = performance.now();
    const cluster = await CephCluster.connect(ceph.settings);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(cluster.client).toBe('client.hiveboot');
    expect(cluster.instanceId).toBeGreaterThan(0);
    const pool = await cluster.pool(ceph.pool);
    expect(pool.name).toBe('hiveboot');
    expect(await cluster.pool(ceph.pool)).toBe(pool); // one io context per pool
    await cluster.shutdown();
  });

  it('accepts the bare user name', async () => {
    const cluster = await CephCluster.connect({ ...ceph.settings, client: 'hiveboot' });
    expect(cluster.client).toBe('client.hiveboot');
    await cluster.shutdown();
  });

  it('a wrong key fails at once, naming the user and the keyring', async () => {
    const keyring = join(dir, 'wrong.keyring');
    const key = execFileSync('ceph-authtool', ['--gen-print-key']).toString().trim();
    writeFileSync(keyring, `[client.hiveboot]\n\tkey = ${key}\n`, { mode: 0o600 });
    const { err, ms } = await cephFailure(CephCluster.connect({ ...ceph.settings, keyring }), 'EACCES');
    expect(ms).toBeLessThan(5000);
    expect(err.message).toContain('cephx refused client.hiveboot');
    expect(err.message).toContain(keyring);
  });

  it('a user the cluster does not know fails like a wrong key', async () => {
    const { err } = await cephFailure(CephCluster.connect({ ...ceph.settings, client: 'client.nobody' }), 'EACCES');
    expect(err.message).toContain('client.nobody');
  });

  it('a missing keyring says there is no key', async () => {
    const keyring = join(dir, 'absent.keyring');
    const { err, ms } = await cephFailure(CephCluster.connect({ ...ceph.settings, keyring }), 'ENOENT');
    expect(ms).toBeLessThan(5000);
    expect(err.message).toContain(`no key for client.hiveboot`);
    expect(err.message).toContain(keyring);
  });

  it('a missing config file is named', async () => {
    const conf = join(dir, 'absent.conf');
    const { err } = await cephFailure(CephCluster.connect({ ...ceph.settings, conf }), 'ENOENT');
    expect(err.message).toBe(`Ceph config ${conf}: no such file (ENOENT)`);
  });

  it('an unknown option is named', async () => {
    const { err } = await cephFailure(CephCluster.connect({ ...ceph.settings, options: { no_such_thing: '1' } }), 'ENOENT');
    expect(err.message).toContain('no_such_thing');
  });

  describe('a monitor that does not answer', () => {
    let silent: Server;
    let port: number;
    beforeAll(async () => {
      // Accepts TCP connections and says nothing: a hung monitor, the worst case for a client.
      silent = createServer((socket) => {
        socket.resume(); // read (and so notice the client's close), answer nothing
        socket.on('end', () => socket.end());
      });
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      port = (silent.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((resolve) => silent.close(() => resolve())));

    it('times out after timeoutSeconds with the monitor address in the message', async () => {
      const conf = join(dir, 'silent.conf');
      writeFileSync(conf, `[global]\nmon host = v1:127.0.0.1:${port}\n`);
      const { err, ms } = await cephFailure(CephCluster.connect({ ...ceph.settings, conf, timeoutSeconds: 2 }), 'ETIMEDOUT');
      expect(ms).toBeGreaterThan(1500);
      expect(ms).toBeLessThan(6000);
      expect(err.message).toContain(`127.0.0.1:${port}`);
      expect(err.message).toContain('within 2 s');
    });

    it('does not block the event loop meanwhile', async () => {
      const conf = join(dir, 'silent.conf');
      let ticks = 0;
      const timer = setInterval(() => ticks++, 50);
      await cephFailure(CephCluster.connect({ ...ceph.settings, conf, timeoutSeconds: 1 }), 'ETIMEDOUT');
      clearInterval(timer);
      expect(ticks).toBeGreaterThan(10);
    });
  });

  it('a missing pool is named', async () => {
    const cluster = await CephCluster.connect(ceph.settings);
    try {
      const { err, ms } = await cephFailure(cluster.pool('no-such-pool'), 'ENOENT');
      expect(ms).toBeLessThan(5000);
      expect(err.message).toContain('pool "no-such-pool"');
      expect(err.message).toContain('no such pool');
    } finally {
      await cluster.shutdown();
    }
  });

  it('shares one connection per settings and closes it with the last user', async () => {
    const before = sharedClusterCount();
    const [a, b] = await Promise.all([acquireCluster(ceph.settings), acquireCluster(ceph.settings)]);
    expect(a.cluster).toBe(b.cluster);
    expect(sharedClusterCount()).toBe(before + 1);
    const other = await acquireCluster({ ...ceph.settings, timeoutSeconds: 5 });
    expect(other.cluster).not.toBe(a.cluster);
    await other.release();
    await a.release();
    await a.release(); // twice is harmless
    expect(sharedClusterCount()).toBe(before + 1);
    await b.release();
    expect(sharedClusterCount()).toBe(before);
    // A failed connect is not kept: the next acquire tries again.
    await cephFailure(acquireCluster({ ...ceph.settings, client: 'client.nobody' }), 'EACCES');
    expect(sharedClusterCount()).toBe(before);
  });
});
