import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitForOutput } from '../../test/support/netns.js';

/**
 * The built-in iSCSI target against tgtd (Debian `tgt`, the userspace target a user would otherwise
 * run), both serving the same raw file from a warm page cache, both with CHAP, measured in the same run
 * by the same real initiators: QEMU's libiscsi block driver (`qemu-img bench`) for sequential I/O and
 * libiscsi's `iscsi-perf` for random reads. Runs alternate between the two targets, the figure is the
 * median of the rounds. Beside throughput: the target's own CPU time (from /proc, all its threads), so
 * a busy machine still shows which one does more per CPU-second; two checks that the client is not
 * what is measured (its own CPU over wall time, and the same client against tgtd's null backing
 * store); and resident memory idle and under 50 sessions.
 *
 * hiveboot runs as its own process from code bundled to JavaScript (.tmp/bench/iscsi-child.mjs, as
 * the daemon runs compiled code), tgtd in the foreground with a control socket of its own; both are
 * stopped by PID at the end (tgtd through tgtadm, as it ignores SIGTERM). The disk and the logs live
 * under one /tmp folder, removed at the end.
 */

export interface IscsiBenchOptions {
  /** Size of the backing file (MiB). */
  sizeMiB: number;
  rounds: number;
  /** Length of each iscsi-perf run (s). */
  seconds: number;
  /** Sessions of the memory test and how long they run (s). */
  sessions: number;
  loadSeconds: number;
}

export interface Measure {
  /** One value per round (MiB/s or IOPS). */
  values: number[];
  /** The same work per target CPU-second, one per round. */
  perCpu: number[];
  /** The client's CPU over wall time, one per round. */
  clientBusy: number[];
}

export interface IscsiRow {
  workload: string;
  unit: 'MiB/s' | 'IOPS';
  hiveboot: Measure;
  tgtd: Measure;
  /** The client against tgtd's null backing store. */
  ceiling: number[];
}

export interface IscsiMemory {
  server: string;
  idleMB: number;
  /** Peak while the sessions ran, and how many were established when sampled. */
  loadMB: number;
  sessionsSeen: number;
  afterMB: number;
}

export interface IscsiResult {
  rows: IscsiRow[];
  memory: IscsiMemory[];
  cachedMiB: number;
  sizeMiB: number;
  uvThreadpool: string;
}

const ROOT = join(import.meta.dirname, '../..');
const IQN = 'iqn.2026-11.io.hiveboot.bench:disk';
const IQN_NULL = 'iqn.2026-11.io.hiveboot.bench:null';
const INITIATOR = 'iqn.2026-11.io.hiveboot.bench:client';
const loadInitiator = (i: number) => `iqn.2026-11.io.hiveboot.bench:load${i}`;
const CHAP = { user: 'benchuser01', secret: 'benchsecret01' };
const MiB = 1024 * 1024;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

interface Portal {
  server: 'hiveboot' | 'tgtd' | 'tgtd-null';
  port: number;
  iqn: string;
  lun: number;
  pid: number;
}

/** Every client and server we start, so that an error or Ctrl-C still ends them (by PID). */
const children = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('close', () => children.delete(child));
  return child;
}

/** CPU time (s) of a process, all its threads. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Runs a client to completion, or until `stopAfterMs` and then a signal: iscsi-perf reports its
 * average on SIGINT, qemu-img bench ignores SIGINT and stops on SIGTERM.
 */
function runClient(cmd: string, args: string[], stopAfterMs?: number): Promise<ClientRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let cpu = 0;
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    // The client's own CPU time, sampled (its /proc entry is gone once it exits): near 100 % of the
    // wall time means the client, not the target, set the pace.
    const sampler = setInterval(() => {
      try {
        cpu = cpuSeconds(child.pid!);
      } catch {
        // exiting
      }
    }, 100);
    const stop = stopAfterMs === undefined ? undefined : setTimeout(() => child.kill(cmd === 'qemu-img' ? 'SIGTERM' : 'SIGINT'), stopAfterMs);
    const hardStop = setTimeout(() => child.kill('SIGKILL'), (stopAfterMs ?? 120_000) + 30_000);
    child.once('error', reject);
    child.once('close', () => {
      clearInterval(sampler);
      clearTimeout(stop);
      clearTimeout(hardStop);
      resolve({ out: out.replace(/\r/g, '\n'), busy: cpu / ((performance.now() - started) / 1000) });
    });
  });
}

interface ClientRun {
  out: string;
  /** Client CPU time over wall time (1 = one core all the time). */
  busy: number;
}

