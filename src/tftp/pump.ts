import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Endpoint, TransferResult } from './transfer.js';
import { loadLibc, openEventFd, openUdp4, type Libc } from '../net/libc.js';

/**
 * The TFTP data plane, seen from the server: a worker thread (pump-worker.ts) that carries the DATA
 * and ACK traffic of transfers whose file is in memory, with its own sockets, epoll and deadline
 * queue, and no Node machinery per datagram. The server still admits every request, opens the file,
 * negotiates and makes the transfer's socket; it then hands the socket and the file (shared memory,
 * not a copy) over, and hears back how the transfer ended.
 *
 * Commands go through a MessagePort the worker reads without an event loop; a write to an eventfd
 * in its epoll set wakes it. Counters live in shared memory, written by the worker before each
 * packet leaves, so they are never behind what a client has seen.
 */

/** Marks the worker's data, so that pump-worker.ts only runs when started as the pump. */
export const PUMP_KIND = 'hiveboot-tftp-pump';

/** Float64 slots of the shared counters (written by the worker only). */
export const COUNTER = { bytesSent: 0, retransmits: 1, malformed: 2, wrongTid: 3 } as const;
const COUNTER_SLOTS = 4;

export interface PumpInit {
  kind: typeof PUMP_KIND;
  port: MessagePort;
  wakeFd: number;
  counters: SharedArrayBuffer;
  /**
   * One Int32: transfers the worker has ended, counted (atomically) before their last packet leaves.
   * The server admits against it, so a client that has seen its transfer end finds the slot free even
   * before the 'done' message has crossed over.
   */
  ended: SharedArrayBuffer;
  /** Report stray packets (for debug logs); otherwise they are only counted. */
  strays: boolean;
}

export interface PumpTransferSpec {
  fd: number;
  peer: Endpoint;
  name: string;
  /** The whole file; shared memory when the cache made it so, else it is copied across. */
  data: Uint8Array;
  blksize: number;
  windowsize: number;
  oack: [string, string][] | null;
  timeoutMs: number;
  retries: number;
}

export type PumpCommand = ({ type: 'start'; id: number } & PumpTransferSpec) | { type: 'abort'; id: number; reason: string } | { type: 'stop'; reason: string };

export type PumpEvent =
  | { type: 'ready' }
  | { type: 'heard'; id: number }
  | { type: 'stray'; id: number; from: Endpoint; kind: 'malformed' | 'wrong-tid'; detail: string }
  | ({ type: 'done'; id: number } & TransferResult)
  | { type: 'stopped' };

export interface PumpHandlers {
  stray(from: Endpoint, kind: 'malformed' | 'wrong-tid', detail: string): void;
  done(result: TransferResult): void;
}

/** A transfer running on the pump, as the server holds it. */
export interface PumpTransfer {
  readonly heardFromPeer: boolean;
  abort(reason: string): void;
  closed(): Promise<void>;
}

interface Running {
  fd: number;
  heard: boolean;
  handlers: PumpHandlers;
  ended: Promise<void>;
  end: () => void;
}

const ONE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

export class Pump {
  private readonly running = new Map<number, Running>();
  private nextId = 1;
  private dead: string | undefined;
  private readonly stopped: Promise<void>;
  private onStopped: () => void = () => undefined;
  private readonly exited: Promise<void>;
  /** 'done' messages handled: ended - reported are transfers over in the worker, not yet here. */
  private reported = 0;

