import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labApi, type LabApi } from '../support/boot-lab.js';
import { copyRootFs, fingerprint, type RootFsCopy } from '../support/guest-disk.js';
import { NetLab } from '../support/netns.js';
import { powerDown, startGuest } from '../support/qemu.js';
import { describeTimeline, timeline as readTimeline, type TimelineEvent } from '../support/timeline.js';
import { ensureGoldenImage, type GoldenImage } from '../support/vm.js';

/**
 * Two machines, one golden image, two disks. Two BIOS guests registered with the same profile are
 * powered on at the same moment on an isolated boot network where hiveboot is the only DHCP server
 * (full mode, one reserved address each). Each sanboots its own copy-on-write overlay of the golden
 * image from hiveboot's built-in iSCSI target and comes up as itself. Then both are shut down through
 * the ACPI power button (a clean shutdown with the root on iSCSI must not hang), hiveboot is stopped
 * so it lets go of the overlays, and the overlays are read from the host side: each disk holds its
 * own host name, machine id, persistent journal and iSCSI initiator name, and not the other's — what
 * one machine wrote is absent on the other — while the golden image is untouched.
 */
const NETBOOT = join(import.meta.dirname, '../../netboot');
const IQN_PREFIX = 'iqn.2026-01.io.hiveboot';