interface RunResult {
  value: number;
  /** MiB or I/Os done, for the per-CPU-second figure. */
  work: number;
  clientBusy: number;
}

/** QEMU's iSCSI driver (libiscsi) through qemu-img bench: returns MiB/s. */
async function qemuBench(p: Portal, initiator: string, args: { count: number; depth: number; sizeKiB: number; write?: boolean; offsetMiB?: number }): Promise<RunResult> {
  const opts = [
    'driver=iscsi', 'transport=tcp', `portal=127.0.0.1:${p.port}`, `target=${p.iqn}`, `lun=${p.lun}`,
    `initiator-name=${initiator}`, `user=${CHAP.user}`,
    // qemu-img bench (QEMU 7.2) has no --object, so no password-secret: the secret goes in the options.
    `password=${CHAP.secret}`,
  ].join(',');
  const { out, busy } = await runClient('qemu-img', [
    'bench', '--image-opts', opts, '-c', String(args.count), '-d', String(args.depth), '-s', `${args.sizeKiB}K`,
    ...(args.write ? ['-w'] : []), ...(args.offsetMiB ? ['-o', `${args.offsetMiB}M`] : []),
  ]);
  const m = /Run completed in ([\d.]+) seconds/.exec(out);
  if (!m) throw new Error(`qemu-img bench against ${p.server} failed: ${out.trim().split('\n').slice(-3).join(' | ')}`);
  const mib = (args.count * args.sizeKiB) / 1024;
  return { value: mib / Number(m[1]), work: mib, clientBusy: busy };
}

/** libiscsi's iscsi-perf for `seconds`: returns IOPS. */
async function iscsiPerf(p: Portal, initiator: string, args: string[], seconds: number): Promise<RunResult> {
  const url = `iscsi://${CHAP.user}%${CHAP.secret}@127.0.0.1:${p.port}/${p.iqn}/${p.lun}`;
  const { out, busy } = await runClient('iscsi-perf', ['-i', initiator, ...args, url], seconds * 1000);
  const all = [...out.matchAll(/iops average (\d+)/g)];
  if (all.length === 0) throw new Error(`iscsi-perf against ${p.server} failed: ${out.trim().split('\n').slice(-3).join(' | ')}`);
  const iops = Number(all[all.length - 1]![1]);
  return { value: iops, work: iops * seconds, clientBusy: busy };
}

interface Workload {
  name: string;
  unit: 'MiB/s' | 'IOPS';
  run(p: Portal): Promise<RunResult>;
}

function workloads(opts: IscsiBenchOptions): Workload[] {
  // Counts sized for a few seconds a run at ~1 GB/s; qemu-img bench wraps around at the end of the LUN.
  return [
    { name: 'seq read 1 MiB QD1', unit: 'MiB/s', run: (p) => qemuBench(p, INITIATOR, { count: 2048, depth: 1, sizeKiB: 1024 }) },
    { name: 'seq read 1 MiB QD8', unit: 'MiB/s', run: (p) => qemuBench(p, INITIATOR, { count: 4096, depth: 8, sizeKiB: 1024 }) },
    { name: 'rand read 4 KiB QD32', unit: 'IOPS', run: (p) => iscsiPerf(p, INITIATOR, ['-r', '-m', '32', '-b', '8'], opts.seconds) },
    { name: 'seq write 1 MiB QD8', unit: 'MiB/s', run: (p) => qemuBench(p, INITIATOR, { count: 2048, depth: 8, sizeKiB: 1024, write: true }) },
  ];
}

/** The raw file both targets serve: random data (every read hits real blocks), on disk, then read once into the page cache. */
async function prepareDisk(path: string, sizeMiB: number): Promise<number> {
  const fh = await open(path, 'w', 0o600);
  const chunk = Buffer.allocUnsafe(16 * MiB);
  try {
    for (let off = 0; off < sizeMiB * MiB; off += chunk.length) {
      randomFillSync(chunk);
      await fh.write(chunk, 0, Math.min(chunk.length, sizeMiB * MiB - off), off);
    }
    // Written back before measuring, so no writeback runs under the first round.
    await fh.datasync();
  } finally {
    await fh.close();
  }
  return warmCache(path);
}

/** Reads the whole file (into the page cache) and returns how many MiB of it are resident. */
async function warmCache(path: string): Promise<number> {
  const fh = await open(path, 'r');
  const buf = Buffer.allocUnsafe(8 * MiB);
  try {
    for (let pos = 0; ; pos += buf.length) if ((await fh.read(buf, 0, buf.length, pos)).bytesRead === 0) break;
    // Dirty pages from a write round go to disk outside the timed runs.
    await fh.datasync();
  } finally {
    await fh.close();
  }
  try {
    const out = execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' });
    return Number(out.trim()) / MiB;
  } catch {
    return NaN;
  }
}

