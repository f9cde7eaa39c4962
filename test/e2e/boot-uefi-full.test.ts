import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labApi, type LabApi } from '../support/boot-lab.js';
import { NetLab } from '../support/netns.js';
import { startGuest } from '../support/qemu.js';
import { ensureGoldenImage } from '../support/vm.js';
import { describeTimeline, timeline as readTimeline, type TimelineEvent } from '../support/timeline.js';

/**
 * Zero touch, with real UEFI firmware: an isolated boot network where hiveboot is the only DHCP
 * server (full mode). A machine nobody registered powers on; OVMF's own PXE client (the NIC's iPXE
 * ROM is removed) gets an address and snponly.efi from hiveboot, the iPXE it starts fetches its
 * script and is told to wait. The machine shows up in the API as discovered; the test approves it
 * with a profile whose image is set, so hiveboot provisions its copy-on-write disk; the waiting iPXE
 * asks again (boot.retrySeconds), sanboots the LUN under EFI (GRUB at the ESP's removable path),
 * Debian's initramfs logs in from iBFT and the first-boot agent reports back. Nobody touches the VM:
 * QEMU runs with -no-reboot, so a reset would end it.
 */
const MAC = '52:54:00:e2:00:02';
const HOSTNAME = 'e2e-uefi';
const NETBOOT = join(import.meta.dirname, '../../netboot');
const OVMF = '/usr/share/OVMF/OVMF_CODE_4M.fd';

