// open-iscsi in a Debian guest against a built-in target that the test stops and starts again: the
// guest (the golden image's kernel and initramfs booted directly, the image a snapshot disk) logs in
// with CHAP, makes a file system on the LUN, and writes and verifies files while the target goes away
// twice (SIGTERM, then kill -9) and comes back on the same port. Shared by the test of the target
// alone (test/iscsi/open-iscsi-vm.test.ts) and the test of the whole daemon (test/e2e/restart-under-io).
//
// The guest's network is QEMU user mode with restrict=on: it reaches nothing but the guestfwd
// addresses, each relayed to a port on 127.0.0.1. It is driven by a script passed through fw_cfg and
// run by systemd.run= (the test's kernel command line, not the image), which reports on the serial
// console in "HBTEST …" lines.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ensureGoldenImage, extractBoot, guestAccel, LinuxGuest, TEST_IMAGE, type GoldenImage } from './vm.js';

export const canRunIscsiGuest =
  process.platform === 'linux' &&
  process.getuid?.() === 0 &&
  spawnSync('qemu-system-x86_64', ['--version']).status === 0 &&
  spawnSync('busybox', ['nc', '--help']).error === undefined;

/**
 * What QEMU runs for each guest connection to a guestfwd address: its stdin, stdout and stderr are
 * the connection, so nc's own complaints (while the target is down) must not reach it — the
 * initiator would read "nc: can't connect…" as a PDU header.
 */
const relay = (port: number) => `sh -c 'exec busybox nc 127.0.0.1 ${port} 2>/dev/null'`;

export interface IscsiWorkload {
  /** The portal as the guest sees it (ip:port): one of the guestfwd addresses. */
  portal: string;
  target: string;
  /** The initiator name the guest logs in with (the target's ACL must admit it). */
  initiator: string;
  chap: { user: string; secret: string };
  /** How many 1 MiB files the workload writes (and verifies). */
  files: number;
  /** Shell lines run after the logout, before the final "HBTEST done". */
  epilogue?: string;
}

