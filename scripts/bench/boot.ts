// npm run bench -- boot: real BIOS guests network-boot the golden image through hiveboot and through
// the stack a user would otherwise assemble, in the same run, on the same lab network, one stack at a
// time, and the time of every boot stage after power-on is printed side by side with ratios.
//
// Both stacks sit beside the same kind of "home router" (a DHCP-only dnsmasq in its own namespace,
// test/support/boot-lab.ts) on bridge br0 in namespace srv, and boot the same QEMU guests (SeaBIOS +
// the virtio NIC's iPXE ROM, no disk, TCG):
//   hiveboot   bin/hiveboot.js serve (compiled dist/): proxyDHCP, /boot.ipxe and the per-host script
//              over HTTP, its built-in iSCSI target; the hosts are registered through the REST API
//              with a profile whose image is the golden image, so each gets a copy-on-write overlay,
//              its own target and a CHAP secret.
//   reference  dnsmasq in proxy mode (iPXE clients get http://<srv>:8080/boot.ipxe; legacy PXE would
//              get undionly.kpxe over TFTP), python3 -m http.server with boot.ipxe (chains to a script
//              per MAC) and one script per guest (initiator name, CHAP user/password, sanboot), tgtd
//              with one target per guest (CHAP account bound, initiator-name ACL) backed by a full
//              copy of the golden image (tgt has no copy-on-write; the copy is timed, not in the boot).
// Measured the same way for both: a tcpdump capture on br0 (parsed by pcap.ts) for the wire stages
// (DHCP, HTTP, TCP connects to 3260), and the serial console read through QEMU's stdout with the
// arrival time of every chunk for the guest stages (GRUB, kernel, initramfs iSCSI login, login
// prompt). Everything this starts is stopped by PID and every namespace and disk copy is removed at
// the end, on an error and on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labApi, routerLab } from '../../test/support/boot-lab.js';
import { waitForOutput } from '../../test/support/netns.js';
import { ensureGoldenImage } from '../../test/support/vm.js';
import { BenchGuest, now } from './boot-guest.js';
import { BenchLab, cpuMs } from './lab.js';
import { messageType } from '../../src/dhcp/options.js';
import { clientMac, decodePacket, type DhcpPacket } from '../../src/dhcp/packet.js';
import { decodeEthernet, readPcap, TCP_ACK, TCP_SYN, type Packet } from './pcap.js';

const ROOT = join(import.meta.dirname, '../..');
const NETBOOT = join(ROOT, 'netboot');
const NET = 95;
const SERVER = `10.${NET}.0.1`;
const ROUTER = `10.${NET}.0.254`;
const HTTP_PORT = 8080;
const ISCSI_PORT = 3260;
const IQN = 'iqn.2026-11.io.hiveboot.bench';

export type Stack = 'hiveboot' | 'reference';

export interface BootBenchOptions {
  /** Guests of the boot storm (powered on at once); 1 or less: no storm. */
  guests: number;
  /** Also boot one guest alone per stack. */
  single: boolean;
  /** Per stack and run: power-on to the last guest done. */
  timeoutS: number;
  memoryMiB: number;
  /** How long after the login prompt hiveboot's agent marker is waited for. */
  markerGraceS: number;
  /** SeaBIOS mirrors iPXE's screen to the serial console (diagnostics; more console output). */
  sercon: boolean;
  /** Keep the work directory (captures, consoles, server logs) instead of removing it. */
  keep: boolean;
}

export function bootOptions(env: NodeJS.ProcessEnv = process.env): BootBenchOptions {
  return {
    guests: Number(env.BENCH_BOOT_GUESTS ?? 4),
    single: env.BENCH_BOOT_SINGLE !== '0',
    timeoutS: Number(env.BENCH_BOOT_TIMEOUT_S ?? 1800),
    memoryMiB: Number(env.BENCH_BOOT_MEM_MIB ?? 768),
    markerGraceS: Number(env.BENCH_BOOT_MARKER_S ?? 240),
    sercon: env.BENCH_BOOT_SERCON === '1',
    keep: env.BENCH_BOOT_KEEP === '1',
  };
}

export function bootTitle(o: BootBenchOptions): string {
  const runs = [o.single ? '1 guest' : '', o.guests > 1 ? `${o.guests} guests powered on at once` : ''].filter(Boolean).join(', then ');
  return (
    `\nBoot: real BIOS guests (QEMU TCG, SeaBIOS + virtio iPXE ROM, ${o.memoryMiB} MiB, no disk) network-boot the golden image` +
    ` beside the same DHCP-only dnsmasq router; ${runs}; the stacks in turns, never at once.` +
    `\n  hiveboot:  proxyDHCP + HTTP boot scripts + built-in iSCSI target, one copy-on-write overlay and CHAP secret per host (REST API)` +
    `\n  reference: dnsmasq proxyDHCP + python3 http.server (boot.ipxe, a script per MAC) + tgtd, one full image copy per guest, CHAP` +
    `\n  seconds after QEMU start; wire: tcpdump on the bridge; serial: console text as it arrived`
  );
}

