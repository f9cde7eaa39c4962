import type koffi from 'koffi';

type CFunction = ReturnType<koffi.IKoffiLib['func']>;

/**
 * C calls that may block, made through koffi's `.async` (a worker of the libuv pool) so the event
 * loop never waits on them, with at most `limit` of one kind occupying the pool at once: the pool has
 * 4 threads unless UV_THREADPOOL_SIZE says otherwise, and every file-backed LUN's reads and writes
 * need them too. Each user keeps its own budget (hole punching, Ceph calls), so a slow kind cannot
 * starve another. It also keeps us far below koffi's own limit of queued async calls.
 */
export class PoolCalls {
  private active = 0;
  private readonly queued: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  /** Runs fn(...args) on a pool thread; resolves with its return value as a number (0 for void). */
  async call(fn: CFunction, ...args: unknown[]): Promise<number> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.queued.push(resolve));
    this.active++;
    try {
      return await new Promise<number>((resolve, reject) => {
        fn.async(...args, (err: unknown, result: unknown) => {
          if (err) reject(err instanceof Error ? err : new Error(String(err)));
          else resolve(result === undefined ? 0 : Number(result));
        });
      });
    } finally {
      this.active--;
      this.queued.shift()?.();
    }
  }
}
