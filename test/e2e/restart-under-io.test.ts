// Restarts do not hurt running workers (issue 7): a worker logged in to its disk and writing keeps
// running while the whole daemon is restarted under it — `hiveboot serve` stopped with SIGTERM and
// started again on the same config and state directory, later killed with kill -9 and started
// again — with no I/O error in the worker's kernel log, every file it wrote verified, and the time
// to recover printed.
//
// hiveboot runs as users run it (the serve command as a child process, a config file, the REST API
// with the token from its state directory): iSCSI on 127.0.0.1 at a fixed port announced to hosts as
// 10.0.2.100:<port> (the worker's view), HTTP on 127.0.0.1, DHCP off, TFTP on a free port. A host is
// registered with a profile whose image is a small raw file, so the daemon provisions its
// copy-on-write disk, target, ACL and CHAP credentials; the worker takes its portal and target from
// the API and its initiator name and CHAP credentials from its boot script, as a booting host would.
//
// The worker is the Debian guest of test/iscsi/open-iscsi-vm.test.ts (support/open-iscsi-guest.ts):
// open-iscsi logs in, mkfs.ext4, then writes files with fsync beside an O_DIRECT writer, so that I/O
// is in flight whenever the daemon goes away. Besides what that test checks, this one checks that
// the daemon came back as it was: the host's record, boot script (so its CHAP secret) and overlay
// are those of before (nothing re-provisioned), and its timeline shows the worker's iSCSI login to
// each new daemon.
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/cli/client.js';
import type { EventView, HostView } from '../../src/model/schemas.js';
import { canRunIscsiGuest, expectWorkloadSurvived, followWorkload, prepareGuestBoot, startIscsiGuest, type RestartKind } from '../support/open-iscsi-guest.js';
import { freeLoopbackPorts, ServeProcess, type ServeExit } from '../support/serve-process.js';
import type { GoldenImage, LinuxGuest } from '../support/vm.js';

const MAC = '52:54:00:00:0e:07';
const HOSTNAME = 'io-worker';
const IQN_PREFIX = 'iqn.2026-01.io.hiveboot'; // boot.initiatorIqnPrefix and iscsi.targetIqnPrefix, the defaults
const DISK_BYTES = 256 * 1024 * 1024;
const FILES = 32; // 1 MiB each
const RESTART_AT = { graceful: 8, kill: 20 }; // after the guest reports this many files written
const PORTAL_IP = '10.0.2.100'; // the portal as the guest sees it; QEMU relays it to 127.0.0.1
/** systemd units of the image this test has no use for (the first-boot agent, K3s, apt's timers). */
const MASKED = ['hiveboot-agent.service', 'k3s-agent.service', 'apt-daily.timer', 'apt-daily-upgrade.timer'];

/** What a host is given in its boot script (boot-templates/sanboot.ipxe.hbs). */
function readBootScript(script: string): { initiator?: string; user?: string; secret?: string; uri?: string } {
  const set = (name: string) => new RegExp(`^set ${name} (\\S+)$`, 'm').exec(script)?.[1];
  return { initiator: set('initiator-iqn'), user: set('username'), secret: set('password'), uri: /^sanboot (\S+)/m.exec(script)?.[1] };
}

