import { BackingError } from './errors.js';

/**
 * The allocation map of a copy-on-write overlay: 2 bits per cluster, kept whole in memory in exactly
 * its on-disk layout (cluster i in byte i>>2, bits 2*(i&3)), so persisting a change is copying the
 * touched 4 KiB pages out, never re-encoding. 20 GiB of 4 KiB clusters is 1.25 MiB.
 */

export const State = { Golden: 0, Overlay: 1, Zero: 2 } as const;
export type ClusterState = (typeof State)[keyof typeof State];

/** A byte holding four clusters of one state. */
const BYTE_OF: readonly number[] = [0x00, 0x55, 0xaa];
const PAGE = 4096;
const PAGE_OF: readonly Buffer[] = BYTE_OF.map((b) => Buffer.alloc(PAGE, b));

export interface ClusterRun {
  state: ClusterState;
  /** First cluster of the run. */
  start: number;
  /** One past the last cluster. */
  end: number;
}

export class ClusterMap {
  private constructor(
    /** The map region as stored (its length is the region's, a multiple of 4 KiB). */
    readonly bits: Buffer,
    readonly clusterCount: number,
  ) {}

  /** Wraps a map read from disk after checking it holds no invalid entry (3) and nothing past the end. */
  static fromBits(bits: Buffer, clusterCount: number, where: string): ClusterMap {
    if (bits.length * 4 < clusterCount) throw new BackingError('BAD_FORMAT', `${where}: map too short`);
    // An entry is 3 when both of its bits are set: (b & b>>1) on the low bit of each pair.
    for (let i = 0; i < bits.length; i++) {
      const b = bits[i]!;
      if (b !== 0 && (b & (b >>> 1) & 0x55) !== 0) throw new BackingError('BAD_FORMAT', `${where}: invalid map entry near cluster ${i * 4}`);
    }
    const map = new ClusterMap(bits, clusterCount);
    if (clusterCount < bits.length * 4 && map.runEnd(clusterCount, bits.length * 4, State.Golden) !== bits.length * 4) {
      throw new BackingError('BAD_FORMAT', `${where}: map has entries past the last cluster`);
    }
    return map;
  }

  static empty(clusterCount: number, byteLength: number): ClusterMap {
    return new ClusterMap(Buffer.alloc(byteLength), clusterCount);
  }

  get(c: number): ClusterState {
    return ((this.bits[c >>> 2]! >>> ((c & 3) * 2)) & 3) as ClusterState;
  }

  /** The first cluster in [c, limit) whose state is not `s`, or `limit`. Skips uniform pages and bytes whole. */
  runEnd(c: number, limit: number, s: ClusterState): number {
    let e = c;
    while (e < limit && (e & 3) !== 0) {
      if (this.get(e) !== s) return e;
      e++;
    }
    const byteEnd = Math.floor(limit / 4);
    const pattern = BYTE_OF[s]!;
    const page = PAGE_OF[s]!;
    let b = e / 4;
    while (b < byteEnd) {
      if (b % PAGE === 0 && b + PAGE <= byteEnd && this.bits.compare(page, 0, PAGE, b, b + PAGE) === 0) {
        b += PAGE;
      } else if (this.bits[b] === pattern) {
        b++;
      } else break;
    }
    e = Math.max(e, b * 4);
    while (e < limit) {
      if (this.get(e) !== s) return e;
      e++;
    }
    return limit;
  }

  /** Maximal runs of one state covering [start, end). */
  runs(start: number, end: number): ClusterRun[] {
    const out: ClusterRun[] = [];
    let c = start;
    while (c < end) {
      const state = this.get(c);
      const e = this.runEnd(c + 1, end, state);
      out.push({ state, start: c, end: e });
      c = e;
    }
    return out;
  }

  /** Whether every cluster in [start, end) is in state `s`. */
  all(start: number, end: number, s: ClusterState): boolean {
    return this.runEnd(start, end, s) === end;
  }

  /** Whether some cluster in [start, end) is in state `s`. */
  some(start: number, end: number, s: ClusterState): boolean {
    for (let c = start; c < end; ) {
      const state = this.get(c);
      if (state === s) return true;
      c = this.runEnd(c + 1, end, state);
    }
    return false;
  }

  set(start: number, end: number, s: ClusterState): void {
    let c = start;
    for (; c < end && (c & 3) !== 0; c++) this.setOne(c, s);
    const byteEnd = Math.floor(end / 4);
    if (c < end && c / 4 < byteEnd) {
      this.bits.fill(BYTE_OF[s]!, c / 4, byteEnd);
      c = byteEnd * 4;
    }
    for (; c < end; c++) this.setOne(c, s);
  }

  private setOne(c: number, s: ClusterState): void {
    const i = c >>> 2;
    const shift = (c & 3) * 2;
    this.bits[i] = (this.bits[i]! & ~(3 << shift)) | (s << shift);
  }
}

/** How the map reaches the overlay file (injected so tests can watch the order of writes and syncs). */
export interface MapIo {
  /** pwrite of map bytes at a file offset. */
  write(data: Buffer, fileOffset: number): Promise<void>;
  /** fdatasync of the overlay (group-committed with FUA and flush). */
  sync(): Promise<void>;
}

