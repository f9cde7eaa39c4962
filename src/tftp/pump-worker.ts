import { isMainThread, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { DeadlineQueue } from './deadlines.js';
import { memoryFile } from './files.js';
import { OPCODE } from './packet.js';
import { COUNTER, PUMP_KIND, type PumpCommand, type PumpEvent, type PumpInit } from './pump.js';
import { TransferCore, type Endpoint, type Stranger, type TransferLink } from './transfer.js';
import {
  EAGAIN,
  EINTR,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLL_DATA_OFFSET,
  EPOLL_EVENT_SIZE,
  EPOLLERR,
  EPOLLIN,
  EPOLLOUT,
  epollEvent,
  errno,
  errorText,
  loadLibc,
  MSG_DONTWAIT,
  SOCKADDR_IN_SIZE,
  sockaddrAddress,
  sockaddrIn,
  sockaddrPort,
  type Libc,
} from '../net/libc.js';

/**
 * The TFTP data plane thread (see pump.ts): one loop that waits in epoll_wait for the transfers'
 * sockets, the eventfd that says a command is waiting, or the next retransmission deadline; reads
 * every datagram with recvfrom into one buffer, hands it to the transfer's TransferCore, and sends
 * with sendto. The protocol is the same TransferCore the main thread runs on dgram sockets.
 */

const MAX_EVENTS = 256;
/**
 * The longest wait in epoll_wait, even with nothing due: Worker.terminate() cannot interrupt a
 * native call, so it takes effect at the next return to JavaScript.
 */
const MAX_WAIT_MS = 500;
/**
 * Datagrams read from one socket per wakeup. One: an ACK at a time is the common case, and a read
 * that finds nothing costs as much as one that finds something; if more are waiting, epoll reports
 * the socket again at once (level-triggered), after the other ready sockets had their turn.
 */
const READS_PER_WAKEUP = 1;
/** Larger than any TFTP packet (4 + 65464) and any UDP payload. */
const RECEIVE_BYTES = 65536;

class Loop {
  private readonly ep: number;
  private readonly byFd = new Map<number, PumpedTransfer>();
  private readonly byId = new Map<number, PumpedTransfer>();
  readonly deadlines = new DeadlineQueue<PumpedTransfer>();
  readonly counters: Float64Array;
  readonly ended: Int32Array;
  private stopping: string | undefined;
  private readonly events = Buffer.alloc(EPOLL_EVENT_SIZE * MAX_EVENTS);
  private readonly ctl = Buffer.alloc(EPOLL_EVENT_SIZE);
  private readonly wakeBuf = Buffer.alloc(8);
  /** Shared by every transfer: each datagram is handled before the next is read or sent. */
  readonly receive = Buffer.allocUnsafe(RECEIVE_BYTES);
  readonly from = Buffer.alloc(SOCKADDR_IN_SIZE);
  readonly fromLength = Buffer.alloc(4);
  readonly outgoing = Buffer.allocUnsafe(RECEIVE_BYTES);

  constructor(
    readonly c: Libc,
    private readonly init: PumpInit,
  ) {
    this.counters = new Float64Array(init.counters);
    this.ended = new Int32Array(init.ended);
    this.ep = c.epoll_create1(0o2000000);
    if (this.ep < 0) throw new Error(errorText(c, 'epoll_create1()'));
    this.watch(init.wakeFd, EPOLLIN, EPOLL_CTL_ADD);
  }

  post(e: PumpEvent): void {
    parentPort!.postMessage(e);
  }

  get reportStrays(): boolean {
    return this.init.strays;
  }

  /** epoll_ctl for one descriptor; false (errno set) when it failed. */
  watch(fd: number, events: number, op: number): boolean {
    return this.c.epoll_ctl(this.ep, op, fd, op === EPOLL_CTL_DEL ? null : epollEvent(this.ctl, events, fd)) === 0;
  }

  forget(t: PumpedTransfer): void {
    this.watch(t.fd, 0, EPOLL_CTL_DEL);
    this.byFd.delete(t.fd);
    this.byId.delete(t.id);
    this.deadlines.delete(t);
  }

  run(): void {
    this.post({ type: 'ready' });
    for (;;) {
      const next = this.deadlines.next();
      const timeout = Math.min(MAX_WAIT_MS, Math.max(0, Math.ceil(next - performance.now())));
      const n = this.c.epoll_wait(this.ep, this.events, MAX_EVENTS, timeout);
      if (n < 0 && errno() !== EINTR) throw new Error(errorText(this.c, 'epoll_wait()'));
      for (let i = 0; i < n; i++) {
        const at = i * EPOLL_EVENT_SIZE;
        const events = this.events.readUInt32LE(at);
        const fd = this.events.readInt32LE(at + EPOLL_DATA_OFFSET);
        if (fd === this.init.wakeFd) {
          this.c.read(fd, this.wakeBuf, 8);
          this.commands();
          continue;
        }
        const t = this.byFd.get(fd);
        if (!t) continue;
        if (events & EPOLLOUT) t.onWritable();
        if (events & (EPOLLIN | EPOLLERR)) t.onReadable();
      }
      this.deadlines.expire(performance.now(), (t) => t.core.onDeadline());
      if (this.stopping !== undefined && this.byId.size === 0) break;
    }
    this.c.close(this.ep);
    this.post({ type: 'stopped' });
  }

  private commands(): void {
    for (let m = receiveMessageOnPort(this.init.port); m; m = receiveMessageOnPort(this.init.port)) {
      const cmd = m.message as PumpCommand;
      switch (cmd.type) {
        case 'start':
          this.start(cmd);
          break;
        case 'abort':
          this.byId.get(cmd.id)?.core.abort(cmd.reason);
          break;
        case 'stop':
          this.stopping = cmd.reason;
          for (const t of [...this.byId.values()]) t.core.abort(cmd.reason);
          break;
      }
    }
  }

  private start(cmd: Extract<PumpCommand, { type: 'start' }>): void {
    if (this.stopping !== undefined) {
      this.c.close(cmd.fd);
      this.post({ type: 'done', id: cmd.id, outcome: 'error', reason: this.stopping, bytes: 0 });
      return;
    }
    const t = new PumpedTransfer(this, cmd);
    if (!this.watch(cmd.fd, EPOLLIN, EPOLL_CTL_ADD)) {
      const reason = errorText(this.c, 'epoll_ctl()');
      this.c.close(cmd.fd);
      this.post({ type: 'done', id: cmd.id, outcome: 'error', reason, bytes: 0 });
      return;
    }
    this.byFd.set(cmd.fd, t);
    this.byId.set(cmd.id, t);
    t.core.start();
  }
}

/** One transfer: its socket as the core's TransferLink. */
class PumpedTransfer implements TransferLink {
  readonly id: number;
  readonly fd: number;
  readonly core: TransferCore;
  private readonly peer: Buffer;
  private readonly peerAddr: number;
  private readonly peerPort: number;
  private waitingWritable = false;
  private closing = false;
  private last: Buffer | undefined;

  constructor(
    private readonly loop: Loop,
    cmd: Extract<PumpCommand, { type: 'start' }>,
  ) {
    this.id = cmd.id;
    this.fd = cmd.fd;
    this.peer = sockaddrIn(cmd.peer.address, cmd.peer.port);
    this.peerAddr = this.peer.readUInt32BE(4);
    this.peerPort = cmd.peer.port;
    const data = Buffer.from(cmd.data.buffer, cmd.data.byteOffset, cmd.data.byteLength);
    const counters = loop.counters;
    this.core = new TransferCore(
      {
        peer: cmd.peer,
        file: memoryFile(cmd.name, data),
        blksize: cmd.blksize,
        windowsize: cmd.windowsize,
        oack: cmd.oack ? new Map(cmd.oack) : null,
        timeoutMs: cmd.timeoutMs,
        retries: cmd.retries,
        hooks: {
          dataSent: (bytes, retransmit) => {
            counters[COUNTER.bytesSent] = counters[COUNTER.bytesSent]! + bytes;
            if (retransmit) counters[COUNTER.retransmits] = counters[COUNTER.retransmits]! + 1;
          },
          dataRefused: (bytes, retransmit) => {
            counters[COUNTER.bytesSent] = counters[COUNTER.bytesSent]! - bytes;
            if (retransmit) counters[COUNTER.retransmits] = counters[COUNTER.retransmits]! - 1;
          },
          stray: (from, kind, detail) => {
            const slot = kind === 'malformed' ? COUNTER.malformed : COUNTER.wrongTid;
            counters[slot] = counters[slot]! + 1;
            if (loop.reportStrays) loop.post({ type: 'stray', id: this.id, from: { address: from.address, port: from.port }, kind, detail });
          },
          heard: () => loop.post({ type: 'heard', id: this.id }),
          done: (result) => {
            // Counted and reported before the client can learn of the end (the last packet below).
            Atomics.add(loop.ended, 0, 1);
            loop.post({ type: 'done', id: this.id, ...result });
            this.release();
          },
        },
      },
      this,
    );
  }

  get deadline(): number {
    return this.core.deadline;
  }

  onReadable(): void {
    const { c, receive, from, fromLength } = this.loop;
    for (let i = 0; i < READS_PER_WAKEUP && !this.core.isEnded; i++) {
      fromLength.writeUInt32LE(SOCKADDR_IN_SIZE, 0);
      const n = c.recvfrom(this.fd, receive, receive.length, MSG_DONTWAIT, from, fromLength);
      if (n < 0) {
        const e = errno();
        if (e !== EAGAIN && e !== EINTR) this.core.fail(`socket error: ${c.strerror(e)}`);
        return;
      }
      const fromPeer = from.readUInt32BE(4) === this.peerAddr && from.readUInt16BE(2) === this.peerPort;
      // An ACK from the peer, as nearly every datagram is: no view of the buffer needed.
      if (fromPeer && n === 4 && receive[0] === 0 && receive[1] === OPCODE.ack) this.core.peerAck(receive.readUInt16BE(2));
      else this.core.onPacket(receive.subarray(0, n), fromPeer ? undefined : this.stranger(Buffer.from(from)));
    }
  }

  onWritable(): void {
    this.waitingWritable = false;
    this.loop.watch(this.fd, EPOLLIN, EPOLL_CTL_MOD);
    this.core.writable();
  }

  send(packet: Buffer): void {
    this.loop.c.sendto(this.fd, packet, packet.length, 0, this.peer, SOCKADDR_IN_SIZE);
  }

  sendData(block: number, data: Buffer): boolean {
    // One datagram from one buffer: a copy of at most a block is cheaper than an iovec through FFI.
    const out = this.loop.outgoing;
    out[0] = 0;
    out[1] = OPCODE.data;
    out[2] = block >> 8;
    out[3] = block & 0xff;
    data.copy(out, 4);
    if (this.loop.c.sendto(this.fd, out, 4 + data.length, 0, this.peer, SOCKADDR_IN_SIZE) >= 0) return true;
    if (errno() !== EAGAIN) return true; // lost like any datagram: the timer sends it again
    if (!this.waitingWritable) {
      this.waitingWritable = true;
      this.loop.watch(this.fd, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
    }
    return false;
  }

  schedule(): void {
    this.loop.deadlines.update(this);
  }

  /** The core ends: close() comes first, then done; the socket goes once the end is counted. */
  close(last: Buffer | undefined): Promise<void> {
    this.last = last;
    this.closing = true;
    return Promise.resolve();
  }

  private release(): void {
    if (!this.closing) return;
    if (this.last) this.send(this.last);
    this.loop.forget(this);
    this.loop.c.close(this.fd);
  }

  private stranger(sa: Buffer): Stranger & Endpoint {
    return {
      address: sockaddrAddress(sa),
      port: sockaddrPort(sa),
      answer: (packet) => {
        this.loop.c.sendto(this.fd, packet, packet.length, 0, sa, SOCKADDR_IN_SIZE);
      },
    };
  }
}

const init = workerData as PumpInit | undefined;
if (!isMainThread && init?.kind === PUMP_KIND) new Loop(loadLibc(), init).run();
