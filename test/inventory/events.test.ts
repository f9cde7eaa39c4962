import { describe, expect, it } from 'vitest';
import type { EventLog } from '../../src/inventory/events.js';
import { tempInventory } from './helpers.js';

const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';

/** Follows nextBefore cursors to the start of the timeline, returning every page. */
function allPages(read: (before?: number) => ReturnType<EventLog['forMac']>): number[][] {
  const pages: number[][] = [];
  let before: number | undefined;
  for (let guard = 0; guard < 1000; guard++) {
    const page = read(before);
    pages.push(page.items.map((e) => e.id));
    if (page.nextBefore === null) return pages;
    expect(page.nextBefore).toBe(page.items.at(-1)!.id);
    before = page.nextBefore;
  }
  throw new Error('paging never ended');
}

describe('event log', () => {
  it('records an event with its time, stage, address and reason', () => {
    const { inv } = tempInventory();
    const id = inv.events.record({ mac: A, stage: 'dhcp', sourceIp: '192.0.2.7', message: 'offered snponly.efi', reason: 'arch 7 (x86-64 UEFI)' });
    expect(inv.events.forMac(A).items).toEqual([
      { id, mac: A, at: '2026-03-01T12:00:00.000Z', stage: 'dhcp', sourceIp: '192.0.2.7', message: 'offered snponly.efi', reason: 'arch 7 (x86-64 UEFI)' },
    ]);
    const bare = inv.events.record({ mac: A, stage: 'tftp', message: 'sent' });
    expect(inv.events.forMac(A).items[0]).toMatchObject({ id: bare, sourceIp: null, reason: null });
  });

  it('cuts over-long text so one noisy client cannot bloat the log', () => {
    const { inv } = tempInventory();
    inv.events.record({ mac: A, stage: 's'.repeat(100), message: 'm'.repeat(5000), reason: 'r'.repeat(5000) });
    const [e] = inv.events.forMac(A).items;
    expect(e!.stage).toHaveLength(64);
    expect(e!.message).toHaveLength(2000);
    expect(e!.reason).toHaveLength(2000);
  });

  it('pages one MAC’s events newest first, covering each exactly once', () => {
    const { inv, clock } = tempInventory();
    const mine: number[] = [];
    for (let i = 0; i < 23; i++) {
      mine.push(inv.events.record({ mac: A, stage: 'script', message: `a${i}` }));
      inv.events.record({ mac: B, stage: 'script', message: `b${i}` });
      clock.advance(1000);
    }
    const pages = allPages((before) => inv.events.forMac(A, { limit: 5, before }));
    expect(pages.map((p) => p.length)).toEqual([5, 5, 5, 5, 3]);
    expect(pages.flat()).toEqual([...mine].reverse());

    // A limit that divides the count exactly still ends with nextBefore null, without an empty page.
    const exact = allPages((before) => inv.events.forMac(A, { limit: 23, before }));
    expect(exact).toEqual([[...mine].reverse()]);
  });

  it('has an empty timeline for a MAC it has never seen', () => {
    const { inv } = tempInventory();
    inv.events.record({ mac: A, stage: 'dhcp', message: 'x' });
    expect(inv.events.forMac(B)).toEqual({ items: [], nextBefore: null });
  });

  it('pages all events, optionally one stage only', () => {
    const { inv } = tempInventory();
    const dhcp: number[] = [];
    const all: number[] = [];
    for (let i = 0; i < 12; i++) {
      const stage = i % 3 === 0 ? 'dhcp' : 'script';
      const id = inv.events.record({ mac: i % 2 ? A : B, stage, message: `e${i}` });
      all.push(id);
      if (stage === 'dhcp') dhcp.push(id);
    }
    expect(allPages((before) => inv.events.all({ limit: 5, before })).flat()).toEqual(all.reverse());
    const stagePages = allPages((before) => inv.events.all({ limit: 3, before, stage: 'dhcp' }));
    expect(stagePages.flat()).toEqual(dhcp.reverse());
    expect(stagePages).toHaveLength(2);
  });

  it('keeps the page size between 1 and 1000, defaulting to 50', () => {
    const { inv } = tempInventory();
    inv.db.transaction(() => {
      for (let i = 0; i < 1100; i++) inv.events.record({ mac: A, stage: 'dhcp', message: `e${i}` });
    })();
    expect(inv.events.forMac(A).items).toHaveLength(50);
    expect(inv.events.forMac(A, { limit: 0 }).items).toHaveLength(1);
    expect(inv.events.forMac(A, { limit: -5 }).items).toHaveLength(1);
    expect(inv.events.forMac(A, { limit: 2.9 }).items).toHaveLength(2);
    expect(inv.events.all({ limit: 5000 }).items).toHaveLength(1000);
  });

  it('prunes events older than a cutoff and keeps newer ones', () => {
    const { inv, clock } = tempInventory();
    inv.events.record({ mac: A, stage: 'dhcp', message: 'old-1' });
    clock.advance(24 * 3600_000);
    inv.events.record({ mac: B, stage: 'dhcp', message: 'old-2' });
    clock.advance(24 * 3600_000);
    const cutoff = clock.now();
    inv.events.record({ mac: A, stage: 'dhcp', message: 'at-cutoff' });
    clock.advance(1);
    inv.events.record({ mac: A, stage: 'dhcp', message: 'new' });

    expect(inv.events.pruneOlderThan(cutoff)).toBe(2);
    expect(inv.events.all().items.map((e) => e.message)).toEqual(['new', 'at-cutoff']);
    expect(inv.events.pruneOlderThan(cutoff)).toBe(0);
  });

  it('never reuses the id of a pruned event, so old cursors stay meaningful', () => {
    const { inv, clock } = tempInventory();
    const first = inv.events.record({ mac: A, stage: 'dhcp', message: 'x' });
    clock.advance(1000);
    inv.events.pruneOlderThan(clock.now());
    const next = inv.events.record({ mac: A, stage: 'dhcp', message: 'y' });
    expect(next).toBeGreaterThan(first);
  });
});
