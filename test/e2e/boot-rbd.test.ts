import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labApi, routerLab, waitForMarker, type LabApi } from '../support/boot-lab.js';
import { cephDevAvailable } from '../support/ceph-cluster.js';
import { NetLab } from '../support/netns.js';
import { startGuest } from '../support/qemu.js';
import { describeTimeline, timeline as readTimeline } from '../support/timeline.js';
import { ensureGoldenImage, type GoldenImage } from '../support/vm.js';

/**
 * The boot of boot-bios-proxy.test.ts with the disk in Ceph: a single-node cluster runs inside the
 * lab's server namespace (scripts/ceph-dev-cluster.sh, fresh for this test), the CLI imports the
 * golden image into RBD and snapshots it (`hiveboot image add --rbd`), registration clones the
 * snapshot for the host, and the built-in target serves the clone through librbd. A BIOS guest boots
 * Debian from it to the first-boot agent's marker; afterwards the golden image in RBD still has the
 * file's checksum — the host's writes all went to its clone.
 */
const MAC = '52:54:00:e2:00:0b';
const HOSTNAME = 'e2e-rbd';
const ROOT = resolve(import.meta.dirname, '../..');
const NETBOOT = join(ROOT, 'netboot');
const CLUSTER = join(ROOT, 'scripts/ceph-dev-cluster.sh');

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe.skipIf(!NetLab.available() || !cephDevAvailable())('power on → Debian up from an RBD clone (BIOS, proxyDHCP, Ceph)', () => {
  const lab = new NetLab();
  let dir: string;
  let cephDir: string;
  let srv: string;
  let dbPath: string;
  let daemon: ChildProcess;
  let api: LabApi;
  let golden: GoldenImage;
  let ceph: { conf: string; keyring: string; admin: string };

  const rbd = (...args: string[]) => lab.run(srv, 'rbd', ['-c', ceph.conf, '--keyring', ceph.admin, '--id', 'admin', ...args], { timeoutMs: 300_000 });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hb-e2e-rbd-'));
    cephDir = join(dir, 'ceph');
    ({ image: golden } = await ensureGoldenImage(join(dir, 'build-image.log')));
    ({ srv } = await routerLab(lab, { net: 94, taps: ['tap0'], dir }));

    const t0 = performance.now();
    const up = await lab.run(srv, 'bash', [CLUSTER, 'up', '--dir', cephDir, '--fresh'], { timeoutMs: 300_000 });
    expect(up.code, up.stderr + up.stdout).toBe(0);
    ceph = { conf: join(cephDir, 'ceph.conf'), keyring: join(cephDir, 'client.hiveboot.keyring'), admin: join(cephDir, 'admin.keyring') };
    console.log(`Ceph in the lab namespace: up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    ({ dbPath, process: daemon } = await lab.hiveboot(
      srv,
      dir,
      `http: { listen: 0.0.0.0, port: 8080 }
log: { level: debug }
boot: { retrySeconds: 2 }
dhcp: { mode: proxy, interfaces: [br0] }
tftp: { root: ${NETBOOT} }
iscsi: { portals: [10.94.0.1] }
k3s: { serverUrl: "https://10.94.0.10:6443" }
ceph: { conf: ${ceph.conf}, client: client.hiveboot, keyring: ${ceph.keyring}, pool: hiveboot }
`,
    ));
    api = labApi(lab, srv, 'http://10.94.0.1:8080', join(dir, 'state'));

    // The operator's step: the CLI, on the gateway (here: in the namespace), with the config's cluster.
    const t1 = performance.now();
    const token = readFileSync(join(dir, 'state', 'api-token'), 'utf8').trim();
    const add = await lab.run(
      srv,
      process.execPath,
      [join(ROOT, 'bin/hiveboot.js'), 'image', 'add', 'debian12', golden.path, '--rbd', 'hiveboot/debian12', '--url', 'http://10.94.0.1:8080', '--token', token, '--config', join(dir, 'hiveboot.yaml')],
      { timeoutMs: 600_000 },
    );
    expect(add.code, add.stderr + add.stdout).toBe(0);
    expect(add.stdout).toContain('registered image debian12: rbd:hiveboot/debian12@golden');
    console.log(`golden image imported into RBD in ${((performance.now() - t1) / 1000).toFixed(1)} s: ${add.stdout.trim()}`);
    expect((await api('POST', '/v1/profiles', { name: 'debian-k3s', template: 'sanboot', image: 'debian12' })).status).toBe(201);
  }, 40 * 60_000);

  afterAll(async () => {
    daemon?.kill('SIGTERM');
    if (srv && cephDir) await lab.run(srv, 'bash', [CLUSTER, 'down', '--dir', cephDir, '--purge'], { timeoutMs: 120_000 });
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }, 5 * 60_000);

  it('boots Debian from its own RBD clone; the golden image in RBD is unchanged afterwards', async () => {
    const started = performance.now();
    const host = await api('POST', '/v1/hosts', { mac: MAC, hostname: HOSTNAME, profile: 'debian-k3s' });
    expect(host.status).toBe(201);
    expect(host.json.state).toBe('ready');
    console.log(`registration to bootable RBD clone: ${(performance.now() - started).toFixed(0)} ms`);
    const info = await rbd('info', 'hiveboot/hiveboot-525400e2000b');
    expect(info.stdout).toMatch(/parent: hiveboot\/debian12@golden/);

    const serial = join(dir, 'serial.log');
    const guest = startGuest(lab, { ns: srv, tap: 'tap0', mac: MAC, firmware: 'bios', workDir: dir, memoryMiB: 1024, serialLog: serial });
    const bootStarted = Date.now();
    const consoleText = await waitForMarker(serial, 12 * 60_000);
    const timeline = readTimeline(dbPath, MAC);
    const text = describeTimeline(timeline);
    expect(consoleText, `${consoleText.slice(-3000)}\n---\n${text}`).toMatch(new RegExp(`HIVEBOOT-READY host=${HOSTNAME} node=${HOSTNAME}`));
    expect(timeline.some((e) => e.stage === 'iscsi-login' && /^iSCSI login from/.test(e.message)), text).toBe(true);
    expect(timeline.some((e) => e.stage === 'config-applied'), text).toBe(true);
    console.log(`e2e RBD boot: power on → marker in ${((Date.now() - bootStarted) / 1000).toFixed(0)} s`);

    // The guest wrote to its disk (journal, machine-id, the K3s drop-in): the clone has data of its own.
    const du = await rbd('du', 'hiveboot/hiveboot-525400e2000b');
    expect(du.code, du.stderr).toBe(0);
    const exited = new Promise((r) => guest.once('close', r));
    guest.kill('SIGKILL');
    await exited;

    // The golden image (head and snapshot) still reads back as the file it was imported from.
    const want = await sha256File(golden.path);
    for (const spec of ['hiveboot/debian12', 'hiveboot/debian12@golden']) {
      const exp = await lab.run(srv, 'bash', ['-c', `rbd -c ${ceph.conf} --keyring ${ceph.admin} --id admin export ${spec} - 2>/dev/null | sha256sum`], { timeoutMs: 600_000 });
      expect(exp.stdout.split(' ')[0], `${spec}: ${exp.stderr}`).toBe(want);
    }
  }, 30 * 60_000);
});
