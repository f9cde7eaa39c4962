import { describe, expect, it } from 'vitest';
import { memoryFile } from '../../src/tftp/files.js';
import { decode, encode, ERROR_CODE } from '../../src/tftp/packet.js';
import { TransferCore, type TransferLink, type TransferResult } from '../../src/tftp/transfer.js';
import { pseudoRandomBytes } from './helpers.js';

/**
 * TransferCore without a socket: a link that records what would go out, can refuse DATA as a full
 * send buffer does (the data-plane thread's sockets), and holds the deadline for the test to fire.
 */
class FakeLink implements TransferLink {
  sent: Buffer[] = [];
  refuse = false;
  /** Accept this many more DATA packets, then refuse (a buffer that fills mid-window). */
  room = Infinity;
  deadline = Infinity;
  closedWith: Buffer | undefined | null = null;
  send(packet: Buffer): void {
    this.sent.push(Buffer.from(packet));
  }
  sendData(block: number, data: Buffer): boolean {
    if (this.refuse || this.room <= 0) return false;
    this.room--;
    this.sent.push(encode({ type: 'data', block, data }));
    return true;
  }
  schedule(at: number): void {
    this.deadline = at;
  }
  close(last: Buffer | undefined): Promise<void> {
    this.closedWith = last;
    return Promise.resolve();
  }
  take(): ReturnType<typeof decode>[] {
    const out = this.sent.map((b) => decode(b));
    this.sent = [];
    return out;
  }
}

const ack = (block: number) => encode({ type: 'ack', block });

function setup(opts: { size?: number; windowsize?: number; retries?: number } = {}) {
  const data = pseudoRandomBytes(opts.size ?? 5000, 7);
  const link = new FakeLink();
  const counted = { bytes: 0, retransmits: 0 };
  const results: TransferResult[] = [];
  const core = new TransferCore(
    {
      peer: { address: '192.0.2.7', port: 2000 },
      file: memoryFile('f.bin', data),
      blksize: 1000,
      windowsize: opts.windowsize ?? 1,
      oack: null,
      timeoutMs: 100,
      retries: opts.retries ?? 2,
      hooks: {
        dataSent: (bytes, retransmit) => {
          counted.bytes += bytes;
          if (retransmit) counted.retransmits++;
        },
        dataRefused: (bytes, retransmit) => {
          counted.bytes -= bytes;
          if (retransmit) counted.retransmits--;
        },
        stray: () => undefined,
        done: (r) => results.push(r),
      },
    },
    link,
  );
  return { core, link, counted, results, data };
}

const blocks = (packets: ReturnType<typeof decode>[]) => packets.map((p) => (p.type === 'data' ? p.block : p.type));

describe('TransferCore', () => {
  it('stops a window where the socket refuses DATA and goes on from that block once writable', () => {
    const { core, link, counted, results } = setup({ windowsize: 4, size: 10_000 });
    link.refuse = true;
    core.start();
    expect(link.take()).toEqual([]);
    expect(counted.bytes).toBe(0);
    link.refuse = false;
    core.writable();
    expect(blocks(link.take())).toEqual([1, 2, 3, 4]);
    expect(counted).toEqual({ bytes: 4000, retransmits: 0 });
    // Refused in the middle of the next window: blocks 5 and 6 go, 7 and 8 wait.
    link.room = 2;
    core.onPacket(ack(4), undefined);
    expect(blocks(link.take())).toEqual([5, 6]);
    expect(counted).toEqual({ bytes: 6000, retransmits: 0 });
    link.room = Infinity;
    core.writable();
    core.writable(); // a second wakeup has nothing left to do
    expect(blocks(link.take())).toEqual([7, 8]);
    expect(counted).toEqual({ bytes: 8000, retransmits: 0 });
    core.onPacket(ack(8), undefined);
    expect(blocks(link.take())).toEqual([9, 10, 11]);
    core.onPacket(ack(11), undefined);
    expect(results).toEqual([{ outcome: 'complete', reason: null, bytes: 10_000 }]);
  });

  it('a writable() after a new window was started does not send the old one again', () => {
    const { core, link } = setup({ windowsize: 2 });
    link.refuse = true;
    core.start();
    link.refuse = false;
    // The timer retransmits the window before the socket said it was writable.
    core.onDeadline();
    expect(blocks(link.take())).toEqual([1, 2]);
    core.writable();
    expect(link.take()).toEqual([]);
  });

  it('keeps the deadline in the link: backoff doubles it, an ACK resets it, the end clears it', () => {
    const { core, link, results } = setup({ retries: 2 });
    const t0 = performance.now();
    core.start();
    expect(link.deadline - t0).toBeGreaterThanOrEqual(99);
    expect(link.deadline - t0).toBeLessThan(150);
    core.onDeadline();
    expect(link.deadline - performance.now()).toBeGreaterThan(150);
    core.onPacket(ack(1), undefined);
    expect(link.deadline - performance.now()).toBeLessThanOrEqual(100);
    core.onDeadline();
    core.onDeadline();
    core.onDeadline();
    expect(results).toEqual([{ outcome: 'timeout', reason: 'no acknowledgement of block 2 after 2 retransmissions', bytes: 1000 }]);
    expect(link.deadline).toBe(Infinity);
    expect(link.closedWith && decode(link.closedWith)).toEqual({ type: 'error', code: ERROR_CODE.notDefined, message: 'timed out waiting for an acknowledgement' });
  });

  it('answers a stranger with ERROR 5 through the stranger, and goes on untouched', () => {
    const { core, link } = setup();
    core.start();
    link.take();
    const answers: Buffer[] = [];
    core.onPacket(ack(1), { address: '192.0.2.99', port: 3000, answer: (p) => answers.push(p) });
    expect(answers.map((p) => decode(p))).toEqual([{ type: 'error', code: ERROR_CODE.unknownTransferId, message: 'unknown transfer ID' }]);
    expect(link.take()).toEqual([]);
    expect(core.heardFromPeer).toBe(false);
  });
});
