import type { RemoteInfo, Socket } from 'node:dgram';
import type { OpenedFile } from './files.js';
import { decode, encode, ERROR_CODE, TftpParseError, type TftpOptions } from './packet.js';

/**
 * One read transfer on its own socket (its TID, RFC 1350): sends the OACK or the first window, then
 * moves on each ACK. Windows follow RFC 7440 with go-back-N: an ACK for block k inside the window
 * resends from k+1. An ACK that acknowledges nothing new (a duplicate, or one from before the window)
 * is ignored, and only the timer retransmits — answering duplicates would double every packet from
 * then on (the Sorcerer's Apprentice bug). Block numbers wrap after 65535 to 0, as tftp-hpa, curl
 * and atftp expect, so files of any size go through.
 */

export type TransferOutcome = 'complete' | 'error' | 'timeout';

export interface TransferResult {
  outcome: TransferOutcome;
  /** Why it ended, for the host's timeline; null when complete. */
  reason: string | null;
  /** File bytes the client acknowledged. */
  bytes: number;
}

export interface TransferHooks {
  /** A DATA packet left; `retransmit` when that block had been sent before. */
  dataSent(bytes: number, retransmit: boolean): void;
  /** A packet that did not belong: unreadable, or from another TID (which was answered with ERROR 5). */
  stray(from: RemoteInfo, kind: 'malformed' | 'wrong-tid', detail: string): void;
  done(result: TransferResult): void;
}

export interface TransferOptions {
  /** Bound and from now on owned by the transfer, which closes it at the end. */
  socket: Socket;
  peer: { address: string; port: number };
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

export class Transfer {
  private readonly totalBlocks: number;
  private readonly backoffCapMs: number;
  /** The highest block the client has acknowledged in order (absolute, never wraps). */
  private acked = 0;
  private lastSent = 0;
  private oackPending: boolean;
  private retriesUsed = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Bumped by every new window and by the end: an older sending loop sees it and stops. */
  private round = 0;
  private ended = false;
  private heard = false;
  private closedSocket: Promise<void> | undefined;

  constructor(private readonly opts: TransferOptions) {
    // The last block is always shorter than blksize, so a multiple of blksize ends with an empty one.
    this.totalBlocks = Math.floor(opts.file.size / opts.blksize) + 1;
    this.oackPending = opts.oack !== null && opts.oack.size > 0;
    this.backoffCapMs = Math.max(opts.timeoutMs, MAX_BACKOFF_MS);
  }

  /** True once the client has sent anything on this TID: a repeated RRQ is then a new request. */
  get heardFromPeer(): boolean {
    return this.heard;
  }

  start(): void {
    this.opts.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    this.opts.socket.on('error', (err) => this.end('error', `socket error: ${err.message}`));
    this.transmit();
  }

  /** Ends the transfer now, telling the client why. */
  abort(reason: string): void {
    this.end('error', reason, { code: ERROR_CODE.notDefined, message: reason });
  }

  /** Resolves when the socket is closed (after end()). */
  closed(): Promise<void> {
    return this.closedSocket ?? Promise.resolve();
  }

  private onMessage(msg: Buffer, from: RemoteInfo): void {
    if (this.ended) return;
    const fromPeer = from.address === this.opts.peer.address && from.port === this.opts.peer.port;
    let packet;
    try {
      packet = decode(msg);
    } catch (err) {
      if (!(err instanceof TftpParseError)) throw err;
      // A garbled packet does not end the transfer: the next ACK or the timer carries it on.
      this.opts.hooks.stray(from, 'malformed', err.message);
      return;
    }
    if (!fromPeer) {
      this.opts.hooks.stray(from, 'wrong-tid', `${packet.type.toUpperCase()} from another transfer ID`);
      // Never answer an ERROR with an ERROR: two confused peers would bounce them forever.
      if (packet.type !== 'error') this.send(encode({ type: 'error', code: ERROR_CODE.unknownTransferId, message: 'unknown transfer ID' }), from);
      return;
    }
    this.heard = true;
    if (packet.type === 'ack') this.onAck(packet.block);
    else if (packet.type === 'error') {
      // PXE ROMs often ask for tsize alone, read the OACK and stop there: the timeline should say so.
      const during = this.oackPending ? ' after the OACK' : '';
      this.end('error', `client ended the transfer${during}: error ${packet.code} ${JSON.stringify(packet.message)}`);
    }
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
    this.armTimer();
    if (this.oackPending) {
      this.send(encode({ type: 'oack', options: this.opts.oack as TftpOptions }), this.opts.peer);
    } else {
      void this.sendWindow();
    }
  }

  private async sendWindow(): Promise<void> {
    const round = ++this.round;
    const { file, blksize } = this.opts;
    const first = this.acked + 1;
    const last = Math.min(this.acked + this.opts.windowsize, this.totalBlocks);
    for (let n = first; n <= last; n++) {
      const offset = (n - 1) * blksize;
      let data: Buffer;
      try {
        data = await file.read(offset, Math.min(blksize, file.size - offset));
      } catch (err) {
        if (round === this.round) this.abort(`cannot read ${file.name}: ${(err as Error).message}`);
        return;
      }
      if (round !== this.round) return;
      this.send(encode({ type: 'data', block: n & 0xffff, data }), this.opts.peer);
      this.opts.hooks.dataSent(data.length, n <= this.lastSent);
      if (n > this.lastSent) this.lastSent = n;
    }
  }

  private armTimer(): void {
    clearTimeout(this.timer);
    const delay = Math.min(this.opts.timeoutMs * 2 ** this.retriesUsed, this.backoffCapMs);
    this.timer = setTimeout(() => this.onTimeout(), delay);
  }

  private onTimeout(): void {
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

  private send(packet: Buffer, to: { address: string; port: number }, then?: () => void): void {
    // Send failures (an unreachable peer, a full buffer) are left to the retransmission timer.
    this.opts.socket.send(packet, to.port, to.address, () => then?.());
  }

  private end(outcome: TransferOutcome, reason: string | null, error?: { code: number; message: string }): void {
    if (this.ended) return;
    this.ended = true;
    this.round++;
    clearTimeout(this.timer);
    const { socket, file, blksize } = this.opts;
    this.closedSocket = new Promise((resolve) => {
      const close = () => {
        socket.close(() => resolve());
      };
      // dgram sends after a lookup tick, so closing at once could drop the ERROR: close once it left.
      if (error) this.send(encode({ type: 'error', ...error }), this.opts.peer, close);
      else close();
    });
    void file.close().catch(() => undefined);
    const bytes = outcome === 'complete' ? file.size : Math.min(this.acked * blksize, file.size);
    this.opts.hooks.done({ outcome, reason, bytes });
  }
}
