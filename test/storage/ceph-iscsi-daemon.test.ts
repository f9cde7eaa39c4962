// storage.backend ceph-iscsi through the real daemon: registration clones the golden RBD snapshot
// on a real single-node Ceph cluster (librbd), then drives the gateways' rbd-target-api to export it,
// and the host's boot script names the gateways' portals and its CHAP secret. The Ceph iSCSI gateway
// itself needs kernel LIO, which this machine does not have: its API is played by
// test/support/fake-rbd-target-api.ts, a fake built from ceph-iscsi 3.5's source contract
// (routes, form bodies, validation rules, error texts, the config object's state machine).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonApi, startTestDaemon, type TestDaemon } from '../http/helpers.js';
import { cephDevAvailable, useTestPool } from '../support/ceph-cluster.js';
import { FakeRbdTargetApi } from '../support/fake-rbd-target-api.js';

const PASSWORD = 'gw-api-pass-0001';
const MAC = '52:54:00:0c:00:01';

describe.skipIf(!cephDevAvailable())('storage.backend ceph-iscsi: an RBD clone exported by the gateways (their API: a fake from the contract)', () => {
  const ceph = useTestPool();
  let fake: FakeRbdTargetApi;
  let t: TestDaemon;
  let dir: string;
  let golden: string;
  const api = (method: string, path: string, body?: unknown) => daemonApi(t)(method, path, body);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hb-ceph-iscsi-'));
    golden = ceph.name('golden');
    await ceph.pool.createImage(golden, 16 << 20);
    const image = await ceph.pool.openImage(golden);
    try {
      await image.write(0, Buffer.alloc(1 << 20, 0x5a));
      await image.createSnapshot('golden');
    } finally {
      await image.close();
    }
    fake = new FakeRbdTargetApi({ thisHost: 'gw1.example.net', hosts: { 'gw1.example.net': ['192.0.2.11'], 'gw2.example.net': ['192.0.2.12'] }, user: 'admin', password: PASSWORD, pools: [ceph.ceph.pool] });
    const url = await fake.start();
    const passwordFile = join(dir, 'gw-password');
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const { conf, client, keyring, pool } = ceph.ceph;
    t = await startTestDaemon({
      storage: { backend: 'ceph-iscsi' },
      ceph: { conf, client, keyring, pool },
      cephIscsi: {
        apiUrls: [url],
        passwordFile,
        gateways: [
          { name: 'gw1.example.net', ip: '192.0.2.11' },
          { name: 'gw2.example.net', ip: '192.0.2.12' },
        ],
        timeoutMs: 5000,
      },
    });
    expect((await api('POST', '/v1/images', { name: 'golden', location: `rbd:${pool}/${golden}@golden` })).status).toBe(201);
    expect((await api('POST', '/v1/profiles', { name: 'k3s', template: 'sanboot', image: 'golden' })).status).toBe(201);
  }, 120_000);

  afterAll(async () => {
    await t?.cleanup();
    // The host's clone goes before the golden it was cloned from (which useTestPool removes).
    await ceph.pool?.removeImage('hiveboot-5254000c0001', { missingOk: true });
    await fake?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registration clones the snapshot and exports the clone on every gateway; the boot script names them', async () => {
    const res = await api('POST', '/v1/hosts', { mac: MAC, hostname: 'gw-w1', profile: 'k3s' });
    expect(res.status).toBe(201);
    const timeline = JSON.stringify((await api('GET', `/v1/hosts/${MAC}/events`)).json.items);
    expect(res.json.state, timeline).toBe('ready');
    const disk = res.json.disk as { source: string; portals: string[]; targetIqn: string };
    expect(disk.source).toBe('ceph-iscsi');
    expect(disk.portals.sort()).toEqual(['192.0.2.11:3260', '192.0.2.12:3260']);

    const clone = await ceph.pool.openImage('hiveboot-5254000c0001', { readOnly: true });
    try {
      expect(await clone.parent()).toMatchObject({ pool: ceph.ceph.pool, image: golden, snapshot: 'golden' });
    } finally {
      await clone.close();
    }
    const target = fake.config.targets[disk.targetIqn];
    expect(target, JSON.stringify(fake.config)).toBeDefined();
    expect(Object.keys(target!.portals).sort()).toEqual(['gw1.example.net', 'gw2.example.net']);
    expect(Object.keys(fake.config.disks)).toContain(`${ceph.ceph.pool}/hiveboot-5254000c0001`);

    const script = await (await fetch(`${t.url}/boot/${MAC}.ipxe`)).text();
    expect(script).toContain(disk.targetIqn);
    expect(script).toMatch(/^set password \S{12,16}$/m);
    expect(t.log.text()).not.toContain(PASSWORD);
  }, 60_000);

  it('a second reconcile changes nothing on the gateways; removal with deleteDisk tears the export down and deletes the clone', async () => {
    const before = fake.mutatingCalls().length;
    expect((await api('PATCH', `/v1/hosts/${MAC}`, { labels: { rack: 'r1' } })).status).toBe(200);
    expect(fake.mutatingCalls().length).toBe(before);

    expect((await api('DELETE', `/v1/hosts/${MAC}?deleteDisk=true`)).status).toBe(204);
    expect(Object.keys(fake.config.targets)).toEqual([]);
    expect(await ceph.pool.imageExists('hiveboot-5254000c0001')).toBe(false);
    expect(await ceph.pool.imageExists(golden)).toBe(true);
  }, 60_000);
});