/** tgtd in the foreground on a control socket and a portal of its own. */
class Tgtd {
  private constructor(
    readonly proc: ChildProcess,
    readonly ctl: number,
    readonly port: number,
  ) {}

  static async start(dir: string): Promise<Tgtd> {
    // A control socket number no running tgtd answers on (other tgtd instances may run on this machine).
    let ctl = 40;
    for (; ctl < 100; ctl++) {
      try {
        execFileSync('tgtadm', ['-C', String(ctl), '--mode', 'system', '--op', 'show'], { stdio: 'ignore' });
      } catch {
        break;
      }
    }
    const port = await freePort();
    const log = await open(join(dir, 'tgtd.log'), 'w');
    const proc = track(spawn('tgtd', ['-f', '-C', String(ctl), '--iscsi', `portal=127.0.0.1:${port}`], { stdio: ['ignore', log.fd, log.fd], detached: true }));
    await log.close();
    const t = new Tgtd(proc, ctl, port);
    for (let i = 0; ; i++) {
      try {
        t.adm('--mode', 'target', '--op', 'show');
        break;
      } catch (err) {
        if (i > 100 || proc.exitCode !== null) throw new Error(`tgtd did not start: ${readFileSync(join(dir, 'tgtd.log'), 'utf8')}`, { cause: err });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return t;
  }

  adm(...args: string[]): void {
    execFileSync('tgtadm', ['-C', String(this.ctl), '--lld', 'iscsi', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  addTarget(tid: number, iqn: string, lu: string[], initiators: string[]): void {
    this.adm('--mode', 'target', '--op', 'new', '--tid', String(tid), '--targetname', iqn);
    this.adm('--mode', 'logicalunit', '--op', 'new', '--tid', String(tid), '--lun', '1', ...lu);
    for (const name of initiators) this.adm('--mode', 'target', '--op', 'bind', '--tid', String(tid), '--initiator-name', name);
    this.adm('--mode', 'account', '--op', 'bind', '--tid', String(tid), '--user', CHAP.user);
  }

  /** tgtd ignores SIGTERM: delete the targets, then the system, over its control socket; SIGKILL only as a fallback. */
  async stop(): Promise<void> {
    for (const tid of [1, 2]) {
      try {
        this.adm('--mode', 'target', '--op', 'delete', '--force', '--tid', String(tid));
      } catch {
        // not created, or already gone
      }
    }
    try {
      execFileSync('tgtadm', ['-C', String(this.ctl), '--op', 'delete', '--mode', 'system'], { stdio: 'ignore' });
    } catch {
      // already exiting
    }
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5000);
      this.proc.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!(await exited)) this.proc.kill('SIGKILL');
  }
}

async function startHiveboot(dir: string, disk: string, initiators: string[]): Promise<{ proc: ChildProcess; port: number }> {
  const bundle = join(ROOT, '.tmp/bench/iscsi-child.mjs');
  mkdirSync(join(ROOT, '.tmp/bench'), { recursive: true });
  // Bundled beside the sources so that its package imports (koffi, @node-rs/crc32) resolve from node_modules.
  execFileSync(join(ROOT, 'node_modules/.bin/esbuild'), [
    join(ROOT, 'scripts/bench/iscsi-child.ts'), '--bundle', '--platform=node', '--format=esm', '--target=node20',
    '--packages=external', `--outfile=${bundle}`, '--log-level=warning',
  ]);
  const spec = { backing: { kind: 'file', path: disk }, port: 0, targets: [{ name: IQN, acl: initiators, chap: CHAP }] };
  const nodeArgs = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const proc = track(spawn(process.execPath, [...nodeArgs, bundle, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir }));
  const out = await waitForOutput(proc, (t) => /ready \d+/.test(t), 30_000);
  return { proc, port: Number(/ready (\d+)/.exec(out)![1]) };
}

/** `sessions` initiators at once, each its own session: most read at random, some write; peak RSS of the target. */
async function memoryUnderLoad(p: Portal, opts: IscsiBenchOptions): Promise<{ peakMB: number; sessionsSeen: number }> {
  const writers = Math.floor(opts.sessions / 5);
  const runs: Promise<unknown>[] = [];
  for (let i = 0; i < opts.sessions; i++) {
    const name = loadInitiator(i);
    // 64 KiB random reads at QD4 (what a booting worker mostly does), and 256 KiB writes at QD4.
    runs.push(
      i < opts.sessions - writers
        ? iscsiPerf(p, name, ['-r', '-m', '4', '-b', '128'], opts.loadSeconds)
        : runClient('qemu-img', [
            'bench', '--image-opts',
            [`driver=iscsi`, `transport=tcp`, `portal=127.0.0.1:${p.port}`, `target=${p.iqn}`, `lun=${p.lun}`, `initiator-name=${name}`, `user=${CHAP.user}`, `password=${CHAP.secret}`].join(','),
            '-w', '-d', '4', '-s', '256K', '-c', '100000000', '-o', `${(i * 64) % opts.sizeMiB}M`,
          ], opts.loadSeconds * 1000),
    );
  }
  let peakMB = 0;
  let sessionsSeen = 0;
  const started = Date.now();
  while (Date.now() - started < opts.loadSeconds * 1000) {
    await new Promise((r) => setTimeout(r, 200));
    peakMB = Math.max(peakMB, rssMB(p.pid));
    if (Date.now() - started > (opts.loadSeconds * 1000) / 2 && sessionsSeen === 0) {
      const ss = execFileSync('ss', ['-Htn', 'state', 'established', `( sport = :${p.port} )`], { encoding: 'utf8' });
      sessionsSeen = ss.split('\n').filter((l) => l.trim()).length;
    }
  }
  await Promise.allSettled(runs);
  return { peakMB, sessionsSeen };
}

/** Options from the environment (BENCH_ISCSI_*), as index.ts reads the other benches'. */
export function iscsiOptions(env: NodeJS.ProcessEnv = process.env): IscsiBenchOptions {
  return {
    sizeMiB: Number(env.BENCH_ISCSI_SIZE_MIB ?? 4096),
    rounds: Number(env.BENCH_ISCSI_ROUNDS ?? 5),
    seconds: Number(env.BENCH_ISCSI_SECONDS ?? 6),
    sessions: Number(env.BENCH_ISCSI_SESSIONS ?? 50),
    loadSeconds: Number(env.BENCH_ISCSI_LOAD_SECONDS ?? 10),
  };
}

export function iscsiTitle(o: IscsiBenchOptions): string {
  return (
    `\niSCSI: hiveboot's built-in target and tgtd on the same ${o.sizeMiB} MiB raw file (page cache), CHAP, clients qemu-img bench ` +
    `(QEMU's libiscsi driver) and iscsi-perf; ${o.rounds} rounds taken in turns, median`
  );
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function benchIscsi(opts: IscsiBenchOptions): Promise<IscsiResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hb-bench-iscsi-'));
  const disk = join(dir, 'disk.img');
  let tgtd: Tgtd | undefined;
  // Ctrl-C must not leave tgtd (a detached process) or clients behind.
  const onSignal = () => {
    void (tgtd?.stop() ?? Promise.resolve()).finally(() => {
      for (const c of children) c.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  try {
    const cachedMiB = await prepareDisk(disk, opts.sizeMiB);
    const loadNames = Array.from({ length: opts.sessions }, (_, i) => loadInitiator(i));
    const hb = await startHiveboot(dir, disk, [INITIATOR, ...loadNames]);
    await new Promise((r) => setTimeout(r, 1000));
    const hbIdle = rssMB(hb.proc.pid!);
    tgtd = await Tgtd.start(dir);
    tgtd.adm('--mode', 'account', '--op', 'new', '--user', CHAP.user, '--password', CHAP.secret);
    tgtd.addTarget(1, IQN, ['--backing-store', disk], [INITIATOR, ...loadNames]);
    tgtd.addTarget(2, IQN_NULL, ['--bstype', 'null', '--backing-store', '/dev/null'], [INITIATOR]);
    const tgtdIdle = rssMB(tgtd.proc.pid!);

    const portals: Record<Portal['server'], Portal> = {
      hiveboot: { server: 'hiveboot', port: hb.port, iqn: IQN, lun: 0, pid: hb.proc.pid! },
      tgtd: { server: 'tgtd', port: tgtd.port, iqn: IQN, lun: 1, pid: tgtd.proc.pid! },
      'tgtd-null': { server: 'tgtd-null', port: tgtd.port, iqn: IQN_NULL, lun: 1, pid: tgtd.proc.pid! },
    };
    const list = workloads(opts);
    const rows: IscsiRow[] = list.map((w) => ({
      workload: w.name,
      unit: w.unit,
      hiveboot: { values: [], perCpu: [], clientBusy: [] },
      tgtd: { values: [], perCpu: [], clientBusy: [] },
      ceiling: [],
    }));
    for (let round = 0; round < opts.rounds; round++) {
      // Alternate who goes first, so a drift in the machine's load does not favour one side.
      const order: ('hiveboot' | 'tgtd')[] = round % 2 === 0 ? ['hiveboot', 'tgtd'] : ['tgtd', 'hiveboot'];
      for (const [i, w] of list.entries()) {
        for (const server of order) {
          const p = portals[server];
          const cpu0 = cpuSeconds(p.pid);
          const r = await w.run(p);
          const cpu = cpuSeconds(p.pid) - cpu0;
          rows[i]![server].values.push(r.value);
          rows[i]![server].perCpu.push(cpu > 0 ? r.work / cpu : NaN);
          rows[i]![server].clientBusy.push(r.clientBusy);
        }
        rows[i]!.ceiling.push((await w.run(portals['tgtd-null'])).value);
      }
      await warmCache(disk);
    }

    const memory: IscsiMemory[] = [];
    for (const [server, idle] of [['hiveboot', hbIdle], ['tgtd', tgtdIdle]] as const) {
      const p = portals[server];
      const load = await memoryUnderLoad(p, opts);
      await new Promise((r) => setTimeout(r, 2000));
      memory.push({ server, idleMB: idle, loadMB: load.peakMB, sessionsSeen: load.sessionsSeen, afterMB: rssMB(p.pid) });
    }

    hb.proc.kill('SIGTERM');
    await new Promise((r) => (hb.proc.exitCode !== null ? r(null) : hb.proc.once('close', r)));
    return { rows, memory, cachedMiB, sizeMiB: opts.sizeMiB, uvThreadpool: process.env.UV_THREADPOOL_SIZE ?? 'default (4)' };
  } finally {
    process.off('SIGINT', onSignal);
    await tgtd?.stop();
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The report, in the style of the other benches: both servers, the ratio, the client ceiling, then RSS. */
export function printIscsi(r: IscsiResult): void {
  const num = (n: number) => (Number.isFinite(n) ? (n >= 1000 ? n.toFixed(0) : n.toFixed(1)) : '-');
  const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}x` : '-');
  const pct = (n: number) => (Number.isFinite(n) ? `${(n * 100).toFixed(0)}%` : '-');
  console.log(
    `page cache: ${num(r.cachedMiB)} of ${r.sizeMiB} MiB of the file resident before the rounds; hiveboot's libuv pool: ${r.uvThreadpool}`,
  );
  console.log(
    ['workload'.padEnd(22), 'unit'.padEnd(5), 'hiveboot'.padStart(9), 'tgtd'.padStart(9), 'hb/tgtd'.padStart(8), ' | per target CPU-s:', 'hiveboot'.padStart(9),
      'tgtd'.padStart(9), 'hb/tgtd'.padStart(8), ' | client CPU hb/tgtd', ' | null target*'].join(' '),
  );
  for (const row of r.rows) {
    const hb = median(row.hiveboot.values);
    const tg = median(row.tgtd.values);
    const hbc = median(row.hiveboot.perCpu);
    const tgc = median(row.tgtd.perCpu);
    const client = `${pct(median(row.hiveboot.clientBusy))}/${pct(median(row.tgtd.clientBusy))}`;
    console.log([
      row.workload.padEnd(22), row.unit.padEnd(5), num(hb).padStart(9), num(tg).padStart(9), ratio(hb, tg).padStart(8),
      ' |'.padEnd(19), num(hbc).padStart(9), num(tgc).padStart(9), ratio(hbc, tgc).padStart(8), ` | ${client.padStart(18)}`, ` | ${num(median(row.ceiling)).padStart(12)}`,
    ].join(' '));
  }
  console.log('rounds (hiveboot | tgtd):');
  for (const row of r.rows) console.log(`  ${row.workload.padEnd(22)} ${row.hiveboot.values.map(num).join(' ')} | ${row.tgtd.values.map(num).join(' ')}`);
  console.log('ratio hiveboot/tgtd: > 1: hiveboot is faster (or does more per CPU-second of its own, all threads)');
  console.log('client CPU: the initiator process\'s CPU over wall time (100% = one core: the client set the pace)');
  console.log('* the same client against tgtd\'s null backing store (tgtd\'s protocol work, no storage I/O): how far client and loopback go here with a cheap target');
  for (const m of r.memory) {
    const targets = m.server === 'hiveboot' ? ' (targets: < 80 MB idle, < 200 MB with 50 sessions)' : '';
    console.log(`RSS ${m.server}: idle ${m.idleMB.toFixed(0)} MB, ${m.sessionsSeen} sessions doing I/O ${m.loadMB.toFixed(0)} MB peak, after they ended ${m.afterMB.toFixed(0)} MB${targets}`);
  }
}
