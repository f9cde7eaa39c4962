// The service manager's end of sd_notify for tests: an AF_UNIX datagram socket bound to a path or an
// abstract name ("@name"), read without blocking every few milliseconds (Node's dgram has no unix
// datagram sockets; the socket is libc's, through koffi, as in the daemon).
import { AF_UNIX, errno, loadLibc, MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_DGRAM, sockaddrUn } from '../../src/net/libc.js';

export interface Notification {
  text: string;
  fields: Record<string, string>;
  /** performance.now() when it was read (within POLL_MS of its arrival). */
  at: number;
}

const POLL_MS = 2;
const EAGAIN = 11;

export class NotifyReceiver {
  readonly messages: Notification[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly buf = Buffer.alloc(4096);
  private readonly from = Buffer.alloc(110);
  private readonly fromLen = Buffer.alloc(4);
  private closed = false;
  private waiters: (() => void)[] = [];

  private constructor(
    readonly address: string,
    private readonly fd: number,
  ) {
    this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  static bind(address: string): NotifyReceiver {
    const c = loadLibc();
    const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new Error(`socket(AF_UNIX): ${c.strerror(errno())}`);
    const { addr, len } = sockaddrUn(address);
    if (c.bind(fd, addr, len) !== 0) {
      const message = c.strerror(errno());
      c.close(fd);
      throw new Error(`bind ${address}: ${message}`);
    }
    return new NotifyReceiver(address, fd);
  }

  /** Reads whatever has arrived (also done every POLL_MS). */
  poll(): void {
    const c = loadLibc();
    let got = false;
    for (;;) {
      this.fromLen.writeUInt32LE(this.from.length);
      const n = c.recvfrom(this.fd, this.buf, this.buf.length, MSG_DONTWAIT, this.from, this.fromLen);
      if (n < 0) {
        if (errno() !== EAGAIN) throw new Error(`recvfrom ${this.address}: ${c.strerror(errno())}`);
        break;
      }
      const text = this.buf.subarray(0, n).toString();
      const fields: Record<string, string> = {};
      for (const line of text.split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
      }
      this.messages.push({ text, fields, at: performance.now() });
      got = true;
    }
    if (got) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
    }
  }

  /** The first message from index `from` on that has `key` (and `value`, if given), waiting for it. */
  async waitFor(key: string, timeoutMs: number, from = 0, value?: string): Promise<Notification & { index: number }> {
    const deadline = performance.now() + timeoutMs;
    for (let i = from; ; ) {
      for (; i < this.messages.length; i++) {
        const m = this.messages[i]!;
        if (key in m.fields && (value === undefined || m.fields[key] === value)) return { ...m, index: i };
      }
      const left = deadline - performance.now();
      if (left <= 0 || this.closed) throw new Error(`no ${key}${value ? `=${value}` : ''} on ${this.address} within ${timeoutMs} ms (got: ${JSON.stringify(this.messages.map((m) => m.text))})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    if (this.closed) return;
    this.poll();
    this.closed = true;
    clearInterval(this.timer);
    loadLibc().close(this.fd);
  }
}