describe.skipIf(!NetLab.available() || !existsSync(OVMF))('power on → discovered → approved → Debian up (UEFI, full DHCP, zero touch)', () => {
  const lab = new NetLab();
  let dir: string;
  let srv: string;
  let dbPath: string;
  let api: LabApi;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hb-e2e-uefi-'));
    // The golden image from scripts/build-image.sh, cached outside the clone (seconds when warm).
    const { image: golden } = await ensureGoldenImage(join(dir, 'build-image.log'));
    srv = lab.ns('srv');
    lab.bridge(srv, 'br0', '10.92.0.1/24');
    lab.tap(srv, 'tap0', 'br0');

    const started = await lab.hiveboot(
      srv,
      dir,
      `http: { listen: 0.0.0.0, port: 8080 }
log: { level: debug }
boot: { retrySeconds: 2 }
tftp: { root: ${NETBOOT} }
iscsi: { portals: [10.92.0.1] }
k3s: { serverUrl: "https://10.92.0.10:6443" }
dhcp:
  mode: full
  interfaces: [br0]
  subnets:
    - network: 10.92.0.0/24
      range: { start: 10.92.0.100, end: 10.92.0.150 }
      router: 10.92.0.1
      dnsServers: [10.92.0.1]
      leaseSeconds: 3600
`,
    );
    dbPath = started.dbPath;

    api = labApi(lab, srv, 'http://10.92.0.1:8080', join(dir, 'state'));
    expect((await api('POST', '/v1/images', { name: 'debian12', location: golden.path })).status).toBe(201);
    expect((await api('POST', '/v1/profiles', { name: 'debian-k3s', template: 'sanboot', image: 'debian12', k3sLabels: { role: 'worker' } })).status).toBe(201);
  }, 40 * 60_000);

  afterAll(async () => {
    await lab.destroy();
    if (process.env.HIVEBOOT_TEST_KEEP) console.log(`e2e UEFI: kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  });

  it('an unregistered UEFI machine is discovered, approved through the API and boots Debian without anyone touching it', async () => {
    expect(existsSync(join(NETBOOT, 'snponly.efi')), 'netboot/snponly.efi (scripts/netboot.sh)').toBe(true);
    // Not registered beforehand.
    expect((await api('GET', `/v1/hosts/${MAC}`)).status).toBe(404);

    const serial = join(dir, 'serial.log');
    const guest = startGuest(lab, { ns: srv, tap: 'tap0', mac: MAC, firmware: 'uefi', noNicRom: true, workDir: dir, memoryMiB: 1024, serialLog: serial });
    let qemuExit: string | undefined;
    guest.on('exit', (code, signal) => (qemuExit = `QEMU exited (${code ?? signal})`));
    const started = Date.now();
    const consoleText = () => (existsSync(serial) ? readFileSync(serial, 'latin1') : '');
    const diagnosis = (events: TimelineEvent[]) => `${qemuExit ?? ''}\n${consoleText().slice(-3000)}\n---\n${describeTimeline(events)}`;

    // 1. It shows up by itself: the API lists it as discovered, and its iPXE is already polling for a
    //    decision (the wait script, every boot.retrySeconds) — the machine is left running as it is.
    let events: TimelineEvent[] = [];
    let seen: Record<string, unknown> = {};
    const discoverDeadline = started + 8 * 60_000;
    for (;;) {
      const r = await api('GET', `/v1/hosts/${MAC}`);
      events = existsSync(dbPath) ? readTimeline(dbPath, MAC) : [];
      if (r.status === 200) seen = r.json;
      if (r.status === 200 && events.some((e) => e.stage === 'script' && e.message === 'script: wait')) break;
      if (Date.now() > discoverDeadline || qemuExit) throw new Error(`not discovered and waiting: ${JSON.stringify(seen)}\n${diagnosis(events)}`);
      await new Promise((r) => setTimeout(r, 2000));
    }
    const discoveredAfter = (Date.now() - started) / 1000;
    expect(seen.state, diagnosis(events)).toBe('discovered');
    expect(seen.mac).toBe(MAC);
    expect(seen.hostname).toBeNull();
    expect(seen.disk).toBeNull();
    const listed = await api('GET', '/v1/hosts?state=discovered');
    expect(listed.status).toBe(200);
    expect((listed.json.items as { mac: string }[]).map((h) => h.mac)).toContain(MAC);
    const before = describeTimeline(events);
    // Recorded as discovered by hiveboot's DHCP from its first PXE request (option 93 = 7).
    expect(before).toMatch(/^dhcp: discovered \(7\) — unknown MAC and discovery is on/m);
    // EDK2's PXE (x64 UEFI) got an address and snponly.efi from hiveboot (full mode), fetched it by
    // TFTP, and the iPXE it started came back as iPXE and fetched its script.
    expect(before).toMatch(/^dhcp: discover \(full, x64 UEFI\): offer 10\.92\.0\.1\d\d on br0; boot snponly\.efi/m);
    expect(before).toMatch(/^dhcp: request \(full, x64 UEFI\): ack 10\.92\.0\.1\d\d on br0; boot snponly\.efi/m);
    expect(before).toMatch(/^tftp: sent snponly\.efi \(\d+ KiB in \d+ ms/m);
    // EDK2 first asks for the size and aborts after the OACK, then downloads: in that order.
    const tftp = events.filter((e) => e.stage === 'tftp').map((e) => e.message);
    expect(tftp.at(-1), before).toMatch(/^sent snponly\.efi /);
    expect(before).toMatch(/^dhcp: discover \(full, iPXE\): offer 10\.92\.0\.1\d\d on br0; boot http:\/\/10\.92\.0\.1:8080\/boot\.ipxe/m);
    expect(before).toMatch(/^script: script: bootstrap \/boot\.ipxe/m);
    expect(before).toMatch(/^script: script: wait — discovered, waiting for approval/m);
    expect(before).not.toMatch(/^script: script: boot —/m);

    // 2. Approved through the API with a profile whose image is set: the disk is provisioned at once.
    const approved = await api('POST', `/v1/hosts/${MAC}/approve`, { hostname: HOSTNAME, profile: 'debian-k3s' });
    expect(approved.status, JSON.stringify(approved.json)).toBe(200);
    expect(approved.json.state).toBe('ready');
    expect(approved.json.hostname).toBe(HOSTNAME);
    const disk = approved.json.disk as { portals: string[]; targetIqn: string } | null;
    expect(disk, JSON.stringify(approved.json)).not.toBeNull();
    expect(disk!.portals).toEqual(['10.92.0.1:3260']);
    expect(disk!.targetIqn).toMatch(new RegExp(`:${HOSTNAME}$`));
    const approvedAt = Date.now();

    // 3. The waiting iPXE picks the decision up by itself and the machine boots to the marker.
    const deadline = approvedAt + 15 * 60_000;
    let text = '';
    while (Date.now() < deadline && !qemuExit) {
      text = consoleText();
      if (/HIVEBOOT-READY host=\S+ node=\S+/.test(text)) break;
      await new Promise((r) => setTimeout(r, 2000));
    }
    const markerAt = Date.now();
    events = readTimeline(dbPath, MAC);
    const all = describeTimeline(events);
    expect(text, diagnosis(events)).toMatch(new RegExp(`HIVEBOOT-READY host=${HOSTNAME} node=${HOSTNAME}`));
    // Nobody reset the machine: with -no-reboot a reboot would have ended QEMU.
    expect(qemuExit, diagnosis(events)).toBeUndefined();

    // Every stage, in order, on the host's timeline.
    const stages = events.map((e) => `${e.stage}: ${e.message}`);
    const first = (re: RegExp, from = 0) => {
      const i = stages.slice(from).findIndex((x) => re.test(x));
      return i < 0 ? -1 : i + from;
    };
    const order = {
      dhcpDiscover: first(/^dhcp: discover \(full, x64 UEFI\): offer /),
      dhcpAck: first(/^dhcp: request \(full, x64 UEFI\): ack /),
      tftp: first(/^tftp: sent snponly\.efi /),
      ipxeDhcp: first(/^dhcp: request \(full, iPXE\): ack /),
      bootstrap: first(/^script: script: bootstrap /),
      wait: first(/^script: script: wait$/),
      // Approval names the host and its profile; the built-in storage then makes its disk, which is
      // what makes it ready.
      approve: first(new RegExp(`^api: approved as ${HOSTNAME} with profile debian-k3s: discovered → `)),
      disk: first(new RegExp(`^storage: disk provisioned by builtin: iqn\\S+:${HOSTNAME} lun 0; state \\w+ → ready`)),
      boot: first(/^script: script: boot$/),
      login: first(/^iscsi-login: iSCSI login from /),
      osUp: first(/^os-up: /),
      fetched: first(/^config-fetched: /),
      applied: first(/^config-applied: /),
    };
    const indices = Object.values(order);
    expect(indices.every((i) => i >= 0), `${JSON.stringify(order)}\n${all}`).toBe(true);
    for (let i = 1; i < indices.length; i++) expect(indices[i - 1]! < indices[i]!, `${JSON.stringify(order)}\n${all}`).toBe(true);
    // Two logins after the boot script: iPXE's sanboot, then the initramfs from iBFT, both as the host's IQN.
    const logins = events.filter((e, i) => i > order.boot && e.stage === 'iscsi-login');
    expect(logins.length, all).toBeGreaterThanOrEqual(2);
    expect(logins.every((e) => e.message.includes(`:${HOSTNAME}`) && e.reason === 'CHAP authenticated'), all).toBe(true);
    // The agent wrote the K3s drop-in hiveboot rendered for the name it was approved as.
    expect(events[order.applied]!.message).toMatch(new RegExp(`K3s drop-in \\S+50-hiveboot\\.yaml \\(server https://10\\.92\\.0\\.10:6443, node-name ${HOSTNAME}\\)`));
    // The machine booted on the address hiveboot leased it, on one continuous power-on.
    const host = await api('GET', `/v1/hosts/${MAC}`);
    expect(host.json.state).toBe('ready');
    expect(host.json.lastIp).toMatch(/^10\.92\.0\.1\d\d$/);

    console.log(
      `e2e UEFI zero-touch: power on → discovered and polling in ${discoveredAfter.toFixed(0)} s; approval → marker in ${((markerAt - approvedAt) / 1000).toFixed(0)} s; ` +
        `power on → marker in ${((markerAt - started) / 1000).toFixed(0)} s\n${all}`,
    );
  }, 30 * 60_000);
});
