import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labApi, routerLab, waitForMarker, type LabApi } from '../support/boot-lab.js';
import { NetLab } from '../support/netns.js';
import { startGuest } from '../support/qemu.js';
import { ensureGoldenImage } from '../support/vm.js';
import { describeTimeline, timeline as readTimeline, waitForTimeline } from '../support/timeline.js';

/**
 * The job users came for, with real firmware: a BIOS guest powers on beside a "home router" (a
 * DHCP-only dnsmasq), hiveboot's proxyDHCP and TFTP get iPXE going, iPXE sanboots the host's own
 * copy-on-write LUN from hiveboot's built-in target with its CHAP secret, Debian's initramfs logs in
 * to the same LUN from iBFT, and the first-boot agent fetches the host's config and reports back. The
 * marker on the serial console carries the hostname and K3s node name hiveboot gave it.
 */
const MAC = '52:54:00:e2:00:01';
const HOSTNAME = 'e2e-bios';
const NETBOOT = join(import.meta.dirname, '../../netboot');

describe.skipIf(!NetLab.available())('power on → Debian up from hiveboot (BIOS, proxyDHCP)', () => {
  const lab = new NetLab();
  let dir: string;
  let srv: string;
  let dbPath: string;
  let daemon: ChildProcess;
  let daemonConfig: string;
  let api: LabApi;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hb-e2e-bios-'));
    // The golden image from scripts/build-image.sh, cached outside the clone (seconds when warm).
    const { image: golden } = await ensureGoldenImage(join(dir, 'build-image.log'));
    const image = golden.path;
    ({ srv } = await routerLab(lab, { net: 91, taps: ['tap0'], dir }));

    daemonConfig = `http: { listen: 0.0.0.0, port: 8080 }
log: { level: debug }
boot: { retrySeconds: 2 }
dhcp: { mode: proxy, interfaces: [br0] }
tftp: { root: ${NETBOOT} }
iscsi: { portals: [10.91.0.1] }
k3s: { serverUrl: "https://10.91.0.10:6443" }
`;
    ({ dbPath, process: daemon } = await lab.hiveboot(srv, dir, daemonConfig));
    api = labApi(lab, srv, 'http://10.91.0.1:8080', join(dir, 'state'));
    expect((await api('POST', '/v1/images', { name: 'debian12', location: image })).status).toBe(201);
    expect((await api('POST', '/v1/profiles', { name: 'debian-k3s', template: 'sanboot', image: 'debian12', k3sLabels: { role: 'worker' } })).status).toBe(201);
  }, 40 * 60_000);

  afterAll(async () => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('boots Debian from its own LUN and reports hostname and K3s node name on the console', async () => {
    const host = await api('POST', '/v1/hosts', { mac: MAC, hostname: HOSTNAME, profile: 'debian-k3s' });
    expect(host.status).toBe(201);
    expect(host.json.state).toBe('ready');
    const serial = join(dir, 'serial.log');
    startGuest(lab, { ns: srv, tap: 'tap0', mac: MAC, firmware: 'bios', workDir: dir, memoryMiB: 1024, serialLog: serial });
    const started = Date.now();
    const consoleText = await waitForMarker(serial, 12 * 60_000);
    const timeline = readTimeline(dbPath, MAC);
    const text = describeTimeline(timeline);
    expect(consoleText, `${consoleText.slice(-3000)}\n---\n${text}`).toMatch(new RegExp(`HIVEBOOT-READY host=${HOSTNAME} node=${HOSTNAME}`));
    // Every stage, in order, on the host's timeline.
    const stages = timeline.map((e) => `${e.stage}: ${e.message}`);
    // (In proxy mode with the NIC's iPXE ROM there is no TFTP stage, and the bootstrap fetch cannot be
    // tied to the MAC yet: the router, not hiveboot, gave the address.)
    const first = (re: RegExp) => stages.findIndex((x) => re.test(x));
    const dhcp = first(/^dhcp: discover/);
    const script = first(/^script: script: boot/);
    const login = first(/^iscsi-login: iSCSI login from/);
    const osUp = first(/^os-up: /);
    const fetched = first(/^config-fetched: /);
    const applied = first(/^config-applied: /);
    expect([dhcp, script, login, osUp, fetched, applied].every((i) => i >= 0), text).toBe(true);
    expect(dhcp < script && script < login && login < osUp && osUp < fetched && fetched < applied, text).toBe(true);
    // The K3s drop-in hiveboot rendered for this host is what the agent wrote.
    expect(stages[applied]).toMatch(/K3s drop-in \S+50-hiveboot\.yaml \(server https:\/\/10\.91\.0\.10:6443, node-name e2e-bios\)/);
    console.log(`e2e BIOS boot: power on → marker in ${((Date.now() - started) / 1000).toFixed(0)} s\n${text}`);
  }, 15 * 60_000);

  it('after its CHAP secret is rotated, the running host cannot log in again with the old one, and the refusal is on its timeline', async () => {
    const before = readTimeline(dbPath, MAC).length;
    const rotated = await api('POST', `/v1/hosts/${MAC}/disk/rotate-chap`, {});
    expect(rotated.status).toBe(200);
    // A restart of hiveboot drops the guest's session: open-iscsi in the guest logs in again with the
    // secret it booted with (from iBFT), which is no longer the host's.
    const exited = new Promise((r) => daemon.once('close', r));
    daemon.kill('SIGTERM');
    await exited;
    ({ process: daemon } = await lab.hiveboot(srv, dir, daemonConfig));
    const events = await waitForTimeline(dbPath, MAC, (ev) => ev.slice(before).some((e) => /^iSCSI login refused/.test(e.message)), 3 * 60_000);
    const after = events.slice(before);
    const refusal = after.find((e) => /^iSCSI login refused/.test(e.message));
    expect(refusal, describeTimeline(after)).toBeDefined();
    expect(refusal!.stage).toBe('iscsi-login');
    expect(`${refusal!.message} ${refusal!.reason}`).toMatch(/CHAP/i);
    // and no login with the old secret got through after the rotation
    expect(after.filter((e) => /^iSCSI login from/.test(e.message)), describeTimeline(after)).toEqual([]);
    console.log(`after rotate-chap and a restart of hiveboot:\n${describeTimeline(after)}`);
  }, 5 * 60_000);
});
