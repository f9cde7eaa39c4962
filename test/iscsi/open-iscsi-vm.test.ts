// The Linux initiator every hiveboot host runs — open-iscsi in a Debian kernel, inside a QEMU guest
// booted from the golden image — against the built-in target: CHAP login, mkfs.ext4, a write and
// verify workload, and two restarts of the target process in the middle of it (SIGTERM, then
// kill -9), which open-iscsi rides out by logging in again (same ISID, TSIH 0: session
// reinstatement). Passes only if the guest's kernel log has no I/O error and every file verifies.
//
// The guest boots the image's kernel and initramfs directly with the image as a snapshot disk
// (nothing is written to it); the LUN under test is a second disk the guest logs into with
// iscsiadm. Its network is QEMU user mode with restrict=on: the guest reaches nothing but
// 10.0.2.100:3260, which QEMU relays to the target on 127.0.0.1. The guest is driven by a script
// passed through fw_cfg and run by systemd.run= (the test's kernel command line, not the image).
//
// The same boot also proves the image's own first-boot agent: the guest boots the image's
// multi-user target with hiveboot.url= pointing at a stand-in for hiveboot's /v1/hosts/self routes
// (10.0.2.101:8080, relayed to this test), and the agent must fetch its config, apply it and report.
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Static } from 'typebox';
import type { SelfConfig } from '../../src/http/routes/v1/self.js';
import { spawnTestTarget, type ChildTarget, type TestTargetSpec } from '../support/iscsi-target.js';
import { ensureGoldenImage, extractBoot, guestAccel, LinuxGuest, TEST_IMAGE, type GoldenImage } from '../support/vm.js';

const TARGET = 'iqn.2026-01.io.hiveboot:vm-w1';
const INITIATOR = 'iqn.2026-01.io.hiveboot:vm-w1-host';
const CHAP = { user: 'hb-vmw1user', secret: 'vmw1secret01x' };
const FILES = 48; // 1 MiB each
const RESTART_AT = { graceful: 12, kill: 30 }; // after the guest reports this many files written
const PORTAL = '10.0.2.100:3260'; // the guest's view; QEMU relays it to 127.0.0.1:<port>
const HIVEBOOT = '10.0.2.101:8080'; // the stand-in for hiveboot's metadata routes, relayed likewise
/** Typed as hiveboot's own response schema, so the stand-in cannot drift from the real route. */
const HOST_CONFIG: Static<typeof SelfConfig> = {
  mac: '52:54:00:00:0e:01',
  hostname: 'vm-w1',
  nodeName: 'vm-w1-node',
  labels: { role: 'worker', 'hiveboot.io/test': 'yes' },
  k3s: { serverUrl: 'https://10.0.2.102:6443', hasToken: true },
  dropIn: {
    path: '/etc/rancher/k3s/config.yaml.d/50-hiveboot.yaml',
    content:
      '# written by hiveboot for 52:54:00:00:0e:01\nserver: https://10.0.2.102:6443\ntoken: K10test::server:secret\n' +
      'node-name: vm-w1-node\nnode-label:\n  - role=worker\n  - hiveboot.io/test=yes\n',
  },
};

/** hiveboot's /v1/hosts/self routes as the agent sees them: the first GET fails, so it must retry. */
async function startMetadataStandIn(): Promise<{ server: Server; port: number; requests: string[]; events: { stage: string; message: string; at: number }[] }> {
  const requests: string[] = [];
  const events: { stage: string; message: string; at: number }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push(`${req.method} ${req.url}`);
      if (req.method === 'GET' && req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"status":"ok"}');
      } else if (req.method === 'GET' && req.url === '/v1/hosts/self/config') {
        const first = requests.filter((r) => r === 'GET /v1/hosts/self/config').length === 1;
        res.writeHead(first ? 503 : 200, { 'content-type': 'application/json' });
        res.end(first ? '{"error":"not ready"}' : JSON.stringify(HOST_CONFIG));
      } else if (req.method === 'POST' && req.url === '/v1/hosts/self/events') {
        events.push({ ...(JSON.parse(body) as { stage: string; message: string }), at: performance.now() });
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{}');
      } else {
        res.writeHead(404);
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, requests, events };
}

