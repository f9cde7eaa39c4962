import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetLab, waitForOutput } from '../../test/support/netns.js';

/**
 * DHCP offer latency for simulated PXE clients: hiveboot (full mode) and dnsmasq (--no-ping, the
 * configuration a user would pick for a boot network) take turns on the same namespace pair, the
 * same client generator measures both.
 */
export interface DhcpResult {
  server: string;
  offers: number;
  timeouts: number;
  p50: number | null;
  p99: number | null;
  wallMs: number;
}

const ROOT = join(import.meta.dirname, '../..');

export async function benchDhcp(opts: { clients: number; concurrency: number }): Promise<DhcpResult[]> {
  const lab = new NetLab();
  const dir = mkdtempSync(join(tmpdir(), 'hb-bench-dhcp-'));
  try {
    const srv = lab.ns('srv');
    const cli = lab.ns('cli');
    lab.link({ ns: srv, ifname: 'boot0', cidr: '10.80.0.1/16' }, { ns: cli, ifname: 'eth0' });
    const results: DhcpResult[] = [];

    const runClients = async (server: string) => {
      const r = await lab.run(cli, process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/bench/dhcp-client.ts'), 'eth0', String(opts.clients), String(opts.concurrency)], {
        timeoutMs: 300_000,
      });
      if (r.code !== 0) throw new Error(`DHCP client failed against ${server}: ${r.stderr}`);
      results.push({ server, ...(JSON.parse(r.stdout.trim().split('\n').pop()!) as Omit<DhcpResult, 'server'>) });
    };

    // hiveboot, full mode, discovery on (every PXE client becomes a discovered host, as in production).
    const { process: hb } = await lab.hiveboot(
      srv,
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
    await runClients('hiveboot');
    hb.kill('SIGTERM');
    await new Promise((r) => hb.once('close', r));

    const dnsmasq = lab.spawn(srv, '/usr/sbin/dnsmasq', [
      '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--group=root',
      '--interface=boot0', '--bind-interfaces', '--no-ping',
      `--pid-file=${join(dir, 'dnsmasq.pid')}`, `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
      '--dhcp-range=10.80.1.0,10.80.200.255,255.255.0.0,1h',
      '--dhcp-boot=undionly.kpxe,,10.80.0.1',
      '--dhcp-lease-max=100000',
    ]);
    await waitForOutput(dnsmasq, (t) => /DHCP, IP range/.test(t), 10_000);
    await runClients('dnsmasq --no-ping');
    return results;
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
