// RBD-backed disks end to end on a real single-node Ceph cluster (scripts/ceph-dev-cluster.sh): the
// CLI imports a golden image into RBD and snapshots it, registration clones the snapshot for the
// host through librbd and the built-in target serves the clone to a real initiator (QEMU's libiscsi
// driver); the golden snapshot never changes; removal with deleteDisk deletes the clone. A wrong
// cephx key or a missing image fails provisioning with a clear reason while file-backed hosts on the
// same daemon are served as usual.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCephCode } from '../../src/ceph/errors.js';
import { daemonApi, startTestDaemon, type TestDaemon } from '../http/helpers.js';
import { cephDevAvailable, useTestPool } from '../support/ceph-cluster.js';
import { tool } from '../support/tool.js';

const BIN = resolve(import.meta.dirname, '../../bin/hiveboot.js');
const GOLDEN_SIZE = 32 * 1024 * 1024;

interface DiskView {
  source: string;
  portals: string[];
  targetIqn: string;
  lun: number;
  chapUser: string;
}

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const env = { ...process.env };
    delete env.HIVEBOOT_URL;
    delete env.HIVEBOOT_TOKEN;
    delete env.HIVEBOOT_CONFIG;
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('close', (code) => done({ code, out, err }));
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe.skipIf(!cephDevAvailable())('builtin storage on RBD: a host\'s disk is a clone of the golden snapshot', () => {
  const ceph = useTestPool();
  let t: TestDaemon;
  let token: string;
  let dir: string;
  let golden: Buffer;
  let goldenImage: string;

  const api = (method: string, path: string, body?: unknown, daemon: TestDaemon = t) => daemonApi(daemon)(method, path, body);
  const secretOf = async (mac: string) => /^set password (\S+)/m.exec(await (await fetch(`${t.url}/boot/${mac}.ipxe`)).text())?.[1] ?? '';
  const qemuIo = (disk: DiskView, secret: string, initiator: string, commands: string[]) => {
    const opts = `driver=iscsi,transport=tcp,portal=${disk.portals[0]},target=${disk.targetIqn},lun=${disk.lun},user=${disk.chapUser},password-secret=sec0,initiator-name=${initiator}`;
    return tool('qemu-io', ['--object', `secret,id=sec0,data=${secret}`, '--image-opts', opts, ...commands.flatMap((c) => ['-c', c])]);
  };
  const events = async (mac: string, daemon: TestDaemon = t) =>
    (await api('GET', `/v1/hosts/${mac}/events`, undefined, daemon)).json.items as { stage: string; message: string; reason: string | null }[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hb-rbd-storage-'));
    golden = Buffer.alloc(GOLDEN_SIZE);
    // Data in the first and last megabytes and zeroes between: the import skips the zeroes.
    for (let i = 0; i < 1 << 20; i += 4) golden.writeUInt32LE(i, i);
    for (let i = GOLDEN_SIZE - (1 << 20); i < GOLDEN_SIZE; i += 4) golden.writeUInt32LE(i, i);
    writeFileSync(join(dir, 'golden.raw'), golden);
    writeFileSync(join(dir, 'file-golden.raw'), golden);
    goldenImage = ceph.name('golden');
    const { conf, client, keyring, pool } = ceph.ceph;
    t = await startTestDaemon({ ceph: { conf, client, keyring, pool } });
    token = readFileSync(t.daemon.apiTokenFile!, 'utf8').trim();
  }, 120_000);

  afterAll(async () => {
    await t?.cleanup();
    // The host's clone goes before the golden it was cloned from (which useTestPool removes).
    await ceph.pool?.removeImage('hiveboot-5254000b0001', { missingOk: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('hiveboot image add --rbd imports the file (zero runs skipped), snapshots it and registers the snapshot; a rerun copies nothing', async () => {
    const { conf, client, keyring, pool } = ceph.ceph;
    const common = ['--url', t.url, '--token', token, '--ceph-conf', conf, '--ceph-client', client, '--keyring', keyring];
    const first = await cli(['image', 'add', 'golden-rbd', join(dir, 'golden.raw'), '--rbd', `${pool}/${goldenImage}`, ...common]);
    expect(first.code, first.err + first.out).toBe(0);
    expect(first.out).toContain(`registered image golden-rbd: rbd:${pool}/${goldenImage}@golden`);
    // 2 MiB of data in a 32 MiB file: only the data was written.
    expect(first.out).toMatch(/0\.00 GiB of data written to RBD/);
    expect(first.err).toMatch(/import: 100% 0\.03\/0\.03 GiB read/);

    const again = await cli(['image', 'add', 'golden-rbd-again', join(dir, 'golden.raw'), '--rbd', `${pool}/${goldenImage}`, ...common]);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toContain('already in RBD (nothing copied)');

    const image = await ceph.pool.openImage(goldenImage, { readOnly: true, snapshot: 'golden' });
    try {
      expect(sha(await image.read(0, GOLDEN_SIZE))).toBe(sha(golden));
      expect(await image.isSnapshotProtected('golden')).toBe(true);
    } finally {
      await image.close();
    }
    const bad = await cli(['image', 'add', 'x', join(dir, 'golden.raw'), '--rbd', 'no/such/thing', ...common]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('--rbd: "no/such/thing" is not pool/image');
  }, 120_000);

  it('registration clones the snapshot in well under a second and the target serves the clone; writes stay in the clone', async () => {
    expect((await api('POST', '/v1/profiles', { name: 'rbd-k3s', template: 'sanboot', image: 'golden-rbd' })).status).toBe(201);
    const started = performance.now();
    const res = await api('POST', '/v1/hosts', { mac: '52:54:00:0b:00:01', hostname: 'rbd1', profile: 'rbd-k3s' });
    const ms = performance.now() - started;
    expect(res.status).toBe(201);
    expect(res.json.state).toBe('ready');
    expect(ms).toBeLessThan(1000);
    const disk = res.json.disk as DiskView;
    expect(disk.source).toBe('builtin');

    const clone = await ceph.pool.openImage('hiveboot-5254000b0001', { readOnly: true });
    try {
      expect(await clone.parent()).toMatchObject({ pool: ceph.ceph.pool, image: goldenImage, snapshot: 'golden' });
    } finally {
      await clone.close();
    }

    const secret = await secretOf('52:54:00:0b:00:01');
    const initiator = 'iqn.2026-01.io.hiveboot:rbd1';
    // The golden's pattern through the host's LUN: the uint32 at 4096 is 4096, the one at 31 MiB is 31 MiB.
    const read = await qemuIo(disk, secret, initiator, ['read -v 4096 8', 'read -v 31M 4']);
    expect(read.code, read.out).toBe(0);
    expect(read.out).toMatch(/00001000:\s+00 10 00 00 04 10 00 00/);
    expect(read.out).toMatch(/01f00000:\s+00 00 f0 01/);
    const write = await qemuIo(disk, secret, initiator, ['write -P 0xcd 8M 1M', 'flush', 'read -P 0xcd 8M 1M', 'write -z 0 64k', 'read -P 0 0 64k']);
    expect(write.code, write.out).toBe(0);
    expect(write.out).not.toMatch(/Pattern verification failed/);

    const snap = await ceph.pool.openImage(goldenImage, { readOnly: true, snapshot: 'golden' });
    try {
      expect(sha(await snap.read(0, GOLDEN_SIZE))).toBe(sha(golden));
    } finally {
      await snap.close();
    }
    const timeline = await events('52:54:00:0b:00:01');
    expect(timeline.some((e) => e.stage === 'storage')).toBe(true);
  }, 120_000);

  it('removing the host with deleteDisk deletes its clone; the golden stays', async () => {
    expect((await api('DELETE', '/v1/hosts/52:54:00:0b:00:01?deleteDisk=true')).status).toBe(204);
    let gone = false;
    try {
      await (await ceph.pool.openImage('hiveboot-5254000b0001', { readOnly: true })).close();
    } catch (err) {
      gone = isCephCode(err, 'ENOENT');
    }
    expect(gone).toBe(true);
    expect(await ceph.pool.imageExists(goldenImage)).toBe(true);
  }, 60_000);

  it('a missing RBD image leaves the host pending with the reason on its timeline', async () => {
    expect((await api('POST', '/v1/images', { name: 'ghost', location: `rbd:${ceph.ceph.pool}/no-such-golden@golden` })).status).toBe(201);
    expect((await api('POST', '/v1/profiles', { name: 'ghost', template: 'sanboot', image: 'ghost' })).status).toBe(201);
    const res = await api('POST', '/v1/hosts', { mac: '52:54:00:0b:00:02', hostname: 'rbd2', profile: 'ghost' });
    expect(res.status).toBe(201);
    expect(res.json.state).toBe('pending');
    const failed = (await events('52:54:00:0b:00:02')).find((e) => e.message === 'disk provisioning failed');
    expect(failed?.reason).toMatch(/no-such-golden/);
    expect(failed?.reason).toMatch(/ENOENT|does not exist|no such image/);
  }, 60_000);

  it('a wrong cephx key fails provisioning clearly, and hosts on file disks are still served', async () => {
    const badKeyring = join(dir, 'bad.keyring');
    writeFileSync(badKeyring, `[${ceph.ceph.client}]\n\tkey = AQBSyvdkAAAAABAAxWN9/m1m2i9Q1/2XKs0bkQ==\n`, { mode: 0o600 });
    const { conf, client, pool } = ceph.ceph;
    const other = await startTestDaemon({ ceph: { conf, client, keyring: badKeyring, pool } });
    try {
      const location = `rbd:${pool}/${goldenImage}@golden`;
      expect((await api('POST', '/v1/images', { name: 'golden-rbd', location }, other)).status).toBe(201);
      expect((await api('POST', '/v1/images', { name: 'golden-file', location: join(dir, 'file-golden.raw') }, other)).status).toBe(201);
      expect((await api('POST', '/v1/profiles', { name: 'rbd', template: 'sanboot', image: 'golden-rbd' }, other)).status).toBe(201);
      expect((await api('POST', '/v1/profiles', { name: 'file', template: 'sanboot', image: 'golden-file' }, other)).status).toBe(201);
      const started = performance.now();
      const rbdHost = await api('POST', '/v1/hosts', { mac: '52:54:00:0b:00:03', hostname: 'rbd3', profile: 'rbd' }, other);
      expect(performance.now() - started).toBeLessThan(15_000);
      expect(rbdHost.json.state).toBe('pending');
      const failed = (await events('52:54:00:0b:00:03', other)).find((e) => e.message === 'disk provisioning failed');
      expect(failed?.reason).toMatch(/EACCES|EPERM|permission|auth/i);
      const fileHost = await api('POST', '/v1/hosts', { mac: '52:54:00:0b:00:04', hostname: 'file4', profile: 'file' }, other);
      expect(fileHost.json.state).toBe('ready');
      expect((fileHost.json.disk as DiskView).source).toBe('builtin');
      expect(other.log.text()).not.toContain('AQBSyvdkAAAAABAAxWN9');
    } finally {
      await other.cleanup();
    }
  }, 120_000);
});