const canRun =
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

/** The built-in target as a child process (spawnTestTarget), so it can be killed and started again. */
class TargetProcess {
  private target?: ChildTarget;
  constructor(
    private spec: TestTargetSpec,
    private readonly logFile: string,
  ) {}

  get port(): number {
    return this.spec.port!;
  }

  async start(): Promise<void> {
    this.target = await spawnTestTarget(this.spec);
    // Every restart listens on the port the first start was given.
    this.spec = { ...this.spec, port: this.target.port };
  }

  async stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    if (!this.target) return;
    await this.target.kill(signal);
    writeFileSync(this.logFile, this.target.stderr(), { flag: 'a' });
  }
}

function guestScript(): string {
  return `#!/bin/sh
# Run by kernel-command-line.service in the test guest. Everything goes to the serial console,
# opened anew for each line (a getty's vhangup() would silence a descriptor kept open).
exec >/dev/null 2>&1
say() { echo "HBTEST $*" >/dev/ttyS0; }
show() { sed 's/^/  /' "$@" >/dev/ttyS0; }
fail() { say "FAIL $*"; dmesg | tail -n 40 | show; exit 1; }
PORTAL=${PORTAL} TARGET=${TARGET}
say "guest-up uptime=$(cut -d' ' -f1 /proc/uptime)"
mountpoint -q /tmp || mount -t tmpfs tmpfs /tmp
# The initramfs's address (ip=dhcp) may be dropped and taken again by systemd-networkd as it starts
# (without iBFT nothing marks the NIC as the boot NIC): wait for it rather than look once.
for i in $(seq 1 120); do ip -4 -o addr show scope global | grep -q . && break; sleep 1; done
ip -4 -o addr show scope global | grep -q . || fail "no address from QEMU's DHCP after 120 s"
printf 'InitiatorName=%s\\n' '${INITIATOR}' >/etc/iscsi/initiatorname.iscsi
modprobe iscsi_tcp
# iscsid reads the initiator name when it starts, and the boot may have started it already.
systemctl restart iscsid.service || fail "iscsid did not start"
node="-m node -T $TARGET -p $PORTAL"
iscsiadm $node -o new >/dev/null || fail "iscsiadm -o new"
for kv in node.session.auth.authmethod=CHAP node.session.auth.username=${CHAP.user} \\
    node.session.auth.password=${CHAP.secret} node.session.timeo.replacement_timeout=120 \\
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
say "workload-start files=${FILES}"
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
while [ $i -le ${FILES} ]; do
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
# The image's hiveboot-agent has been running beside all this (multi-user.target, hiveboot.url=).
for i in $(seq 1 120); do [ -f /etc/rancher/k3s/config.yaml.d/50-hiveboot.yaml ] && break; sleep 1; done
say "agent hostname=$(hostname) etc-hostname=$(cat /etc/hostname 2>/dev/null) hosts=$(grep -c '^127.0.1.1.*vm-w1' /etc/hosts)"
say "agent dropin-mode=$(stat -c %a /etc/rancher/k3s/config.yaml.d/50-hiveboot.yaml 2>/dev/null) node-name=$(sed -n 's/^node-name: //p' /etc/rancher/k3s/config.yaml.d/50-hiveboot.yaml 2>/dev/null)"
say "agent labels=$(grep -c '^  - ' /etc/rancher/k3s/config.yaml.d/50-hiveboot.yaml 2>/dev/null) k3s-agent=$(systemctl is-active k3s-agent.service)"
say "machine-id=$(cat /etc/machine-id | wc -c)"
say "done"
`;
}

