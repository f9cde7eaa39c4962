// npm run bench -- [dhcp] [tftp] [iscsi] [boot]: hiveboot side by side with the peer a user would otherwise run,
// in the same run on the same machine, reported as ratios. Needs root (network namespaces).
import { benchBoot, bootOptions, bootTitle, printBoot } from './boot.js';
import { benchDhcp } from './dhcp.js';
import { benchIscsi, iscsiOptions, iscsiTitle, printIscsi } from './iscsi.js';
import { benchTftp } from './tftp.js';

const wanted = new Set(process.argv.slice(2).filter((a) => !a.startsWith('-')));
const all = wanted.size === 0;
const fmt = (n: number | null) => (n === null ? '-' : n.toFixed(2));

if (process.getuid?.() !== 0) {
  console.error('bench: needs root (it builds network namespaces)');
  process.exit(1);
}

if (all || wanted.has('dhcp')) {
  const clients = Number(process.env.BENCH_DHCP_CLIENTS ?? 500);
  const warmup = Number(process.env.BENCH_DHCP_WARMUP ?? 1000);
  const rounds = Number(process.env.BENCH_DHCP_ROUNDS ?? 3);
  // Two loads: one machine at a time (what a PXE ROM sees in an ordinary boot), and 10 requests
  // always outstanding (a storm: the server never idles, so latency is mostly queueing behind the
  // requests before it, and the figure measures how fast the server gets through them).
  const loads = (process.env.BENCH_DHCP_CONCURRENCY ?? '1,10').split(',').map(Number);
  for (const concurrency of loads) {
    console.log(
      `\nDHCP: ${clients} simulated BIOS PXE clients, ${concurrency} at a time, DISCOVER → OFFER latency (ms).` +
        `\n  cold: the first ${clients} requests each server ever answers; warm: ${rounds} rounds per server, taken in turns,` +
        ` each after ${warmup} unmeasured clients and 0.5 s of quiet (percentiles over all rounds)`,
    );
    const rows = await benchDhcp({ clients, concurrency, warmup, rounds });
    console.log(['server'.padEnd(27), 'offers', 'timeouts', 'p50'.padStart(8), 'p99'.padStart(8), 'wall'.padStart(9), 'cpu/req'.padStart(9), 'client'.padStart(7)].join('  '));
    for (const r of rows) {
      console.log(
        [
          `${r.server} ${r.cold ? '(cold)' : '(warm)'}`.padEnd(27),
          String(r.offers).padStart(6),
          String(r.timeouts).padStart(8),
          fmt(r.p50).padStart(8),
          fmt(r.p99).padStart(8),
          `${(r.wallMs / 1000).toFixed(2)}s`.padStart(9),
          (r.cpuUsPerRequest === null ? '-' : `${r.cpuUsPerRequest.toFixed(0)}µs`).padStart(9),
          `${(r.clientBusy * 100).toFixed(0)}%`.padStart(7),
        ].join('  '),
      );
    }
    console.log('  cpu/req: server CPU per request, warm-up and deferred bookkeeping included; client: the load generator\'s CPU over wall time (near 100%: it set the pace)');
    for (const cold of [true, false]) {
      const [hb, peer] = rows.filter((r) => r.cold === cold);
      if (hb?.p50 && peer?.p50 && hb.p99 && peer.p99) {
        console.log(`ratio dnsmasq/hiveboot, ${concurrency} at a time, ${cold ? 'cold' : 'warm'}: p50 ${(peer.p50 / hb.p50).toFixed(2)}x, p99 ${(peer.p99 / hb.p99).toFixed(2)}x (> 1: hiveboot is faster)`);
      }
    }
  }
}

if (all || wanted.has('tftp')) {
  const downloads = Number(process.env.BENCH_TFTP_DOWNLOADS ?? 50);
  const rounds = Number(process.env.BENCH_TFTP_ROUNDS ?? 5);
  console.log(
    `\nTFTP: ${downloads} concurrent 1 MiB downloads with curl (blksize 1468), wall time (ms), ${rounds} rounds per server taken in turns after one unmeasured round`,
  );
  const rows = await benchTftp({ downloads, rounds });
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(['server'.padEnd(12), 'median'.padStart(8), 'rounds'.padStart(20), 'cpu/round'.padStart(10), 'content'].join('  '));
  for (const r of rows) {
    if (r.error) console.log(`${r.server.padEnd(12)}  not measured: ${r.error}`);
    else {
      const cpu = r.cpuMsPerRound === null ? '-' : `${r.cpuMsPerRound.toFixed(0)}ms`;
      console.log([r.server.padEnd(12), String(median(r.wallMs)).padStart(8), r.wallMs.join(' ').padStart(20), cpu.padStart(10), r.ok ? 'sha256 ok' : 'MISMATCH'].join('  '));
    }
  }
  const hb = rows.find((r) => r.server === 'hiveboot' && !r.error);
  for (const peer of rows.filter((r) => r !== hb && !r.error)) {
    if (hb) console.log(`ratio ${peer.server}/hiveboot: ${(median(peer.wallMs) / median(hb.wallMs)).toFixed(2)}x (> 1: hiveboot is faster)`);
  }
}

if (all || wanted.has('iscsi')) {
  const opts = iscsiOptions();
  console.log(iscsiTitle(opts));
  printIscsi(await benchIscsi(opts));
}

if (all || wanted.has('boot')) {
  const opts = bootOptions();
  console.log(bootTitle(opts));
  printBoot(await benchBoot(opts));
}
