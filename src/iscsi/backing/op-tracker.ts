import { BackingError } from './errors.js';

/**
 * Counts a device's operations in flight so close() can wait for them before it closes the
 * descriptors (an fd closed under a pending pread would fail it, or worse, hit a reused fd number).
 */
export class OpTracker {
  private inflight = 0;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  run<T>(op: () => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new BackingError('CLOSED', 'the device is closed'));
    this.inflight++;
    let result: Promise<T>;
    try {
      result = op();
    } catch (err) {
      result = Promise.reject(err);
    }
    return result.finally(() => {
      if (--this.inflight === 0) this.drained?.();
    });
  }

  /** Refuses new operations, waits for the running ones, then runs `finish` once. */
  close(finish: () => Promise<void>): Promise<void> {
    this.closing ??= (async () => {
      if (this.inflight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      await finish();
    })();
    return this.closing;
  }
}