describe.skipIf(!canRun)('open-iscsi in a Debian guest against the built-in target', () => {
  let dir: string;
  let image: GoldenImage;
  let boot: { kernel: string; initrd: string };
  let target: TargetProcess;
  let guest: LinuxGuest | undefined;
  let metadata: Awaited<ReturnType<typeof startMetadataStandIn>>;
  let g: LinuxGuest;

  beforeAll(async () => {
    mkdirSync(join(TEST_IMAGE, '..'), { recursive: true });
    dir = mkdtempSync('/var/tmp/hiveboot-vm-');
    const built = await ensureGoldenImage(join(dir, 'build-image.log'));
    image = built.image;
    console.log(`golden image ${image.path} (key ${image.key}) ready in ${built.seconds.toFixed(1)} s`);
    boot = await extractBoot(image, dir);
    target = new TargetProcess(
      {
        backing: { kind: 'file', path: join(dir, 'lun.img'), size: 256 * 1024 * 1024 },
        port: 0,
        targets: [{ name: TARGET, acl: [INITIATOR], chap: CHAP }],
      },
      join(dir, 'target.log'),
    );
    await target.start();
    metadata = await startMetadataStandIn();
  }, 30 * 60_000);

  afterAll(async () => {
    await guest?.kill();
    await target?.stop('SIGKILL');
    metadata?.server.close();
    if (dir && !process.env.HIVEBOOT_TEST_KEEP) rmSync(dir, { recursive: true, force: true });
  });

  it('logs in with CHAP, rides out a SIGTERM and a kill -9 restart of the target, no I/O error, data verified', async () => {
    const script = join(dir, 'guest.sh');
    writeFileSync(script, guestScript());
    const run = `/bin/sh -c 'modprobe qemu_fw_cfg; exec /bin/sh /sys/firmware/qemu_fw_cfg/by_name/opt/hiveboot/test/raw'`;
    const started = performance.now();
    guest = new LinuxGuest({
      kernel: boot.kernel,
      initrd: boot.initrd,
      // The image's multi-user.target, plus the test script (systemd.wants= pulls it in).
      cmdline:
        `root=UUID=${image.rootUuid} ro console=ttyS0,115200n8 quiet loglevel=4 hiveboot.url=http://${HIVEBOOT} systemd.mask=serial-getty@ttyS0.service ` +
        `systemd.run="${run}" systemd.wants=kernel-command-line.service systemd.run_success_action=poweroff systemd.run_failure_action=poweroff`,
      disks: [image.path],
      netdev: `user,id=n0,restrict=on,guestfwd=tcp:${PORTAL}-cmd:${relay(target.port)},guestfwd=tcp:${HIVEBOOT}-cmd:${relay(metadata.port)}`,
      fwCfg: { 'opt/hiveboot/test': script },
      consoleLog: join(dir, 'console.log'),
    });
    const at = (t: number) => ((t - started) / 1000).toFixed(1);
    const accel = guestAccel();

    const login = await guest.waitFor(/HBTEST (login-ok|FAIL)/, 8 * 60_000);
    expect(login.text, guest.lines.slice(-30).map((l) => l.text).join('\n')).toMatch(/login-ok/);
    console.log(`[${at(login.at)} s] guest (${accel}) logged in: ${login.text}`);

    const recoveries: Record<string, { outage: number; afterReady: number }> = {};
    for (const [kind, after] of [['graceful', RESTART_AT.graceful], ['kill', RESTART_AT.kill]] as const) {
      const mark = await guest.waitFor(new RegExp(`HBTEST (wrote ${after}$|FAIL)`), 5 * 60_000);
      expect(mark.text).toMatch(/wrote/);
      const stopAt = performance.now();
      await target.stop(kind === 'graceful' ? 'SIGTERM' : 'SIGKILL');
      await target.start();
      const readyAt = performance.now();
      const resumed = await guest.waitFor(/HBTEST (wrote \d+|FAIL)/, 4 * 60_000, mark.index + 1);
      expect(resumed.text).toMatch(/wrote/);
      // A write that finished just before the stop can print after it: count from the new target being up.
      const next = resumed.at >= readyAt ? resumed : await guest.waitFor(/HBTEST (wrote \d+|FAIL)/, 4 * 60_000, resumed.index + 1);
      recoveries[kind] = { outage: (next.at - stopAt) / 1000, afterReady: (next.at - readyAt) / 1000 };
      console.log(
        `[${at(next.at)} s] ${kind === 'graceful' ? 'SIGTERM' : 'kill -9'} + restart after file ${after}: target down ${((readyAt - stopAt) / 1000).toFixed(2)} s, ` +
          `guest I/O resumed ${recoveries[kind]!.afterReady.toFixed(2)} s after the new target was up (${recoveries[kind]!.outage.toFixed(2)} s after the stop) — ${next.text}`,
      );
    }

    g = guest;
    await g.waitFor(/HBTEST done/, 10 * 60_000);
    await g.exited;
    guest = undefined;
    const all = g.lines.map((l) => l.text);
    const marker = (name: string) => all.find((l) => l.startsWith(`HBTEST ${name}`)) ?? `(no HBTEST ${name} line)`;
    const dmesg = g.between(/^HBTEST dmesg-begin/, /^HBTEST dmesg-end/);
    const iscsid = g.between(/^HBTEST iscsid-begin/, /^HBTEST iscsid-end/);
    console.log(`guest's iscsid:\n${iscsid.filter((l) => /error|recover|operational|login|reinstat/i.test(l)).join('\n')}`);
    console.log(`guest's kernel on the restarts:\n${dmesg.filter((l) => /connection\d|iscsi|sd \d/i.test(l)).join('\n')}`);

    expect(all.filter((l) => /^HBTEST (FAIL|.*-FAILED)/.test(l)), all.slice(-40).join('\n')).toEqual([]);
    expect(marker('verify-ok')).toMatch(new RegExp(`^HBTEST verify-ok files=${FILES} direct-writes=\\d+$`));
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
    console.log(`recovery (guest I/O resumed after the new target was up): graceful ${recoveries.graceful!.afterReady.toFixed(2)} s, kill -9 ${recoveries.kill!.afterReady.toFixed(2)} s; whole run ${at(performance.now())} s under ${accel}`);
  }, 30 * 60_000);

  it("the image's agent found hiveboot from hiveboot.url=, applied the host's config and reported its stages", () => {
    expect(g, 'the VM test above did not run to the end').toBeDefined();
    const all = g.lines.map((l) => l.text);
    const marker = (name: string) => all.find((l) => l.startsWith(`HBTEST ${name}`)) ?? `(no HBTEST ${name} line)`;
    console.log(`agent: ${metadata.requests.join(', ')}\n${metadata.events.map((e) => `${e.stage}: ${e.message}`).join('\n')}`);
    // 503 first (not ready): the agent says it is up, waits, asks again.
    expect(metadata.requests.filter((r) => r === 'GET /v1/hosts/self/config').length).toBeGreaterThanOrEqual(2);
    // It says it is up before it asks for its configuration (after finding hiveboot alive at /healthz).
    expect(metadata.requests.slice(0, 3)).toEqual(['GET /healthz', 'POST /v1/hosts/self/events', 'GET /v1/hosts/self/config']);
    expect(metadata.events.map((e) => e.stage)).toEqual(['os-up', 'config-applied']);
    // This image has no K3s binary: the agent says so instead of reporting k3s-started.
    expect(metadata.events[1]!.message).toMatch(
      /^hostname vm-w1, K3s drop-in \/etc\/rancher\/k3s\/config\.yaml\.d\/50-hiveboot\.yaml \(server https:\/\/10\.0\.2\.102:6443, node-name vm-w1-node, join token\), K3s NOT installed/,
    );
    expect(all.some((l) => /HIVEBOOT-READY host=vm-w1 node=vm-w1-node$/.test(l))).toBe(true);
    expect(marker('agent hostname')).toBe('HBTEST agent hostname=vm-w1 etc-hostname=vm-w1 hosts=1');
    expect(marker('agent dropin')).toBe('HBTEST agent dropin-mode=600 node-name=vm-w1-node');
    expect(marker('agent labels')).toBe('HBTEST agent labels=2 k3s-agent=inactive');
    expect(marker('machine-id')).toBe('HBTEST machine-id=33');
  });
});

