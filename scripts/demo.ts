// The main job, on this machine: hiveboot boots a real VM from its own copy-on-write iSCSI disk.
//
//   bash scripts/demo.sh        (installs what is missing, then runs this with tsx)
//
// A lab network made here and removed on exit: namespace "srv" holds the boot network's switch
// (bridge br0, 10.93.0.1/24) with hiveboot on it; namespace "rtr" plays the home router (a DHCP-only
// dnsmasq handing out addresses). hiveboot runs beside it as proxyDHCP with its embedded defaults;
// the config below only says where it listens. A QEMU guest (SeaBIOS + the NIC's iPXE ROM, no disk)
// then powers on and boots Debian from the LUN hiveboot made for it, while the host's timeline is
// printed live. Nothing touches this machine's own interfaces.
//
// From a terminal it keeps the VM running until Ctrl-C; otherwise it stops once the VM is up.
// Ctrl-C (or any failure) stops every process it started, by PID, and deletes the namespaces.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { routerLab } from '../test/support/boot-lab.js';
import { NetLab } from '../test/support/netns.js';
import { startGuest } from '../test/support/qemu.js';
import { TEST_IMAGE } from '../test/support/vm.js';

const REPO = join(import.meta.dirname, '..');
const DIR = join(REPO, '.tmp', 'demo');
/** Shared with the tests: built once, then reused (the build script decides whether it is current). */
const IMAGE = TEST_IMAGE;
const MAC = '52:54:00:de:30:01';
const HOSTNAME = 'demo-1';
const SERVER = '10.93.0.1';
const BOOT_TIMEOUT_MS = Number(process.env.HIVEBOOT_DEMO_TIMEOUT_S ?? 900) * 1000;

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const step = (s: string) => console.log(`\n${bold(`== ${s}`)}`);

const lab = new NetLab();
let cleaning: Promise<void> | undefined;
const cleanUp = () => (cleaning ??= lab.destroy());
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    console.log(`\n${bold('== stopping: VM, hiveboot, router; deleting the lab namespaces')}`);
    void cleanUp().then(() => process.exit(130));
  });
}

