import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetLab, waitForOutput } from '../../test/support/netns.js';

/**
 * Wall time for N concurrent downloads of a 1 MiB file with curl (blksize 1468, what iPXE asks for
 * on Ethernet), from hiveboot, tftpd-hpa and dnsmasq's TFTP in turn. Each server runs on port 69 of
 * the loopback of a namespace of its own, so none needs special flags and nothing leaves the host.
 */
export interface TftpResult {
  server: string;
  wallMs: number[];
  ok: boolean;
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
  const results: TftpResult[] = [];
  try {
    const servers: { name: string; start: (lab: NetLab, ns: string) => Promise<void> }[] = [
      {
        name: 'hiveboot',
        start: async (lab, ns) => {
          // Its state goes beside the served file's folder, not into it.
          await lab.hiveboot(ns, `${dir}-state`, `http: { listen: 127.0.0.1, port: 18491 }\nlog: { level: info }\ntftp: { listen: 127.0.0.1, port: 69, root: ${dir} }\n`, {
            ...process.env,
            HIVEBOOT_NODE_ARGS: process.env.BENCH_PROFILE ? `--cpu-prof --cpu-prof-dir=${process.env.BENCH_PROFILE}` : '',
          });
        },
      },
      {
        name: 'tftpd-hpa',
        start: async (lab, ns) => {
          const p = lab.spawn(ns, join(ROOT, '.tmp/peers/usr/sbin/in.tftpd'), ['--foreground', '--listen', '--user', 'root', '--address', ':69', '--secure', dir]);
          await new Promise((r) => setTimeout(r, 500));
          // ":69", not "127.0.0.1:69", which this build refuses at start-up; the namespace has only lo anyway.
          // in.tftpd reports start-up errors only to syslog: an early exit is all we can see.
          if (p.exitCode !== null) throw new Error(`in.tftpd exited with code ${p.exitCode} at start-up (its reason went to syslog)`);
        },
      },
      {
        name: 'dnsmasq',
        start: async (lab, ns) => {
          const p = lab.spawn(ns, '/usr/sbin/dnsmasq', [
            '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--group=root', '--enable-tftp', `--tftp-root=${dir}`,
            '--listen-address=127.0.0.1', '--bind-interfaces', `--pid-file=${join(dir, 'dnsmasq.pid')}`, '--tftp-max=1000',
          ]);
          await waitForOutput(p, (t) => /TFTP root is/.test(t), 10_000);
        },
      },
    ];
    for (const server of servers) {
      const lab = new NetLab();
      try {
        const ns = lab.ns('tftp');
        try {
          await server.start(lab, ns);
        } catch (err) {
          results.push({ server: server.name, wallMs: [], ok: false, error: (err as Error).message });
          continue;
        }
        const wallMs: number[] = [];
        let ok = true;
        for (let round = 0; round < opts.rounds; round++) {
          // All downloads start together; the shell reports the wall time and one file's checksum.
          const script = `
            out=$(mktemp -d); start=$(date +%s%N)
            for i in $(seq 1 ${opts.downloads}); do curl -s --max-time 60 --tftp-blksize 1468 -o "$out/$i" tftp://127.0.0.1/file.bin & done
            wait; end=$(date +%s%N)
            bad=0; for f in "$out"/*; do [ "$(sha256sum < "$f" | cut -d' ' -f1)" = "${want}" ] || bad=$((bad+1)); done
            echo "$(( (end - start) / 1000000 )) $bad $(ls "$out" | wc -l)"; rm -rf "$out"`;
          const r = await lab.run(ns, 'bash', ['-c', script], { timeoutMs: 300_000 });
          const [ms, bad, count] = r.stdout.trim().split(/\s+/).map(Number);
          wallMs.push(ms!);
          if (bad !== 0 || count !== opts.downloads) ok = false;
        }
        results.push({ server: server.name, wallMs, ok });
      } finally {
        await lab.destroy();
      }
    }
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}-state`, { recursive: true, force: true });
  }
}
