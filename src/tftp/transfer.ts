import type { Socket } from 'node:dgram';
import type { OpenedFile } from './files.js';
import { decode, encode, ERROR_CODE, OPCODE, TftpParseError, type TftpOptions } from './packet.js';

/**
 * One read transfer on its own socket (its TID, RFC 1350): sends the OACK or the first window, then
 * moves on each ACK. Windows follow RFC 7440 with go-back-N: an ACK for block k inside the window
 * resends from k+1. An ACK that acknowledges nothing new (a duplicate, or one from before the window)
 * is ignored, and only the timer retransmits — answering duplicates would double every packet from
 * then on (the Sorcerer's Apprentice bug). Block numbers wrap after 65535 to 0, as tftp-hpa, curl
 * and atftp expect, so files of any size go through.
 *
 * The protocol lives in TransferCore, which owns no socket and no timer: a TransferLink carries its
 * packets and keeps its deadline. Transfer is the core on a dgram socket with a Node timer; the
 * data plane thread (pump-worker.ts) drives the same core with its own sockets and deadline queue.
 */

export type TransferOutcome = 'complete' | 'error' | 'timeout';

export interface TransferResult {
  outcome: TransferOutcome;
  /** Why it ended, for the host's timeline; null when complete. */
  reason: string | null;
  /** File bytes the client acknowledged. */
  bytes: number;
}

export interface Endpoint {
  address: string;
  port: number;
}

export interface TransferHooks {
  /**
   * A DATA packet is leaving; `retransmit` when that block had been sent before. Called just before
   * the send, so that whoever has seen the packet sees it counted.
   */
  dataSent(bytes: number, retransmit: boolean): void;
  /** ...and the socket refused it after all (its buffer was full): it goes again once writable. */
  dataRefused?(bytes: number, retransmit: boolean): void;
  /** A packet that did not belong: unreadable, or from another TID (which was answered with ERROR 5). */
  stray(from: Endpoint, kind: 'malformed' | 'wrong-tid', detail: string): void;
  /** The first packet from the peer (after which a repeated RRQ from it is a new request). */
  heard?(): void;
  done(result: TransferResult): void;
}

/** How a transfer reaches its peer and keeps its timer. */
export interface TransferLink {
  /** A packet to the peer. Failures are left to the retransmission timer. */
  send(packet: Buffer): void;
  /**
   * DATA `block` (the wire number, 0-65535) with this payload, as one datagram to the peer. False
   * when the socket cannot take it now (its send buffer is full): the core stops there and waits
   * for writable().
   */
  sendData(block: number, data: Buffer): boolean;
  /** The core's deadline changed (performance.now() ms, Infinity for none): onDeadline() is due then. */
  schedule(at: number): void;
  /** The end: sends `last` (an ERROR) if given, then closes; resolves once the socket is closed. */
  close(last: Buffer | undefined): Promise<void>;
}

/** A packet from someone other than the peer, and how to answer them. */
export interface Stranger extends Endpoint {
  answer(packet: Buffer): void;
}

export interface TransferSettings {
  /** The client: its address and port are the transfer's other TID. */
  peer: Endpoint;
  file: OpenedFile;
  blksize: number;
  windowsize: number;
  /** The OACK to send first, or null to start with DATA 1. */
  oack: TftpOptions | null;
  /** The first retransmission timeout; each retry doubles it, up to a cap. */
  timeoutMs: number;
  /** Retransmissions of one window before giving up. */
  retries: number;
  hooks: TransferHooks;
}

/** Backoff stops doubling here (unless the client's own timeout is longer): a waiting ROM gives up too. */
const MAX_BACKOFF_MS = 8000;

