import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { waitForOutput } from '../../test/support/netns.js';
import { BenchLab, cpuMs } from './lab.js';

/**
 * Wall time for N concurrent downloads of a 1 MiB file with curl (blksize 1468, what iPXE asks for
 * on Ethernet), from hiveboot, tftpd-hpa and dnsmasq's TFTP. Each server runs on port 69 of the
 * loopback of a namespace of its own, so none needs special flags and nothing leaves the host. All
 * three run the whole time and take turns round by round (in a rotating order), so a load that comes
 * and goes on the machine falls on each alike; one unmeasured round per server comes first.
 */
export interface TftpResult {
  server: string;
  wallMs: number[];
  ok: boolean;
  /** Server CPU (user + system) per round, ms; null where it cannot be seen (tftpd-hpa forks per transfer). */
  cpuMsPerRound: number | null;
  /** Set when the server could not be run here. */
  error?: string;
}

const ROOT = join(import.meta.dirname, '../..');

export async function benchTftp(opts: { downloads: number; rounds: number }): Promise<TftpResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'hb-bench-tftp-'));
  mkdirSync(`${dir}-state`);
  const data = randomBytes(1024 * 1024);
  writeFileSync(join(dir, 'file.bin'), data);
  const want = createHash('sha256').update(data).digest('hex');
  const lab = new BenchLab();
  try {
    const servers: { name: string; start: (ns: string) => Promise<ChildProcess>; cpuVisible: boolean }[] = [
      {
        name: 'hiveboot',
        cpuVisible: true,
        start: async (ns) => {
          // Its state goes beside the served file's folder, not into it.
          const { process: p } = await lab.hiveboot(ns, `${dir}-state`, `http: { listen: 127.0.0.1, port: 18491 }\nlog: { level: info }\ntftp: { listen: 127.0.0.1, port: 69, root: ${dir} }\n`, {
            ...process.env,
            HIVEBOOT_NODE_ARGS: process.env.BENCH_PROFILE ? `--cpu-prof --cpu-prof-dir=${process.env.BENCH_PROFILE}` : '',
          });
          return p;
        },
      },
      {
        name: 'tftpd-hpa',
        // in.tftpd forks a child per transfer and does not wait for it in a way /proc accounts for.
        cpuVisible: false,
        start: async (ns) => {
          const p = lab.spawn(ns, join(ROOT, '.tmp/peers/usr/sbin/in.tftpd'), ['--foreground', '--listen', '--user', 'root', '--address', ':69', '--secure', dir]);
          await new Promise((r) => setTimeout(r, 500));
          // ":69", not "127.0.0.1:69", which this build refuses at start-up; the namespace has only lo anyway.
          // in.tftpd reports start-up errors only to syslog: an early exit is all we can see.
          if (p.exitCode !== null) throw new Error(`in.tftpd exited with code ${p.exitCode} at start-up (its reason went to syslog)`);
          return p;
        },
      },
      {
        name: 'dnsmasq',
        cpuVisible: true,
        start: async (ns) => {
          const p = lab.spawn(ns, '/usr/sbin/dnsmasq', [
            '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--group=root', '--enable-tftp', `--tftp-root=${dir}`,
            '--listen-address=127.0.0.1', '--bind-interfaces', `--pid-file=${join(dir, 'dnsmasq.pid')}`, '--tftp-max=1000',
          ]);
          await waitForOutput(p, (t) => /TFTP root is/.test(t), 10_000);
          return p;
        },
      },
    ];

    const running: { name: string; ns: string; process: ChildProcess; cpuVisible: boolean; result: TftpResult; cpuMs: number }[] = [];
    const results: TftpResult[] = [];
    for (const server of servers) {
      const ns = lab.ns(`tftp-${server.name.replace(/[^a-z]/g, '')}`);
      const result: TftpResult = { server: server.name, wallMs: [], ok: true, cpuMsPerRound: null };
      results.push(result);
      try {
        running.push({ name: server.name, ns, process: await server.start(ns), cpuVisible: server.cpuVisible, result, cpuMs: 0 });
      } catch (err) {
        Object.assign(result, { ok: false, error: (err as Error).message });
      }
    }

    // All downloads start together; the shell reports the wall time, how many files were wrong and how many arrived.
    const round = async (s: (typeof running)[number], downloads: number) => {
      const script = `
        out=$(mktemp -d); start=$(date +%s%N)
        for i in $(seq 1 ${downloads}); do curl -s --max-time 60 --tftp-blksize 1468 -o "$out/$i" tftp://127.0.0.1/file.bin & done
        wait; end=$(date +%s%N)
        bad=0; for f in "$out"/*; do [ "$(sha256sum < "$f" | cut -d' ' -f1)" = "${want}" ] || bad=$((bad+1)); done
        echo "$(( (end - start) / 1000000 )) $bad $(ls "$out" | wc -l)"; rm -rf "$out"`;
      const before = cpuMs(s.process.pid);
      const r = await lab.run(s.ns, 'bash', ['-c', script], { timeoutMs: 300_000 });
      const after = cpuMs(s.process.pid);
      const [ms, bad, count] = r.stdout.trim().split(/\s+/).map(Number);
      return { ms: ms!, ok: bad === 0 && count === downloads, cpu: before !== undefined && after !== undefined ? after - before : 0 };
    };

    for (const s of running) await round(s, opts.downloads);
    for (let i = 0; i < opts.rounds; i++) {
      // Rotate the order: each server goes first, second and third in turn.
      const order = running.map((_, k) => running[(k + i) % running.length]!);
      for (const s of order) {
        const r = await round(s, opts.downloads);
        s.result.wallMs.push(r.ms);
        if (!r.ok) s.result.ok = false;
        s.cpuMs += r.cpu;
      }
    }
    for (const s of running) if (s.cpuVisible && opts.rounds > 0) s.result.cpuMsPerRound = s.cpuMs / opts.rounds;
    return results;
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}-state`, { recursive: true, force: true });
  }
}
