// scripts/install.sh and scripts/hiveboot.service for real: a Debian 12 guest (the golden image of
// scripts/build-image.sh, booted by QEMU as in the open-iscsi VM test) installs hiveboot as a systemd
// service and the guest's systemd runs it. Checked inside the guest, reported on its serial console:
// - install.sh refuses clearly while there is no Node.js >= 20; then, with this machine's node
//   binary copied to /usr/local/bin (as nodejs.org's tarball puts it), `install.sh --start` installs
//   ipxe with apt, the user, the config, the state directory, the app and the unit, and returns only
//   after READY=1: /healthz answers 200 at once, the unit is active/running;
// - the process runs as hiveboot with CAP_NET_BIND_SERVICE and CAP_NET_RAW only (CapEff), no new
//   privileges, seccomp on; with DHCP configured on a dummy interface it binds 67 on that interface
//   (SO_BINDTODEVICE) and TFTP serves the boot files;
// - systemctl reload keeps the PID; an install.sh re-run is a no-op (same PID, unit and app); one
//   over an application that differs (an update) replaces it and restarts the service;
// - kill -STOP of the main PID: systemd's watchdog restarts it after WatchdogSec (NRestarts + 1,
//   "Watchdog timeout" in the journal) and it comes back healthy;
// - systemctl stop is clean within seconds (Result=success, exit 0);
// - --uninstall keeps /var/lib/hiveboot and the config, --purge removes them.
//
// How the guest gets node and the tree: a second virtio disk, an ext4 image made with mkfs.ext4 -d
// (no mount, no loop device) from a directory of hard links into this checkout (package files,
// node_modules as npm ci left it, scripts/), dist/ compiled from the current sources, this machine's
// node binary, and a flat apt repository holding Debian's ipxe package — the guest's network (QEMU
// user mode, restrict=on) reaches nothing, so apt in the guest sees only that repository.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureGoldenImage, extractBoot, guestAccel, LinuxGuest, TEST_IMAGE, type GoldenImage } from '../support/vm.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..', '..');
const WATCHDOG_SEC = 30; // scripts/hiveboot.service's WatchdogSec

const canRun =
  process.platform === 'linux' &&
  process.getuid?.() === 0 &&
  spawnSync('qemu-system-x86_64', ['--version']).status === 0 &&
  spawnSync('mkfs.ext4', ['-V']).status === 0 &&
  spawnSync('dpkg-deb', ['--version']).status === 0;

/** Hard links where the file system allows them (same device), copies otherwise. */
async function linkOrCopy(from: string, intoDir: string): Promise<void> {
  try {
    await run('cp', ['-al', from, intoDir]);
  } catch {
    await run('cp', ['-a', from, intoDir]);
  }
}

/** Debian's ipxe package as installed here: from apt's cache, or downloaded by apt. */
async function ipxeDeb(dir: string): Promise<string> {
  const version = (await run('dpkg-query', ['-W', '-f=${Version}', 'ipxe'])).stdout.trim();
  const name = `ipxe_${version.replace(/^\d+:/, '')}_all.deb`;
  const cached = join('/var/cache/apt/archives', name);
  if (existsSync(cached)) {
    await run('cp', [cached, dir]);
  } else {
    await run('apt-get', ['download', `ipxe=${version}`], { cwd: dir });
  }
  return join(dir, name);
}

/** A flat apt repository (deb [trusted=yes] file:DIR ./) with one package: its Packages index. */
async function aptRepository(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const deb = await ipxeDeb(dir);
  const control = (await run('dpkg-deb', ['-f', deb])).stdout.trimEnd();
  const sha256 = (await run('sha256sum', [deb])).stdout.split(' ')[0];
  writeFileSync(join(dir, 'Packages'), `${control}\nFilename: ./${basename(deb)}\nSize: ${statSync(deb).size}\nSHA256: ${sha256}\n\n`);
}

