// The ceph-iscsi provisioner against a FAKE rbd-target-api (test/support/fake-rbd-target-api.ts),
// built from ceph-iscsi 3.5's source contract: LIO cannot run on this machine, so the real API
// cannot make any change here. The clone step uses an IN-MEMORY stand-in for the librbd binding
// (MemoryRbd below), not Ceph.
import { afterEach, describe, expect, it } from 'vitest';
import type { Inventory } from '../../../src/inventory/index.js';
import { GatewayApi } from '../../../src/storage/ceph-iscsi/api-client.js';
import { CephIscsiError } from '../../../src/storage/ceph-iscsi/errors.js';
import { CephIscsiProvisioner, type CephIscsiOptions } from '../../../src/storage/ceph-iscsi/provisioner.js';
import type { RbdImages } from '../../../src/storage/ceph-iscsi/rbd.js';
import { RotationError } from '../../../src/storage/builtin.js';
import { rawEvents, tempInventory } from '../../inventory/helpers.js';
import { FakeRbdTargetApi, type FakeRbdTargetApiOptions } from '../../support/fake-rbd-target-api.js';

const MAC = '52:54:00:00:00:01';
const IMAGE = 'hiveboot-525400000001';
const DISK = `rbd/${IMAGE}`;
const T = 'iqn.2026-01.io.hiveboot:w1';
const C = 'iqn.2026-01.io.hiveboot:w1';
const PASSWORD = 'api-Pa55word';

/**
 * IN-MEMORY STAND-IN for the librbd binding (src/ceph/, written separately): images as names, a
 * clone as a record of its parent. The fake gateway asks it whether an image exists.
 */
class MemoryRbd implements RbdImages {
  readonly images = new Map<string, { parent?: string }>([['rbd/debian12', {}]]);
  readonly snapshots = new Set(['rbd/debian12@golden']);
  readonly log: string[] = [];
  /** Set by a test to see what the gateway had been asked when the clone was made. */
  onClone: (() => void) | undefined;

  async ensureClone(o: { pool: string; parent: string; snapshot: string; child: string }): Promise<void> {
    this.log.push(`ensureClone ${o.pool}/${o.parent}@${o.snapshot} -> ${o.child}`);
    this.onClone?.();
    if (!this.snapshots.has(`${o.pool}/${o.parent}@${o.snapshot}`)) throw new Error(`rbd: ${o.pool}/${o.parent}@${o.snapshot} does not exist`);
    if (!this.images.has(`${o.pool}/${o.child}`)) this.images.set(`${o.pool}/${o.child}`, { parent: `${o.pool}/${o.parent}@${o.snapshot}` });
  }

  async remove(pool: string, image: string): Promise<void> {
    this.log.push(`remove ${pool}/${image}`);
    this.images.delete(`${pool}/${image}`);
  }

  exists = (pool: string, image: string) => this.images.has(`${pool}/${image}`);
}

interface Lab {
  inv: Inventory;
  fake: FakeRbdTargetApi;
  rbd: MemoryRbd;
  api: GatewayApi;
  prov: CephIscsiProvisioner;
  /** What StorageService does with a reconcile: a failure goes on the host's timeline, the call succeeds. */
  afterChange(mac: string): Promise<string>;
}

const labs: Lab[] = [];
afterEach(async () => {
  while (labs.length) {
    const lab = labs.pop()!;
    lab.prov.close();
    await lab.fake.stop();
  }
});

/** Two gateways, gw1 (whose API is called) and gw2. */
async function lab(
  o: { fake?: Partial<FakeRbdTargetApiOptions>; prov?: Partial<CephIscsiOptions>; password?: string; timeoutMs?: number } = {},
): Promise<Lab> {
  const { inv } = tempInventory();
  const rbd = new MemoryRbd();
  const fake = new FakeRbdTargetApi({
    thisHost: 'gw1',
    hosts: { gw1: ['192.0.2.11'], gw2: ['192.0.2.12'] },
    user: 'admin',
    password: PASSWORD,
    imageExists: rbd.exists,
    ...o.fake,
  });
  await fake.start();
  const api = new GatewayApi({ urls: [fake.url], user: 'admin', password: o.password ?? PASSWORD, timeoutMs: o.timeoutMs ?? 5000, retryDelayMs: 10 });
  const prov = provisioner(inv, api, rbd, o.prov);
  inv.images.create({ name: 'debian12', location: 'rbd:rbd/debian12@golden' });
  inv.profiles.create({ name: 'k3s', image: 'debian12' });
  const l: Lab = {
    inv,
    fake,
    rbd,
    api,
    prov,
    async afterChange(mac) {
      try {
        return await prov.reconcile(mac);
      } catch (err) {
        inv.events.record({ mac, stage: 'storage', message: 'disk provisioning failed', reason: (err as Error).message });
        return 'failed';
      }
    },
  };
  labs.push(l);
  return l;
}