function guestScript(w: IscsiWorkload): string {
  return `#!/bin/sh
# Run by kernel-command-line.service in the test guest. Everything goes to the serial console,
# opened anew for each line (a getty's vhangup() would silence a descriptor kept open).
exec >/dev/null 2>&1
say() { echo "HBTEST $*" >/dev/ttyS0; }
show() { sed 's/^/  /' "$@" >/dev/ttyS0; }
fail() { say "FAIL $*"; dmesg | tail -n 40 | show; exit 1; }
PORTAL=${w.portal} TARGET=${w.target}
say "guest-up uptime=$(cut -d' ' -f1 /proc/uptime)"
mountpoint -q /tmp || mount -t tmpfs tmpfs /tmp
# The initramfs's address (ip=dhcp) may be dropped and taken again by systemd-networkd as it starts
# (without iBFT nothing marks the NIC as the boot NIC): wait for it rather than look once.
for i in $(seq 1 120); do ip -4 -o addr show scope global | grep -q . && break; sleep 1; done
ip -4 -o addr show scope global | grep -q . || fail "no address from QEMU's DHCP after 120 s"
printf 'InitiatorName=%s\\n' '${w.initiator}' >/etc/iscsi/initiatorname.iscsi
modprobe iscsi_tcp
# iscsid reads the initiator name when it starts, and the boot may have started it already.
systemctl restart iscsid.service || fail "iscsid did not start"
node="-m node -T $TARGET -p $PORTAL"
iscsiadm $node -o new >/dev/null || fail "iscsiadm -o new"
for kv in node.session.auth.authmethod=CHAP node.session.auth.username=${w.chap.user} \\
    node.session.auth.password=${w.chap.secret} node.session.timeo.replacement_timeout=120 \\
    'node.conn[0].timeo.noop_out_interval=5' 'node.conn[0].timeo.noop_out_timeout=5'; do
  iscsiadm $node -o update -n "\${kv%%=*}" -v "\${kv#*=}" || fail "iscsiadm update $kv"
done
iscsiadm $node --login || fail "login"
dev=/dev/disk/by-path/ip-$PORTAL-iscsi-$TARGET-lun-0
udevadm settle
[ -b "$dev" ] || fail "no $dev"
dev=$(readlink -f "$dev")
say "login-ok dev=$dev sessions=$(iscsiadm -m session | wc -l) $(iscsiadm -m session)"
mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4"
mount "$dev" /mnt || fail "mount"
say "workload-start files=${w.files}"
: >/tmp/sums
# A second writer, with O_DIRECT, so that I/O is in flight whenever the target goes away: it
# rewrites 8 slots with fresh data and keeps the checksum of each slot's last complete write.
: >/tmp/stream-sums
(
  k=0
  while [ ! -e /tmp/stop ]; do
    slot=stream-$((k % 8)); k=$((k + 1))
    head -c 4194304 /dev/urandom >/tmp/stream.src
    dd if=/tmp/stream.src of=/mnt/$slot bs=64k oflag=direct status=none || { say "FAIL $slot write"; exit 1; }
    sum=$(sha256sum </tmp/stream.src | cut -d' ' -f1)
    { grep -v " $slot\$" /tmp/stream-sums; echo "$sum  $slot"; } >/tmp/stream-sums.new
    mv /tmp/stream-sums.new /tmp/stream-sums
    echo $k >/tmp/stream-count
  done
) &
streamer=$!
i=1
while [ $i -le ${w.files} ]; do
  head -c 1048576 /dev/urandom >/tmp/block
  dd if=/tmp/block of=/mnt/file-$i bs=256k conv=fsync status=none || fail "write file-$i"
  (cd /tmp && sha256sum block | sed "s| block| file-$i|") >>/tmp/sums
  say "wrote $i"
  i=$((i + 1))
done
touch /tmp/stop
wait $streamer || fail "the O_DIRECT writer failed"
cat /tmp/stream-sums >>/tmp/sums
sync
echo 3 >/proc/sys/vm/drop_caches
if (cd /mnt && sha256sum -c --quiet /tmp/sums) >/tmp/verify 2>&1; then
  say "verify-ok files=$(grep -c ' file-' /tmp/sums) direct-writes=$(cat /tmp/stream-count)"
else
  say "verify-FAILED"; show /tmp/verify
fi
umount /mnt || say "umount-FAILED"
if e2fsck -fn "$dev" >/tmp/fsck 2>&1; then say "fsck-ok"; else say "fsck-FAILED"; show /tmp/fsck; fi
say "sessions-after $(iscsiadm -m session | wc -l) $(iscsiadm -m session)"
say "iscsid-begin"; journalctl -b -u iscsid.service -o short-monotonic --no-pager | tail -n 30 | show; say "iscsid-end"
say "dmesg-begin"; dmesg | show; say "dmesg-end"
iscsiadm -m node --logoutall=all >/dev/null
${w.epilogue ?? ''}
say "done"
`;
}

/**
 * The golden image (built by scripts/build-image.sh unless it is up to date) and its kernel and
 * initramfs, read out into `dir` (the test's work directory; the build's log goes there too).
 */
export async function prepareGuestBoot(dir: string): Promise<{ image: GoldenImage; boot: { kernel: string; initrd: string } }> {
  mkdirSync(join(TEST_IMAGE, '..'), { recursive: true });
  const built = await ensureGoldenImage(join(dir, 'build-image.log'));
  console.log(`golden image ${built.image.path} (key ${built.image.key}) ready in ${built.seconds.toFixed(1)} s`);
  return { image: built.image, boot: await extractBoot(built.image, dir) };
}

export interface IscsiGuestOptions {
  /** The test's work directory: the script and the console log go there. */
  dir: string;
  image: GoldenImage;
  boot: { kernel: string; initrd: string };
  workload: IscsiWorkload;
  /** Guest addresses (ip:port, the portal among them) → the port on 127.0.0.1 QEMU relays each to. */
  forwards: Record<string, number>;
  /** Kernel arguments besides the root, console and systemd.run= ones. */
  kernelArgs?: string;
}

