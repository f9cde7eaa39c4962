import { createHash } from 'node:crypto';
import pino from 'pino';
import { TftpServer, type TftpServerOptions, type TransferEvent } from '../../src/tftp/server.js';
import { prng } from '../support/prng.js';

export interface TestTftp {
  server: TftpServer;
  port: number;
  events: TransferEvent[];
  /** Resolves with the next transfer event (or one already recorded past `after`). */
  nextEvent(after?: number): Promise<TransferEvent>;
  stop(): Promise<void>;
}

/** A server on 127.0.0.1 and an ephemeral port, with short timeouts so loss tests stay quick. */
export async function startTftp(root: string, opts: Partial<TftpServerOptions> = {}): Promise<TestTftp> {
  const events: TransferEvent[] = [];
  const waiters: (() => void)[] = [];
  const server = new TftpServer({
    address: '127.0.0.1',
    port: 0,
    root,
    timeoutMs: 100,
    retries: 4,
    logger: pino({ level: 'silent' }),
    onTransfer: (e) => {
      events.push(e);
      for (const w of waiters.splice(0)) w();
    },
    ...opts,
  });
  await server.start();
  // Transfers run on sockets of the main thread until the data-plane thread is up: wait for it, so
  // that a test knows which one it exercises.
  await server.dataPlaneReady;
  return {
    server,
    port: server.port,
    events,
    async nextEvent(after = events.length) {
      while (events.length <= after) await new Promise<void>((resolve) => waiters.push(resolve));
      return events[after] as TransferEvent;
    },
    stop: () => server.stop(),
  };
}

/** Deterministic bytes that do not compress or repeat, so a misplaced block changes the hash. */
export function pseudoRandomBytes(length: number, seed: number): Buffer {
  const r = prng(seed);
  const buf = Buffer.allocUnsafe(length);
  let i = 0;
  for (; i + 4 <= length; i += 4) buf.writeUInt32LE(Math.floor(r() * 0x1_0000_0000), i);
  for (; i < length; i++) buf[i] = Math.floor(r() * 256);
  return buf;
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