/** Runs a command to completion with its output on ours; throws if it fails. */
function runShown(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`))));
  });
}

async function main(): Promise<void> {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true, mode: 0o700 });

  step(`golden image: Debian 12 + hiveboot's first-boot agent (scripts/build-image.sh ${IMAGE})`);
  await runShown('bash', [join(REPO, 'scripts', 'build-image.sh'), IMAGE]);

  const { srv, rtr } = await routerLab(lab, { net: 93, taps: ['tap0'], dir: DIR });
  step(`lab network: bridge br0 ${SERVER}/24 in namespace ${srv}, a home router in ${rtr}`);
  console.log('router: dnsmasq, DHCP only (10.93.0.150-199), knows nothing about network boot');

  // The K3s join token hiveboot hands to each host in its own drop-in (never logged, 0600).
  const tokenFile = join(DIR, 'k3s-token');
  writeFileSync(tokenFile, `K10${randomBytes(24).toString('hex')}::server:${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });
  const config = join(DIR, 'hiveboot.yaml');
  writeFileSync(
    config,
    `# Where hiveboot listens and keeps its state; everything else is the embedded default
# (proxyDHCP, TFTP from netboot/, the built-in iSCSI target with copy-on-write disks).
stateDir: ${join(DIR, 'state')}
http: { listen: 0.0.0.0, port: 8080 }
dhcp: { interfaces: [br0] }
iscsi: { portals: [${SERVER}] }
k3s: { serverUrl: "https://10.93.0.10:6443", tokenFile: ${tokenFile} }
`,
  );
  step(`hiveboot serve --config ${config}`);
  console.log(readFileSync(config, 'utf8').trimEnd());
  const daemon = lab.spawn(srv, process.execPath, [join(REPO, 'bin', 'hiveboot.js'), 'serve', '--config', config]);
  const log = join(DIR, 'hiveboot.log');
  const logStream = createWriteStream(log);
  daemon.stdout!.pipe(logStream);
  daemon.stderr!.pipe(logStream);
  await waitUp(srv, daemon);
  console.log(`up at http://${SERVER}:8080 (API token in ${join(DIR, 'state', 'api-token')}; log ${log})`);

  const hb = (...args: string[]) => runShown('ip', ['netns', 'exec', srv, process.execPath, join(REPO, 'bin', 'hiveboot.js'), '--config', config, ...args]);
  step('register the golden image, a profile and the machine (the CLI talks to the REST API)');
  console.log(`$ hiveboot image add debian12 ${IMAGE}`);
  await hb('image', 'add', 'debian12', IMAGE, '--description', 'Debian 12 + K3s agent units');
  console.log('$ hiveboot profile add debian-k3s --image debian12 --k3s-label role=worker');
  await hb('profile', 'add', 'debian-k3s', '--image', 'debian12', '--k3s-label', 'role=worker', '--description', 'Debian 12, K3s agent');
  console.log(`$ hiveboot host add --mac ${MAC} --hostname ${HOSTNAME} --profile debian-k3s`);
  await hb('host', 'add', '--mac', MAC, '--hostname', HOSTNAME, '--profile', 'debian-k3s');
  console.log(`(${HOSTNAME} now has its own copy-on-write clone of the image, an iSCSI target and a CHAP secret)`);

  const consoleLog = join(DIR, `${HOSTNAME}.console.log`);
  step(`power on ${HOSTNAME}: QEMU, SeaBIOS + iPXE ROM, no disk (console: ${consoleLog})`);
  const poweredOn = Date.now();
  const guest = startGuest(lab, { ns: srv, tap: 'tap0', mac: MAC, firmware: 'bios', workDir: DIR, memoryMiB: 1024, serialLog: consoleLog });

  step(`${HOSTNAME}'s timeline, live: hiveboot host events ${MAC} --follow --until config-applied`);
  const follow = lab.spawn(srv, process.execPath, [
    join(REPO, 'bin', 'hiveboot.js'), '--config', config, 'host', 'events', MAC, '--follow', '--until', 'config-applied',
  ]);
  follow.stdout!.pipe(process.stdout);
  follow.stderr!.pipe(process.stderr);
  const marker = await waitForMarker(consoleLog, guest, follow, poweredOn + BOOT_TIMEOUT_MS);
  await new Promise((r) => (follow.exitCode === null ? follow.once('close', r) : r(null)));

  step(`${HOSTNAME} is up: Debian from its own iSCSI disk, ${((Date.now() - poweredOn) / 1000).toFixed(0)} s after power-on (software-emulated CPU)`);
  console.log(`console: ${marker}`);
  if (process.stdin.isTTY) {
    console.log(`\nThe VM keeps running. Its console: tail -f ${consoleLog}`);
    console.log(`The CLI: ip netns exec ${srv} node bin/hiveboot.js --config ${config} host show ${MAC}`);
    console.log(bold('Ctrl-C stops the VM, hiveboot and the router and deletes the lab namespaces.'));
    await new Promise(() => {});
  }
}

async function waitUp(srv: string, daemon: ChildProcess): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if (daemon.exitCode !== null) throw new Error(`hiveboot exited ${daemon.exitCode}: see ${join(DIR, 'hiveboot.log')}`);
    const r = await lab.run(srv, 'curl', ['-fsS', `http://${SERVER}:8080/healthz`], { timeoutMs: 2000 });
    if (r.code === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('hiveboot did not come up within 30 s');
}

/** The agent's "HIVEBOOT-READY host=... node=..." line on the guest's console. */
async function waitForMarker(consoleLog: string, guest: ChildProcess, follow: ChildProcess, deadline: number): Promise<string> {
  for (;;) {
    const text = existsSync(consoleLog) ? readFileSync(consoleLog, 'latin1') : '';
    const m = /HIVEBOOT-READY host=\S+ node=\S+/.exec(text);
    if (m) return m[0];
    if (guest.exitCode !== null || guest.signalCode !== null || Date.now() > deadline) {
      follow.kill();
      const why = guest.exitCode !== null || guest.signalCode !== null ? 'the VM stopped' : `no marker within ${BOOT_TIMEOUT_MS / 1000} s`;
      throw new Error(`${why}. Console (last lines):\n${text.split('\n').slice(-25).join('\n')}\nhiveboot log: ${join(DIR, 'hiveboot.log')}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

try {
  await main();
} catch (err) {
  console.error(`\ndemo: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  await cleanUp();
}