/** Boots the guest, which runs the workload on its own and powers off after "HBTEST done". */
export function startIscsiGuest(o: IscsiGuestOptions): LinuxGuest {
  const script = join(o.dir, 'guest.sh');
  writeFileSync(script, guestScript(o.workload));
  const run = `/bin/sh -c 'modprobe qemu_fw_cfg; exec /bin/sh /sys/firmware/qemu_fw_cfg/by_name/opt/hiveboot/test/raw'`;
  const forwards = Object.entries(o.forwards).map(([at, port]) => `guestfwd=tcp:${at}-cmd:${relay(port)}`);
  return new LinuxGuest({
    kernel: o.boot.kernel,
    initrd: o.boot.initrd,
    // The image's multi-user.target, plus the test script (systemd.wants= pulls it in).
    cmdline:
      `root=UUID=${o.image.rootUuid} ro console=ttyS0,115200n8 quiet loglevel=4 ${o.kernelArgs ? `${o.kernelArgs} ` : ''}systemd.mask=serial-getty@ttyS0.service ` +
      `systemd.run="${run}" systemd.wants=kernel-command-line.service systemd.run_success_action=poweroff systemd.run_failure_action=poweroff`,
    disks: [o.image.path],
    netdev: `user,id=n0,restrict=on,${forwards.join(',')}`,
    fwCfg: { 'opt/hiveboot/test': script },
    consoleLog: join(o.dir, 'console.log'),
  });
}

export type RestartKind = 'graceful' | 'kill';

/** The target side of the test: what is stopped and started again under the guest's workload. */
export interface Restartable {
  /** Stops it (graceful: SIGTERM; kill: SIGKILL) and resolves once it is gone. */
  stop(kind: RestartKind): Promise<void>;
  /** Starts it again on the same port; resolves once it serves. */
  start(): Promise<void>;
}

export interface Recovery {
  /** Seconds from the stop to the guest's first write that finished after the restart. */
  outage: number;
  /** Seconds from the new target being up to that write. */
  afterReady: number;
  /** Seconds the target was down (stop issued → up again). */
  down: number;
}

export interface WorkloadRun {
  /** Every console line, in order. */
  lines: string[];
  /** The first "HBTEST <name>…" line (or a line saying there was none). */
  marker(name: string): string;
  /** The guest's kernel log and iscsid's journal, as it dumped them at the end. */
  dmesg: string[];
  iscsid: string[];
  recoveries: Record<RestartKind, Recovery>;
  /** Seconds from the guest's start to its power-off. */
  seconds: number;
  /** What was restarted ("target", "daemon"), for messages. */
  what: string;
}

/**
 * Follows the guest's workload: waits for its login, stops and starts `target` (SIGTERM after the
 * `restartAt.graceful`th file, kill -9 after the `restartAt.kill`th), prints how long the guest's I/O
 * took to resume after each, and waits for the end (the guest dumps its logs and powers off).
 * Call it right after startIscsiGuest: times are counted from then.
 */