interface Batch {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Waiters see the rejection; a batch nobody waits for must not crash the process.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** Clusters per wait granule: 256 clusters = 64 map bytes (1 MiB of disk at 4 KiB clusters). */
const GRANULE = 256;

/**
 * Persists map changes in batches (group commit) and tells each operation when the changes it
 * depends on are in the page cache.
 *
 * One batch at a time: it takes every dirty page, copies it, [fdatasync,] writes the copies. Changes
 * made meanwhile wait for the next batch, so N concurrent allocating writes cost one batch, not N.
 *
 * With `ordered`, a batch that records allocations (cluster → Overlay) runs an fdatasync first. The
 * copies are taken before that fdatasync starts, so the map written afterwards only describes data
 * that was written before it started and is therefore on stable storage: whatever reaches the disk
 * first after a power loss, a cluster never reads as Overlay without its data. Without `ordered`,
 * an allocation not yet flushed may read as zeroes after a power loss (never after kill -9).
 *
 * Waiting is tracked per granule of 256 clusters rather than per 4 KiB map page (16384 clusters =
 * 64 MiB of disk), so a write into an already-allocated cluster does not wait for an unrelated
 * allocation that merely shares its map page.
 */
export class MapWriter {
  private readonly dirtyPages = new Set<number>();
  private syncFirst = false;
  /** The batch that will take the current dirty pages. */
  private next: Batch | undefined;
  /** The batch being written. */
  private inflight: Batch | undefined;
  /** Whether a change arrived since the running batch started (a failed batch is retried only then). */
  private fresh = false;
  private running = false;
  /** Granule → the batch that persists its latest change. */
  private readonly waits = new Map<number, Promise<void>>();
  /** Batches written so far (tests, metrics). */
  batches = 0;

  constructor(
    private readonly map: ClusterMap,
    private readonly mapOffset: number,
    private readonly io: MapIo,
    private readonly ordered: boolean,
  ) {}

  /** Records that [start, end) changed in memory; `allocation` when clusters became Overlay. */
  changed(start: number, end: number, allocation: boolean): void {
    const batch = (this.next ??= newBatch());
    for (let p = Math.floor(start / 4 / PAGE), last = Math.floor((end - 1) / 4 / PAGE); p <= last; p++) this.dirtyPages.add(p);
    for (let g = Math.floor(start / GRANULE), last = Math.floor((end - 1) / GRANULE); g <= last; g++) this.waits.set(g, batch.promise);
    if (allocation && this.ordered) this.syncFirst = true;
    this.fresh = true;
    this.kick();
  }

  /** Resolves when every change made so far to [start, end) is in the page cache; undefined if none is pending. */
  settled(start: number, end: number): Promise<void> | undefined {
    if (this.waits.size === 0) return undefined;
    const pending = new Set<Promise<void>>();
    const g0 = Math.floor(start / GRANULE);
    const g1 = Math.floor((end - 1) / GRANULE);
    if (g1 - g0 + 1 <= this.waits.size) {
      for (let g = g0; g <= g1; g++) {
        const p = this.waits.get(g);
        if (p) pending.add(p);
      }
    } else {
      for (const [g, p] of this.waits) if (g >= g0 && g <= g1) pending.add(p);
    }
    if (pending.size === 0) return undefined;
    if (this.next && pending.has(this.next.promise)) this.kick();
    return Promise.all(pending).then(() => undefined);
  }

  /** Resolves when every change made so far is in the page cache (retrying pages a failed batch left). */
  persistAll(): Promise<void> {
    if (this.dirtyPages.size > 0) {
      const batch = (this.next ??= newBatch());
      this.fresh = true;
      this.kick();
      return batch.promise;
    }
    return this.inflight?.promise ?? Promise.resolve();
  }

  private kick(): void {
    if (this.running || !this.next) return;
    this.running = true;
    // Started from a microtask, so changes made in the same tick share the batch.
    queueMicrotask(() => void this.loop());
  }

  private async loop(): Promise<void> {
    while (this.next) {
      const batch = this.next;
      this.next = undefined;
      this.inflight = batch;
      this.fresh = false;
      const pages = [...this.dirtyPages].sort((a, b) => a - b);
      this.dirtyPages.clear();
      const syncFirst = this.syncFirst;
      this.syncFirst = false;
      // Copies taken now, before the fdatasync starts (see the class comment).
      const writes: { data: Buffer; at: number }[] = [];
      for (let i = 0; i < pages.length; ) {
        let j = i + 1;
        while (j < pages.length && pages[j] === pages[j - 1]! + 1) j++;
        const from = pages[i]! * PAGE;
        const to = Math.min((pages[j - 1]! + 1) * PAGE, this.map.bits.length);
        writes.push({ data: Buffer.from(this.map.bits.subarray(from, to)), at: this.mapOffset + from });
        i = j;
      }
      let failed = false;
      try {
        if (syncFirst) await this.io.sync();
        await Promise.all(writes.map((w) => this.io.write(w.data, w.at)));
        this.batches++;
        batch.resolve();
      } catch (err) {
        failed = true;
        for (const p of pages) this.dirtyPages.add(p);
        this.syncFirst ||= syncFirst;
        batch.reject(err);
      }
      this.inflight = undefined;
      // Granules whose last change was in this batch: settled on success; on failure they wait for a
      // retry, which the next write touching them (settled()) or a flush starts.
      const retry = failed ? (this.next ??= newBatch()) : undefined;
      for (const [g, p] of this.waits) {
        if (p !== batch.promise) continue;
        if (retry) this.waits.set(g, retry.promise);
        else this.waits.delete(g);
      }
      // After a failure, go on only for changes that arrived meanwhile, never in a loop of retries.
      if (failed && !this.fresh) break;
    }
    this.running = false;
  }
}