export class TransferCore {
  /** When onDeadline() is due (performance.now() ms); Infinity once ended. */
  deadline = Infinity;
  private readonly totalBlocks: number;
  private readonly backoffCapMs: number;
  /** The highest block the client has acknowledged in order (absolute, never wraps). */
  private acked = 0;
  private lastSent = 0;
  private oackPending: boolean;
  private retriesUsed = 0;
  /** Bumped by every new window and by the end: an older sending loop sees it and stops. */
  private round = 0;
  /** The block a full send buffer stopped the window at, to go on from once writable() comes. */
  private blockedAt = 0;
  private ended = false;
  private heard = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly opts: TransferSettings,
    private readonly link: TransferLink,
  ) {
    // The last block is always shorter than blksize, so a multiple of blksize ends with an empty one.
    this.totalBlocks = Math.floor(opts.file.size / opts.blksize) + 1;
    this.oackPending = opts.oack !== null && opts.oack.size > 0;
    this.backoffCapMs = Math.max(opts.timeoutMs, MAX_BACKOFF_MS);
  }

  /** True once the client has sent anything on this TID: a repeated RRQ is then a new request. */
  get heardFromPeer(): boolean {
    return this.heard;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  start(): void {
    this.transmit();
  }

  /** Ends the transfer now, telling the client why. */
  abort(reason: string): void {
    this.end('error', reason, { code: ERROR_CODE.notDefined, message: reason });
  }

  /** Ends the transfer without a word to the client (its socket failed). */
  fail(reason: string): void {
    this.end('error', reason);
  }

  /** Resolves when the socket is closed (after the end). */
  closed(): Promise<void> {
    return this.closing ?? Promise.resolve();
  }

  /** A datagram on the transfer's socket; `stranger` is set when it did not come from the peer. */
  onPacket(msg: Buffer, stranger: Stranger | undefined): void {
    if (this.ended) return;
    // The packet that makes up half the traffic, read in place: decode() would build an object for it.
    if (!stranger && msg.length === 4 && msg[0] === 0 && msg[1] === OPCODE.ack) {
      this.peerAck(msg.readUInt16BE(2));
      return;
    }
    let packet;
    try {
      packet = decode(msg);
    } catch (err) {
      if (!(err instanceof TftpParseError)) throw err;
      // A garbled packet does not end the transfer: the next ACK or the timer carries it on.
      this.opts.hooks.stray(stranger ?? this.opts.peer, 'malformed', err.message);
      return;
    }
    if (stranger) {
      this.opts.hooks.stray(stranger, 'wrong-tid', `${packet.type.toUpperCase()} from another transfer ID`);
      // Never answer an ERROR with an ERROR: two confused peers would bounce them forever.
      if (packet.type !== 'error') stranger.answer(encode({ type: 'error', code: ERROR_CODE.unknownTransferId, message: 'unknown transfer ID' }));
      return;
    }
    this.hear();
    if (packet.type === 'ack') this.onAck(packet.block);
    else if (packet.type === 'error') {
      // PXE ROMs often ask for tsize alone, read the OACK and stop there: the timeline should say so.
      const during = this.oackPending ? ' after the OACK' : '';
      this.end('error', `client ended the transfer${during}: error ${packet.code} ${JSON.stringify(packet.message)}`);
    }
  }

  /** An ACK from the peer, already read (what onPacket does with a 4-byte ACK, without the buffer). */
  peerAck(block: number): void {
    if (this.ended) return;
    this.hear();
    this.onAck(block);
  }

  /** The deadline passed: retransmit with backoff, or give up. */
  onDeadline(): void {
    if (this.ended) return;
    if (this.retriesUsed >= this.opts.retries) {
      const what = this.oackPending ? 'the OACK' : `block ${this.acked + 1}`;
      this.end('timeout', `no acknowledgement of ${what} after ${this.opts.retries} retransmissions`, {
        code: ERROR_CODE.notDefined,
        message: 'timed out waiting for an acknowledgement',
      });
      return;
    }
    this.retriesUsed++;
    this.transmit();
  }

  /** The socket can take packets again after sendData() was refused: go on with the window. */
  writable(): void {
    if (this.ended || this.blockedAt === 0) return;
    const from = this.blockedAt;
    this.blockedAt = 0;
    this.sendWindow(this.round, from);
  }

  private hear(): void {
    if (this.heard) return;
    this.heard = true;
    this.opts.hooks.heard?.();
  }

  private onAck(wire: number): void {
    if (this.oackPending) {
      if (wire !== 0) return;
      this.oackPending = false;
      this.retriesUsed = 0;
      this.transmit();
      return;
    }
    // The wire number is 16 bits; the absolute block is the one at or after `acked` that matches it.
    const k = this.acked + ((wire - (this.acked & 0xffff) + 0x10000) & 0xffff);
    if (k === this.acked || k > this.lastSent) return;
    this.acked = k;
    this.retriesUsed = 0;
    if (k === this.totalBlocks) {
      this.end('complete', null);
      return;
    }
    // Whole window acknowledged: the next one. Part of it: go back and resend from k+1.
    this.transmit();
  }

  private transmit(): void {
    const delay = Math.min(this.opts.timeoutMs * 2 ** this.retriesUsed, this.backoffCapMs);
    this.deadline = performance.now() + delay;
    this.link.schedule(this.deadline);
    if (this.oackPending) {
      this.link.send(encode({ type: 'oack', options: this.opts.oack as TftpOptions }));
    } else {
      this.blockedAt = 0;
      this.sendWindow(++this.round, this.acked + 1);
    }
  }

  /**
   * Sends blocks `from` to the end of the window. Blocks already in memory go out synchronously,
   * each as two buffers — a 4-byte header and a view of the file — so a block costs no promise and
   * no copy; only a block that must come from disk waits for read(), then the rest follows.
   */
  private sendWindow(round: number, from: number): void {
    const { file, blksize } = this.opts;
    const last = Math.min(this.acked + this.opts.windowsize, this.totalBlocks);
    for (let n = from; n <= last; n++) {
      const offset = (n - 1) * blksize;
      const length = Math.min(blksize, file.size - offset);
      const data = file.peek(offset, length);
      if (!data) {
        file.read(offset, length).then(
          (read) => {
            if (round !== this.round) return;
            if (this.sendData(n, read)) this.sendWindow(round, n + 1);
          },
          (err: Error) => {
            if (round === this.round) this.abort(`cannot read ${file.name}: ${err.message}`);
          },
        );
        return;
      }
      if (!this.sendData(n, data)) return;
    }
  }

  private sendData(n: number, data: Buffer): boolean {
    const retransmit = n <= this.lastSent;
    this.opts.hooks.dataSent(data.length, retransmit);
    if (!this.link.sendData(n & 0xffff, data)) {
      this.opts.hooks.dataRefused?.(data.length, retransmit);
      this.blockedAt = n;
      return false;
    }
    if (n > this.lastSent) this.lastSent = n;
    return true;
  }

  private end(outcome: TransferOutcome, reason: string | null, error?: { code: number; message: string }): void {
    if (this.ended) return;
    this.ended = true;
    this.round++;
    this.deadline = Infinity;
    this.link.schedule(Infinity);
    const { file, blksize } = this.opts;
    this.closing = this.link.close(error ? encode({ type: 'error', ...error }) : undefined);
    void file.close().catch(() => undefined);
    const bytes = outcome === 'complete' ? file.size : Math.min(this.acked * blksize, file.size);
    this.opts.hooks.done({ outcome, reason, bytes });
  }
}

