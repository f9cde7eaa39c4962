// A load generator of simulated PXE clients, run inside the bench's client namespace:
//   node --import tsx scripts/bench/dhcp-client.ts IFACE COUNT CONCURRENCY
// Each client sends one DHCPDISCOVER as a BIOS PXE ROM would (vendor class PXEClient, option 93 = 0,
// broadcast flag) from its own MAC; the time to the matching OFFER is its latency. Prints JSON.
import { randomBytes } from 'node:crypto';
import { decodePacket, encodePacket, BOOTREQUEST, BROADCAST_FLAG, type DhcpPacket } from '../../src/dhcp/packet.js';
import { messageType, MessageType, Opt, text, u8, u16 } from '../../src/dhcp/options.js';
import { openDeviceSocket } from '../../src/dhcp/udp-device.js';

const [iface, countText, concurrencyText] = process.argv.slice(2);
const count = Number(countText ?? 500);
const concurrency = Number(concurrencyText ?? 10);
const TIMEOUT_MS = 4000;

function discover(xid: number, mac: Buffer): Buffer {
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

const socket = await openDeviceSocket(68, iface);
const pending = new Map<number, { sent: bigint; resolve: (ms: number | null) => void }>();
socket.on('message', (msg) => {
  try {
    const p = decodePacket(msg);
    if (messageType(p) !== MessageType.OFFER) return;
    const waiter = pending.get(p.xid);
    if (!waiter) return;
    pending.delete(p.xid);
    waiter.resolve(Number(process.hrtime.bigint() - waiter.sent) / 1e6);
  } catch {
    /* not for us */
  }
});

function one(i: number): Promise<number | null> {
  const xid = randomBytes(4).readUInt32BE(0);
  const mac = Buffer.from([0x02, 0xbe, 0x00, (i >> 16) & 255, (i >> 8) & 255, i & 255]);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      pending.delete(xid);
      resolve(null);
    }, TIMEOUT_MS);
    pending.set(xid, { sent: process.hrtime.bigint(), resolve: (ms) => { clearTimeout(timer); resolve(ms); } });
    socket.send(discover(xid, mac), 67, '255.255.255.255');
  });
}

const latencies: number[] = [];
let timeouts = 0;
let next = 0;
const started = process.hrtime.bigint();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++;
      const ms = await one(i);
      if (ms === null) timeouts++;
      else latencies.push(ms);
    }
  }),
);
const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
latencies.sort((a, b) => a - b);
const q = (f: number) => latencies[Math.min(latencies.length - 1, Math.floor(f * latencies.length))] ?? null;
process.stdout.write(`${JSON.stringify({ offers: latencies.length, timeouts, p50: q(0.5), p99: q(0.99), wallMs })}\n`);
socket.close();