export async function followWorkload(
  guest: LinuxGuest,
  o: { restartAt: Record<RestartKind, number>; target: Restartable; what: string },
): Promise<WorkloadRun> {
  const started = performance.now();
  const at = (t: number) => ((t - started) / 1000).toFixed(1);

  const login = await guest.waitFor(/HBTEST (login-ok|FAIL)/, 8 * 60_000);
  expect(login.text, guest.lines.slice(-30).map((l) => l.text).join('\n')).toMatch(/login-ok/);
  console.log(`[${at(login.at)} s] guest (${guestAccel()}) logged in: ${login.text}`);

  const recoveries = {} as Record<RestartKind, Recovery>;
  for (const kind of ['graceful', 'kill'] as const) {
    const after = o.restartAt[kind];
    const mark = await guest.waitFor(new RegExp(`HBTEST (wrote ${after}$|FAIL)`), 5 * 60_000);
    expect(mark.text).toMatch(/wrote/);
    const stopAt = performance.now();
    await o.target.stop(kind);
    await o.target.start();
    const readyAt = performance.now();
    const resumed = await guest.waitFor(/HBTEST (wrote \d+|FAIL)/, 4 * 60_000, mark.index + 1);
    expect(resumed.text).toMatch(/wrote/);
    // A write that finished just before the stop can print after it: count from the new target being up.
    const next = resumed.at >= readyAt ? resumed : await guest.waitFor(/HBTEST (wrote \d+|FAIL)/, 4 * 60_000, resumed.index + 1);
    const r = { outage: (next.at - stopAt) / 1000, afterReady: (next.at - readyAt) / 1000, down: (readyAt - stopAt) / 1000 };
    recoveries[kind] = r;
    console.log(
      `[${at(next.at)} s] ${kind === 'graceful' ? 'SIGTERM' : 'kill -9'} + restart of the ${o.what} after file ${after}: ${o.what} down ${r.down.toFixed(2)} s, ` +
        `guest I/O resumed ${r.afterReady.toFixed(2)} s after the new ${o.what} was up (${r.outage.toFixed(2)} s after the stop) — ${next.text}`,
    );
  }

  await guest.waitFor(/HBTEST done/, 10 * 60_000);
  await guest.exited;
  const lines = guest.lines.map((l) => l.text);
  const run: WorkloadRun = {
    lines,
    marker: (name) => lines.find((l) => l.startsWith(`HBTEST ${name}`)) ?? `(no HBTEST ${name} line)`,
    dmesg: guest.between(/^HBTEST dmesg-begin/, /^HBTEST dmesg-end/),
    iscsid: guest.between(/^HBTEST iscsid-begin/, /^HBTEST iscsid-end/),
    recoveries,
    seconds: (performance.now() - started) / 1000,
    what: o.what,
  };
  console.log(`guest's iscsid:\n${run.iscsid.filter((l) => /error|recover|operational|login|reinstat/i.test(l)).join('\n')}`);
  console.log(`guest's kernel on the restarts:\n${run.dmesg.filter((l) => /connection\d|iscsi|sd \d/i.test(l)).join('\n')}`);
  return run;
}

/**
 * What every such run must show: no failure, every file verified, a clean fsck, no I/O error in the
 * kernel log, both restarts ridden out by recovering the one session it logged in with, each within
 * a minute of the target being back.
 */
export function expectWorkloadSurvived(run: WorkloadRun, files: number): void {
  const { lines, marker, dmesg, recoveries, what } = run;
  expect(lines.filter((l) => /^HBTEST (FAIL|.*-FAILED)/.test(l)), lines.slice(-40).join('\n')).toEqual([]);
  expect(marker('verify-ok')).toMatch(new RegExp(`^HBTEST verify-ok files=${files} direct-writes=\\d+$`));
  expect(marker('fsck-ok')).toBe('HBTEST fsck-ok');
  expect(dmesg.length).toBeGreaterThan(10);
  expect(dmesg.filter((l) => /I\/O error|EXT4-fs (error|warning)|Aborting journal|critical (target|medium) error/i.test(l))).toEqual([]);
  // Both restarts reached the session (the kernel saw the connection drop), and it came back as the
  // same session: recovery, not a new login that the file system would have lost its disk to.
  expect(dmesg.filter((l) => /detected conn error/.test(l)).length).toBeGreaterThanOrEqual(2);
  // ...and only as a closed TCP connection: any other error (a bad PDU, a digest) is the target's fault.
  expect(dmesg.filter((l) => /detected conn error \((?!1020\))/.test(l) || /iscsi_tcp: datalen/.test(l))).toEqual([]);
  expect(marker('sessions-after')).toMatch(/^HBTEST sessions-after 1 /);
  expect(marker('sessions-after').replace(/^HBTEST sessions-after /, '')).toBe(marker('login-ok').replace(/^.*sessions=/, ''));
  for (const r of Object.values(recoveries)) expect(r.afterReady).toBeLessThan(60);
  console.log(marker('verify-ok'));
  console.log(
    `recovery (guest I/O resumed after the new ${what} was up): graceful ${recoveries.graceful.afterReady.toFixed(2)} s, ` +
      `kill -9 ${recoveries.kill.afterReady.toFixed(2)} s; whole run ${run.seconds.toFixed(1)} s under ${guestAccel()}`,
  );
}
