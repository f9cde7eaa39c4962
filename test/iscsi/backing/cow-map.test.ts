import { describe, expect, it } from 'vitest';
import { BackingError } from '../../../src/iscsi/backing/errors.js';
import { ClusterMap, MapWriter, State, type ClusterState, type MapIo } from '../../../src/iscsi/backing/cow-map.js';
import { prng } from '../../support/prng.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('ClusterMap', () => {
  it('agrees with a plain array under random set() and answers runs/all/some like it', () => {
    const n = 70_000; // more than one 4 KiB page of map (16384 clusters per page)
    const map = ClusterMap.empty(n, Math.ceil(n / 4 / 4096) * 4096);
    const model = new Uint8Array(n);
    const r = prng(7);
    for (let i = 0; i < 400; i++) {
      const a = Math.floor(r() * n);
      const len = r() < 0.3 ? Math.floor(r() * 40_000) : Math.floor(r() * 9);
      const b = Math.min(n, a + len + 1);
      const s = Math.floor(r() * 3) as ClusterState;
      map.set(a, b, s);
      model.fill(s, a, b);
      const q0 = Math.floor(r() * n);
      const q1 = Math.min(n, q0 + 1 + Math.floor(r() * 30_000));
      const runs = map.runs(q0, q1);
      expect(runs[0]!.start).toBe(q0);
      expect(runs.at(-1)!.end).toBe(q1);
      for (let k = 0; k < runs.length; k++) {
        const run = runs[k]!;
        if (k > 0) {
          expect(run.start).toBe(runs[k - 1]!.end);
          expect(run.state).not.toBe(runs[k - 1]!.state);
        }
        for (let c = run.start; c < run.end; c++) if (model[c] !== run.state) expect.fail(`cluster ${c}: map ${run.state}, model ${model[c]}`);
      }
      for (const s2 of [State.Golden, State.Overlay, State.Zero]) {
        const slice = model.subarray(q0, q1);
        expect(map.all(q0, q1, s2)).toBe(slice.every((v) => v === s2));
        expect(map.some(q0, q1, s2)).toBe(slice.some((v) => v === s2));
      }
    }
    for (let c = 0; c < n; c++) if (map.get(c) !== model[c]) expect.fail(`cluster ${c}`);
  });

  it('stores cluster i in byte i>>2 at bits 2*(i&3) (the on-disk layout)', () => {
    const map = ClusterMap.empty(8, 4096);
    map.set(1, 2, State.Overlay);
    map.set(2, 3, State.Zero);
    map.set(4, 8, State.Overlay);
    expect([...map.bits.subarray(0, 2)]).toEqual([0b0010_0100, 0x55]);
  });

  it('refuses a map with an invalid entry or entries past the last cluster', () => {
    const bad = Buffer.alloc(4096);
    bad[10] = 0b1100;
    expect(() => ClusterMap.fromBits(bad, 1000, 'x')).toThrow(BackingError);
    const past = Buffer.alloc(4096);
    past[300] = 1; // cluster 1200
    expect(() => ClusterMap.fromBits(past, 1000, 'x')).toThrow(/past the last cluster/);
    expect(ClusterMap.fromBits(Buffer.alloc(4096), 1000, 'x').get(999)).toBe(State.Golden);
  });
});

/** Map I/O that logs what happens and lets the test decide when each call completes. */
function fakeIo(): MapIo & { log: string[]; release: () => void; failNext: boolean } {
  const pending: (() => void)[] = [];
  const io = {
    log: [] as string[],
    failNext: false,
    release: () => {
      while (pending.length) pending.shift()!();
    },
    write(data: Buffer, at: number): Promise<void> {
      const fail = io.failNext;
      io.failNext = false;
      io.log.push(`write ${at}+${data.length} [${data[0]}]`);
      return new Promise((resolve, reject) => pending.push(() => (fail ? reject(new Error('EIO')) : resolve())));
    },
    sync(): Promise<void> {
      io.log.push('sync');
      return new Promise((resolve) => pending.push(resolve));
    },
  };
  return io;
}

async function drain(io: ReturnType<typeof fakeIo>, until: Promise<unknown>): Promise<void> {
  let done = false;
  void until.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 50 && !done; i++) {
    await tick();
    io.release();
  }
}

describe('MapWriter', () => {
  it('with ordered allocation, syncs the data before writing the map, copying the map before the sync starts', async () => {
    const map = ClusterMap.empty(100_000, 28 * 4096);
    const io = fakeIo();
    const w = new MapWriter(map, 4096, io, true);
    map.set(0, 4, State.Overlay);
    w.changed(0, 4, true);
    const settled = w.settled(0, 4)!;
    expect(settled).toBeDefined();
    await tick();
    expect(io.log).toEqual(['sync']);
    // Changed while the sync runs: must not ride on this batch (its data was not covered by the sync).
    map.set(4, 8, State.Overlay);
    w.changed(4, 8, true);
    io.release();
    await tick();
    expect(io.log).toEqual(['sync', 'write 4096+4096 [85]']);
    await drain(io, settled);
    await settled;
    const second = w.settled(4, 8);
    if (second) await drain(io, second);
    expect(io.log).toEqual(['sync', 'write 4096+4096 [85]', 'sync', 'write 4096+4096 [85]']);
    expect(w.settled(0, 8)).toBeUndefined();
  });

  it('records discards (→ Zero) without a sync, and allocations too when not ordered', async () => {
    const map = ClusterMap.empty(100_000, 28 * 4096);
    const io = fakeIo();
    const w = new MapWriter(map, 4096, io, true);
    map.set(20_000, 20_004, State.Zero);
    w.changed(20_000, 20_004, false);
    await drain(io, w.settled(20_000, 20_004)!);
    expect(io.log).toEqual(['write 8192+4096 [0]']);

    const relaxed = new MapWriter(map, 4096, io, false);
    io.log.length = 0;
    map.set(0, 1, State.Overlay);
    relaxed.changed(0, 1, true);
    await drain(io, relaxed.settled(0, 1)!);
    expect(io.log).toEqual(['write 4096+4096 [1]']);
  });

  it('groups concurrent changes into one batch and waits only for granules that changed', async () => {
    const map = ClusterMap.empty(100_000, 28 * 4096);
    const io = fakeIo();
    const w = new MapWriter(map, 4096, io, true);
    for (let i = 0; i < 10; i++) {
      map.set(i * 1000, i * 1000 + 3, State.Overlay);
      w.changed(i * 1000, i * 1000 + 3, true);
    }
    expect(w.settled(600, 700)).toBeUndefined(); // granule 2 (512..767): nothing changed there
    await drain(io, w.persistAll());
    expect(io.log).toEqual(['sync', 'write 4096+4096 [21]']);
    expect(w.batches).toBe(1);
  });

  it('fails the waiters of a failed batch, keeps later writers of those clusters waiting, and retries on demand', async () => {
    const map = ClusterMap.empty(1000, 4096);
    const io = fakeIo();
    const w = new MapWriter(map, 4096, io, false);
    io.failNext = true;
    map.set(0, 1, State.Overlay);
    w.changed(0, 1, true);
    const first = w.settled(0, 1)!;
    await drain(io, first);
    await expect(first).rejects.toThrow('EIO');
    // The cluster is Overlay in memory but not on disk: a later write to it must wait for a retry.
    const again = w.settled(0, 1);
    expect(again).toBeDefined();
    await drain(io, again!);
    await expect(again).resolves.toBeUndefined();
    expect(w.settled(0, 1)).toBeUndefined();
  });
});