/** The second disk: the checkout as install.sh needs it, node, and the apt repository. */
async function treeDisk(dir: string): Promise<string> {
  const root = join(dir, 'disk');
  const tree = join(root, 'tree');
  mkdirSync(tree, { recursive: true });
  for (const p of ['package.json', 'package-lock.json', 'bin', 'boot-templates', 'netboot', 'node_modules', 'scripts']) await linkOrCopy(join(ROOT, p), tree);
  // dist/ from the current sources, without touching the checkout's own dist/.
  await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', join(tree, 'dist')], { cwd: ROOT });
  await linkOrCopy(process.execPath, root);
  if (basename(process.execPath) !== 'node') await run('mv', [join(root, basename(process.execPath)), join(root, 'node')]);
  await aptRepository(join(root, 'debs'));
  const bytes = Number((await run('du', ['-sb', root])).stdout.split('\t')[0]);
  const image = join(dir, 'tree.ext4');
  await run('truncate', ['-s', `${Math.ceil((bytes * 1.3) / 2 ** 20) + 128}M`, image]);
  await run('mkfs.ext4', ['-q', '-F', '-L', 'hbtree', '-d', root, image]);
  rmSync(root, { recursive: true, force: true });
  return image;
}

/** What the guest runs (kernel-command-line.service); it reports on the serial console, one HBTEST line per fact. */
function guestScript(): string {
  return String.raw`#!/bin/bash
exec >/dev/null 2>&1
say() { echo "HBTEST $*" >/dev/ttyS0; }
show() { sed 's/^/  | /' "$@" >/dev/ttyS0; }
fail() { say "FAIL $*"; journalctl -u hiveboot.service -n 40 --no-pager -o cat | show; exit 1; }
now() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
prop() { systemctl show -p "$1" --value hiveboot.service; }
props() { systemctl show -p "$1" hiveboot.service | tr '\n' ' '; }
exists() { if [ -e "$1" ]; then echo yes; else echo no; fi; }
healthz() { curl -s -o /tmp/healthz -w '%{http_code}' --max-time 20 http://127.0.0.1:8080/healthz; }
journal() { journalctl -u hiveboot.service -o cat --no-pager; }
T=/mnt/hb/tree

say "guest-up uptime=$(cut -d' ' -f1 /proc/uptime)"
mountpoint -q /tmp || mount -t tmpfs tmpfs /tmp
mkdir -p /mnt/hb && mount -o ro LABEL=hbtree /mnt/hb || fail "cannot mount the tree disk"
mv /etc/apt/sources.list.d/debian.sources /root/
echo 'deb [trusted=yes] file:/mnt/hb/debs ./' >/etc/apt/sources.list.d/hiveboot-test.list

# No Node.js >= 20 yet.
bash $T/scripts/install.sh --start >/tmp/out 2>&1; rc=$?
say "no-node rc=$rc unit=$(exists /etc/systemd/system/hiveboot.service) app=$(exists /opt/hiveboot) msg=$(tail -n1 /tmp/out)"

install -m 0755 /mnt/hb/node /usr/local/bin/node || fail "cannot copy node"
say "node $(/usr/local/bin/node --version)"

t0=$(now)
bash $T/scripts/install.sh --start >/tmp/install1 2>&1; rc=$?
t1=$(now)
code=$(healthz)
say "install1 rc=$rc seconds=$(( (t1 - t0) / 1000 )) healthz=$code $(cat /tmp/healthz)"
show /tmp/install1
[ "$rc" -eq 0 ] || fail "install.sh --start failed"
say "state1 $(props ActiveState,SubState,Result,NRestarts,Type,NotifyAccess,WatchdogUSec)"
say "status $(prop StatusText)"
say "startup exec=$(prop ExecMainStartTimestampMonotonic) active=$(prop ActiveEnterTimestampMonotonic)"
pid=$(prop MainPID)
say "proc user=$(ps -o user= -p "$pid") comm=$(cat /proc/"$pid"/comm) $(grep -E '^(Uid|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/"$pid"/status | tr -s '\t' ' ' | sed 's/: /=/; s/ /,/g' | tr '\n' ' ')"
say "paths $(stat -c '%n=%a,%U:%G' /opt/hiveboot /etc/hiveboot /etc/hiveboot/hiveboot.yaml /var/lib/hiveboot /var/lib/hiveboot/hiveboot.db /var/lib/hiveboot/api-token 2>&1 | tr '\n' ' ')"
say "account $(getent passwd hiveboot)"
say "app entries=$(ls /opt/hiveboot/node_modules | wc -l) vitest=$(exists /opt/hiveboot/node_modules/vitest) typescript=$(exists /opt/hiveboot/node_modules/typescript) better-sqlite3=$(exists /opt/hiveboot/node_modules/better-sqlite3/build/Release/better_sqlite3.node) koffi=$(exists /opt/hiveboot/node_modules/koffi) undionly=$(exists /opt/hiveboot/netboot/undionly.kpxe) megabytes=$(du -sm /opt/hiveboot | cut -f1)"
say "ipxe $(dpkg-query -W -f='${'${Status}'}' ipxe)"
say "execstart $(grep '^ExecStart=' /etc/systemd/system/hiveboot.service)"
systemd-analyze verify /etc/systemd/system/hiveboot.service >/tmp/verify 2>&1; rc=$?
say "verify rc=$rc lines=$(wc -l </tmp/verify)"
show /tmp/verify
say "security $(systemd-analyze security --no-pager hiveboot.service 2>&1 | tail -n1)"
# When the daemon logged "hiveboot is up" (its own clock, just before READY=1) and when systemd
# logged the unit started: the journal's order of the two is not theirs (two ways into journald).
journalctl -u hiveboot.service -o json --no-pager >/tmp/j
up=$(jq -r 'select(.MESSAGE | type == "string" and contains("hiveboot is up")) | .MESSAGE | fromjson | .time' /tmp/j | head -n1)
started=$(jq -r 'select(.MESSAGE | type == "string" and startswith("Started hiveboot.service")) | (._SOURCE_REALTIME_TIMESTAMP // .__REALTIME_TIMESTAMP)' /tmp/j | head -n1)
say "order up-us=$(date -d "$up" +%s%6N) started-us=$started"

# DHCP (proxy) on a dummy interface: port 67 bound to that interface, as the service user.
ip link add hb-dhcp0 type dummy && ip addr add 10.99.0.1/24 dev hb-dhcp0 && ip link set hb-dhcp0 up || fail "no dummy interface"
sed -i 's/^  interfaces: \[\].*/  interfaces: [hb-dhcp0]/' /etc/hiveboot/hiveboot.yaml
grep -q '^  interfaces: \[hb-dhcp0\]' /etc/hiveboot/hiveboot.yaml || fail "could not edit the config"
config_sum=$(sha256sum </etc/hiveboot/hiveboot.yaml)
systemctl restart hiveboot.service || fail "restart with DHCP failed"
pid=$(prop MainPID)
say "sockets udp=$(ss -Hlnup | grep "pid=$pid," | awk '{ print $4 }' | sort | tr '\n' ' ')tcp=$(ss -Hltnp | grep "pid=$pid," | awk '{ print $4 }' | sort | tr '\n' ' ')"
say "status2 $(prop StatusText)"
curl -s --max-time 30 -o /tmp/undionly tftp://127.0.0.1/undionly.kpxe; rc=$?
say "tftp rc=$rc same=$(cmp -s /tmp/undionly /opt/hiveboot/netboot/undionly.kpxe && echo yes || echo no)"

# Reload: same process, still running, templates reloaded.
pid=$(prop MainPID); nr=$(prop NRestarts)
systemctl reload hiveboot.service; rc=$?
for i in $(seq 1 100); do journal | grep -q '"msg":"reloaded' && break; sleep 0.2; done
say "reload rc=$rc same-pid=$([ "$(prop MainPID)" = "$pid" ] && echo yes || echo no) restarts=$(( $(prop NRestarts) - nr )) $(props ActiveState,SubState) logged=$(journal | grep -c '"msg":"reloaded')"

# install.sh again: nothing to do.
unit_mtime=$(stat -c %Y /etc/systemd/system/hiveboot.service); app_inode=$(stat -c %i /opt/hiveboot)
t0=$(now)
bash $T/scripts/install.sh --start >/tmp/install2 2>&1; rc=$?
t1=$(now)
say "install2 rc=$rc seconds=$(( (t1 - t0) / 1000 )) same-pid=$([ "$(prop MainPID)" = "$pid" ] && echo yes || echo no) unit-same=$([ "$(stat -c %Y /etc/systemd/system/hiveboot.service)" = "$unit_mtime" ] && echo yes || echo no) app-same=$([ "$(stat -c %i /opt/hiveboot)" = "$app_inode" ] && echo yes || echo no) config-same=$([ "$(sha256sum </etc/hiveboot/hiveboot.yaml)" = "$config_sum" ] && echo yes || echo no) nothing-to-do=$(grep -c 'nothing to do' /tmp/install2)"
show /tmp/install2

# An update: the installed application differs from the checkout's (as an older version would), so
# install.sh (no --start) replaces it and restarts the running service.
echo '// an older build' >>/opt/hiveboot/dist/version.js
pid=$(prop MainPID)
bash $T/scripts/install.sh >/tmp/install3 2>&1; rc=$?
say "update rc=$rc new-pid=$([ "$(prop MainPID)" != "$pid" ] && echo yes || echo no) restarting=$(grep -c '^install: restarting hiveboot.service' /tmp/install3) replaced=$(cmp -s /opt/hiveboot/dist/version.js $T/dist/version.js && echo yes || echo no) healthz=$(healthz) $(props ActiveState,SubState)"
show /tmp/install3

# The watchdog: a stopped process sends no pings.
pid=$(prop MainPID); nr=$(prop NRestarts)
t0=$(now)
kill -STOP "$pid"
for i in $(seq 1 1200); do [ "$(prop NRestarts)" != "$nr" ] && break; sleep 0.1; done
t1=$(now)
for i in $(seq 1 1200); do [ "$(prop ActiveState)" = active ] && break; sleep 0.1; done
t2=$(now)
code=$(healthz)
say "watchdog restart-after-ms=$((t1 - t0)) active-after-ms=$((t2 - t0)) new-pid=$([ "$(prop MainPID)" != "$pid" ] && echo yes || echo no) restarts=$(( $(prop NRestarts) - nr )) $(props ActiveState,SubState) healthz=$code"
say "watchdog-journal $(journal | grep -m1 'Watchdog timeout')"
say "watchdog-signal $(journal | grep -m1 -E 'Killing process .* with signal|Main process exited')"

# A clean stop.
stopped=$(journal | grep -c '"msg":"hiveboot stopped"')
t0=$(now)
systemctl stop hiveboot.service; rc=$?
t1=$(now)
say "stop rc=$rc ms=$((t1 - t0)) $(props ActiveState,Result,ExecMainCode,ExecMainStatus) logged=$(( $(journal | grep -c '"msg":"hiveboot stopped"') - stopped ))"

bash $T/scripts/install.sh --uninstall >/tmp/uninstall 2>&1; rc=$?
say "uninstall rc=$rc unit=$(exists /etc/systemd/system/hiveboot.service) app=$(exists /opt/hiveboot) db=$(exists /var/lib/hiveboot/hiveboot.db) config=$(exists /etc/hiveboot/hiveboot.yaml) user=$(getent passwd hiveboot >/dev/null && echo yes || echo no) unit-known=$(systemctl list-unit-files --no-legend hiveboot.service | wc -l)"
show /tmp/uninstall
bash $T/scripts/install.sh --uninstall --purge >/tmp/purge 2>&1; rc=$?
say "purge rc=$rc state=$(exists /var/lib/hiveboot) config=$(exists /etc/hiveboot/hiveboot.yaml) agent-conf=$(exists /etc/hiveboot/agent.conf) user=$(getent passwd hiveboot >/dev/null && echo yes || echo no) group=$(getent group hiveboot >/dev/null && echo yes || echo no)"
show /tmp/purge
say "done"
`;
}

