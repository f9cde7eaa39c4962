import koffi from 'koffi';
import { AF_INET, EAGAIN, ENOBUFS, EINTR, errno, loadLibc, MSG_DONTWAIT, SOCKADDR_IN_SIZE } from './libc.js';

/**
 * Datagrams for one UDP socket, gathered and then handed to the kernel with one sendmmsg(2).
 *
 * Why: a reply sent with sendto(2) wakes the client at once, and the kernel — told by the socket
 * layer that the sender is about to sleep (a "sync" wake-up) — runs the client on the server's CPU,
 * often before sendto returns. Under a storm the server then pays for every client's turn between
 * two replies. Replies gathered while the sockets are read and sent together cost one wake-up and
 * one system call per batch; the server is back in its poll before the clients run.
 *
 * The messages, addresses and iovecs live in memory of our own (malloc'd through koffi, never moved
 * or freed while the batch lives): the kernel reads them through pointers, and a Buffer's memory
 * may be moved by the garbage collector (small ones live on V8's heap).
 */

/** struct iovec: base pointer, length. */
const IOVEC_SIZE = 16;
/** struct msghdr on 64-bit Linux: name, namelen (+pad), iov, iovlen, control, controllen, flags (+pad). */
const MSGHDR_SIZE = 56;
/** struct mmsghdr: a msghdr and the length the kernel sent. */
const MMSGHDR_SIZE = 64;

export interface SendBatchOptions {
  /** Most datagrams in one batch; a full batch is sent at once. */
  maxMessages?: number;
  /** Largest datagram; a bigger one is not batched (the caller sends it its own way). */
  maxBytes?: number;
}

interface Native {
  sendmmsg: (fd: number, vec: number, count: number, flags: number) => number;
}

let native: Native | undefined;
function loadNative(): Native {
  if (!native) {
    const lib = koffi.load('libc.so.6');
    // The vector is passed as an address (our own memory), not as a Buffer koffi would marshal.
    native = { sendmmsg: lib.func('int sendmmsg(int, uintptr_t, unsigned int, int)') };
  }
  return native;
}

export class SendBatch {
  readonly maxMessages: number;
  readonly maxBytes: number;
  private readonly memory: unknown;
  private readonly view: Buffer;
  /** Address of the memory: below 2^47 in a 64-bit Linux process, so exact as a number. */
  private readonly base: number;
  /** Offsets of the areas within `view`. */
  private readonly vecAt = 0;
  private readonly iovAt: number;
  private readonly nameAt: number;
  private readonly dataAt: number;
  private count = 0;

  constructor(
    private readonly fd: number,
    opts: SendBatchOptions = {},
  ) {
    if (process.arch !== 'x64' && process.arch !== 'arm64') throw new Error(`sendmmsg batching needs a 64-bit Linux, not ${process.arch}`);
    this.maxMessages = opts.maxMessages ?? 64;
    this.maxBytes = opts.maxBytes ?? 1500;
    loadLibc();
    loadNative();
    this.iovAt = this.maxMessages * MMSGHDR_SIZE;
    this.nameAt = this.iovAt + this.maxMessages * IOVEC_SIZE;
    this.dataAt = this.nameAt + this.maxMessages * SOCKADDR_IN_SIZE;
    const size = this.dataAt + this.maxMessages * this.maxBytes;
    this.memory = koffi.alloc('uint8_t', size);
    this.view = Buffer.from(koffi.view(this.memory, size) as ArrayBuffer);
    this.base = Number(koffi.address(this.memory));
    this.view.fill(0);
    // The pointers never change: each message i names its own address slot and iovec, and each
    // iovec its own data slot. Only lengths and contents are written per datagram.
    for (let i = 0; i < this.maxMessages; i++) {
      const hdr = this.vecAt + i * MMSGHDR_SIZE;
      this.view.writeBigUInt64LE(BigInt(this.base + this.nameAt + i * SOCKADDR_IN_SIZE), hdr);
      this.view.writeUInt32LE(SOCKADDR_IN_SIZE, hdr + 8);
      this.view.writeBigUInt64LE(BigInt(this.base + this.iovAt + i * IOVEC_SIZE), hdr + 16);
      this.view.writeBigUInt64LE(1n, hdr + 24);
      this.view.writeBigUInt64LE(BigInt(this.base + this.dataAt + i * this.maxBytes), this.iovAt + i * IOVEC_SIZE);
    }
  }

  get size(): number {
    return this.count;
  }

  get full(): boolean {
    return this.count >= this.maxMessages;
  }

  /** Adds a datagram to `address` (4 bytes, network order) and `port`; false if it does not fit. */
  add(data: Buffer, address: number, port: number): boolean {
    if (this.count >= this.maxMessages || data.length > this.maxBytes) return false;
    const i = this.count++;
    const name = this.nameAt + i * SOCKADDR_IN_SIZE;
    this.view.writeUInt16LE(AF_INET, name);
    this.view.writeUInt16BE(port, name + 2);
    this.view.writeUInt32BE(address >>> 0, name + 4);
    data.copy(this.view, this.dataAt + i * this.maxBytes);
    // iov_len is 64 bits; a datagram's length fits the low half, the high half stays 0.
    this.view.writeUInt32LE(data.length, this.iovAt + i * IOVEC_SIZE + 8);
    return true;
  }

  /**
   * Sends what was gathered. Returns the datagrams the kernel did not take (its buffer full, or an
   * error), as copies with their destinations, for the caller to send another way or count as lost.
   */
  flush(): { unsent: { data: Buffer; address: number; port: number }[]; error?: number } {
    const n = this.count;
    if (n === 0) return { unsent: [] };
    let sent = 0;
    let error: number | undefined;
    const { sendmmsg } = loadNative();
    while (sent < n) {
      const r = sendmmsg(this.fd, this.base + this.vecAt + sent * MMSGHDR_SIZE, n - sent, MSG_DONTWAIT);
      if (r > 0) {
        sent += r;
        continue;
      }
      const e = errno();
      if (r < 0 && e === EINTR) continue;
      // EAGAIN/ENOBUFS: the kernel cannot take more now; anything else is the first datagram's own fault.
      error = r < 0 && e !== EAGAIN && e !== ENOBUFS ? e : undefined;
      break;
    }
    const unsent: { data: Buffer; address: number; port: number }[] = [];
    for (let i = sent; i < n; i++) {
      const name = this.nameAt + i * SOCKADDR_IN_SIZE;
      const length = this.view.readUInt32LE(this.iovAt + i * IOVEC_SIZE + 8);
      const at = this.dataAt + i * this.maxBytes;
      unsent.push({ data: Buffer.from(this.view.subarray(at, at + length)), address: this.view.readUInt32BE(name + 4), port: this.view.readUInt16BE(name + 2) });
    }
    this.count = 0;
    return error === undefined ? { unsent } : { unsent, error };
  }

  /** Frees the memory; the batch must not be used afterwards. */
  close(): void {
    this.count = 0;
    koffi.free(this.memory);
  }
}
