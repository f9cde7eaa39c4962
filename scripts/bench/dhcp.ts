import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { waitForOutput } from '../../test/support/netns.js';
import { BenchLab, cpuMs } from './lab.js';

/**
 * DHCP offer latency for simulated PXE clients: hiveboot (full mode) and dnsmasq (--no-ping, the
 * configuration a user would pick for a boot network), each on a namespace pair of its own, both
 * running the whole time and measured in alternate rounds by the same client, so a load that comes
 * and goes on the machine falls on both alike.
 */
export interface DhcpResult {
  server: string;
  /** First requests after start-up, no warm-up: JIT, caches and tables all cold. */
  cold: boolean;
  offers: number;
  timeouts: number;
  p50: number | null;
  p99: number | null;
  /** Wall time of the measured bursts, all rounds. */
  wallMs: number;
  /** Server CPU per request (user + system, µs), warm-up and deferred bookkeeping included. */
  cpuUsPerRequest: number | null;
  /** The client's CPU over wall time during the bursts: near 1, the client set the pace. */
  clientBusy: number;
}

interface ClientRun {
  offers: number;
  timeouts: number;
  wallMs: number;
  clientBusy: number;
  latencies: number[];
}

const ROOT = join(import.meta.dirname, '../..');
/** After a burst, how long to keep counting server CPU: hiveboot writes its timeline in the quiet after it. */
const SETTLE_MS = 600;

export async function benchDhcp(opts: { clients: number; concurrency: number; warmup: number; rounds: number }): Promise<DhcpResult[]> {
  const lab = new BenchLab();
  const dir = mkdtempSync(join(tmpdir(), 'hb-bench-dhcp-'));
  try {
    const pair = (name: string) => {
      const srv = lab.ns(`${name}-srv`);
      const cli = lab.ns(`${name}-cli`);
      lab.link({ ns: srv, ifname: 'boot0', cidr: '10.80.0.1/16' }, { ns: cli, ifname: 'eth0' });
      return { srv, cli };
    };
    const hbNet = pair('hb');
    const dmNet = pair('dm');

    // hiveboot, full mode, discovery on (every PXE client becomes a discovered host, as in production).
    const { process: hb } = await lab.hiveboot(
      hbNet.srv,
      dir,
      `http: { listen: 127.0.0.1, port: 18490 }
log: { level: info }
boot: { maxDiscovered: 100000 }
tftp: { enabled: false }
dhcp:
  mode: full
  interfaces: [boot0]
  subnets:
    - network: 10.80.0.0/16
      range: { start: 10.80.1.0, end: 10.80.200.255 }
      router: 10.80.0.1
      leaseSeconds: 3600
`,
      { ...process.env, HIVEBOOT_NODE_ARGS: process.env.BENCH_PROFILE ? `--cpu-prof --cpu-prof-dir=${process.env.BENCH_PROFILE}` : '' },
    );
    // dnsmasq logs every DHCP exchange (two lines) as it does by default; hiveboot records each on
    // the machine's timeline. Both do their usual bookkeeping.
    const dnsmasq = lab.spawn(dmNet.srv, '/usr/sbin/dnsmasq', [
      '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--group=root',
      '--interface=boot0', '--bind-interfaces', '--no-ping',
      `--pid-file=${join(dir, 'dnsmasq.pid')}`, `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
      '--dhcp-range=10.80.1.0,10.80.200.255,255.255.0.0,1h',
      '--dhcp-boot=undionly.kpxe,,10.80.0.1',
      '--dhcp-lease-max=100000',
    ]);
    await waitForOutput(dnsmasq, (t) => /DHCP, IP range/.test(t), 10_000);

    interface Tally {
      runs: ClientRun[];
      cpuMs: number;
      requests: number;
    }
    const servers: { name: string; net: { cli: string }; process: ChildProcess; cold: Tally; warm: Tally }[] = [
      { name: 'hiveboot', net: hbNet, process: hb, cold: { runs: [], cpuMs: 0, requests: 0 }, warm: { runs: [], cpuMs: 0, requests: 0 } },
      { name: 'dnsmasq --no-ping', net: dmNet, process: dnsmasq, cold: { runs: [], cpuMs: 0, requests: 0 }, warm: { runs: [], cpuMs: 0, requests: 0 } },
    ];
    const measure = async (s: (typeof servers)[number], tally: Tally, round: number, warmup: number) => {
      const before = cpuMs(s.process.pid);
      // Every round's clients are machines the server has never seen.
      const first = (round + 1) * 100_000;
      const r = await lab.run(
        s.net.cli,
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'scripts/bench/dhcp-client.ts'), 'eth0', String(opts.clients), String(opts.concurrency), String(first), String(warmup)],
        { timeoutMs: 300_000 },
      );
      if (r.code !== 0) throw new Error(`DHCP client failed against ${s.name}: ${r.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      const after = cpuMs(s.process.pid);
      if (before !== undefined && after !== undefined) tally.cpuMs += after - before;
      tally.requests += opts.clients + warmup;
      tally.runs.push(JSON.parse(r.stdout.trim().split('\n').pop()!) as ClientRun);
    };
    // First the servers as they come up: the first requests they ever answer.
    for (const s of servers) await measure(s, s.cold, 0, 0);
    for (let round = 1; round <= opts.rounds; round++) {
      // Alternate which server goes first, so neither always follows the other.
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      for (const s of order) await measure(s, s.warm, round, opts.warmup);
    }
    const summary = (s: (typeof servers)[number], cold: boolean): DhcpResult => {
      const tally = cold ? s.cold : s.warm;
      const latencies = tally.runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
      const q = (f: number) => latencies[Math.min(latencies.length - 1, Math.floor(f * latencies.length))] ?? null;
      const wallMs = tally.runs.reduce((sum, r) => sum + r.wallMs, 0);
      return {
        server: s.name,
        cold,
        offers: latencies.length,
        timeouts: tally.runs.reduce((sum, r) => sum + r.timeouts, 0),
        p50: q(0.5),
        p99: q(0.99),
        wallMs,
        cpuUsPerRequest: s.process.pid !== undefined && tally.requests > 0 ? (tally.cpuMs * 1000) / tally.requests : null,
        clientBusy: tally.runs.reduce((sum, r) => sum + r.clientBusy * r.wallMs, 0) / wallMs,
      };
    };
    return [...servers.map((s) => summary(s, true)), ...servers.map((s) => summary(s, false))];
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
