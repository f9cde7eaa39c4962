/**
 * A FIFO range lock: shared holders (reads) of overlapping ranges run together, an exclusive holder
 * (write, discard) of a range waits for every earlier overlapping holder and blocks every later one.
 *
 * Why FIFO by call order: operations on overlapping ranges then take effect in the order they were
 * issued, so a read sees exactly the writes issued before it and a later write always wins over an
 * earlier one. A copy-on-write overlay needs the exclusion anyway (a copy-up rewrites a whole cluster
 * and must not interleave with another write to it); the order costs nothing more and makes the
 * device's behaviour reproducible. Ranges that do not overlap never wait for each other.
 *
 * In-flight operations are bounded by the initiators' queue depth (tens), so a list scanned linearly
 * is cheaper than any tree.
 */

interface Holder {
  start: number;
  end: number;
  exclusive: boolean;
  granted: boolean;
  grant: (() => void) | undefined;
}

export type Release = () => void;

function conflicts(a: Holder, b: Holder): boolean {
  return a.start < b.end && b.start < a.end && (a.exclusive || b.exclusive);
}

export class RangeLock {
  /** Granted and waiting holders, in call order. */
  private readonly holders: Holder[] = [];

  /** Number of holders, granted or waiting (for tests and metrics). */
  get size(): number {
    return this.holders.length;
  }

  /** Locks [start, end). The returned function releases it; calling it twice is harmless. */
  acquire(start: number, end: number, exclusive: boolean): Promise<Release> {
    const holder: Holder = { start, end, exclusive, granted: false, grant: undefined };
    const blocked = this.holders.some((h) => conflicts(h, holder));
    this.holders.push(holder);
    const release = this.releaser(holder);
    if (!blocked) {
      holder.granted = true;
      return Promise.resolve(release);
    }
    return new Promise((resolve) => {
      holder.grant = () => resolve(release);
    });
  }

  private releaser(holder: Holder): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const index = this.holders.indexOf(holder);
      this.holders.splice(index, 1);
      this.wake();
    };
  }

  /** Grants every waiter that no earlier holder (granted or waiting) conflicts with. */
  private wake(): void {
    for (let i = 0; i < this.holders.length; i++) {
      const h = this.holders[i]!;
      if (h.granted) continue;
      let blocked = false;
      for (let j = 0; j < i && !blocked; j++) blocked = conflicts(this.holders[j]!, h);
      if (blocked) continue;
      h.granted = true;
      h.grant?.();
    }
  }
}
