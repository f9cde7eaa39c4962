/**
 * Bookkeeping that must not stand in front of an answer: writes are queued and committed in the
 * quiet after a burst, in chunks with a turn of the event loop between them.
 *
 * Why: a committed transaction costs an fsync (synchronous=FULL), milliseconds during which the event
 * loop — and every DHCP request behind it — waits, and the writes themselves (a discovered host,
 * timeline events) cost more than the answer. While a rack powers on, the writes wait until requests
 * stop for `quietMs`; a write never waits longer than `maxDelayMs`, nor a queue grows past `maxQueued`
 * (that bounds the memory and how long the next flush takes). A flush commits `chunk` writes per
 * transaction and lets the sockets be read between two transactions. Writes commit in the order
 * they were queued.
 */
export interface WriteBehindOptions {
  /** Commits one chunk, all or nothing (one transaction). */
  commit: (writes: (() => void)[]) => void;
  /** A chunk that could not be committed; the next one is still tried. */
  onError: (err: unknown) => void;
  quietMs: number;
  maxDelayMs: number;
  maxQueued: number;
  chunk: number;
  /** Milliseconds, monotonic; tests pass a fake clock. */
  now?: () => number;
}

export class WriteBehind {
  private queue: (() => void)[] = [];
  /** When the oldest and the newest queued write came in. */
  private firstAt = 0;
  private lastAt = 0;
  /** The writes being flushed, and how far the flush has got. */
  private draining: (() => void)[] | undefined;
  private drained = 0;
  private timer: NodeJS.Timeout | undefined;
  private step: NodeJS.Immediate | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: WriteBehindOptions) {
    this.now = opts.now ?? (() => performance.now());
  }

  /** Writes queued or being flushed, not yet committed. */
  get pending(): number {
    return this.queue.length + (this.draining ? this.draining.length - this.drained : 0);
  }

  push(write: () => void): void {
    const now = this.now();
    if (this.queue.length === 0) this.firstAt = now;
    this.lastAt = now;
    this.queue.push(write);
    if (this.draining) return; // looked at again when that flush ends
    if (this.queue.length >= this.opts.maxQueued) this.startFlush();
    // One timer for the whole queue: a push only moves lastAt, the timer sees it when it fires.
    else if (!this.timer) this.timer = setTimeout(() => this.onTimer(), this.opts.quietMs);
  }

  /** Commits everything now, without yielding (shutdown). */
  flushNow(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.step) clearImmediate(this.step);
    this.step = undefined;
    const rest = [...(this.draining?.slice(this.drained) ?? []), ...this.queue];
    this.draining = undefined;
    this.drained = 0;
    this.queue = [];
    for (let i = 0; i < rest.length; i += this.opts.chunk) this.commit(rest.slice(i, i + this.opts.chunk));
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.queue.length === 0 || this.draining) return;
    const due = Math.min(this.lastAt + this.opts.quietMs, this.firstAt + this.opts.maxDelayMs);
    const wait = due - this.now();
    // Timers fire on whole milliseconds: within one of the due time is due.
    if (wait > 1) this.timer = setTimeout(() => this.onTimer(), Math.ceil(wait));
    else this.startFlush();
  }

  private startFlush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.draining = this.queue;
    this.drained = 0;
    this.queue = [];
    // Not at once: whatever the sockets already hold is answered first.
    this.step = setImmediate(() => this.flushStep());
  }

  private flushStep(): void {
    this.step = undefined;
    const batch = this.draining;
    if (!batch) return;
    const end = Math.min(this.drained + this.opts.chunk, batch.length);
    const writes = batch.slice(this.drained, end);
    this.drained = end;
    this.commit(writes);
    if (end < batch.length) {
      this.step = setImmediate(() => this.flushStep());
      return;
    }
    this.draining = undefined;
    this.drained = 0;
    // What came in meanwhile waits for its own quiet moment, unless it is already due.
    if (this.queue.length >= this.opts.maxQueued) this.startFlush();
    else if (this.queue.length > 0) this.onTimer();
  }

  private commit(writes: (() => void)[]): void {
    try {
      this.opts.commit(writes);
    } catch (err) {
      this.opts.onError(err);
    }
  }
}
