import { describe, expect, it } from 'vitest';
import { RangeLock } from '../../../src/iscsi/backing/range-lock.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('RangeLock', () => {
  it('lets shared holders of one range and holders of disjoint ranges run together', async () => {
    const lock = new RangeLock();
    const a = await lock.acquire(0, 10, false);
    const b = await lock.acquire(5, 15, false);
    const c = await lock.acquire(15, 20, true); // ends are exclusive: [5,15) and [15,20) do not overlap
    expect(lock.size).toBe(3);
    a();
    b();
    c();
    expect(lock.size).toBe(0);
  });

  it('makes an exclusive holder wait for earlier overlapping holders, and later ones wait for it (call order)', async () => {
    const lock = new RangeLock();
    const order: string[] = [];
    const r1 = await lock.acquire(0, 8, false);
    const w = lock.acquire(4, 12, true).then((release) => {
      order.push('write');
      return release;
    });
    const r2 = lock.acquire(10, 11, false).then((release) => {
      order.push('read after write');
      release();
    });
    const other = lock.acquire(20, 30, true).then((release) => {
      order.push('disjoint');
      release();
    });
    await tick();
    expect(order).toEqual(['disjoint']);
    r1();
    const release = await w;
    await tick();
    expect(order).toEqual(['disjoint', 'write']);
    release();
    await r2;
    await other;
    expect(order).toEqual(['disjoint', 'write', 'read after write']);
    expect(lock.size).toBe(0);
  });

  it('keeps FIFO: a shared request behind a waiting exclusive one does not overtake it', async () => {
    const lock = new RangeLock();
    const order: string[] = [];
    const first = await lock.acquire(0, 4, false);
    const w = lock.acquire(0, 4, true).then((r) => (order.push('w'), r));
    const r = lock.acquire(0, 4, false).then((rel) => (order.push('r'), rel));
    await tick();
    expect(order).toEqual([]);
    first();
    (await w)();
    (await r)();
    expect(order).toEqual(['w', 'r']);
  });

  it('ignores a second release', async () => {
    const lock = new RangeLock();
    const a = await lock.acquire(0, 1, true);
    const b = lock.acquire(0, 1, true);
    a();
    a();
    const releaseB = await b;
    const c = lock.acquire(0, 1, true);
    let got = false;
    void c.then(() => (got = true));
    await tick();
    expect(got).toBe(false);
    releaseB();
    await c;
  });
});