/** cephIscsi.gateways lists gw2 first. */
function provisioner(inv: Inventory, api: GatewayApi, rbd: RbdImages, over: Partial<CephIscsiOptions> = {}): CephIscsiProvisioner {
  return new CephIscsiProvisioner(inv, api, rbd, {
    gateways: [
      { name: 'gw2', ip: '192.0.2.12' },
      { name: 'gw1', ip: '192.0.2.11' },
    ],
    targetIqnPrefix: 'iqn.2026-01.io.hiveboot',
    initiatorIqnPrefix: 'iqn.2026-01.io.hiveboot',
    mutualChap: false,
    apiUser: 'admin',
    ...over,
  });
}

const register = (l: Lab, mac = MAC, hostname = 'w1') => l.inv.hosts.create({ mac, hostname, profile: 'k3s' });
const calls = (fake: FakeRbdTargetApi) => fake.mutatingCalls().map((c) => `${c.method} ${c.path}`);

describe('ceph-iscsi provisioner: converging one host', () => {
  it('clones first, then makes target, portals on every gateway, disk, LUN, ACL, CHAP and mapping; the host becomes ready', async () => {
    const l = await lab();
    l.rbd.onClone = () => expect(l.fake.mutatingCalls()).toEqual([]);
    register(l);
    expect(await l.prov.reconcile(MAC)).toBe('provisioned');

    expect(l.rbd.log).toEqual([`ensureClone rbd/debian12@golden -> ${IMAGE}`]);
    expect(calls(l.fake)).toEqual([
      `PUT /api/target/${T}`,
      `PUT /api/gateway/${T}/gw1`, // the gateway the API runs on first, as rbd-target-api requires
      `PUT /api/gateway/${T}/gw2`,
      `PUT /api/disk/rbd/${IMAGE}`,
      `PUT /api/targetlun/${T}`,
      `PUT /api/client/${T}/${C}`,
      `PUT /api/clientauth/${T}/${C}`,
      `PUT /api/clientlun/${T}/${C}`,
    ]);
    const forms = l.fake.mutatingCalls().map((c) => c.form);
    expect(forms[1]).toEqual({ ip_address: '192.0.2.11' });
    expect(forms[2]).toEqual({ ip_address: '192.0.2.12' });
    expect(forms[3]).toEqual({ mode: 'create', create_image: 'false' });
    expect(forms[4]).toEqual({ disk: DISK });

    const host = l.inv.hosts.get(MAC);
    expect(host.state).toBe('ready');
    const disk = host.disk!;
    expect(disk).toMatchObject({ source: 'ceph-iscsi', targetIqn: T, lun: 0, portals: ['192.0.2.12:3260', '192.0.2.11:3260'], mutualUser: null });
    expect(disk.chapUser).toMatch(/^[A-Za-z0-9-]{8,64}$/);
    expect(disk.chapSecret).toMatch(/^[A-Za-z0-9]{12,16}$/);

    const target = l.fake.config.targets[T]!;
    expect(Object.keys(target.portals).sort()).toEqual(['gw1', 'gw2']);
    expect(target.portals.gw1!.portal_ip_addresses).toEqual(['192.0.2.11']);
    expect(target.portals.gw2!.portal_ip_addresses).toEqual(['192.0.2.12']);
    expect(target.disks).toEqual({ [DISK]: { lun_id: 0 } });
    expect(target.clients[C]!.luns).toEqual({ [DISK]: { lun_id: 0 } });
    expect(target.clients[C]!.auth).toMatchObject({ username: disk.chapUser, password: disk.chapSecret, mutual_username: '', mutual_password: '' });
    expect(l.fake.deletedImages).toEqual([]);

    const events = rawEvents(l.inv, MAC).filter((e) => e.stage === 'storage');
    expect(events.map((e) => e.message)).toEqual([
      `ceph-iscsi gateways: target ${T} created; portal on gw1 (192.0.2.11); portal on gw2 (192.0.2.12); disk ${DISK} registered; disk ${DISK} exported as a LUN; initiator ${C} allowed; CHAP credentials set; disk mapped to ${C}`,
      `disk provisioned by ceph-iscsi: ${T} lun 0; state pending → ready`,
    ]);
    expect(JSON.stringify(rawEvents(l.inv, MAC))).not.toContain(disk.chapSecret!);
  });

  it('re-running changes nothing: one read of the config, no write', async () => {
    const l = await lab();
    register(l);
    await l.prov.reconcile(MAC);
    const before = l.inv.hosts.get(MAC).disk;
    l.fake.calls.length = 0;
    expect(await l.prov.reconcile(MAC)).toBe('published');
    expect(await l.prov.reconcile(MAC)).toBe('published');
    expect(l.fake.mutatingCalls()).toEqual([]);
    expect(l.fake.calls.map((c) => `${c.method} ${c.path}`)).toEqual(['GET /api/config', 'GET /api/config']);
    expect(l.inv.hosts.get(MAC).disk).toEqual(before);
  });

  it('re-running changes nothing when the gateways keep CHAP passwords encrypted', async () => {
    const l = await lab({ fake: { encryptPasswords: true } });
    register(l);
    await l.prov.reconcile(MAC);
    expect(l.fake.config.targets[T]!.clients[C]!.auth.password_encryption_enabled).toBe(true);
    l.fake.calls.length = 0;
    await l.prov.reconcile(MAC);
    expect(l.fake.mutatingCalls()).toEqual([]);
  });

  it('completes what an earlier run left half done, and only that', async () => {
    const l = await lab();
    register(l);
    // An earlier run (or an operator) got as far as the target, one portal and the disk.
    const api = (method: 'put', path: string[], form?: Record<string, string>) => l.api[method](path, form);
    await l.rbd.ensureClone({ pool: 'rbd', parent: 'debian12', snapshot: 'golden', child: IMAGE });
    await api('put', ['target', T]);
    await api('put', ['gateway', T, 'gw1'], { ip_address: '192.0.2.11' });
    await api('put', ['disk', 'rbd', IMAGE], { mode: 'create', create_image: 'false' });
    l.fake.calls.length = 0;

    expect(await l.prov.reconcile(MAC)).toBe('provisioned');
    expect(calls(l.fake)).toEqual([
      `PUT /api/gateway/${T}/gw2`,
      `PUT /api/targetlun/${T}`,
      `PUT /api/client/${T}/${C}`,
      `PUT /api/clientauth/${T}/${C}`,
      `PUT /api/clientlun/${T}/${C}`,
    ]);
    expect(l.inv.hosts.get(MAC).state).toBe('ready');
  });

  it('a run stopped by a gateway going down leaves the host pending; the next run finishes it', async () => {
    const l = await lab();
    register(l);
    // gw2's iSCSI service is down: its portal can be made (the ping only checks defined gateways),
    // but every later change is refused.
    l.fake.setGateway('gw2', { iscsi: 'down' });
    expect(await l.afterChange(MAC)).toBe('failed');
    const host = l.inv.hosts.get(MAC);
    expect(host.state).toBe('pending');
    expect(host.disk).toBeNull();
    const events = rawEvents(l.inv, MAC).filter((e) => e.stage === 'storage');
    expect(events.map((e) => e.message)).toEqual([
      `ceph-iscsi gateways: target ${T} created; portal on gw1 (192.0.2.11); portal on gw2 (192.0.2.12); disk ${DISK} registered`,
      'disk provisioning failed',
    ]);
    const failure = events[1]!;
    expect(failure.reason).toMatch(/^Ceph iSCSI gateway unavailable: gw2 \(its iSCSI service \(port 3260\) is down\)/);
    expect(failure.reason).toContain(`PUT /api/targetlun/${T} answered 503`);

    l.fake.setGateway('gw2', { iscsi: 'up' });
    l.fake.calls.length = 0;
    expect(await l.afterChange(MAC)).toBe('provisioned');
    expect(calls(l.fake)).toEqual([
      `PUT /api/targetlun/${T}`,
      `PUT /api/client/${T}/${C}`,
      `PUT /api/clientauth/${T}/${C}`,
      `PUT /api/clientlun/${T}/${C}`,
    ]);
  });

  it('puts back what was changed behind its back: a changed CHAP secret, a lost mapping, an old initiator', async () => {
    const l = await lab();
    register(l);
    await l.prov.reconcile(MAC);
    const disk = l.inv.hosts.get(MAC).disk!;
    await l.api.put(['clientauth', T, C], { username: disk.chapUser!, password: 'Changed-by-hand1' });
    await l.api.delete(['clientlun', T, C], { disk: DISK });
    await l.api.put(['client', T, 'iqn.2026-01.io.hiveboot:old']);
    l.fake.calls.length = 0;
    expect(await l.prov.reconcile(MAC)).toBe('published');
    expect(calls(l.fake)).toEqual([
      `DELETE /api/client/${T}/iqn.2026-01.io.hiveboot:old`,
      `PUT /api/clientauth/${T}/${C}`,
      `PUT /api/clientlun/${T}/${C}`,
    ]);
    expect(l.fake.config.targets[T]!.clients[C]!.auth.password).toBe(disk.chapSecret);
  });

  it('waits for a profile image; refuses one that is not an RBD snapshot', async () => {
    const l = await lab();
    l.inv.profiles.create({ name: 'bare' });
    l.inv.hosts.create({ mac: MAC, hostname: 'w1', profile: 'bare' });
    expect(await l.prov.reconcile(MAC)).toBe('waiting');
    l.inv.images.create({ name: 'file', location: '/srv/images/debian12.raw' });
    l.inv.profiles.update('bare', { image: 'file' });
    await expect(l.prov.reconcile(MAC)).rejects.toThrow(/not an RBD snapshot \(rbd:pool\/image@snapshot\)/);
    expect(l.fake.mutatingCalls()).toEqual([]);
  });

  it('leaves hosts whose disk it did not make alone', async () => {
    const l = await lab();
    l.inv.hosts.create({ mac: MAC, hostname: 'w1', profile: 'k3s', disk: { portals: ['192.0.2.50:3260'], targetIqn: 'iqn.2003-01.org.example:manual' } });
    expect(await l.prov.reconcile(MAC)).toBe('not-ours');
    await expect(l.prov.rotateChap(MAC)).rejects.toBeInstanceOf(RotationError);
    expect(l.fake.calls).toEqual([]);
  });
});