export interface TransferOptions extends TransferSettings {
  /** Bound and from now on owned by the transfer, which closes it at the end. */
  socket: Socket;
}

/** The core on a dgram socket, with one Node timer per transfer. */
export class Transfer {
  private readonly core: TransferCore;

  constructor(private readonly opts: TransferOptions) {
    this.core = new TransferCore(opts, new SocketLink(opts.socket, opts.peer, () => this.core.onDeadline()));
  }

  get heardFromPeer(): boolean {
    return this.core.heardFromPeer;
  }

  start(): void {
    const { socket, peer } = this.opts;
    socket.on('message', (msg, from) => {
      const fromPeer = from.port === peer.port && from.address === peer.address;
      this.core.onPacket(msg, fromPeer ? undefined : { address: from.address, port: from.port, answer: (p) => socket.send(p, from.port, from.address) });
    });
    socket.on('error', (err) => this.core.fail(`socket error: ${err.message}`));
    this.core.start();
  }

  abort(reason: string): void {
    this.core.abort(reason);
  }

  closed(): Promise<void> {
    return this.core.closed();
  }
}

/**
 * A dgram socket as a TransferLink. The timer is set lazily: an ACK moves the deadline on without
 * touching it; when it fires early it sleeps again for the rest, and only a deadline that moves
 * earlier re-arms it. One Timeout per transfer, not one per block.
 */
class SocketLink implements TransferLink {
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (Infinity: none armed). */
  private timerAt = Infinity;
  private deadline = Infinity;

  constructor(
    private readonly socket: Socket,
    private readonly peer: Endpoint,
    private readonly onDeadline: () => void,
  ) {}

  send(packet: Buffer): void {
    // No callback: with one, every packet costs an extra trip through the event loop.
    this.socket.send(packet, this.peer.port, this.peer.address);
  }

  sendData(block: number, data: Buffer): boolean {
    // Header and payload as two buffers of one datagram: the payload is a view of the file, not a
    // copy. libuv queues what the socket cannot take yet, so this is never refused.
    this.socket.send([dataHeader(block), data], this.peer.port, this.peer.address);
    return true;
  }

  schedule(at: number): void {
    this.deadline = at;
    if (at === Infinity) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = Infinity;
    } else if (at < this.timerAt) {
      this.arm(at);
    }
  }

  close(last: Buffer | undefined): Promise<void> {
    this.schedule(Infinity);
    return new Promise((resolve) => {
      const close = () => this.socket.close(() => resolve());
      // dgram sends after a lookup tick, so closing at once could drop the ERROR: close once it left.
      if (last) this.socket.send(last, this.peer.port, this.peer.address, close);
      else close();
    });
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.fire(), Math.max(1, Math.ceil(at - performance.now())));
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = performance.now();
    // Node timers run on whole milliseconds of the loop's clock: within one of the deadline is due.
    if (this.deadline - now > 1) this.arm(this.deadline);
    else if (this.deadline !== Infinity) this.onDeadline();
  }
}

/** The 4-byte DATA header; a new one per packet, since a send that must wait keeps its buffers. */
function dataHeader(block: number): Buffer {
  const h = Buffer.allocUnsafe(4);
  h[0] = 0;
  h[1] = OPCODE.data;
  h.writeUInt16BE(block, 2);
  return h;
}
