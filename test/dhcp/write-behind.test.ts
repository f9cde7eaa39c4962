import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WriteBehind } from '../../src/dhcp/write-behind.js';

/** Writes are numbers here: a chunk is the list of numbers committed together. */
function setup(opts: { fail?: (chunk: number[]) => boolean; maxQueued?: number } = {}) {
  const chunks: number[][] = [];
  const errors: unknown[] = [];
  const wb = new WriteBehind({
    commit: (writes) => {
      const chunk: number[] = [];
      for (const w of writes) w.call(chunk);
      if (opts.fail?.(chunk)) throw new Error(`chunk ${chunk.join(',')} failed`);
      chunks.push(chunk);
    },
    onError: (err) => errors.push(err),
    quietMs: 25,
    maxDelayMs: 250,
    maxQueued: opts.maxQueued ?? 10,
    chunk: 4,
    now: () => Date.now(),
  });
  const push = (...ns: number[]) => {
    for (const n of ns) wb.push(function (this: number[]) {
      this.push(n);
    });
  };
  return { wb, push, chunks, errors };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('WriteBehind', () => {
  it('commits once 25 ms pass without a new write, not before', () => {
    const { push, chunks, wb } = setup();
    push(1, 2);
    vi.advanceTimersByTime(24);
    expect(chunks).toEqual([]);
    expect(wb.pending).toBe(2);
    vi.advanceTimersByTime(1);
    vi.runAllTicks();
    vi.advanceTimersToNextTimer();
    expect(chunks).toEqual([[1, 2]]);
    expect(wb.pending).toBe(0);
  });

  it('waits while writes keep coming, but never more than 250 ms for the first of them', () => {
    const { push, chunks } = setup({ maxQueued: 1000 });
    for (let t = 0; t < 240; t += 10) {
      push(t);
      vi.advanceTimersByTime(10);
    }
    expect(chunks).toEqual([]);
    vi.advanceTimersByTime(11);
    expect(chunks.length).toBeGreaterThan(0);
    // The rest follows a chunk per turn of the loop.
    for (let i = 0; i < 10; i++) vi.advanceTimersToNextTimer();
    expect(chunks.flat()).toEqual(Array.from({ length: 24 }, (_, i) => i * 10));
    expect(chunks.every((c) => c.length <= 4)).toBe(true);
  });

  it('starts at once, in chunks with a turn between them, when maxQueued writes are waiting; order is kept', () => {
    const { push, chunks } = setup();
    push(...Array.from({ length: 10 }, (_, i) => i));
    expect(chunks).toEqual([]);
    vi.advanceTimersToNextTimer(); // the first setImmediate
    expect(chunks).toEqual([[0, 1, 2, 3]]);
    // Writes that come in meanwhile wait their turn after the flush.
    push(10, 11);
    vi.advanceTimersToNextTimer();
    expect(chunks).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
    vi.advanceTimersToNextTimer();
    expect(chunks.at(-1)).toEqual([8, 9]);
    vi.advanceTimersByTime(30);
    expect(chunks.flat()).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });

  it('flushNow commits everything in order at once, a flush under way included', () => {
    const { push, chunks, wb } = setup();
    push(...Array.from({ length: 10 }, (_, i) => i));
    vi.advanceTimersToNextTimer();
    push(10, 11, 12);
    wb.flushNow();
    expect(chunks.flat()).toEqual(Array.from({ length: 13 }, (_, i) => i));
    expect(wb.pending).toBe(0);
    vi.runAllTimers();
    expect(chunks.flat()).toHaveLength(13);
  });

  it('reports a chunk that fails and still commits the next one', () => {
    const { push, chunks, errors, wb } = setup({ fail: (chunk) => chunk.includes(2) });
    push(...Array.from({ length: 8 }, (_, i) => i));
    wb.flushNow();
    expect(chunks).toEqual([[4, 5, 6, 7]]);
    expect(errors).toHaveLength(1);
  });
});
