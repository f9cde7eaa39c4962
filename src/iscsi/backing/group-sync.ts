/**
 * Group commit for fdatasync: sync() resolves after an fdatasync that *started after* the call has
 * finished. While one runs, every caller that arrives joins the single next one, so N concurrent
 * FUA writes or flushes cost two fdatasyncs, not N. (An fdatasync already running when the caller
 * arrived may have missed its data, hence "started after".)
 */
export class GroupSync {
  private running: Promise<void> | undefined;
  private next: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } | undefined;
  /** fdatasync calls made so far (tests, metrics). */
  count = 0;

  constructor(private readonly syncOnce: () => Promise<void>) {}

  sync(): Promise<void> {
    if (!this.running) return this.start();
    if (!this.next) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.next = { promise, resolve, reject };
    }
    return this.next.promise;
  }

  private start(): Promise<void> {
    this.count++;
    const run = this.syncOnce().finally(() => {
      this.running = undefined;
      const waiting = this.next;
      this.next = undefined;
      if (waiting) this.start().then(waiting.resolve, waiting.reject);
    });
    this.running = run;
    return run;
  }
}
