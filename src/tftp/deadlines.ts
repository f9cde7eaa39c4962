/**
 * Retransmission deadlines for a loop that waits in epoll_wait and so has no Node timers to lean on
 * (pump-worker.ts): a binary min-heap of (time, owner). An owner's deadline moves forward on every
 * ACK; that costs nothing here — the heap keeps the older, earlier entry, and when it comes up the
 * owner is looked at and queued again for its new deadline. Only a deadline that moves earlier adds
 * an entry. So the heap does work once per timeout period per transfer, not once per packet.
 */
export interface HasDeadline {
  /** When the owner wants onDeadline (ms, same clock as `now`); Infinity: never. */
  readonly deadline: number;
}

interface Entry<T> {
  at: number;
  owner: T;
}

export class DeadlineQueue<T extends HasDeadline> {
  private readonly heap: Entry<T>[] = [];
  /** Each queued owner's earliest entry; an entry with another time is a leftover and is skipped. */
  private readonly queued = new Map<T, number>();

  get size(): number {
    return this.queued.size;
  }

  /** The owner's deadline may have changed: make sure it is looked at by then. */
  update(owner: T): void {
    const at = owner.deadline;
    if (at === Infinity) return;
    const queuedAt = this.queued.get(owner);
    if (queuedAt !== undefined && queuedAt <= at) return;
    this.queued.set(owner, at);
    this.push({ at, owner });
  }

  /** Forgets the owner; its entries are skipped when they come up. */
  delete(owner: T): void {
    this.queued.delete(owner);
  }

  /** When the earliest entry comes up (Infinity when there is none). */
  next(): number {
    return this.heap[0]?.at ?? Infinity;
  }

  /** Calls `expire` for every owner whose deadline is at or before `now`. */
  expire(now: number, expire: (owner: T) => void): void {
    while (this.heap.length > 0 && this.heap[0]!.at <= now) {
      const { at, owner } = this.pop();
      if (this.queued.get(owner) !== at) continue;
      this.queued.delete(owner);
      if (owner.deadline <= now) expire(owner);
      // Moved on since it was queued (or expire() set a new one): look again then.
      this.update(owner);
    }
  }

  private push(e: Entry<T>): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.at <= e.at) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = e;
  }

  private pop(): Entry<T> {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= h.length) break;
        const right = left + 1;
        const child = right < h.length && h[right]!.at < h[left]!.at ? right : left;
        if (h[child]!.at >= last.at) break;
        h[i] = h[child]!;
        i = child;
      }
      h[i] = last;
    }
    return top;
  }
}
