import { describe, expect, it } from 'vitest';
import { DeadlineQueue } from '../../src/tftp/deadlines.js';
import { prng } from '../support/prng.js';

class Owner {
  constructor(
    readonly name: string,
    public deadline: number,
  ) {}
}

/** Runs expire() at `now` and returns who expired, in order; each one's deadline moves by `next` (or ends). */
function expireAt(q: DeadlineQueue<Owner>, now: number, next: (o: Owner) => number = () => Infinity): string[] {
  const seen: string[] = [];
  q.expire(now, (o) => {
    seen.push(o.name);
    o.deadline = next(o);
    q.update(o);
  });
  return seen;
}

describe('DeadlineQueue', () => {
  it('expires owners in deadline order, and only once their deadline has come', () => {
    const q = new DeadlineQueue<Owner>();
    const [a, b, c] = [new Owner('a', 30), new Owner('b', 10), new Owner('c', 20)];
    for (const o of [a, b, c]) q.update(o);
    expect(q.next()).toBe(10);
    expect(expireAt(q, 5)).toEqual([]);
    expect(expireAt(q, 20)).toEqual(['b', 'c']);
    expect(expireAt(q, 100)).toEqual(['a']);
    expect(q.next()).toBe(Infinity);
    expect(q.size).toBe(0);
  });

  it('a deadline that moves later costs no entry, and is honoured when the old entry comes up', () => {
    const q = new DeadlineQueue<Owner>();
    const a = new Owner('a', 10);
    q.update(a);
    // Many ACKs: the deadline moves on each time, the queue is not touched.
    for (let t = 11; t < 200; t++) {
      a.deadline = t + 10;
      q.update(a);
    }
    expect(q.next()).toBe(10);
    expect(expireAt(q, 50)).toEqual([]);
    // Looked at once at 10 and queued again for its real deadline.
    expect(q.next()).toBe(209);
    expect(expireAt(q, 209)).toEqual(['a']);
  });

  it('a deadline that moves earlier is honoured at the earlier time, and the later entry is then ignored', () => {
    const q = new DeadlineQueue<Owner>();
    const a = new Owner('a', 1000);
    q.update(a);
    a.deadline = 50;
    q.update(a);
    expect(q.next()).toBe(50);
    expect(expireAt(q, 50, () => 2000)).toEqual(['a']);
    expect(expireAt(q, 1500)).toEqual([]);
    expect(expireAt(q, 2000)).toEqual(['a']);
  });

  it('forgets a deleted owner, and never expires one whose deadline is Infinity', () => {
    const q = new DeadlineQueue<Owner>();
    const [a, b] = [new Owner('a', 10), new Owner('b', Infinity)];
    q.update(a);
    q.update(b);
    q.delete(a);
    expect(expireAt(q, 1e9)).toEqual([]);
    expect(q.size).toBe(0);
  });

  it('matches a plain scan over random updates, deletions and expiries', () => {
    const r = prng(42);
    const q = new DeadlineQueue<Owner>();
    const owners = Array.from({ length: 50 }, (_, i) => new Owner(`o${i}`, Infinity));
    const live = new Set<Owner>();
    let now = 0;
    for (let step = 0; step < 5000; step++) {
      const o = owners[Math.floor(r() * owners.length)]!;
      const action = r();
      if (action < 0.6) {
        o.deadline = now + Math.floor(r() * 100);
        live.add(o);
        q.update(o);
      } else if (action < 0.7) {
        o.deadline = Infinity;
        live.delete(o);
        q.delete(o);
      } else {
        now += Math.floor(r() * 30);
        const expected = [...live].filter((x) => x.deadline <= now).map((x) => x.name).sort();
        const got = expireAt(q, now).sort();
        for (const x of owners) if (got.includes(x.name)) live.delete(x);
        expect(got).toEqual(expected);
      }
    }
  });
});