describe.skipIf(!canRun)('install.sh and hiveboot.service in a Debian guest', () => {
  let dir: string;
  let image: GoldenImage;
  let boot: { kernel: string; initrd: string };
  let tree: string;
  let guest: LinuxGuest | undefined;
  const prepared: string[] = [];

  beforeAll(async () => {
    mkdirSync(join(TEST_IMAGE, '..'), { recursive: true });
    dir = mkdtempSync('/var/tmp/hiveboot-install-vm-');
    let t = performance.now();
    const built = await ensureGoldenImage(join(dir, 'build-image.log'));
    image = built.image;
    prepared.push(`golden image ${built.seconds.toFixed(1)} s`);
    boot = await extractBoot(image, dir);
    t = performance.now();
    tree = await treeDisk(dir);
    prepared.push(`tree disk ${((performance.now() - t) / 1000).toFixed(1)} s (${(statSync(tree).blocks * 512 / 2 ** 20).toFixed(0)} MiB)`);
    console.log(`prepared: ${prepared.join(', ')}`);
  }, 30 * 60_000);

  afterAll(async () => {
    await guest?.kill();
    if (dir && !process.env.HIVEBOOT_TEST_KEEP) rmSync(dir, { recursive: true, force: true });
  });

  it('installs, runs under systemd (READY, two capabilities, watchdog, reload, clean stop), re-runs as a no-op, uninstalls', async () => {
    const script = join(dir, 'guest.sh');
    writeFileSync(script, guestScript());
    const cmd = `/bin/sh -c 'modprobe qemu_fw_cfg; exec /bin/bash /sys/firmware/qemu_fw_cfg/by_name/opt/hiveboot/test/raw'`;
    const started = performance.now();
    guest = new LinuxGuest({
      kernel: boot.kernel,
      initrd: boot.initrd,
      cmdline:
        `root=UUID=${image.rootUuid} ro console=ttyS0,115200n8 quiet loglevel=4 systemd.mask=serial-getty@ttyS0.service ` +
        // The worker image's own units have nothing to do here; apt's timers must not hold its lock.
        'systemd.mask=hiveboot-agent.service systemd.mask=k3s-agent.service systemd.mask=apt-daily.timer systemd.mask=apt-daily-upgrade.timer ' +
        `systemd.run="${cmd}" systemd.wants=kernel-command-line.service systemd.run_success_action=poweroff systemd.run_failure_action=poweroff`,
      disks: [image.path, tree],
      netdev: 'user,id=n0,restrict=on',
      fwCfg: { 'opt/hiveboot/test': script },
      memoryMiB: 1536,
      consoleLog: join(dir, 'console.log'),
    });
    const g = guest;
    const at = (time: number) => `${((time - started) / 1000).toFixed(1)} s`;
    const up = await g.waitFor(/HBTEST (guest-up|FAIL)/, 10 * 60_000);
    console.log(`[${at(up.at)}] guest (${guestAccel()}) up: ${up.text}`);
    // Progress as it happens (the whole run is several minutes under TCG).
    let shown = up.index + 1;
    const last = await (async () => {
      for (;;) {
        const line = await g.waitFor(/HBTEST /, 15 * 60_000, shown);
        console.log(`[${at(line.at)}] ${line.text.replace(/^HBTEST /, '')}`);
        shown = line.index + 1;
        if (/^HBTEST (done|FAIL)/.test(line.text)) return line;
      }
    })();
    await g.exited;
    guest = undefined;
    const all = g.lines.map((l) => l.text);
    expect(last.text, all.slice(-60).join('\n')).toBe('HBTEST done');
    const fact = (name: string) => {
      const line = all.find((l) => l.startsWith(`HBTEST ${name} `));
      expect(line, `no "HBTEST ${name}" line`).toBeDefined();
      return line!.slice(`HBTEST ${name} `.length);
    };
    /** A line's key=value words (values without spaces). */
    const kv = (name: string) => Object.fromEntries(fact(name).split(' ').filter((w) => /^[\w-]+=/.test(w)).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
    const field = (name: string, key: string) => kv(name)[key];

    // Without Node.js >= 20: a clear refusal and nothing installed.
    expect(fact('no-node')).toMatch(/^rc=1 unit=no app=no msg=install: Node\.js >= 20 is needed and there is none on PATH/);

    // install.sh --start returned only after READY=1: /healthz answered 200 at once.
    expect(field('install1', 'rc')).toBe('0');
    expect(field('install1', 'healthz')).toBe('200');
    expect(fact('install1')).toMatch(/"status":"ok"/);
    expect(kv('state1')).toEqual({ ActiveState: 'active', SubState: 'running', Result: 'success', NRestarts: '0', Type: 'notify', NotifyAccess: 'main', WatchdogUSec: '30s' });
    // The sample config serves DHCP on no interface until one is named.
    expect(fact('status')).toBe('serving http://0.0.0.0:8080, tftp 0.0.0.0:69, dhcp off, iscsi 0.0.0.0:3260');
    const startupSeconds = (Number(field('startup', 'active')) - Number(field('startup', 'exec'))) / 1e6;
    expect(startupSeconds).toBeGreaterThan(0);
    // The daemon logged "hiveboot is up" (then sent READY=1) before systemd took the unit as started.
    const readyToStarted = Number(field('order', 'started-us')) - Number(field('order', 'up-us'));
    expect(readyToStarted, fact('order')).toBeGreaterThan(0);

    // Not root, only the two capabilities (bits 10 and 13), no new privileges, a seccomp filter.
    const proc = kv('proc');
    expect(proc).toMatchObject({ user: 'hiveboot', comm: 'node', NoNewPrivs: '1', Seccomp: '2' });
    expect(proc.Uid).not.toMatch(/(^|,)0(,|$)/);
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(proc[set], set).toBe('0000000000002400');
    const paths = fact('paths');
    for (const expected of ['/opt/hiveboot=755,root:root', '/etc/hiveboot/hiveboot.yaml=640,root:hiveboot', '/var/lib/hiveboot=700,hiveboot:hiveboot',
      '/var/lib/hiveboot/hiveboot.db=600,hiveboot:hiveboot', '/var/lib/hiveboot/api-token=600,hiveboot:hiveboot']) expect(paths).toContain(expected);
    expect(fact('account')).toMatch(/^hiveboot:x:\d+:\d+:hiveboot network-boot server:\/nonexistent:\/usr\/sbin\/nologin$/);
    // Only production dependencies in the app; the native ones present; the boot files from ipxe.
    expect(kv('app')).toMatchObject({ vitest: 'no', typescript: 'no', 'better-sqlite3': 'yes', koffi: 'yes', undionly: 'yes' });
    expect(fact('ipxe')).toBe('install ok installed');
    expect(fact('execstart')).toBe('ExecStart=/usr/local/bin/node /opt/hiveboot/bin/hiveboot.js serve');
    expect(kv('verify')).toEqual({ rc: '0', lines: '0' });

    // DHCP on the dummy interface (SO_BINDTODEVICE, port 67) and TFTP (69) as the service user.
    const sockets = fact('sockets');
    expect(sockets).toContain('0.0.0.0%hb-dhcp0:67 ');
    expect(sockets).toContain('0.0.0.0:69 ');
    expect(sockets).toContain('0.0.0.0:8080 ');
    expect(sockets).toContain('0.0.0.0:3260 ');
    expect(fact('status2')).toBe('serving http://0.0.0.0:8080, tftp 0.0.0.0:69, dhcp proxy, iscsi 0.0.0.0:3260');
    expect(kv('tftp')).toEqual({ rc: '0', same: 'yes' });

    expect(kv('reload')).toEqual({ rc: '0', 'same-pid': 'yes', restarts: '0', ActiveState: 'active', SubState: 'running', logged: '1' });
    expect(kv('install2')).toMatchObject({ rc: '0', 'same-pid': 'yes', 'unit-same': 'yes', 'app-same': 'yes', 'config-same': 'yes', 'nothing-to-do': '1' });

    expect(kv('update')).toEqual({ rc: '0', 'new-pid': 'yes', restarting: '1', replaced: 'yes', healthz: '200', ActiveState: 'active', SubState: 'running' });

    // The watchdog: restarted once, healthy again. The last ping came up to WatchdogSec/2 before the
    // SIGSTOP, so the timeout falls between WatchdogSec/2 and WatchdogSec after it (plus RestartSec).
    const restartMs = Number(field('watchdog', 'restart-after-ms'));
    expect(restartMs).toBeGreaterThanOrEqual((WATCHDOG_SEC / 2) * 1000);
    expect(restartMs).toBeLessThan((WATCHDOG_SEC + 60) * 1000);
    expect(kv('watchdog')).toMatchObject({ 'new-pid': 'yes', restarts: '1', ActiveState: 'active', SubState: 'running', healthz: '200' });
    expect(fact('watchdog-journal')).toMatch(/Watchdog timeout \(limit 30s\)/);

    expect(kv('stop')).toMatchObject({ rc: '0', ActiveState: 'inactive', Result: 'success', ExecMainCode: '1', ExecMainStatus: '0', logged: '1' });
    expect(Number(field('stop', 'ms'))).toBeLessThan(10_000);

    expect(kv('uninstall')).toEqual({ rc: '0', unit: 'no', app: 'no', db: 'yes', config: 'yes', user: 'yes', 'unit-known': '0' });
    // The golden image's own /etc/hiveboot/agent.conf is not install.sh's to remove.
    expect(kv('purge')).toEqual({ rc: '0', state: 'no', config: 'no', 'agent-conf': 'yes', user: 'no', group: 'no' });

    console.log(
      `install.sh --start ${field('install1', 'seconds')} s (daemon start-up to READY=1 ${startupSeconds.toFixed(1)} s), re-run ${field('install2', 'seconds')} s, ` +
        `watchdog restart ${(restartMs / 1000).toFixed(1)} s after SIGSTOP (active again after ${(Number(field('watchdog', 'active-after-ms')) / 1000).toFixed(1)} s), ` +
        `stop ${field('stop', 'ms')} ms, ${fact('security')}; whole guest run ${at(performance.now())} under ${guestAccel()}`,
    );
  }, 30 * 60_000);
});