type StageKey =
  | 'dhcpOffer' | 'dhcpDone' | 'bootScript' | 'hostScript' | 'iscsi1' | 'grub' | 'grubBoot' | 'kernel'
  | 'iscsi2' | 'iscsi2Up' | 'systemd' | 'networkOnline' | 'iscsi3' | 'osUp' | 'marker'
  // only for the spans
  | 'discover' | 'bootGet' | 'hostGet';

interface StageDef {
  key: StageKey;
  label: string;
  source: 'wire' | 'serial';
  hivebootOnly?: boolean;
}

const STAGES: StageDef[] = [
  { key: 'dhcpOffer', label: 'DHCP boot offer (proxy)', source: 'wire' },
  { key: 'dhcpDone', label: 'DHCP last reply before HTTP', source: 'wire' },
  { key: 'bootScript', label: 'HTTP /boot.ipxe served', source: 'wire' },
  { key: 'hostScript', label: 'HTTP host script served', source: 'wire' },
  { key: 'iscsi1', label: 'iSCSI 1st connect (iPXE)', source: 'wire' },
  { key: 'grub', label: 'GRUB menu', source: 'serial' },
  { key: 'grubBoot', label: 'GRUB "Booting" (loads kernel)', source: 'serial' },
  { key: 'kernel', label: 'kernel start', source: 'serial' },
  { key: 'iscsi2', label: 'iSCSI initramfs connect', source: 'wire' },
  { key: 'iscsi2Up', label: 'iSCSI initramfs session up', source: 'serial' },
  { key: 'systemd', label: 'systemd start', source: 'serial' },
  { key: 'networkOnline', label: 'systemd network-online.target', source: 'serial' },
  { key: 'iscsi3', label: 'iSCSI re-login by iscsid (OS)', source: 'wire' },
  { key: 'osUp', label: 'OS up (login: prompt)', source: 'serial' },
  { key: 'marker', label: 'agent HIVEBOOT-READY', source: 'serial', hivebootOnly: true },
];

/** Durations between two points of one guest's boot (from undefined: power-on). */
const SPANS: { label: string; from?: StageKey; to: StageKey }[] = [
  { label: 'DHCP: 1st discover → boot offer', from: 'discover', to: 'dhcpOffer' },
  { label: 'HTTP: /boot.ipxe GET → served', from: 'bootGet', to: 'bootScript' },
  { label: 'HTTP: host script GET → served', from: 'hostGet', to: 'hostScript' },
  { label: 'host script → iSCSI connect', from: 'hostScript', to: 'iscsi1' },
  { label: 'iPXE sanboot → GRUB menu', from: 'iscsi1', to: 'grub' },
  { label: 'GRUB reads kernel+initrd (iSCSI)', from: 'grubBoot', to: 'kernel' },
  { label: 'kernel → initramfs session up', from: 'kernel', to: 'iscsi2Up' },
  { label: 'initramfs session → OS up', from: 'iscsi2Up', to: 'osUp' },
];

/** What the console prints at each guest stage (raw text: GRUB draws with escape sequences). */
const SERIAL: Partial<Record<StageKey, RegExp>> = {
  grub: /GNU GRUB +version/,
  grubBoot: /Booting `/,
  kernel: /Linux version \d/,
  iscsi2Up: /iscsistart: Connection\S* to .*operational now/,
  systemd: /Welcome to .{0,16}Debian/,
  // The first-boot agent starts after this: the last common point before its work differs.
  networkOnline: /Reached target .{0,24}network-online\.target/,
  // The serial getty's prompt, "<hostname> login: " (no newline after it).
  osUp: /\S+ login: /,
  marker: /HIVEBOOT-READY host=\S+ node=\S+/,
};
const FAILURE = /Kernel panic|Gave up waiting|No bootable device|ALERT!|Boot failed/;

interface GuestSpec {
  name: string;
  mac: string;
  tap: string;
  /** Reference stack only. */
  initiator: string;
  target: string;
  chapUser: string;
  chapSecret: string;
  disk: string;
}

export interface GuestResult {
  name: string;
  /** Seconds after power-on. */
  stages: Partial<Record<StageKey, number>>;
  failure?: string;
}

export interface ProcUse {
  name: string;
  /** CPU time (user + system, all threads) from power-on until the last guest was up (s). */
  cpuS?: number;
  /** Resident memory when the last guest was up, and the peak over the process's life (VmHWM), MB. */
  rssMB?: number;
  peakRssMB?: number;
}

export interface StackRun {
  stack: Stack;
  guests: GuestResult[];
  procs: ProcUse[];
  /** Disk preparation, outside the boot times. */
  provision?: string;
  /** Power-on of the first guest to the last OS up (s). */
  wallS?: number;
  error?: string;
  /** Where its captures and logs are (kept with BENCH_BOOT_KEEP=1). */
  dir: string;
}

export interface BootRun {
  guests: number;
  stacks: StackRun[];
}

export interface BootResult {
  runs: BootRun[];
  golden: string;
  goldenNote: string;
  kept?: string;
}

/** Teardowns of what is running now, for Ctrl-C. */
const teardowns = new Set<() => Promise<void>>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Idempotent: the first call does the work, later calls wait for it. */
function once(f: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= f());
}

/** A command to completion (output kept for the error message). */
function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${out.trim().slice(-2000)}`))));
  });
}