describe.skipIf(!canRunIscsiGuest)('a worker doing I/O across restarts of the whole daemon', () => {
  let dir: string;
  let image: GoldenImage;
  let boot: { kernel: string; initrd: string };
  let daemon: ServeProcess;
  let api: ApiClient;
  let url: string;
  let iscsiPort: number;
  let guest: LinuxGuest | undefined;
  const stateDir = () => join(dir, 'state');
  const bootScript = async () => (await fetch(`${url}/boot/${MAC}.ipxe`)).text();
  const timeline = async () => (await api.get<{ items: EventView[] }>(`v1/hosts/${MAC}/events`, { limit: 1000 })).items.reverse();

  beforeAll(async () => {
    dir = mkdtempSync('/var/tmp/hiveboot-restart-io-');
    ({ image, boot } = await prepareGuestBoot(dir));

    // The profile's image: the worker only needs a disk to make a file system on.
    const scratch = join(dir, 'scratch.raw');
    writeFileSync(scratch, '');
    truncateSync(scratch, DISK_BYTES);

    let httpPort: number;
    [httpPort, iscsiPort] = (await freeLoopbackPorts(2)) as [number, number];
    url = `http://127.0.0.1:${httpPort}`;
    const config = {
      stateDir: stateDir(),
      log: { level: 'info' },
      http: { listen: '127.0.0.1', port: httpPort },
      dhcp: { mode: 'off' },
      tftp: { listen: '127.0.0.1', port: 0 },
      iscsi: { listen: '127.0.0.1', port: iscsiPort, portals: [`${PORTAL_IP}:${iscsiPort}`] },
    };
    // YAML is a superset of JSON.
    writeFileSync(join(dir, 'hiveboot.yaml'), `${JSON.stringify(config, null, 2)}\n`);
    daemon = new ServeProcess(join(dir, 'hiveboot.yaml'), join(dir, 'hiveboot.log'));
    await daemon.start();
    api = new ApiClient(url, readFileSync(join(stateDir(), 'api-token'), 'utf8').trim());
    await api.post('v1/images', { name: 'scratch', location: scratch });
    await api.post('v1/profiles', { name: 'io-worker', template: 'sanboot', image: 'scratch' });
    const host = await api.post<HostView>('v1/hosts', { mac: MAC, hostname: HOSTNAME, profile: 'io-worker', ip: '10.0.2.15' });
    expect(host.state).toBe('ready');
    expect(host.disk).toMatchObject({ source: 'builtin', portals: [`${PORTAL_IP}:${iscsiPort}`], targetIqn: `${IQN_PREFIX}:${HOSTNAME}`, hasChapSecret: true });
  }, 30 * 60_000);

  afterAll(async () => {
    await guest?.kill();
    await daemon?.stop('SIGKILL');
    if (dir && !process.env.HIVEBOOT_TEST_KEEP) rmSync(dir, { recursive: true, force: true });
  });

  it('rides out a SIGTERM restart and a kill -9 + start of hiveboot: no I/O error, data verified, the host as it was', async () => {
    // What the host was given, read as the host and an operator would.
    const disk = (await api.get<HostView>(`v1/hosts/${MAC}`)).disk!;
    const scriptBefore = await bootScript();
    const given = readBootScript(scriptBefore);
    // The target's ACL admits <boot.initiatorIqnPrefix>:<hostname> (the host has no initiatorIqn of its own).
    expect(given.initiator).toBe(`${IQN_PREFIX}:${HOSTNAME}`);
    expect(given.user).toBe(disk.chapUser);
    expect(given.secret).toMatch(/^[A-Za-z0-9]{12,}$/);
    expect(given.uri).toBe(`iscsi:${PORTAL_IP}::${iscsiPort}:0:${disk.targetIqn}`);
    // Read after the boot script, which marks the host as seen: from here on only lastSeenAt may move.
    const hostBefore = await api.get<HostView>(`v1/hosts/${MAC}`);
    const overlay = join(stateDir(), 'disks', `${MAC.replace(/:/g, '')}.overlay`);
    const overlayBefore = statSync(overlay);
    const storageEventsBefore = (await timeline()).filter((e) => e.stage === 'storage');

    const portal = disk.portals[0]!;
    guest = startIscsiGuest({
      dir,
      image,
      boot,
      workload: { portal, target: disk.targetIqn, initiator: given.initiator!, chap: { user: given.user!, secret: given.secret! }, files: FILES },
      forwards: { [portal]: iscsiPort },
      kernelArgs: MASKED.map((unit) => `systemd.mask=${unit}`).join(' '),
    });
    // Wall-clock times of each restart, to place the timeline's events.
    const restarts: { kind: RestartKind; stopAt: number; goneAt?: number; exit?: ServeExit; upAt?: number; startLog?: string }[] = [];
    const run = await followWorkload(guest, {
      restartAt: RESTART_AT,
      what: 'daemon',
      target: {
        async stop(kind) {
          const r = { kind, stopAt: Date.now() } as (typeof restarts)[number];
          restarts.push(r);
          r.exit = await daemon.stop(kind === 'graceful' ? 'SIGTERM' : 'SIGKILL');
          r.goneAt = Date.now();
        },
        async start() {
          const r = restarts.at(-1)!;
          r.startLog = await daemon.start();
          r.upAt = Date.now();
        },
      },
    });
    guest = undefined;
    expectWorkloadSurvived(run, FILES);

    for (const r of restarts) {
      console.log(`${r.kind}: daemon stopped in ${((r.goneAt! - r.stopAt) / 1000).toFixed(2)} s (${JSON.stringify(r.exit)}), up again ${((r.upAt! - r.goneAt!) / 1000).toFixed(2)} s later`);
    }
    // SIGTERM: a clean stop (exit 0); kill -9: no say in it.
    expect(restarts.map((r) => [r.kind, r.exit])).toEqual([
      ['graceful', { code: 0, signal: null }],
      ['kill', { code: null, signal: 'SIGKILL' }],
    ]);
    // Each new daemon served the host's target from the start, from its database alone.
    const targetsUp = restarts.map((r) => {
      const line = r.startLog!.split('\n').find((l) => l.includes('"msg":"iscsi target up"'));
      return line ? (JSON.parse(line) as { targets: number }).targets : undefined;
    });
    expect(targetsUp).toEqual([1, 1]);

    // The guest's iscsid recovered its session after each restart...
    expect(run.iscsid.filter((l) => /connection\d+:\d+ is operational after recovery/.test(l)).length).toBeGreaterThanOrEqual(2);
    // ...and each new daemon saw the worker log in again (its timeline, written by that daemon).
    const events = await timeline();
    const logins = events.filter((e) => e.stage === 'iscsi-login');
    console.log(`the host's iSCSI logins on its timeline:\n${logins.map((e) => `${e.at} ${e.message} — ${e.reason}`).join('\n')}`);
    expect(logins.filter((e) => !e.message.startsWith(`iSCSI login from ${given.initiator}`))).toEqual([]);
    const loginsBetween = (from: number, to: number) => logins.filter((e) => Date.parse(e.at) >= from && Date.parse(e.at) < to).length;
    expect(loginsBetween(0, restarts[0]!.stopAt)).toBeGreaterThanOrEqual(1);
    expect(loginsBetween(restarts[0]!.goneAt!, restarts[1]!.stopAt)).toBeGreaterThanOrEqual(1);
    expect(loginsBetween(restarts[1]!.goneAt!, Date.now() + 1)).toBeGreaterThanOrEqual(1);

    // The daemon came back as it was: nothing re-provisioned, the same credentials, the same record.
    expect(await bootScript()).toBe(scriptBefore);
    const hostAfter = await api.get<HostView>(`v1/hosts/${MAC}`);
    const { lastSeenAt: _seenBefore, ...before } = hostBefore;
    const { lastSeenAt: _seenAfter, ...after } = hostAfter;
    expect(after).toEqual(before);
    expect(events.filter((e) => e.stage === 'storage')).toEqual(storageEventsBefore);
    const overlayAfter = statSync(overlay);
    expect({ ino: overlayAfter.ino, size: overlayAfter.size }).toEqual({ ino: overlayBefore.ino, size: overlayBefore.size });
  }, 30 * 60_000);
});
