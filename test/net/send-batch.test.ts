// SendBatch against real sockets on loopback: what is gathered arrives, whole and in order, at the
// addresses it was meant for, with one system call per batch.
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { parseIpv4 } from '../../src/dhcp/addresses.js';
import { loadLibc, openUdp4 } from '../../src/net/libc.js';
import { SendBatch } from '../../src/net/send-batch.js';

const LOOPBACK = parseIpv4('127.0.0.1');

async function receiver(): Promise<{ socket: dgram.Socket; port: number; got: Buffer[]; until: (n: number) => Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  const waiters: (() => void)[] = [];
  socket.on('message', (m) => {
    got.push(m);
    waiters.splice(0).forEach((w) => w());
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const until = async (n: number) => {
    const deadline = Date.now() + 5000;
    while (got.length < n && Date.now() < deadline) await new Promise<void>((r) => (waiters.push(r), setTimeout(r, 50)));
  };
  return { socket, port: socket.address().port, got, until };
}

describe('SendBatch', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).forEach((f) => f()));

  it('sends every gathered datagram, byte for byte and in order, to its own destination', async () => {
    const a = await receiver();
    const b = await receiver();
    const c = loadLibc();
    const { fd } = openUdp4(c, '127.0.0.1', 0);
    const batch = new SendBatch(fd, { maxMessages: 16, maxBytes: 1500 });
    cleanups.push(() => (batch.close(), c.close(fd), a.socket.close(), b.socket.close()));

    const sentToA: Buffer[] = [];
    const sentToB: Buffer[] = [];
    for (let i = 0; i < 10; i++) {
      // Different lengths, so a slot's length or contents leaking into the next would show.
      const data = Buffer.alloc(300 + i * 37, i + 1);
      data.writeUInt32BE(i, 0);
      const toA = i % 3 !== 0;
      expect(batch.add(data, LOOPBACK, toA ? a.port : b.port)).toBe(true);
      (toA ? sentToA : sentToB).push(data);
    }
    expect(batch.size).toBe(10);
    // Nothing leaves before the flush.
    await new Promise((r) => setTimeout(r, 50));
    expect(a.got.length + b.got.length).toBe(0);

    expect(batch.flush()).toEqual({ unsent: [] });
    expect(batch.size).toBe(0);
    await a.until(sentToA.length);
    await b.until(sentToB.length);
    expect(a.got).toEqual(sentToA);
    expect(b.got).toEqual(sentToB);
  });

  it('is reusable after a flush and says when it is full or a datagram is too big', async () => {
    const a = await receiver();
    const c = loadLibc();
    const { fd } = openUdp4(c, '127.0.0.1', 0);
    const batch = new SendBatch(fd, { maxMessages: 4, maxBytes: 512 });
    cleanups.push(() => (batch.close(), c.close(fd), a.socket.close()));

    expect(batch.add(Buffer.alloc(513), LOOPBACK, a.port)).toBe(false);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 4; i++) expect(batch.add(Buffer.from(`round ${round} datagram ${i}`), LOOPBACK, a.port)).toBe(true);
      expect(batch.full).toBe(true);
      expect(batch.add(Buffer.from('one too many'), LOOPBACK, a.port)).toBe(false);
      expect(batch.flush().unsent).toEqual([]);
    }
    await a.until(12);
    expect(a.got.map(String)).toEqual([0, 1, 2].flatMap((r) => [0, 1, 2, 3].map((i) => `round ${r} datagram ${i}`)));
  });

  it('hands back what the kernel refused, with its destination, instead of losing it silently', async () => {
    const c = loadLibc();
    const { fd } = openUdp4(c, '127.0.0.1', 0);
    const batch = new SendBatch(fd, { maxMessages: 4, maxBytes: 512 });
    cleanups.push(() => (batch.close(), c.close(fd)));
    // Port 0 is not a destination: the kernel refuses the first datagram (EINVAL) and sendmmsg stops there.
    batch.add(Buffer.from('to nowhere'), LOOPBACK, 0);
    batch.add(Buffer.from('after it'), LOOPBACK, 9);
    const { unsent, error } = batch.flush();
    expect(error).toBeGreaterThan(0);
    expect(unsent.map((u) => [String(u.data), u.port])).toEqual([
      ['to nowhere', 0],
      ['after it', 9],
    ]);
    expect(unsent[0]!.address).toBe(LOOPBACK);
  });
});