  private constructor(
    private readonly c: Libc,
    private readonly worker: Worker,
    private readonly port: MessagePort,
    private readonly wakeFd: number,
    private readonly counterValues: Float64Array,
    private readonly ended: Int32Array,
  ) {
    this.stopped = new Promise((resolve) => (this.onStopped = resolve));
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (e: PumpEvent) => this.onEvent(e));
    worker.on('error', (err) => this.fail(`the TFTP data plane failed: ${err.message}`));
    worker.on('exit', (code) => this.fail(`the TFTP data plane exited (code ${code})`));
  }

  /** Starts the worker; rejects if it cannot run here (no koffi, not Linux, a loader problem). */
  static async start(opts: { strays: boolean }): Promise<Pump> {
    const c = loadLibc();
    const wakeFd = openEventFd(c);
    const counters = new SharedArrayBuffer(COUNTER_SLOTS * 8);
    const ended = new SharedArrayBuffer(4);
    const { port1, port2 } = new MessageChannel();
    const init: PumpInit = { kind: PUMP_KIND, port: port2, wakeFd, counters, ended, strays: opts.strays };
    let worker: Worker;
    try {
      worker = spawn(init, [port2]);
    } catch (err) {
      c.close(wakeFd);
      throw err;
    }
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the TFTP data plane did not start')), START_TIMEOUT_MS);
        const done = (err?: Error) => {
          clearTimeout(timer);
          worker.off('message', onMessage).off('error', done).off('exit', onExit);
          if (err) reject(err);
          else resolve();
        };
        const onMessage = (e: PumpEvent) => e.type === 'ready' && done();
        const onExit = (code: number) => done(new Error(`the TFTP data plane exited at start (code ${code})`));
        worker.on('message', onMessage).on('error', done).on('exit', onExit);
      });
    } catch (err) {
      await worker.terminate();
      c.close(wakeFd);
      throw err;
    }
    return new Pump(c, worker, port1, wakeFd, new Float64Array(counters), new Int32Array(ended));
  }

  /** False once the worker has failed: new transfers go to sockets of the main thread. */
  get available(): boolean {
    return this.dead === undefined;
  }

  get counters(): { bytesSent: number; retransmits: number; malformed: number; wrongTid: number } {
    const v = this.counterValues;
    return { bytesSent: v[COUNTER.bytesSent]!, retransmits: v[COUNTER.retransmits]!, malformed: v[COUNTER.malformed]!, wrongTid: v[COUNTER.wrongTid]! };
  }

  /** Transfers the worker has ended whose end has not been handled here yet. */
  get endedUnreported(): number {
    return this.dead === undefined ? Math.max(0, Atomics.load(this.ended, 0) - this.reported) : 0;
  }

  /** A transfer socket (IPv4) bound to `address` and a free port; throws with the reason. */
  open(address: string): number {
    return openUdp4(this.c, address, 0).fd;
  }

  /** Hands a transfer over; the pump owns `spec.fd` from now on. */
  run(spec: PumpTransferSpec, handlers: PumpHandlers): PumpTransfer {
    const id = this.nextId++;
    let end = () => undefined as void;
    const ended = new Promise<void>((resolve) => (end = resolve));
    const r: Running = { fd: spec.fd, heard: false, handlers, ended, end };
    this.running.set(id, r);
    this.send({ type: 'start', id, ...spec });
    return {
      get heardFromPeer() {
        return r.heard;
      },
      abort: (reason) => this.send({ type: 'abort', id, reason }),
      closed: () => ended,
    };
  }

  /** Ends every transfer (their clients are told why) and the worker. */
  async stop(reason: string): Promise<void> {
    if (this.dead === undefined) {
      this.send({ type: 'stop', reason });
      // A thread that does not answer is ended the hard way: a shutdown must not hang on it.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), STOP_TIMEOUT_MS)));
      const answer = await Promise.race([this.stopped, late]);
      clearTimeout(timer);
      if (answer === 'late') await this.worker.terminate();
    }
    await this.exited;
  }

  private send(cmd: PumpCommand): void {
    if (this.dead !== undefined) {
      // Never taken over: its socket is closed here, and it ends as soon as the caller has it.
      if (cmd.type === 'start') {
        this.c.close(cmd.fd);
        const reason = this.dead;
        queueMicrotask(() => this.finish(cmd.id, { outcome: 'error', reason, bytes: 0 }));
      }
      return;
    }
    this.port.postMessage(cmd);
    this.c.write(this.wakeFd, ONE, 8);
  }

  private onEvent(e: PumpEvent): void {
    switch (e.type) {
      case 'heard': {
        const r = this.running.get(e.id);
        if (r) r.heard = true;
        break;
      }
      case 'stray':
        this.running.get(e.id)?.handlers.stray(e.from, e.kind, e.detail);
        break;
      case 'done':
        this.reported++;
        this.finish(e.id, { outcome: e.outcome, reason: e.reason, bytes: e.bytes });
        break;
      case 'stopped':
        this.dead = 'the TFTP server is stopping';
        this.close();
        break;
    }
  }

  private finish(id: number, result: TransferResult): void {
    const r = this.running.get(id);
    if (!r) return;
    this.running.delete(id);
    r.end();
    r.handlers.done(result);
  }

  /** The worker is gone: whatever it was running ends here, and its sockets are closed here. */
  private fail(reason: string): void {
    if (this.dead !== undefined) return;
    this.dead = reason;
    for (const [id, r] of [...this.running]) {
      this.c.close(r.fd);
      this.finish(id, { outcome: 'error', reason, bytes: 0 });
    }
    this.close();
  }

  private close(): void {
    this.port.close();
    this.c.close(this.wakeFd);
    this.onStopped();
  }
}

/**
 * The worker, from dist/ as plain JavaScript; from the sources (tests, tsx) through tsx's loader,
 * which a worker thread does not inherit.
 */
function spawn(init: PumpInit, transferList: MessagePort[]): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const api = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./pump-worker.ts', here).href;
    const code = `import(${JSON.stringify(api)}).then(({ tsImport }) => tsImport(${JSON.stringify(entry)}, ${JSON.stringify(here)}))`;
    return new Worker(code, { eval: true, workerData: init, transferList, name: 'tftp-pump' });
  }
  return new Worker(new URL('./pump-worker.js', here), { workerData: init, transferList, name: 'tftp-pump' });
}