interface Guest {
  mac: string;
  hostname: string;
  ip: string;
  /** Registered with its own initiator IQN (A) or left to the default <prefix>:<hostname> (B). */
  initiatorIqn?: string;
  tap: string;
  serial: string;
  qmp: string;
  process?: ChildProcess;
  exit?: { code: number | null; signal: NodeJS.Signals | null; at: number };
  markerAt?: number;
  disk?: RootFsCopy;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!NetLab.available())('two guests at once, each on its own copy-on-write disk (BIOS, full DHCP)', () => {
  const lab = new NetLab();
  let dir: string;
  let srv: string;
  let dbPath: string;
  let golden: GoldenImage;
  let hiveboot: ChildProcess;
  let api: LabApi;
  const guests: Guest[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hb-e2e-two-'));
    // The golden image from scripts/build-image.sh, cached outside the clone (seconds when warm).
    ({ image: golden } = await ensureGoldenImage(join(dir, 'build-image.log')));
    guests.push(
      { mac: '52:54:00:e2:00:0a', hostname: 'e2e-a', ip: '10.93.0.21', initiatorIqn: 'iqn.2026-01.io.hiveboot.e2e:machine-a', tap: 'tap0', serial: join(dir, 'serial-a.log'), qmp: join(dir, 'qmp-a.sock') },
      { mac: '52:54:00:e2:00:0b', hostname: 'e2e-b', ip: '10.93.0.22', tap: 'tap1', serial: join(dir, 'serial-b.log'), qmp: join(dir, 'qmp-b.sock') },
    );
    srv = lab.ns('srv');
    lab.bridge(srv, 'br0', '10.93.0.1/24');
    for (const g of guests) lab.tap(srv, g.tap, 'br0');

    // Full DHCP with no dynamic range: only the two registered machines get addresses.
    const started = await lab.hiveboot(
      srv,
      dir,
      `http: { listen: 0.0.0.0, port: 8080 }
log: { level: debug }
boot: { retrySeconds: 2, initiatorIqnPrefix: ${IQN_PREFIX} }
tftp: { root: ${NETBOOT} }
iscsi: { portals: [10.93.0.1] }
k3s: { serverUrl: "https://10.93.0.10:6443" }
dhcp:
  mode: full
  interfaces: [br0]
  subnets:
    - network: 10.93.0.0/24
      router: 10.93.0.1
      dnsServers: [10.93.0.1]
      leaseSeconds: 3600
`,
    );
    hiveboot = started.process;
    dbPath = started.dbPath;

    api = labApi(lab, srv, 'http://10.93.0.1:8080', join(dir, 'state'));
    expect((await api('POST', '/v1/images', { name: 'debian12', location: golden.path })).status).toBe(201);
    expect((await api('POST', '/v1/profiles', { name: 'debian-k3s', template: 'sanboot', image: 'debian12', k3sLabels: { role: 'worker' } })).status).toBe(201);
  }, 40 * 60_000);

  afterAll(async () => {
    for (const g of guests) g.disk?.remove();
    await lab.destroy();
    if (process.env.HIVEBOOT_TEST_KEEP) console.log(`e2e two guests: kept ${dir}`);
    else if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('both boot at once to their own marker, shut down cleanly, and each disk holds only its own host’s writes', async () => {
    // 1. Registered through the API: same profile, different names, one reserved address each.
    for (const g of guests) {
      const r = await api('POST', '/v1/hosts', { mac: g.mac, hostname: g.hostname, profile: 'debian-k3s', ip: g.ip, ...(g.initiatorIqn ? { initiatorIqn: g.initiatorIqn } : {}) });
      expect(r.status, JSON.stringify(r.json)).toBe(201);
      expect(r.json.state).toBe('ready');
      expect(r.json.ip).toBe(g.ip);
      expect(r.json.initiatorIqn).toBe(g.initiatorIqn ?? null);
      const disk = r.json.disk as { portals: string[]; targetIqn: string } | null;
      expect(disk, JSON.stringify(r.json)).not.toBeNull();
      expect(disk!.portals).toEqual(['10.93.0.1:3260']);
      expect(disk!.targetIqn).toBe(`${IQN_PREFIX}:${g.hostname}`);
    }
    const overlayOf = (g: Guest) => join(dir, 'state', 'disks', `${g.mac.replace(/:/g, '')}.overlay`);
    for (const g of guests) expect(existsSync(overlayOf(g)), overlayOf(g)).toBe(true);
    const goldenBefore = await fingerprint(golden.path, [golden.rootOffset]);

    // 2. Power on at the same moment.
    const poweredOn = Date.now();
    for (const g of guests) {
      g.process = startGuest(lab, { ns: srv, tap: g.tap, mac: g.mac, firmware: 'bios', workDir: dir, memoryMiB: 1024, serialLog: g.serial, monitorSocket: g.qmp });
      g.process.on('exit', (code, signal) => (g.exit = { code, signal, at: Date.now() }));
    }
    const consoleOf = (g: Guest) => (existsSync(g.serial) ? readFileSync(g.serial, 'latin1') : '');
    const marker = (g: Guest) => new RegExp(`HIVEBOOT-READY host=${g.hostname} node=${g.hostname}`);
    const timelineOf = (g: Guest) => readTimeline(dbPath, g.mac);
    const diagnosis = (g: Guest, events: TimelineEvent[] = timelineOf(g)) =>
      `${g.hostname}: ${g.exit ? `QEMU exited (${g.exit.code ?? g.exit.signal})` : 'QEMU running'}\n${consoleOf(g).slice(-3000)}\n--- timeline\n${describeTimeline(events)}`;

    // 3. Both reach their marker (under TCG on two shared cores, two guests take minutes).
    const deadline = poweredOn + 25 * 60_000;
    while (Date.now() < deadline && guests.some((g) => !g.markerAt && !g.exit)) {
      for (const g of guests) if (!g.markerAt && marker(g).test(consoleOf(g))) g.markerAt = Date.now();
      await sleep(2000);
    }
    for (const g of guests) if (!g.markerAt && marker(g).test(consoleOf(g))) g.markerAt = Date.now();
    for (const g of guests) {
      expect(consoleOf(g), diagnosis(g)).toMatch(marker(g));
      // Nobody reset the machine: with -no-reboot a reboot would have ended QEMU.
      expect(g.exit, diagnosis(g)).toBeUndefined();
    }
    // Each console shows its own host only.
    const [a, b] = guests as [Guest, Guest];
    expect(consoleOf(a)).not.toMatch(/HIVEBOOT-READY host=e2e-b/);
    expect(consoleOf(b)).not.toMatch(/HIVEBOOT-READY host=e2e-a/);

    // 4. Every stage on each host's timeline, in order, from its own address and initiator name.
    const timelines = new Map<Guest, TimelineEvent[]>();
    for (const g of guests) {
      const events = timelineOf(g);
      timelines.set(g, events);
      const all = describeTimeline(events);
      const stages = events.map((e) => `${e.stage}: ${e.message}`);
      const first = (re: RegExp, from = 0) => {
        const i = stages.slice(from).findIndex((x) => re.test(x));
        return i < 0 ? -1 : i + from;
      };
      const order: Record<string, number> = {};
      order.dhcp = first(/^dhcp: (discover|request) \(full, iPXE\): (offer|ack) /);
      order.script = first(/^script: script: boot$/, order.dhcp);
      order.login = first(/^iscsi-login: iSCSI login from /, order.script);
      order.osUp = first(/^os-up: /, order.login);
      order.fetched = first(/^config-fetched: /, order.osUp);
      order.applied = first(/^config-applied: /, order.fetched);
      const idx = Object.values(order);
      expect(idx.every((i) => i >= 0), `${g.hostname} ${JSON.stringify(order)}\n${all}`).toBe(true);
      for (let i = 1; i < idx.length; i++) expect(idx[i - 1]! < idx[i]!, `${g.hostname} ${JSON.stringify(order)}\n${all}`).toBe(true);
      // The reserved address, and nothing else, for this MAC.
      expect(all).toMatch(new RegExp(`^dhcp: request \\(full, iPXE\\): ack ${g.ip.replace(/\./g, '\\.')} on br0`, 'm'));
      expect(events.filter((e) => e.stage === 'dhcp' && / (offer|ack) \d/.test(e.message)).every((e) => e.message.includes(` ${g.ip} `)), all).toBe(true);
      // Two logins (iPXE's sanboot, then the initramfs from iBFT), both with the host's own initiator
      // name, CHAP, from its own address; the stages the booted OS reported came from that address too.
      const iqn = g.initiatorIqn ?? `${IQN_PREFIX}:${g.hostname}`;
      const logins = events.filter((e) => e.stage === 'iscsi-login');
      expect(logins.length, all).toBeGreaterThanOrEqual(2);
      expect(logins.every((e) => e.message === `iSCSI login from ${iqn}` && e.reason === 'CHAP authenticated' && e.sourceIp === g.ip), all).toBe(true);
      for (const stage of ['os-up', 'config-fetched', 'config-applied']) {
        expect(events.filter((e) => e.stage === stage).every((e) => e.sourceIp === g.ip), `${stage}\n${all}`).toBe(true);
      }
      const host = await api('GET', `/v1/hosts/${g.mac}`);
      expect(host.json.lastIp).toBe(g.ip);
    }

    // 5. Both shut down through the ACPI power button, at the same time; both QEMUs end by themselves.
    const shutdownAt = Date.now();
    await Promise.all(guests.map((g) => powerDown(g.qmp)));
    const shutdownDeadline = shutdownAt + 4 * 60_000;
    while (Date.now() < shutdownDeadline && guests.some((g) => !g.exit)) await sleep(1000);
    for (const g of guests) {
      expect(g.exit, `did not power off within 4 min of the power button\n${diagnosis(g)}`).toBeDefined();
      expect(g.exit!.code, diagnosis(g)).toBe(0);
      expect(consoleOf(g), diagnosis(g)).toMatch(/reboot: Power down/);
    }
    const shutdownSeconds = guests.map((g) => ((g.exit!.at - shutdownAt) / 1000).toFixed(0));

    // 6. hiveboot stops (SIGTERM) and closes the overlays (flock'ed while served).
    const stopped = new Promise((r) => hiveboot.once('close', r));
    hiveboot.kill('SIGTERM');
    await stopped;
    expect(hiveboot.exitCode).toBe(0);

    // 7. The disks, read from the host side.
    for (const g of guests) g.disk = await copyRootFs(golden.path, overlayOf(g), golden.rootOffset, dir);
    const machineIds = new Map<Guest, string>();
    for (const g of guests) {
      const disk = g.disk!;
      // Shut down cleanly: the root was remounted read-only before the power went, no journal to replay.
      expect(disk.clean, `${g.hostname}: ${disk.superblock}\n${disk.fsck ?? ''}\n${diagnosis(g)}`).toBe(true);
      expect((await disk.cat('/etc/hostname'))?.trim(), g.hostname).toBe(g.hostname);
      const machineId = (await disk.cat('/etc/machine-id'))?.trim() ?? '';
      expect(machineId, `${g.hostname}: /etc/machine-id`).toMatch(/^[0-9a-f]{32}$/);
      machineIds.set(g, machineId);
      const iqn = g.initiatorIqn ?? `${IQN_PREFIX}:${g.hostname}`;
      const initiator = await disk.cat('/etc/iscsi/initiatorname.iscsi');
      expect(initiator, `${g.hostname}: /etc/iscsi/initiatorname.iscsi`).toMatch(new RegExp(`^InitiatorName=${iqn.replace(/\./g, '\\.')}$`, 'm'));
      // The K3s drop-in hiveboot rendered for this host, and only this host's.
      const dropIn = await disk.cat('/etc/rancher/k3s/config.yaml.d/50-hiveboot.yaml');
      expect(dropIn, `${g.hostname}: K3s drop-in`).toMatch(new RegExp(`^node-name: ${g.hostname}$`, 'm'));
      expect(dropIn).toMatch(/^server: https:\/\/10\.93\.0\.10:6443$/m);
    }
    expect(machineIds.get(a)).not.toBe(machineIds.get(b));
    // A file one machine wrote is absent on the other: each persistent journal is on its own disk only.
    for (const [self, other] of [[a, b], [b, a]] as const) {
      const journals = await self.disk!.ls('/var/log/journal');
      expect(journals, `${self.hostname}: /var/log/journal`).toContain(machineIds.get(self));
      expect(journals, `${self.hostname}: /var/log/journal`).not.toContain(machineIds.get(other));
      const files = await self.disk!.ls(`/var/log/journal/${machineIds.get(self)}`);
      expect(files?.some((f) => /^system(@.*)?\.journal~?$/.test(f)), `${self.hostname}: journal files ${JSON.stringify(files)}`).toBe(true);
      expect(await self.disk!.ls(`/var/log/journal/${machineIds.get(other)}`), `${other.hostname}'s journal on ${self.hostname}'s disk`).toBeUndefined();
    }
    // And the golden image is as it was: nothing either guest wrote reached it.
    expect(await fingerprint(golden.path, [golden.rootOffset])).toEqual(goldenBefore);

    console.log(
      `e2e two guests: power on → marker ${guests.map((g) => `${g.hostname} ${((g.markerAt! - poweredOn) / 1000).toFixed(0)} s`).join(', ')}; ` +
        `power button → QEMU exit ${guests.map((g, i) => `${g.hostname} ${shutdownSeconds[i]} s`).join(', ')}; ` +
        `root fs copied ${guests.map((g) => `${g.hostname} ${(g.disk!.copied / 2 ** 20).toFixed(0)} MiB`).join(', ')}\n` +
        guests.map((g) => `--- ${g.hostname}\n${describeTimeline(timelines.get(g)!)}`).join('\n'),
    );
  }, 45 * 60_000);
});
