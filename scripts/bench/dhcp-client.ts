// A load generator of simulated PXE clients, run inside the bench's client namespace:
//   node --import tsx scripts/bench/dhcp-client.ts IFACE COUNT CONCURRENCY [FIRST] [WARMUP]
// Each client sends one DHCPDISCOVER as a BIOS PXE ROM would (vendor class PXEClient, option 93 = 0,
// broadcast flag) from its own MAC; the time to the matching OFFER is its latency. Prints JSON.
//
// The client must never be what sets the pace, or it hides the difference between two servers: every
// DISCOVER is built before the clock starts, a reply is matched by reading its xid and message type
// in place, and one sweep timer stands in for a timer per request. WARMUP clients (other MACs, not
// measured) go first, so neither this process nor the server is measured while its code is cold;
// then half a second of quiet.
import { randomBytes } from 'node:crypto';
import { encodePacket, BOOTREPLY, BOOTREQUEST, BROADCAST_FLAG, type DhcpPacket } from '../../src/dhcp/packet.js';
import { MessageType, Opt, text, u8, u16 } from '../../src/dhcp/options.js';
import { openDeviceSocket } from '../../src/dhcp/udp-device.js';

const [iface, countText, concurrencyText, firstText, warmupText] = process.argv.slice(2);
const count = Number(countText ?? 500);
const concurrency = Number(concurrencyText ?? 10);
/** Index of the first client's MAC: a later run with another FIRST simulates machines never seen before. */
const first = Number(firstText ?? 0);
const warmup = Number(warmupText ?? 0);
const TIMEOUT_MS = 4000;
/** Warm-up MACs live in their own range, so a measured client is always a machine never seen before. */
const WARMUP_BASE = 0xf00000;
const SETTLE_MS = 500;

function discover(xid: number, index: number): Buffer {
  const mac = Buffer.from([0x02, 0xbe, 0x00, (index >> 16) & 255, (index >> 8) & 255, index & 255]);
  const p: DhcpPacket = {
    op: BOOTREQUEST, htype: 1, hlen: 6, hops: 0, xid, secs: 0, flags: BROADCAST_FLAG,
    ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0',
    chaddr: mac, sname: '', file: '',
    options: new Map([
      [Opt.MESSAGE_TYPE, u8(MessageType.DISCOVER)],
      [Opt.MAX_MESSAGE_SIZE, u16(1260)],
      [Opt.PARAMETER_REQUEST_LIST, Buffer.from([1, 2, 3, 5, 6, 11, 12, 13, 15, 16, 17, 18, 43, 54, 60, 66, 67, 128, 129, 130, 131, 132, 133, 134, 135])],
      [Opt.CLIENT_ARCH, u16(0)],
      [Opt.CLIENT_NDI, Buffer.from([1, 2, 1])],
      [Opt.CLIENT_UUID, Buffer.concat([Buffer.from([0]), randomBytes(16)])],
      [Opt.VENDOR_CLASS, text('PXEClient:Arch:00000:UNDI:002001')],
    ]),
  };
  return encodePacket(p);
}

/** The DHCP message type of a reply, read from its options without decoding the packet; 0 if none. */
function replyType(msg: Buffer): number {
  if (msg.length < 241 || msg[0] !== BOOTREPLY || msg.readUInt32BE(236) !== 0x63825363) return 0;
  for (let i = 240; i + 1 < msg.length; ) {
    const code = msg[i]!;
    if (code === 255) break;
    if (code === 0) {
      i++;
      continue;
    }
    const len = msg[i + 1]!;
    if (code === Opt.MESSAGE_TYPE && len === 1) return msg[i + 2] ?? 0;
    i += 2 + len;
  }
  return 0;
}

interface Waiter {
  sent: bigint;
  done: (ms: number | null) => void;
}

const socket = await openDeviceSocket(68, iface);
const pending = new Map<number, Waiter>();
socket.on('message', (msg) => {
  if (msg.length < 8 || replyType(msg) !== MessageType.OFFER) return;
  const xid = msg.readUInt32BE(4);
  const waiter = pending.get(xid);
  if (!waiter) return;
  pending.delete(xid);
  waiter.done(Number(process.hrtime.bigint() - waiter.sent) / 1e6);
});
const sweep = setInterval(() => {
  const now = process.hrtime.bigint();
  for (const [xid, w] of pending) {
    if (now - w.sent > BigInt(TIMEOUT_MS) * 1_000_000n) {
      pending.delete(xid);
      w.done(null);
    }
  }
}, 100);

/** Runs the packets `concurrency` at a time; resolves with each one's latency (null: no offer). */
function run(packets: { xid: number; bytes: Buffer }[]): Promise<(number | null)[]> {
  const results: (number | null)[] = [];
  let next = 0;
  let running = 0;
  return new Promise((resolve) => {
    const launch = () => {
      while (running < concurrency && next < packets.length) {
        const { xid, bytes } = packets[next++]!;
        running++;
        pending.set(xid, {
          sent: process.hrtime.bigint(),
          done: (ms) => {
            results.push(ms);
            running--;
            if (next < packets.length) launch();
            else if (running === 0) resolve(results);
          },
        });
        socket.send(bytes, 67, '255.255.255.255');
      }
    };
    if (packets.length === 0) resolve(results);
    else launch();
  });
}

const build = (n: number, base: number) => {
  const xids = randomBytes(4 * n);
  return Array.from({ length: n }, (_, i) => {
    const xid = xids.readUInt32BE(4 * i);
    return { xid, bytes: discover(xid, base + i) };
  });
};

if (warmup > 0) {
  await run(build(warmup, WARMUP_BASE + first));
  // Then quiet, as before a rack powers on: what the warm-up left to do (hiveboot's timeline writes
  // wait for a quiet moment, at most 250 ms) is done before the measured burst begins.
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
}
const packets = build(count, first);
const cpuBefore = process.cpuUsage();
const started = process.hrtime.bigint();
const results = await run(packets);
const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
const cpu = process.cpuUsage(cpuBefore);
// Near 1 means this client, not the server, set the pace: then the run says little about the server.
const clientBusy = (cpu.user + cpu.system) / 1000 / wallMs;
clearInterval(sweep);
const latencies = results.filter((ms): ms is number => ms !== null).sort((a, b) => a - b);
const timeouts = results.length - latencies.length;
const q = (f: number) => latencies[Math.min(latencies.length - 1, Math.floor(f * latencies.length))] ?? null;
// Every latency too (µs resolution), so that several runs can be pooled.
const rounded = latencies.map((ms) => Math.round(ms * 1000) / 1000);
process.stdout.write(`${JSON.stringify({ offers: latencies.length, timeouts, p50: q(0.5), p99: q(0.99), wallMs, clientBusy, latencies: rounded })}\n`);
socket.close();