describe('ceph-iscsi provisioner: CHAP rotation', () => {
  it('gives the host a new secret: the gateways take it (one call), then the inventory', async () => {
    const l = await lab();
    register(l);
    await l.prov.reconcile(MAC);
    const before = l.inv.hosts.get(MAC).disk!;
    l.fake.calls.length = 0;
    const after = (await l.prov.rotateChap(MAC)).disk!;
    expect(after.chapUser).toBe(before.chapUser);
    expect(after.chapSecret).not.toBe(before.chapSecret);
    expect(calls(l.fake)).toEqual([`PUT /api/clientauth/${T}/${C}`]);
    expect(l.fake.config.targets[T]!.clients[C]!.auth.password).toBe(after.chapSecret);
    l.fake.calls.length = 0;
    await l.prov.reconcile(MAC);
    expect(l.fake.mutatingCalls()).toEqual([]);
  });

  it('rotates the mutual secret too, and keeps the old secrets when the gateways refuse', async () => {
    const l = await lab({ prov: { mutualChap: true } });
    register(l);
    await l.prov.reconcile(MAC);
    const before = l.inv.hosts.get(MAC).disk!;
    expect(before.mutualUser).toMatch(/^hb-/);
    expect(l.fake.config.targets[T]!.clients[C]!.auth.mutual_password).toBe(before.mutualSecret);
    const after = (await l.prov.rotateChap(MAC)).disk!;
    expect(after.mutualSecret).not.toBe(before.mutualSecret);
    expect(l.fake.config.targets[T]!.clients[C]!.auth.mutual_password).toBe(after.mutualSecret);

    l.fake.setGateway('gw2', { api: 'down' });
    await expect(l.prov.rotateChap(MAC)).rejects.toThrow(/gw2 \(its rbd-target-api cannot be reached\)/);
    expect(l.inv.hosts.get(MAC).disk!.chapSecret).toBe(after.chapSecret);
  });
});

