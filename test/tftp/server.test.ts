import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, encode, ERROR_CODE } from '../../src/tftp/packet.js';
import { TftpServer } from '../../src/tftp/server.js';
import { prng } from '../support/prng.js';
import { rawGet, sendAndListen } from './client.js';
import { pseudoRandomBytes, sha256, startTftp, type TestTftp } from './helpers.js';

/**
 * The server as a client meets it, through a raw UDP client that can do what packaged clients
 * cannot: any windowsize, packets lost on purpose, duplicated ACKs, silence, a stranger's packets.
 */

let dir: string;
const FILES = {
  small: pseudoRandomBytes(200_001, 1),
  exact: pseudoRandomBytes(8192 * 40, 2),
  lossy: pseudoRandomBytes(100_000, 3),
  // Past 65535 blocks of 512 bytes: the block number wraps around to 0.
  rollover: pseudoRandomBytes(33 * 1024 * 1024 + 1234, 4),
  tiny: Buffer.from('one short block'),
  empty: Buffer.alloc(0),
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hb-tftp-server-'));
  for (const [name, data] of Object.entries(FILES)) writeFileSync(join(dir, `${name}.bin`), data);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Every behaviour twice: transfers of files held in memory on the data-plane thread (pump.ts), and
// every transfer on dgram sockets of the main thread (what big files, IPv6 and a failed thread use).
describe.each([
  ['data-plane thread', true],
  ['main-thread sockets', false],
] as const)('%s', (_plane, pump) => {
  const start = (opts: Parameters<typeof startTftp>[1] = {}) => startTftp(dir, { pump, ...opts });

  async function withServer(opts: Parameters<typeof startTftp>[1], fn: (t: TestTftp) => Promise<void>) {
    const t = await start(opts);
    try {
      await fn(t);
    } finally {
      await t.stop();
    }
  }

  it('runs in-memory transfers where it was asked to', async () => {
    await withServer({}, async (t) => {
      expect(t.server.dataPlane).toBe(pump ? 'thread' : 'sockets');
      expect((await rawGet({ port: t.port, file: 'tiny.bin' })).data.toString()).toBe('one short block');
    });
  });

  describe('options and windows', () => {
    let t: TestTftp;
    beforeAll(async () => {
      t = await start({ maxWindowsize: 64 });
    });
    afterAll(() => t.stop());

    it.each([
      [512, 1],
      [512, 4],
      [512, 16],
      [1468, 1],
      [1468, 4],
      [1468, 16],
      [8192, 1],
      [8192, 4],
      [8192, 16],
    ])('blksize %i, windowsize %i: the OACK grants both with the real tsize, and the file arrives intact', async (blksize, windowsize) => {
      const before = t.events.length;
      const r = await rawGet({ port: t.port, file: 'small.bin', options: [['blksize', blksize], ['tsize', 0], ['windowsize', windowsize]] });
      expect(r.error).toBeNull();
      expect(r.sha256).toBe(sha256(FILES.small));
      expect(r.oack).toEqual(
        new Map([
          ['blksize', String(blksize)],
          ['tsize', '200001'],
          ['windowsize', String(windowsize)],
        ]),
      );
      const e = await t.nextEvent(before);
      expect(e).toMatchObject({ file: 'small.bin', outcome: 'complete', bytes: 200_001, size: 200_001, blksize, windowsize, reason: null });
      expect(e.ip).toBe('127.0.0.1');
    });

    it('ends a file that is an exact multiple of blksize with an empty block', async () => {
      const r = await rawGet({ port: t.port, file: 'exact.bin', options: [['blksize', 8192]] });
      expect(r.sha256).toBe(sha256(FILES.exact));
      expect(r.dataPackets).toBe(41);
    });

    it('sends an empty file as one empty block', async () => {
      const r = await rawGet({ port: t.port, file: 'empty.bin', options: [['tsize', 0]] });
      expect(r.oack?.get('tsize')).toBe('0');
      expect(r.data.length).toBe(0);
      expect(r.dataPackets).toBe(1);
    });

    it('answers a request without options with DATA 1 (no OACK), in 512-byte blocks', async () => {
      const r = await rawGet({ port: t.port, file: 'small.bin' });
      expect(r.first).toBe('data');
      expect(r.oack).toBeNull();
      expect(r.sha256).toBe(sha256(FILES.small));
      expect(r.dataPackets).toBe(Math.ceil(200_001 / 512));
    });

    it('sends no OACK when every option is unknown or unusable', async () => {
      const r = await rawGet({ port: t.port, file: 'tiny.bin', options: [['multicast', ''], ['blksize', '4'], ['windowsize', '0']] });
      expect(r.first).toBe('data');
      expect(r.data.toString()).toBe('one short block');
    });

    it('echoes the timeout option and grants no more than maxBlksize', async () => {
      await withServer({ maxBlksize: 1024 }, async (s) => {
        const r = await rawGet({ port: s.port, file: 'small.bin', options: [['timeout', 2], ['blksize', 65464]] });
        expect([...(r.oack ?? [])]).toEqual([
          ['timeout', '2'],
          ['blksize', '1024'],
        ]);
        expect(r.sha256).toBe(sha256(FILES.small));
      });
    });

    it('sends a file over 32 MiB at blksize 512: block numbers wrap past 65535 and the content is intact', async () => {
      const before = t.events.length;
      const r = await rawGet({ port: t.port, file: 'rollover.bin', options: [['tsize', 0], ['windowsize', 64]] });
      expect(r.oack?.get('tsize')).toBe(String(FILES.rollover.length));
      expect(r.wrapped).toBe(true);
      expect(r.data.length).toBe(FILES.rollover.length);
      expect(r.sha256).toBe(sha256(FILES.rollover));
      expect(await t.nextEvent(before)).toMatchObject({ outcome: 'complete', bytes: FILES.rollover.length, blksize: 512 });
    });
  });

  describe('loss, duplicates, silence and strangers', () => {
    it.each([1, 8])('windowsize %i: completes intact in bounded time with a tenth of DATA lost and every ACK doubled', async (windowsize) => {
      await withServer({ timeoutMs: 30 }, async (t) => {
        const r0 = prng(0x1055 + windowsize);
        let lost = 0;
        const started = Date.now();
        const r = await rawGet({
          port: t.port,
          file: 'lossy.bin',
          options: [['windowsize', windowsize]],
          ackCopies: 2,
          retryMs: 50,
          drop: () => r0() < 0.1 && ++lost > 0,
          deadlineMs: 10_000,
        });
        expect(r.sha256).toBe(sha256(FILES.lossy));
        expect(lost).toBeGreaterThan(10);
        expect(Date.now() - started).toBeLessThan(8000);
        expect(await t.nextEvent(0)).toMatchObject({ outcome: 'complete', bytes: FILES.lossy.length, windowsize });
        // The loss was real and was repaired by retransmission.
        expect(t.server.counters.retransmits).toBeGreaterThan(0);
      });
    });

    it('windowsize 8: an ACK inside the window makes the server resend from the next block at once', async () => {
      // The timer is far away, so only go-back-N can repair the gap quickly.
      await withServer({ timeoutMs: 3000 }, async (t) => {
        const started = Date.now();
        const r = await rawGet({
          port: t.port,
          file: 'lossy.bin',
          options: [['windowsize', 8]],
          retryMs: 5000,
          drop: (block, seen) => block % 50 === 3 && seen === 1,
        });
        expect(r.sha256).toBe(sha256(FILES.lossy));
        expect(Date.now() - started).toBeLessThan(1500);
        expect(t.server.counters.retransmits).toBeGreaterThan(0);
      });
    });

    it.each([1, 4])('windowsize %i: duplicate ACKs alone never cause a retransmission (no Sorcerer\'s Apprentice)', async (windowsize) => {
      await withServer({ timeoutMs: 2000 }, async (t) => {
        const r = await rawGet({ port: t.port, file: 'small.bin', options: [['windowsize', windowsize]], ackCopies: 3 });
        expect(r.sha256).toBe(sha256(FILES.small));
        const blocks = Math.ceil(200_001 / 512);
        expect(r.dataPackets).toBe(blocks);
        expect(t.server.counters.retransmits).toBe(0);
        expect(t.server.counters.bytesSent).toBe(200_001);
      });
    });

    it('gives a client that stops acknowledging a timeout: retransmits with backoff, then an ERROR', async () => {
      await withServer({ timeoutMs: 40, retries: 2 }, async (t) => {
        const r = await rawGet({ port: t.port, file: 'small.bin', silentAfter: 1 });
        // DATA 1, then two retransmissions, then the ERROR.
        expect(r.dataPackets).toBe(3);
        expect(r.error).toEqual({ code: ERROR_CODE.notDefined, message: 'timed out waiting for an acknowledgement' });
        const e = await t.nextEvent(0);
        expect(e).toMatchObject({ outcome: 'timeout', file: 'small.bin', bytes: 0 });
        expect(e.reason).toContain('no acknowledgement of block 1 after 2 retransmissions');
        // 40 + 80 + 160 ms with backoff; a fixed timer would be done in 120.
        expect(e.durationMs).toBeGreaterThanOrEqual(270);
        expect(t.server.counters).toMatchObject({ transfers: { complete: 0, error: 0, timeout: 1 }, active: 0 });
      });
    });

    it('retransmits an OACK nobody acknowledges, then gives up with a timeout', async () => {
      await withServer({ timeoutMs: 30, retries: 2 }, async (t) => {
        const r = await rawGet({ port: t.port, file: 'small.bin', options: [['tsize', 0]], silentAfter: 0 });
        expect(r.oackPackets).toBe(3);
        expect(r.dataPackets).toBe(0);
        expect(r.error?.message).toBe('timed out waiting for an acknowledgement');
        expect((await t.nextEvent(0)).reason).toBe('no acknowledgement of the OACK after 2 retransmissions');
      });
    });

    it('answers packets from a wrong TID with ERROR 5 and finishes the real transfer untouched', async () => {
      await withServer({}, async (t) => {
        let stranger: Promise<Awaited<ReturnType<typeof sendAndListen>>> | undefined;
        const r = await rawGet({
          port: t.port,
          file: 'small.bin',
          onServerTid: (tid) => {
            stranger = sendAndListen(tid.port, encode({ type: 'ack', block: 1 }));
          },
        });
        const answer = await stranger;
        expect(answer?.packet).toEqual({ type: 'error', code: ERROR_CODE.unknownTransferId, message: 'unknown transfer ID' });
        expect(r.sha256).toBe(sha256(FILES.small));
        expect(r.error).toBeNull();
        expect(t.server.counters.wrongTid).toBe(1);
        expect(t.server.counters.retransmits).toBe(0);
      });
    });

    it('records a client that aborts with an ERROR', async () => {
      await withServer({}, async (t) => {
        const s = createSocket('udp4');
        await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
        s.on('message', (msg, from) => {
          if (decode(msg).type === 'data') s.send(encode({ type: 'error', code: 0, message: 'user pressed ctrl-c' }), from.port, from.address);
        });
        s.send(encode({ type: 'rrq', filename: 'small.bin', mode: 'octet', options: new Map() }), t.port, '127.0.0.1');
        const e = await t.nextEvent(0);
        s.close();
        expect(e.outcome).toBe('error');
        expect(e.reason).toBe('client ended the transfer: error 0 "user pressed ctrl-c"');
      });
    });

    it('starts one transfer for a request the client repeated before the answer came', async () => {
      await withServer({}, async (t) => {
        const s = createSocket('udp4');
        await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
        const tids = new Set<number>();
        s.on('message', (msg, from) => {
          tids.add(from.port);
          const p = decode(msg);
          if (p.type === 'data') s.send(encode({ type: 'ack', block: p.block }), from.port, from.address);
        });
        const rrq = encode({ type: 'rrq', filename: 'tiny.bin', mode: 'octet', options: new Map() });
        s.send(rrq, t.port, '127.0.0.1');
        s.send(rrq, t.port, '127.0.0.1');
        expect((await t.nextEvent(0)).outcome).toBe('complete');
        await new Promise((r) => setTimeout(r, 150));
        s.close();
        expect(tids.size).toBe(1);
        expect(t.events).toHaveLength(1);
      });
    });

    it('refuses requests past maxTransfers with "server busy", and serves again once a slot frees', async () => {
      await withServer({ maxTransfers: 1, timeoutMs: 30, retries: 1 }, async (t) => {
        const hog = rawGet({ port: t.port, file: 'small.bin', silentAfter: 1 });
        await new Promise((r) => setTimeout(r, 20));
        const refused = await rawGet({ port: t.port, file: 'tiny.bin' });
        expect(refused.error?.code).toBe(ERROR_CODE.notDefined);
        expect(refused.error?.message).toContain('server busy');
        expect((await hog).error?.message).toContain('timed out');
        const later = await rawGet({ port: t.port, file: 'tiny.bin' });
        expect(later.data.toString()).toBe('one short block');
        await t.nextEvent(2);
        expect(t.events.map((e) => e.outcome)).toEqual(['error', 'timeout', 'complete']);
      });
    });
  });

  describe('requests refused at the door', () => {
    let t: TestTftp;
    beforeAll(async () => {
      t = await start();
    });
    afterAll(() => t.stop());

    it('ERROR 2 for a write request: the server is read-only', async () => {
      const a = await sendAndListen(t.port, encode({ type: 'wrq', filename: 'new.bin', mode: 'octet', options: new Map() }));
      expect(a?.packet).toEqual({ type: 'error', code: ERROR_CODE.accessViolation, message: 'this TFTP server is read-only: writes are refused' });
    });

    it('ERROR 4 for netascii: only octet is served', async () => {
      const a = await sendAndListen(t.port, encode({ type: 'rrq', filename: 'tiny.bin', mode: 'netascii', options: new Map() }));
      expect(a?.packet).toMatchObject({ type: 'error', code: ERROR_CODE.illegalOperation, message: 'only octet (binary) mode is served, not netascii' });
    });

    it('ERROR 1 for a missing file, ERROR 2 for ".."', async () => {
      const missing = await sendAndListen(t.port, encode({ type: 'rrq', filename: 'nope.efi', mode: 'octet', options: new Map() }));
      expect(missing?.packet).toMatchObject({ type: 'error', code: ERROR_CODE.fileNotFound });
      const up = await sendAndListen(t.port, encode({ type: 'rrq', filename: '../etc/passwd', mode: 'octet', options: new Map() }));
      expect(up?.packet).toMatchObject({ type: 'error', code: ERROR_CODE.accessViolation });
    });

    it('says nothing to a malformed packet, counts it, and keeps serving', async () => {
      const before = t.server.counters.malformed;
      expect(await sendAndListen(t.port, Buffer.from([0, 1, 0x66, 0x6f, 0x6f]), 200)).toBeNull();
      expect(await sendAndListen(t.port, Buffer.from([0, 9]), 200)).toBeNull();
      expect(t.server.counters.malformed).toBe(before + 2);
      expect((await rawGet({ port: t.port, file: 'tiny.bin' })).data.toString()).toBe('one short block');
    });
  });

  describe('lifecycle', () => {
    it('stop() ends running transfers, telling the client, and frees the port', async () => {
      const t = await start({ timeoutMs: 5000 });
      const port = t.port;
      const silent = rawGet({ port, file: 'small.bin', silentAfter: 1 });
      await new Promise((r) => setTimeout(r, 50));
      await t.stop();
      expect((await silent).error).toEqual({ code: 0, message: 'server shutting down' });
      expect(t.events).toMatchObject([{ outcome: 'error', reason: 'server shutting down' }]);
      // The port is free again: another server can take it.
      const again = await start({ port });
      expect(again.port).toBe(port);
      await again.stop();
    });

    it('refuses nonsensical limits at construction', () => {
      const logger = { child: () => logger } as never;
      expect(() => new TftpServer({ address: '127.0.0.1', port: 0, root: dir, logger, maxBlksize: 70000 })).toThrow(/maxBlksize/);
      expect(() => new TftpServer({ address: '127.0.0.1', port: 0, root: dir, logger, maxTransfers: 0 })).toThrow(/maxTransfers/);
    });
  });
});

describe('data-plane thread failure', () => {
  it('ends the transfers it carried with an error, and serves the next ones from sockets of the main thread', async () => {
    const t = await startTftp(dir, { timeoutMs: 5000 });
    try {
      expect(t.server.dataPlane).toBe('thread');
      const stuck = rawGet({ port: t.port, file: 'small.bin', silentAfter: 1, deadlineMs: 1500 }).catch((err: Error) => err);
      await new Promise((r) => setTimeout(r, 100));
      const worker = (t.server as unknown as { pump: { worker: { terminate(): Promise<number> } } }).pump.worker;
      await worker.terminate();
      const e = await t.nextEvent(0);
      expect(e).toMatchObject({ outcome: 'error', file: 'small.bin' });
      expect(e.reason).toMatch(/data plane exited/);
      expect(t.server.counters.active).toBe(0);
      await stuck;
      expect(t.server.dataPlane).toBe('sockets');
      const r = await rawGet({ port: t.port, file: 'small.bin' });
      expect(r.sha256).toBe(sha256(FILES.small));
    } finally {
      await t.stop();
    }
  });
});
