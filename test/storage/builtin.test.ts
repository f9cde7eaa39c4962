// Provisioning through the real daemon: register a host with a profile whose image is set, and its
// copy-on-write disk, target, ACL and CHAP credentials exist at once; real initiators (QEMU's libiscsi
// driver via qemu-io, libiscsi's iscsi-inq) use them; rotation and removal behave as an operator expects.
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tool } from '../support/tool.js';
import { daemonApi, startTestDaemon, type TestDaemon } from '../http/helpers.js';

const GOLDEN_SIZE = 16 * 1024 * 1024;
const K3S_TOKEN = 'K10abcdef0123456789::server:s3cr3tt0k3n';


interface DiskView {
  source: string;
  portals: string[];
  targetIqn: string;
  lun: number;
  chapUser: string;
  hasChapSecret: boolean;
}

describe('builtin storage: registration gives a host its own disk', () => {
  let t: TestDaemon;
  let golden: string;
  let goldenSha: string;
  let tokenFile: string;

  const api = (method: string, path: string, body?: unknown) => daemonApi(t)(method, path, body);

  /** The CHAP secret a host is given: only its boot script carries it. */
  const bootScript = async (mac: string) => (await fetch(`${t.url}/boot/${mac}.ipxe`)).text();
  const secretOf = (script: string) => /password\s+(\S+)/.exec(script)?.[1] ?? /password=(\S+)/.exec(script)?.[1];

  const qemuIo = (disk: DiskView, secret: string, initiator: string, commands: string[]) => {
    const [portal] = disk.portals;
    const opts = `driver=iscsi,transport=tcp,portal=${portal},target=${disk.targetIqn},lun=${disk.lun},user=${disk.chapUser},password-secret=sec0,initiator-name=${initiator}`;
    return tool('qemu-io', ['--object', `secret,id=sec0,data=${secret}`, '--image-opts', opts, ...commands.flatMap((c) => ['-c', c])]);
  };

  beforeAll(async () => {
    const tokenDir = mkdtempSync(join(tmpdir(), 'hiveboot-k3s-'));
    tokenFile = join(tokenDir, 'k3s-token');
    writeFileSync(tokenFile, `${K3S_TOKEN}\n`, { mode: 0o600 });
    t = await startTestDaemon({ boot: { defaultProfile: 'debian-k3s' }, k3s: { serverUrl: 'https://10.0.0.10:6443', tokenFile } });
    golden = join(t.stateDir, 'golden.raw');
    const pattern = Buffer.alloc(GOLDEN_SIZE);
    for (let i = 0; i < GOLDEN_SIZE; i += 4) pattern.writeUInt32LE(i, i);
    writeFileSync(golden, pattern);
    goldenSha = createHash('sha256').update(pattern).digest('hex');
    expect((await api('POST', '/v1/images', { name: 'debian12', location: golden })).status).toBe(201);
    expect((await api('POST', '/v1/profiles', { name: 'debian-k3s', template: 'sanboot', image: 'debian12' })).status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await t?.cleanup();
  });

  it('provisions disk, target and credentials at registration; the boot script carries them', async () => {
    const started = Date.now();
    const res = await api('POST', '/v1/hosts', { mac: '52:54:00:00:00:01', hostname: 'w1', profile: 'debian-k3s' });
    expect(res.status).toBe(201);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(res.json.state).toBe('ready');
    const disk = res.json.disk as DiskView;
    expect(disk.source).toBe('builtin');
    expect(disk.targetIqn).toBe('iqn.2026-01.io.hiveboot:w1');
    expect(disk.portals).toEqual([`127.0.0.1:${t.daemon.storage.portalAddress!.port}`]);
    expect(disk.chapUser).toMatch(/^[A-Za-z0-9-]{8,64}$/);
    expect(disk.hasChapSecret).toBe(true);
    expect(JSON.stringify(res.json)).not.toMatch(/secret"\s*:\s*"/i);

    const script = await bootScript('52:54:00:00:00:01');
    expect(script).toContain(`iscsi:127.0.0.1::${t.daemon.storage.portalAddress!.port}:0:iqn.2026-01.io.hiveboot:w1`);
    const secret = secretOf(script);
    expect(secret).toMatch(/^[A-Za-z0-9]{12,16}$/);
    expect(statSync(join(t.stateDir, 'disks', '525400000001.overlay')).isFile()).toBe(true);
  });

  it('serves the golden image through the host\'s LUN, keeps its writes to itself, and never changes the golden', async () => {
    const w2 = await api('POST', '/v1/hosts', { mac: '52:54:00:00:00:02', hostname: 'w2', profile: 'debian-k3s' });
    const hosts = {
      w1: { disk: (await api('GET', '/v1/hosts/52:54:00:00:00:01')).json.disk as DiskView, secret: secretOf(await bootScript('52:54:00:00:00:01'))! },
      w2: { disk: w2.json.disk as DiskView, secret: secretOf(await bootScript('52:54:00:00:00:02'))! },
    };
    // The golden's pattern: the uint32 at offset 4096 is 4096 (00 10 00 00).
    const read = await qemuIo(hosts.w1.disk, hosts.w1.secret, 'iqn.2026-01.io.hiveboot:w1', ['read -v 4096 8']);
    expect(read.code, read.out).toBe(0);
    expect(read.out).toMatch(/00001000:\s+00 10 00 00 04 10 00 00/);

    const write = await qemuIo(hosts.w1.disk, hosts.w1.secret, 'iqn.2026-01.io.hiveboot:w1', ['write -P 0xab 1M 64k', 'flush', 'read -P 0xab 1M 64k']);
    expect(write.code, write.out).toBe(0);
    expect(write.out).not.toMatch(/Pattern verification failed/);
    // The other host still sees the golden data at the same place.
    const other = await qemuIo(hosts.w2.disk, hosts.w2.secret, 'iqn.2026-01.io.hiveboot:w2', ['read -v 1M 4']);
    expect(other.out).toMatch(/00100000:\s+00 00 10 00/);
    // w1's initiator cannot use w2's disk, even with w2's credentials.
    const cross = await qemuIo(hosts.w2.disk, hosts.w2.secret, 'iqn.2026-01.io.hiveboot:w1', ['read 0 512']);
    expect(cross.code).not.toBe(0);
    expect(cross.out).toMatch(/Authorization failure/);
    expect(createHash('sha256').update(readFileSync(golden)).digest('hex')).toBe(goldenSha);
  });

  it('gives a host its own config only while it is logged in to its disk from the address it booted from', async () => {
    const mac = '52:54:00:00:00:01';
    const script = await bootScript(mac); // the host's boot: its address is now 127.0.0.1
    const refused = await fetch(`${t.url}/v1/hosts/self/config`);
    expect(refused.status).toBe(403);
    expect(await refused.text()).not.toContain(K3S_TOKEN);
    let events = (await api('GET', `/v1/hosts/${mac}/events`)).json.items as { stage: string; message: string; reason: string | null }[];
    expect(events.find((e) => e.message === 'config refused')?.reason).toMatch(/not logged in/);

    // The host's initiator holds its session while it asks (qemu-io sleeps inside an open session).
    const disk = (await api('GET', `/v1/hosts/${mac}`)).json.disk as DiskView;
    const opts = `driver=iscsi,transport=tcp,portal=${disk.portals[0]},target=${disk.targetIqn},lun=0,user=${disk.chapUser},password-secret=sec0,initiator-name=iqn.2026-01.io.hiveboot:w1`;
    const session = spawn('qemu-io', ['--object', `secret,id=sec0,data=${secretOf(script)}`, '--image-opts', opts, '-c', 'sleep 5000'], { stdio: 'ignore' });
    try {
      let res: Response | undefined;
      for (let i = 0; i < 50; i++) {
        res = await fetch(`${t.url}/v1/hosts/self/config`);
        if (res.status === 200) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(res!.status).toBe(200);
      const config = (await res!.json()) as { hostname: string; nodeName: string; dropIn: { path: string; content: string } };
      expect(config.hostname).toBe('w1');
      expect(config.dropIn.path).toBe('/etc/rancher/k3s/config.yaml.d/50-hiveboot.yaml');
      expect(config.dropIn.content).toContain('server: https://10.0.0.10:6443');
      expect(config.dropIn.content).toContain(`token: ${K3S_TOKEN}`);
      expect(config.dropIn.content).toContain('node-name: w1');
      const reported = await fetch(`${t.url}/v1/hosts/self/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ stage: 'os-up', message: 'Debian up' }),
      });
      expect(reported.status).toBe(204);
    } finally {
      session.kill('SIGKILL');
    }
    events = (await api('GET', `/v1/hosts/${mac}/events`)).json.items as { stage: string; message: string; reason: string | null }[];
    const stages = events.map((e) => e.stage).reverse();
    expect(stages).toContain('iscsi-login');
    expect(stages.indexOf('config-fetched')).toBeLessThan(stages.lastIndexOf('os-up'));
    expect(t.log.text()).not.toContain(K3S_TOKEN);
  });

  it('rotating the CHAP secret refuses the old one and accepts the new one', async () => {
    const mac = '52:54:00:00:00:01';
    const before = secretOf(await bootScript(mac))!;
    const res = await api('POST', `/v1/hosts/${mac}/disk/rotate-chap`);
    expect(res.status).toBe(200);
    const after = secretOf(await bootScript(mac))!;
    expect(after).not.toBe(before);
    const disk = res.json.disk as DiskView;
    const old = await qemuIo(disk, before, 'iqn.2026-01.io.hiveboot:w1', ['read 0 512']);
    expect(old.code).not.toBe(0);
    expect(old.out).toMatch(/Authentication failure/);
    const fresh = await qemuIo(disk, after, 'iqn.2026-01.io.hiveboot:w1', ['read -P 0xab 1M 64k']);
    expect(fresh.code, fresh.out).toBe(0);
  });

  it('removing a host withdraws its target but keeps its data unless asked', async () => {
    const mac = '52:54:00:00:00:02';
    const disk = (await api('GET', `/v1/hosts/${mac}`)).json.disk as DiskView;
    const secret = secretOf(await bootScript(mac))!;
    expect((await api('DELETE', `/v1/hosts/${mac}`)).status).toBe(204);
    const gone = await qemuIo(disk, secret, 'iqn.2026-01.io.hiveboot:w2', ['read 0 512']);
    expect(gone.code).not.toBe(0);
    expect(gone.out).toMatch(/Not found|not found|Authorization|Authentication/);
    expect(existsSync(join(t.stateDir, 'disks', '525400000002.overlay'))).toBe(true);

    expect((await api('DELETE', '/v1/hosts/52:54:00:00:00:01?deleteDisk=true')).status).toBe(204);
    expect(existsSync(join(t.stateDir, 'disks', '525400000001.overlay'))).toBe(false);
  });

  it('keeps secrets out of the log and in a 0600 database', async () => {
    const log = t.log.text();
    for (const mac of ['52:54:00:00:00:01', '52:54:00:00:00:02']) expect(log).not.toContain(mac.replace(/:/g, '') + 'secret');
    expect(log).not.toMatch(/chapSecret|"secret"/);
    expect(statSync(join(t.stateDir, 'hiveboot.db')).mode & 0o777).toBe(0o600);
  });

  it('a profile without an image leaves the host pending, and a bad image path is on its timeline', async () => {
    expect((await api('POST', '/v1/images', { name: 'missing', location: join(t.stateDir, 'nope.raw') })).status).toBe(201);
    expect((await api('POST', '/v1/profiles', { name: 'broken', template: 'sanboot', image: 'missing' })).status).toBe(201);
    const res = await api('POST', '/v1/hosts', { mac: '52:54:00:00:00:03', hostname: 'w3', profile: 'broken' });
    expect(res.status).toBe(201);
    expect(res.json.state).toBe('pending');
    const events = (await api('GET', '/v1/hosts/52:54:00:00:00:03/events')).json.items as { message: string; reason: string | null }[];
    const failure = events.find((e) => e.message === 'disk provisioning failed');
    expect(failure?.reason).toContain('nope.raw');
  });
});