describe('ceph-iscsi provisioner: teardown', () => {
  it('after removal: unmaps, removes the client, the LUN, the disk (image kept) and the target; again is a no-op', async () => {
    const l = await lab();
    register(l);
    await l.prov.reconcile(MAC);
    l.inv.hosts.remove(MAC);
    l.fake.calls.length = 0;
    await l.prov.release(MAC, { deleteData: false });
    expect(calls(l.fake)).toEqual([
      `DELETE /api/clientlun/${T}/${C}`,
      `DELETE /api/client/${T}/${C}`,
      `DELETE /api/targetlun/${T}`,
      `DELETE /api/disk/rbd/${IMAGE}`,
      `DELETE /api/target/${T}`,
    ]);
    expect(l.fake.mutatingCalls()[3]!.form).toEqual({ preserve_image: 'true' });
    expect(l.fake.config.targets).toEqual({});
    expect(l.fake.config.disks).toEqual({});
    expect(l.fake.deletedImages).toEqual([]);
    expect(l.rbd.exists('rbd', IMAGE)).toBe(true);
    expect(rawEvents(l.inv, MAC).at(-1)!.message).toMatch(/^ceph-iscsi gateways: disk .* unmapped from .*; target .* deleted$/);

    l.fake.calls.length = 0;
    await l.prov.release(MAC, { deleteData: true });
    expect(l.fake.mutatingCalls()).toEqual([]);
    expect(l.rbd.exists('rbd', IMAGE)).toBe(false);
  });

  it('tolerates parts already gone, whether seen in the config or only when deleting', async () => {
    const l = await lab();
    register(l);
    await l.prov.reconcile(MAC);
    await l.api.delete(['clientlun', T, C], { disk: DISK });
    await l.api.delete(['client', T, C]);
    // Another party removes the target LUN between our read and our delete.
    l.fake.onRequest = (method, path) => {
      if (method === 'DELETE' && path === `/api/targetlun/${T}`) delete l.fake.config.targets[T]!.disks[DISK];
    };
    await l.prov.release(MAC, { deleteData: false });
    expect(l.fake.config.targets).toEqual({});
    expect(l.fake.config.disks).toEqual({});
  });

  it('a disabled host loses its export but keeps its disk record; enabling it exports the same disk with the same secret', async () => {
    const l = await lab();
    register(l);
    await l.prov.reconcile(MAC);
    const disk = l.inv.hosts.get(MAC).disk!;
    l.inv.hosts.update(MAC, { state: 'disabled' });
    expect(await l.prov.reconcile(MAC)).toBe('withdrawn');
    expect(l.fake.config.targets).toEqual({});
    expect(l.inv.hosts.get(MAC).disk).toEqual(disk);
    l.inv.hosts.update(MAC, { state: 'ready' });
    l.rbd.log.length = 0;
    expect(await l.prov.reconcile(MAC)).toBe('published');
    expect(l.rbd.log).toEqual([`ensureClone rbd/debian12@golden -> ${IMAGE}`]);
    expect(l.fake.config.targets[T]!.clients[C]!.auth.password).toBe(disk.chapSecret);
  });

  it('refuses to tear down while the host is logged in, saying why', async () => {
    const l = await lab();
    register(l);
    await l.prov.reconcile(MAC);
    l.fake.loggedIn.add(`${T}|${C}`);
    l.inv.hosts.remove(MAC);
    l.fake.calls.length = 0;
    const err = await l.prov.release(MAC, { deleteData: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CephIscsiError);
    expect((err as CephIscsiError).problem).toBe('client-logged-in');
    expect((err as Error).message).toBe(`initiator ${C} is logged in to ${T} (on gw1, gw2): its disk is not taken from a running host; power the host off first`);
    expect(l.fake.mutatingCalls()).toEqual([]);
    expect(l.rbd.exists('rbd', IMAGE)).toBe(true);
    // Logged out, it goes.
    l.fake.loggedIn.clear();
    await l.prov.release(MAC, { deleteData: true });
    expect(l.fake.config.targets).toEqual({});
    expect(l.rbd.exists('rbd', IMAGE)).toBe(false);
  });
});

describe('ceph-iscsi provisioner: errors say what to do', () => {
  const failure = async (l: Lab) => {
    register(l);
    const err = await l.prov.reconcile(MAC).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CephIscsiError);
    expect(l.inv.hosts.get(MAC).state).toBe('pending');
    return err as CephIscsiError;
  };

  it('wrong password: names the user and where the password must match, never the password', async () => {
    const l = await lab({ password: 'not-the-Password' });
    const err = await failure(l);
    expect(err.problem).toBe('bad-credentials');
    expect(err.message).toMatch(/refused user "admin": cephIscsi.user and the password in cephIscsi.passwordFile must equal api_user and api_password/);
    expect(err.message).toContain('username/password mismatch with the configuration file');
    expect(err.message).not.toContain('not-the-Password');
    expect(err.message).not.toContain(PASSWORD);
  });

  it('caller not in trusted_ip_list: names the address and trusted_ip_list', async () => {
    const err = await failure(await lab({ fake: { callerAddress: '192.0.2.99' } }));
    expect(err.problem).toBe('not-trusted');
    expect(err.message).toMatch(/^the Ceph iSCSI gateways refuse API calls from 192\.0\.2\.99: add 192\.0\.2\.99 to trusted_ip_list in \/etc\/ceph\/iscsi-gateway\.cfg/);
  });

  it('fewer gateways than minimum_gateways: says so before mapping anything', async () => {
    const l = await lab({ prov: { gateways: [{ name: 'gw1', ip: '192.0.2.11' }] } });
    const err = await failure(l);
    expect(err.problem).toBe('minimum-gateways');
    expect(err.message).toMatch(/need at least 2 gateways \(minimum_gateways in \/etc\/ceph\/iscsi-gateway.cfg\).*cephIscsi.gateways lists 1/);
    expect(calls(l.fake).at(-1)).toBe(`PUT /api/targetlun/${T}`);
  });

  it('a gateway whose API is down: names it', async () => {
    const l = await lab();
    l.fake.setGateway('gw2', { api: 'down' });
    const err = await failure(l);
    expect(err.problem).toBe('gateway-unavailable');
    expect(err.message).toMatch(/^gateway gw2 cannot be added as a portal: its rbd-target-api does not answer/);
  });

  it('the API is on a gateway the config does not list', async () => {
    const err = await failure(await lab({ fake: { thisHost: 'gw9', hosts: { gw1: ['192.0.2.11'], gw2: ['192.0.2.12'], gw9: ['192.0.2.19'] } } }));
    expect(err.problem).toBe('not-a-gateway');
    expect(err.message).toMatch(/runs on "gw9", which cephIscsi.gateways does not list/);
  });

  it('a portal on another address than the config says', async () => {
    const l = await lab();
    register(l);
    await l.prov.reconcile(MAC);
    const moved = provisioner(l.inv, l.api, l.rbd, {
      gateways: [
        { name: 'gw2', ip: '192.0.2.22' },
        { name: 'gw1', ip: '192.0.2.11' },
      ],
    });
    await expect(moved.reconcile(MAC)).rejects.toThrow(/gateway gw2 is a portal of .* on 192\.0\.2\.12, not on 192\.0\.2\.22/);
  });

  it('the host\'s image already on another target: names that target', async () => {
    const l = await lab();
    const other = 'iqn.2003-01.org.example:someone-else';
    await l.rbd.ensureClone({ pool: 'rbd', parent: 'debian12', snapshot: 'golden', child: IMAGE });
    await l.api.put(['target', other]);
    await l.api.put(['gateway', other, 'gw1'], { ip_address: '192.0.2.11' });
    await l.api.put(['gateway', other, 'gw2'], { ip_address: '192.0.2.12' });
    await l.api.put(['disk', 'rbd', IMAGE], { mode: 'create', create_image: 'false' });
    await l.api.put(['targetlun', other], { disk: DISK });
    const err = await failure(l);
    expect(err.problem).toBe('disk-in-use');
    expect(err.message).toMatch(new RegExp(`already exported by another target, ${other.replace(/\./g, '\\.')}`));
  });

  it('the gateways refuse the CHAP credentials: says what they accept', async () => {
    const l = await lab();
    register(l);
    // A disk of ours whose user the inventory accepts but the gateways do not ('+').
    l.inv.hosts.attachDisk(MAC, { portals: ['192.0.2.12:3260'], targetIqn: T, chapUser: 'user.with+plus', chapSecret: 'Secret-123456' }, 'ceph-iscsi', { stage: 'test' });
    const err = await l.prov.reconcile(MAC).catch((e: unknown) => e);
    expect((err as CephIscsiError).problem).toBe('bad-chap');
    expect((err as Error).message).toMatch(/^the gateways refused the host's CHAP credentials \(they take users of 8-64 characters/);
    expect((err as Error).message).toContain('Invalid username');
    expect((err as Error).message).not.toContain('Secret-123456');
  });
});

describe('ceph-iscsi provisioner: an unreachable or hung API', () => {
  it('keeps the host pending with the reason on its timeline; provisioned hosts stay ready; it catches up when the API is back', async () => {
    const l = await lab({ timeoutMs: 1000 });
    register(l);
    expect(await l.afterChange(MAC)).toBe('provisioned');
    const port = l.fake.port;
    await l.fake.stop();

    const W2 = '52:54:00:00:00:02';
    register(l, W2, 'w2');
    expect(await l.afterChange(W2)).toBe('failed');
    expect(l.inv.hosts.get(W2).state).toBe('pending');
    const reason = rawEvents(l.inv, W2).find((e) => e.message === 'disk provisioning failed')!.reason!;
    expect(reason).toMatch(/^Ceph iSCSI gateway API unreachable: check cephIscsi.apiUrls and that rbd-target-api runs \(GET \/api\/config got no answer: cannot reach rbd-target-api \(127\.0\.0\.1:\d+: ECONNREFUSED/);
    expect(reason).not.toContain(PASSWORD);
    // The host provisioned before keeps its disk and boots from local state.
    expect(l.inv.hosts.get(MAC)).toMatchObject({ state: 'ready', disk: { source: 'ceph-iscsi', targetIqn: T } });

    await l.fake.start(port);
    expect(await l.afterChange(W2)).toBe('provisioned');
    expect(l.inv.hosts.get(W2).state).toBe('ready');
  });

  it('a call that hangs for one host does not hold up another', async () => {
    const l = await lab({ timeoutMs: 1500 });
    const W3 = '52:54:00:00:00:03';
    const W4 = '52:54:00:00:00:04';
    register(l, W3, 'w3');
    register(l, W4, 'w4');
    l.fake.hangWhen = (method, path) => method === 'PUT' && path === '/api/target/iqn.2026-01.io.hiveboot:w3';
    const order: string[] = [];
    const w3 = l.afterChange(W3).then((r) => order.push(`w3 ${r}`));
    const w4 = l.afterChange(W4).then((r) => order.push(`w4 ${r}`));
    await Promise.all([w3, w4]);
    expect(order).toEqual(['w4 provisioned', 'w3 failed']);
    const reason = rawEvents(l.inv, W3).find((e) => e.message === 'disk provisioning failed')!.reason!;
    expect(reason).toMatch(/PUT \/api\/target\/iqn.2026-01.io.hiveboot:w3 got no answer: no answer within 1500 ms \(the change may or may not have been made\)/);
    // Not retried: a change is sent once per run.
    expect(l.fake.calls.filter((c) => c.path === '/api/target/iqn.2026-01.io.hiveboot:w3').map((c) => c.status)).toEqual([0]);

    l.fake.hangWhen = undefined;
    expect(await l.afterChange(W3)).toBe('provisioned');
  });

  it('serializes the calls for one host: a reconcile and a rotation never interleave', async () => {
    const l = await lab();
    register(l);
    const [first, second] = await Promise.all([l.prov.reconcile(MAC), l.prov.reconcile(MAC)]);
    expect([first, second]).toEqual(['provisioned', 'published']);
    expect(calls(l.fake).filter((c) => c.startsWith('PUT /api/target/'))).toHaveLength(1);
  });
});

describe('ceph-iscsi provisioner: start-up', () => {
  it('publishAll reconciles every host that is or may become ours, and reports failures per host', async () => {
    const l = await lab();
    register(l);
    register(l, '52:54:00:00:00:02', 'w2');
    l.inv.hosts.create({ mac: '52:54:00:00:00:03', hostname: 'w3', profile: 'k3s', disk: { portals: ['192.0.2.50:3260'], targetIqn: 'iqn.2003-01.org.example:manual' } });
    const failed: string[] = [];
    expect(await l.prov.publishAll((mac) => failed.push(mac))).toBe(2);
    expect(failed).toEqual([]);
    // A golden snapshot that does not exist fails that host's clone only.
    l.inv.images.create({ name: 'gone', location: 'rbd:rbd/gone@snap' });
    l.inv.profiles.create({ name: 'broken', image: 'gone' });
    l.inv.hosts.create({ mac: '52:54:00:00:00:04', hostname: 'w4', profile: 'broken' });
    l.fake.calls.length = 0;
    expect(await l.prov.publishAll((mac) => failed.push(mac))).toBe(2);
    expect(failed).toEqual(['52:54:00:00:00:04']);
    expect(l.fake.mutatingCalls()).toEqual([]);
  });
});