/** Copies a child's output to a file, so that a chatty server never blocks on a full pipe. */
function drain(child: ChildProcess, file: string): void {
  const log = createWriteStream(file);
  child.stdout?.on('data', (d: Buffer) => log.write(d));
  child.stderr?.on('data', (d: Buffer) => log.write(d));
  child.once('close', () => log.end());
}

function waitClose(child: ChildProcess, killAfterMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  await waitClose(child, 5000);
}

function rssMB(pid: number | undefined, field: 'VmRSS' | 'VmHWM'): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Polls a URL from inside the namespace until it answers (any HTTP status). */
async function waitHttp(lab: BenchLab, ns: string, url: string, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before answering ${url}`);
    const r = await lab.run(ns, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', url], { timeoutMs: 5000 });
    if (/^[1-5]\d\d$/.test(r.stdout.trim())) return;
    await sleep(100);
  }
  throw new Error(`${what} did not answer ${url} within 30 s`);
}

/** dist/ compiled from the current sources (hiveboot runs as users run it: bin/hiveboot.js over dist/). */
async function ensureDist(): Promise<string> {
  const newest = (dir: string, ext: string): number => {
    let t = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) t = Math.max(t, newest(p, ext));
      else if (e.name.endsWith(ext)) t = Math.max(t, statSync(p).mtimeMs);
    }
    return t;
  };
  const main = join(ROOT, 'dist/cli/main.js');
  const built = existsSync(main) ? statSync(main).mtimeMs : 0;
  if (newest(join(ROOT, 'src'), '.ts') <= built) return 'dist/ is current';
  const started = now();
  await run('npm', ['run', '--silent', 'build'], { cwd: ROOT });
  return `dist/ rebuilt (npm run build, ${((now() - started) / 1000).toFixed(0)} s)`;
}

/** A tgtd control socket number no running tgtd answers on. */
async function freeTgtControl(): Promise<number> {
  for (let ctl = 77; ctl < 200; ctl++) {
    if (!existsSync(`/var/run/tgtd/socket.${ctl}`)) return ctl;
    try {
      await run('tgtadm', ['-C', String(ctl), '--mode', 'system', '--op', 'show']);
    } catch {
      return ctl; // a stale socket file: nobody answers
    }
  }
  throw new Error('no free tgtd control socket number in 77-199');
}

interface StackHandle {
  procs: { name: string; child: ChildProcess }[];
  provision: string;
  stop(): Promise<void>;
}

async function startHiveboot(lab: BenchLab, srv: string, dir: string, golden: string, specs: GuestSpec[]): Promise<StackHandle> {
  const config = join(dir, 'hiveboot.yaml');
  // What a user writes for proxy mode beside a router; everything else is the embedded default.
  writeFileSync(
    config,
    `stateDir: ${join(dir, 'state')}
http: { listen: 0.0.0.0, port: ${HTTP_PORT} }
dhcp: { mode: proxy, interfaces: [br0] }
tftp: { root: ${NETBOOT} }
iscsi: { portals: [${SERVER}] }
k3s: { serverUrl: "https://10.${NET}.0.10:6443" }
`,
  );
  const child = lab.spawn(srv, process.execPath, [join(ROOT, 'bin/hiveboot.js'), 'serve', '--config', config]);
  drain(child, join(dir, 'hiveboot.log'));
  const stop = once(() => stopChild(child));
  try {
    await waitHttp(lab, srv, `http://${SERVER}:${HTTP_PORT}/healthz`, child, 'hiveboot');
    const api = labApi(lab, srv, `http://${SERVER}:${HTTP_PORT}`, join(dir, 'state'));
    const must = async (method: string, path: string, body: unknown) => {
      const r = await api(method, path, body);
      if (r.status !== 201) throw new Error(`hiveboot ${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
      return r.json;
    };
    await must('POST', '/v1/images', { name: 'golden', location: golden });
    await must('POST', '/v1/profiles', { name: 'bench', template: 'sanboot', image: 'golden' });
    const started = now();
    for (const g of specs) {
      const host = await must('POST', '/v1/hosts', { mac: g.mac, hostname: g.name, profile: 'bench' });
      if (host.state !== 'ready') throw new Error(`hiveboot: host ${g.name} is ${String(host.state)}, not ready: ${JSON.stringify(host)}`);
    }
    const ms = now() - started;
    return {
      procs: [{ name: 'hiveboot', child }],
      provision: `${specs.length} host(s) registered through the REST API (overlay + target + CHAP each): ${ms.toFixed(0)} ms, curl included`,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function startReference(lab: BenchLab, srv: string, dir: string, golden: string, specs: GuestSpec[]): Promise<StackHandle> {
  const started: { name: string; child: ChildProcess }[] = [];
  let tgtCtl: number | undefined;
  let tgtd: ChildProcess | undefined;
  const tgtadm = (...args: string[]) => run('tgtadm', ['-C', String(tgtCtl), '--lld', 'iscsi', ...args]);
  const stop = once(async () => {
    // tgtd ignores SIGTERM: delete its targets and then the system over its control socket.
    if (tgtd && tgtd.exitCode === null && tgtd.signalCode === null) {
      for (let tid = 1; tid <= specs.length; tid++) await tgtadm('--mode', 'target', '--op', 'delete', '--force', '--tid', String(tid)).catch(() => {});
      await run('tgtadm', ['-C', String(tgtCtl), '--mode', 'system', '--op', 'delete']).catch(() => {});
      await waitClose(tgtd, 5000);
    }
    if (tgtCtl !== undefined) for (const f of [`socket.${tgtCtl}`, `socket.${tgtCtl}.lock`]) rmSync(join('/var/run/tgtd', f), { force: true });
    for (const p of started) if (p.child !== tgtd) await stopChild(p.child);
    for (const g of specs) rmSync(g.disk, { force: true });
  });
  try {
    // 1. A full copy of the golden image per guest, written back to disk before any guest starts.
    const copyStart = now();
    for (const g of specs) await run('cp', ['--sparse=always', golden, g.disk]);
    await run('sync', specs.map((g) => g.disk));
    const copyS = (now() - copyStart) / 1000;
    const allocatedGiB = (statSync(specs[0]!.disk).blocks * 512) / 2 ** 30;

    // 2. tgtd in the lab namespace, on a control socket of its own.
    tgtCtl = await freeTgtControl();
    tgtd = lab.spawn(srv, 'tgtd', ['-f', '-C', String(tgtCtl), '--iscsi', `portal=${SERVER}:${ISCSI_PORT}`]);
    drain(tgtd, join(dir, 'tgtd.log'));
    started.push({ name: 'tgtd', child: tgtd });
    for (let i = 0; ; i++) {
      try {
        await tgtadm('--mode', 'target', '--op', 'show');
        break;
      } catch (err) {
        if (i > 100 || tgtd.exitCode !== null) throw new Error(`tgtd did not start: ${readFileSync(join(dir, 'tgtd.log'), 'utf8')}`, { cause: err });
        await sleep(100);
      }
    }
    for (const [i, g] of specs.entries()) {
      const tid = String(i + 1);
      await tgtadm('--mode', 'target', '--op', 'new', '--tid', tid, '--targetname', g.target);
      // LUN 0 is tgt's controller: the disk is LUN 1.
      await tgtadm('--mode', 'logicalunit', '--op', 'new', '--tid', tid, '--lun', '1', '--backing-store', g.disk);
      await tgtadm('--mode', 'target', '--op', 'bind', '--tid', tid, '--initiator-name', g.initiator);
      await tgtadm('--mode', 'account', '--op', 'new', '--user', g.chapUser, '--password', g.chapSecret);
      await tgtadm('--mode', 'account', '--op', 'bind', '--tid', tid, '--user', g.chapUser);
    }

    // 3. The iPXE scripts, served by python3's http.server.
    const www = join(dir, 'www');
    mkdirSync(join(www, 'boot'), { recursive: true });
    const base = `http://${SERVER}:${HTTP_PORT}`;
    writeFileSync(join(www, 'boot.ipxe'), `#!ipxe\nchain --autofree ${base}/boot/\${mac:hexhyp}.ipxe\n`);
    for (const g of specs) {
      writeFileSync(
        join(www, 'boot', `${g.mac.replace(/:/g, '-')}.ipxe`),
        [
          '#!ipxe',
          `set initiator-iqn ${g.initiator}`,
          `set username ${g.chapUser}`,
          `set password ${g.chapSecret}`,
          `sanboot iscsi:${SERVER}::${ISCSI_PORT}:1:${g.target} || goto failed`,
          ':failed',
          'echo sanboot failed; retrying in 2 s',
          'sleep 2',
          `chain --autofree --replace ${base}/boot/\${mac:hexhyp}.ipxe`,
          '',
        ].join('\n'),
      );
    }
    // Debian's python3 (install-deps.sh), not whichever one is first on PATH.
    const http = lab.spawn(srv, existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3', ['-m', 'http.server', String(HTTP_PORT), '--bind', SERVER, '--directory', www]);
    drain(http, join(dir, 'http.log'));
    started.push({ name: 'http.server', child: http });
    await waitHttp(lab, srv, `${base}/boot.ipxe`, http, 'python3 http.server');

    // 4. dnsmasq as proxyDHCP: iPXE (option 175) gets the HTTP URL with the server as next-server
    // (iPXE ignores a proxy offer without siaddr), anything else would get undionly.kpxe over TFTP.
    const conf = join(dir, 'dnsmasq-proxy.conf');
    writeFileSync(
      conf,
      [
        'port=0',
        'interface=br0',
        'bind-interfaces',
        `dhcp-range=10.${NET}.0.0,proxy,255.255.255.0`,
        'dhcp-match=set:ipxe,175',
        `dhcp-boot=tag:ipxe,${base}/boot.ipxe,,${SERVER}`,
        'pxe-service=tag:!ipxe,x86PC,"iPXE",undionly.kpxe',
        'enable-tftp',
        `tftp-root=${NETBOOT}`,
        `dhcp-leasefile=${join(dir, 'dnsmasq-proxy.leases')}`,
        '',
      ].join('\n'),
    );
    const dnsmasq = lab.spawn(srv, '/usr/sbin/dnsmasq', [
      '--keep-in-foreground', `--conf-file=${conf}`, '--log-facility=-', '--user=root', '--group=root', `--pid-file=${join(dir, 'dnsmasq-proxy.pid')}`,
    ]);
    started.push({ name: 'dnsmasq', child: dnsmasq });
    await waitForOutput(dnsmasq, (t) => /proxy on subnet/.test(t), 10_000);
    drain(dnsmasq, join(dir, 'dnsmasq-proxy.log'));
    return {
      procs: started,
      provision: `${specs.length} full copies (cp --sparse=always + sync, ${allocatedGiB.toFixed(2)} GiB allocated each): ${copyS.toFixed(1)} s`,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A captured DHCP packet through hiveboot's own codec; undefined for anything it refuses. */
function dhcpOf(payload: Buffer): DhcpPacket | undefined {
  try {
    return decodePacket(payload);
  } catch {
    return undefined;
  }
}

/** Guest stages seen on the wire, as epoch ms. */
function wireStages(packets: Packet[], mac: string, kernelAt: number | undefined, systemdAt: number | undefined): Partial<Record<StageKey, number>> {
  const out: Partial<Record<StageKey, number>> = {};
  const replies: { t: number; type?: number; src?: string }[] = [];
  const gets: { t: number; path: string; stream: number; answered?: number }[] = [];
  const syns: number[] = [];
  for (const p of packets) {
    if (p.udp && (p.udp.sport === 67 || p.udp.sport === 4011 || p.udp.dport === 67 || p.udp.dport === 4011)) {
      const d = dhcpOf(p.udp.payload);
      if (!d || clientMac(d) !== mac) continue;
      if (d.op === 2) replies.push({ t: p.t, type: messageType(d), src: p.src });
      else if (messageType(d) === 1 && out.discover === undefined) out.discover = p.t;
    } else if (p.tcp) {
      const { tcp } = p;
      if (p.srcMac === mac && tcp.dport === HTTP_PORT && tcp.payload.length > 4 && tcp.payload.toString('latin1', 0, 4) === 'GET ') {
        gets.push({ t: p.t, path: tcp.payload.toString('latin1', 4, Math.min(tcp.payload.length, 300)).split(' ')[0]!, stream: tcp.sport });
      } else if (p.dstMac === mac && tcp.sport === HTTP_PORT && tcp.payload.length > 7 && tcp.payload.toString('latin1', 0, 7) === 'HTTP/1.') {
        const pending = gets.find((g) => g.stream === tcp.dport && g.answered === undefined);
        if (pending) pending.answered = p.t;
      } else if (p.srcMac === mac && tcp.dport === ISCSI_PORT && tcp.flags & TCP_SYN && !(tcp.flags & TCP_ACK)) {
        syns.push(p.t);
      }
    }
  }
  out.dhcpOffer = replies.find((r) => r.type === 2 && r.src !== ROUTER)?.t;
  const boot = gets.find((g) => g.path.startsWith('/boot.ipxe'));
  out.bootGet = boot?.t;
  out.bootScript = boot?.answered;
  const host = boot ? gets.find((g) => g.t > boot.t && g.path.startsWith('/boot/')) : undefined;
  out.hostGet = host?.t;
  out.hostScript = host?.answered;
  const firstGet = gets[0]?.t;
  if (firstGet !== undefined) out.dhcpDone = replies.filter((r) => r.t < firstGet).at(-1)?.t;
  out.iscsi1 = syns[0];
  if (kernelAt !== undefined) out.iscsi2 = syns.find((t) => t > kernelAt);
  if (systemdAt !== undefined) out.iscsi3 = syns.find((t) => t > systemdAt);
  return out;
}

function guestSpecs(n: number, dir: string): GuestSpec[] {
  return Array.from({ length: n }, (_, i) => {
    const name = `bench-${i + 1}`;
    return {
      name,
      mac: `52:54:00:b0:07:${(i + 1).toString(16).padStart(2, '0')}`,
      tap: `tap${i}`,
      initiator: `${IQN}:${name}`,
      target: `${IQN}:disk-${name}`,
      chapUser: `ref-${name}`,
      chapSecret: randomBytes(8).toString('hex'),
      disk: join(dir, `${name}.raw`),
    };
  });
}

async function runStack(stack: Stack, n: number, o: BootBenchOptions, root: string, golden: string): Promise<StackRun> {
  const dir = join(root, `${n}x-${stack}`);
  mkdirSync(dir, { recursive: true });
  const result: StackRun = { stack, guests: [], procs: [], dir };
  const lab = new BenchLab();
  const specs = guestSpecs(n, dir);
  const guests: BenchGuest[] = [];
  let handle: StackHandle | undefined;
  let dump: ChildProcess | undefined;
  const teardown = once(async () => {
    await Promise.all(guests.map((g) => g.stop()));
    if (dump) await stopChild(dump);
    await handle?.stop();
    await lab.destroy();
    for (const g of specs) rmSync(g.disk, { force: true });
  });
  teardowns.add(teardown);
  const pcap = join(dir, 'capture.pcap');
  let clockOffset = 0;
  try {
    const { srv, router } = await routerLab(lab, { net: NET, taps: specs.map((g) => g.tap), dir });
    drain(router, join(dir, 'router.log'));
    // iSCSI payload is left out (it would be gigabytes); its connects, closes and resets are kept.
    dump = lab.spawn(srv, 'tcpdump', [
      '-i', 'br0', '-n', '-U', '-Z', 'root', '-s', '1024', '-w', pcap,
      `not tcp port ${ISCSI_PORT} or tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0`,
    ]);
    await waitForOutput(dump, (t) => /listening on/.test(t), 10_000);
    drain(dump, join(dir, 'tcpdump.log'));

    handle = stack === 'hiveboot' ? await startHiveboot(lab, srv, dir, golden, specs) : await startReference(lab, srv, dir, golden, specs);
    result.provision = handle.provision;
    await sleep(1000);

    // pcap times are wall-clock; console times are on the monotonic clock: their offset, now.
    const offsets = Array.from({ length: 5 }, () => Date.now() - now()).sort((a, b) => a - b);
    clockOffset = offsets[2]!;
    const pids = handle.procs.map((p) => ({ name: p.name, pid: p.child.pid }));
    const cpu0 = pids.map((p) => cpuMs(p.pid));
    for (const g of specs) {
      guests.push(new BenchGuest(lab, { ns: srv, tap: g.tap, mac: g.mac, memoryMiB: o.memoryMiB, consoleLog: join(dir, `${g.name}.console.log`), sercon: o.sercon, workDir: dir }));
    }
    const firstOn = guests[0]!.poweredOn;
    const deadline = firstOn + o.timeoutS * 1000;
    let cpuAtUp: (number | undefined)[] | undefined;
    let rssAtUp: (number | undefined)[] | undefined;
    const reported = new Set<string>();
    for (;;) {
      await sleep(500);
      const t = now();
      let allUp = true;
      let allDone = true;
      for (const [i, g] of guests.entries()) {
        const up = g.firstMatch(SERIAL.osUp!);
        const failed = g.firstMatch(FAILURE) !== undefined || !g.running;
        if (up !== undefined && !reported.has(specs[i]!.name)) {
          reported.add(specs[i]!.name);
          console.log(`  ${stack}, ${n} guest(s): ${specs[i]!.name} at the login prompt ${(up / 1000).toFixed(1)} s after power-on`);
        }
        if (up === undefined && !failed) allUp = false;
        const markerDue = stack === 'hiveboot' && up !== undefined && g.firstMatch(SERIAL.marker!) === undefined && t - g.poweredOn - up < o.markerGraceS * 1000;
        if (!failed && (up === undefined || markerDue)) allDone = false;
      }
      if (allUp && !cpuAtUp) {
        cpuAtUp = pids.map((p) => cpuMs(p.pid));
        rssAtUp = pids.map((p) => rssMB(p.pid, 'VmRSS'));
        const ends = guests.flatMap((g) => {
          const up = g.firstMatch(SERIAL.osUp!);
          return up === undefined ? [] : [g.poweredOn - firstOn + up];
        });
        if (ends.length === guests.length) result.wallS = Math.max(...ends) / 1000;
      }
      if (allDone || t > deadline) break;
    }
    cpuAtUp ??= pids.map((p) => cpuMs(p.pid));
    rssAtUp ??= pids.map((p) => rssMB(p.pid, 'VmRSS'));
    result.procs = pids.map((p, i) => ({
      name: p.name,
      cpuS: cpuAtUp![i] !== undefined && cpu0[i] !== undefined ? (cpuAtUp![i]! - cpu0[i]!) / 1000 : undefined,
      rssMB: rssAtUp![i],
      peakRssMB: rssMB(p.pid, 'VmHWM'),
    }));
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
  } finally {
    await teardown();
    teardowns.delete(teardown);
  }

  const packets = existsSync(pcap) ? readPcap(readFileSync(pcap)).frames.map(decodeEthernet).filter((p): p is Packet => p !== undefined) : [];
  for (const [i, g] of guests.entries()) {
    const stages: Partial<Record<StageKey, number>> = {};
    for (const [key, re] of Object.entries(SERIAL) as [StageKey, RegExp][]) {
      const at = g.firstMatch(re);
      if (at !== undefined) stages[key] = at / 1000;
    }
    const onEpoch = g.poweredOn + clockOffset;
    const epoch = (s?: number) => (s === undefined ? undefined : onEpoch + s * 1000);
    for (const [key, at] of Object.entries(wireStages(packets, specs[i]!.mac, epoch(stages.kernel), epoch(stages.systemd))) as [StageKey, number | undefined][]) {
      if (at !== undefined) stages[key] = (at - onEpoch) / 1000;
    }
    const r: GuestResult = { name: specs[i]!.name, stages };
    if (stages.osUp === undefined) {
      const why = g.firstMatch(FAILURE) !== undefined ? 'failed' : g.exit && g.exit.signal !== 'SIGTERM' ? `QEMU exited (${g.exit.code ?? g.exit.signal})` : `no login prompt within ${o.timeoutS} s`;
      r.failure = `${why}; console:\n${g.tail(12).replace(/^/gm, '      ')}`;
    }
    result.guests.push(r);
  }
  return result;
}

export async function benchBoot(o: BootBenchOptions): Promise<BootResult> {
  const root = mkdtempSync(join(tmpdir(), 'hb-bench-boot-'));
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`\nboot bench: ${signal}: stopping guests and servers, removing namespaces and disk copies`);
    void Promise.allSettled([...teardowns].map((t) => t())).finally(() => {
      if (!o.keep) rmSync(root, { recursive: true, force: true });
      process.exit(130);
    });
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(s, onSignal);
  try {
    const built = await ensureDist();
    const { image, seconds } = await ensureGoldenImage(join(root, 'build-image.log'));
    // Read once into the page cache, so that neither stack pays for cold reads of it.
    const warm = now();
    await run('dd', [`if=${image.path}`, 'of=/dev/null', 'bs=8M']);
    const goldenNote = `golden image ${image.path} (key ${image.key}; build-image.sh ${seconds.toFixed(1)} s, read into page cache ${((now() - warm) / 1000).toFixed(1)} s); hiveboot: ${built}`;
    console.log(`  ${goldenNote}`);

    // In turns, the order swapped between the runs (ABBA) so that a drift in the machine's load
    // does not always favour the same stack.
    const plan: { guests: number; order: Stack[] }[] = [];
    if (o.single) plan.push({ guests: 1, order: ['hiveboot', 'reference'] });
    if (o.guests > 1) plan.push({ guests: o.guests, order: ['reference', 'hiveboot'] });
    const runs: BootRun[] = [];
    for (const p of plan) {
      const r: BootRun = { guests: p.guests, stacks: [] };
      for (const stack of p.order) {
        console.log(`  ${stack}: booting ${p.guests} guest(s)...`);
        r.stacks.push(await runStack(stack, p.guests, o, root, image.path));
        await sleep(2000);
      }
      r.stacks.sort((a, b) => (a.stack === 'hiveboot' ? -1 : b.stack === 'hiveboot' ? 1 : 0));
      runs.push(r);
    }
    return { runs, golden: image.path, goldenNote, ...(o.keep ? { kept: root } : {}) };
  } finally {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, onSignal);
    await Promise.allSettled([...teardowns].map((t) => t()));
    if (!o.keep) rmSync(root, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Median and slowest of a value over the guests; slowest only when every guest has it. */
function summary(run: StackRun | undefined, value: (g: GuestResult) => number | undefined): { med?: number; max?: number } {
  if (!run || run.error) return {};
  const xs = run.guests.map(value);
  const have = xs.filter((x): x is number => x !== undefined);
  return { med: have.length ? median(have) : undefined, max: have.length === xs.length && have.length ? Math.max(...have) : undefined };
}

export function printBoot(r: BootResult): void {
  const numS = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(3));
  const ratio = (ref: number | undefined, hb: number | undefined) => (ref !== undefined && hb !== undefined && hb > 0 ? `${(ref / hb).toFixed(2)}x` : '-');
  for (const run of r.runs) {
    const hb = run.stacks.find((s) => s.stack === 'hiveboot');
    const ref = run.stacks.find((s) => s.stack === 'reference');
    const upCount = (s?: StackRun) => (s ? `${s.guests.filter((g) => g.stages.osUp !== undefined).length}/${run.guests}` : '-');
    console.log(`\n${run.guests === 1 ? '(a) one guest' : `(b) boot storm: ${run.guests} guests powered on at once`} — up: hiveboot ${upCount(hb)}, reference ${upCount(ref)}`);
    for (const s of run.stacks) if (s.error) console.log(`  ${s.stack}: not measured: ${s.error}`);
    const storm = run.guests > 1;
    const head = ['stage'.padEnd(36), 'src'.padEnd(6), 'hiveboot'.padStart(9), 'reference'.padStart(9), 'ref/hb'.padStart(7)];
    if (storm) head.splice(2, 3, 'median: hiveboot'.padStart(16), 'reference'.padStart(9), 'ref/hb'.padStart(7), ' slowest: hiveboot'.padStart(18), 'reference'.padStart(9), 'ref/hb'.padStart(7));
    console.log(head.join(' '));
    const row = (label: string, src: string, f: (g: GuestResult) => number | undefined, hbOnly = false) => {
      const a = summary(hb, f);
      const b = hbOnly ? {} : summary(ref, f);
      // Spans can be fractions of a millisecond: those in ms, with the unit.
      const num = src === 'span' ? (x: number | undefined) => (x === undefined ? '-' : x < 1 ? `${(x * 1000).toFixed(1)}ms` : `${x.toFixed(3)}s`) : numS;
      const refCell = (x: number | undefined) => (hbOnly ? 'n/a' : num(x));
      const cells = [label.padEnd(36), src.padEnd(6), num(a.med).padStart(storm ? 16 : 9), refCell(b.med).padStart(9), ratio(b.med, a.med).padStart(7)];
      if (storm) cells.push(num(a.max).padStart(18), refCell(b.max).padStart(9), ratio(b.max, a.max).padStart(7));
      console.log(cells.join(' '));
    };
    for (const st of STAGES) row(st.label, st.source, (g) => g.stages[st.key], st.hivebootOnly);
    console.log('  durations:');
    for (const sp of SPANS) {
      row(`  ${sp.label}`, 'span', (g) => {
        const to = g.stages[sp.to];
        const from = sp.from === undefined ? 0 : g.stages[sp.from];
        return to !== undefined && from !== undefined ? to - from : undefined;
      });
    }
    const wall = (s?: StackRun) => (s?.wallS === undefined ? '-' : `${s.wallS.toFixed(1)} s`);
    console.log(`  first power-on → last guest at the login prompt: hiveboot ${wall(hb)}, reference ${wall(ref)}${hb?.wallS && ref?.wallS ? ` (ref/hb ${(ref.wallS / hb.wallS).toFixed(2)}x)` : ''}`);
    for (const s of [hb, ref]) {
      if (!s || s.error) continue;
      const mb = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(0));
      const procs = s.procs.map((p) => `${p.name} ${p.cpuS === undefined ? '-' : `${p.cpuS.toFixed(2)} s`} CPU, RSS ${mb(p.rssMB)} MB (peak ${mb(p.peakRssMB)})`).join('; ');
      const total = s.procs.reduce((sum, p) => sum + (p.cpuS ?? 0), 0);
      console.log(`  ${s.stack.padEnd(9)} servers (power-on → all up): ${procs}${s.procs.length > 1 ? `; CPU total ${total.toFixed(2)} s` : ''}`);
      console.log(`  ${s.stack.padEnd(9)} disks, before power-on (not in the times): ${s.provision ?? '-'}`);
      for (const g of s.guests) if (g.failure) console.log(`  ${s.stack} ${g.name}: ${g.failure}`);
    }
  }
  console.log(
    '\nratio ref/hb: reference time over hiveboot time at that stage (> 1: hiveboot faster). Storm: median over the guests, and the slowest guest' +
      '\n(- when a guest never got there). Wire stages from the capture on the bridge (DHCP by client MAC; "served": the HTTP status line;' +
      '\nconnects: TCP SYN to 3260, the initramfs one is the first after the kernel started, the iscsid one the first after systemd started);' +
      '\nserial stages: arrival of the console text.' +
      '\nMost of a boot is guest CPU under TCG (kernel, initramfs, systemd); the spans show the parts the servers take part in.' +
      '\nThe reference stack has no per-host config endpoint: the agent marker is hiveboot only, OS up (login prompt) is the common end.' +
      '\nThe agent starts after network-online.target and runs beside the rest of the boot on the single vCPU: against hiveboot it fetches' +
      '\nand applies the host config, against the reference it fails fast and retries, so the guest does different work after that row.',
  );
  console.log(`  ${r.goldenNote}`);
  if (r.kept) console.log(`  kept: ${r.kept} (captures, consoles, server logs)`);
}
