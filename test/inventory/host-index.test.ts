import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Inventory } from '../../src/inventory/index.js';
import { HostIndex } from '../../src/inventory/host-index.js';
import { prng } from '../support/prng.js';
import { disk, tempInventory } from './helpers.js';

/**
 * The hosts kept in memory for DHCP (HostStore.brief, reservations, countByState) must say what the
 * table says after anything the store does: writes, refused writes, and transactions that commit or
 * roll back around them.
 */

interface Row {
  mac: string;
  hostname: string | null;
  profile: string | null;
  state: string;
  ip: string | null;
  boot_file: string | null;
}

/** The table, read with SQL, against what the index answers. */
function expectInStep(inv: Inventory, macs: string[]): void {
  const rows = inv.db.prepare('SELECT mac, hostname, profile, state, ip, boot_file FROM hosts').all() as Row[];
  const byMac = new Map(rows.map((r) => [r.mac, r]));
  for (const mac of new Set([...macs, ...byMac.keys()])) {
    const r = byMac.get(mac);
    const b = inv.hosts.brief(mac);
    expect(b && { ...b }, mac).toEqual(r && { mac: r.mac, hostname: r.hostname, profile: r.profile, state: r.state, ip: r.ip, bootFile: r.boot_file });
  }
  expect(new Map(inv.hosts.reservations())).toEqual(new Map(rows.filter((r) => r.ip !== null).map((r) => [r.ip!, r.mac])));
  const counts = { discovered: 0, pending: 0, ready: 0, disabled: 0 };
  for (const r of rows) counts[r.state as keyof typeof counts]++;
  expect(inv.hosts.countByState()).toEqual(counts);
  for (const r of rows) if (r.ip) expect(inv.hosts.reservationOwner(r.ip)).toBe(r.mac);
}

const MACS = Array.from({ length: 6 }, (_, i) => `52:54:00:00:00:0${i}`);
const IPS = ['10.99.0.10', '10.99.0.11', '10.99.0.12'];

afterEach(() => {
  vi.useRealTimers();
});

describe('HostIndex', () => {
  it('keeps counts and reservations as entries come, change and go', () => {
    const idx = new HostIndex();
    idx.put('a', { mac: 'a', hostname: null, profile: null, state: 'discovered', ip: '10.0.0.1', bootFile: null });
    idx.put('b', { mac: 'b', hostname: 'b', profile: null, state: 'pending', ip: null, bootFile: null });
    expect(idx.countByState()).toEqual({ discovered: 1, pending: 1, ready: 0, disabled: 0 });
    // The address moves from a to b: b is written first, then a.
    idx.put('b', { mac: 'b', hostname: 'b', profile: null, state: 'ready', ip: '10.0.0.1', bootFile: null });
    expect(idx.reservationOwner('10.0.0.1')).toBe('b');
    idx.put('a', { mac: 'a', hostname: null, profile: null, state: 'discovered', ip: null, bootFile: null });
    expect(idx.reservationOwner('10.0.0.1')).toBe('b');
    idx.put('b', undefined);
    expect(idx.reservationOwner('10.0.0.1')).toBeUndefined();
    expect(idx.countByState()).toEqual({ discovered: 1, pending: 0, ready: 0, disabled: 0 });
    expect(idx.size).toBe(1);
  });
});

describe('HostStore in-memory index', () => {
  it('follows create, update, approve, discover, touch and remove', () => {
    const { inv } = tempInventory();
    inv.profiles.create({ name: 'workers', bootFile: 'custom.efi' });
    expectInStep(inv, MACS);
    inv.hosts.create({ mac: MACS[0]!, hostname: 'w0', profile: 'workers', ip: IPS[0], disk: disk() });
    inv.hosts.discover(MACS[1]!, { arch: '7' }, { stage: 'dhcp' }, { maxDiscovered: 10 });
    expectInStep(inv, MACS);
    inv.hosts.update(MACS[0]!, { ip: IPS[1], bootFile: 'mine.efi' });
    inv.hosts.approve(MACS[1]!, { defaultProfile: 'workers' });
    inv.hosts.touch(MACS[1]!, '10.99.0.50', { product: 'x' });
    expectInStep(inv, MACS);
    inv.hosts.update(MACS[0]!, { ip: null, state: 'disabled' });
    inv.hosts.update(MACS[1]!, { ip: IPS[1] });
    expectInStep(inv, MACS);
    inv.hosts.remove(MACS[1]!);
    expectInStep(inv, MACS);
    expect(inv.hosts.brief(MACS[1]!)).toBeUndefined();
  });

  it('follows writes made by any method or statement on the connection: provisioning, a bare UPDATE', () => {
    const { inv } = tempInventory();
    inv.profiles.create({ name: 'workers' });
    inv.hosts.create({ mac: MACS[0]!, hostname: 'w0', profile: 'workers' });
    expect(inv.hosts.brief(MACS[0]!)?.state).toBe('pending');
    inv.hosts.attachDisk(MACS[0]!, disk(), 'builtin', { stage: 'storage' });
    expect(inv.hosts.brief(MACS[0]!)?.state).toBe('ready');
    inv.db.prepare('UPDATE hosts SET ip = ?, boot_file = ? WHERE mac = ?').run(IPS[2], 'raw.efi', MACS[0]);
    expectInStep(inv, MACS);
    inv.db.prepare('DELETE FROM hosts WHERE mac = ?').run(MACS[0]);
    expectInStep(inv, MACS);
  });

  it('is untouched by writes that are refused, and by transactions that roll back around host writes', () => {
    const { inv } = tempInventory();
    inv.hosts.create({ mac: MACS[0]!, hostname: 'w0', ip: IPS[0] });
    expectInStep(inv, MACS);
    // Refused inside the store's own transaction.
    expect(() => inv.hosts.create({ mac: MACS[1]!, hostname: 'w1', ip: IPS[0] })).toThrow(/already reserved/);
    expect(() => inv.hosts.update(MACS[0]!, { profile: 'missing' })).toThrow(/does not exist/);
    expectInStep(inv, MACS);
    // Host writes that commit inside an outer transaction, which then fails.
    expect(() =>
      inv.transaction(() => {
        inv.hosts.discover(MACS[2]!, {}, { stage: 'dhcp' }, { maxDiscovered: 10 });
        inv.hosts.update(MACS[0]!, { ip: IPS[2] });
        // Read in between: the index answers as the transaction sees the table.
        expect(inv.hosts.brief(MACS[2]!)?.state).toBe('discovered');
        expect(inv.hosts.reservationOwner(IPS[2]!)).toBe(MACS[0]);
        throw new Error('later step failed');
      }),
    ).toThrow('later step failed');
    expectInStep(inv, MACS);
    expect(inv.hosts.brief(MACS[2]!)).toBeUndefined();
    // A failed host write inside an outer transaction that goes on and commits.
    inv.transaction(() => {
      inv.hosts.discover(MACS[3]!, {}, { stage: 'dhcp' }, { maxDiscovered: 10 });
      expect(() => inv.hosts.create({ mac: MACS[4]!, ip: IPS[0] })).toThrow(/already reserved/);
      inv.hosts.discover(MACS[5]!, {}, { stage: 'dhcp' }, { maxDiscovered: 10 });
    });
    expectInStep(inv, MACS);
    expect(inv.hosts.countByState().discovered).toBe(2);
  });

  it('counts discovered hosts for maxDiscovered from memory, rollbacks included', () => {
    const { inv } = tempInventory();
    for (const mac of MACS.slice(0, 3)) inv.hosts.discover(mac, {}, { stage: 'dhcp' }, { maxDiscovered: 3 });
    expect(inv.hosts.discover(MACS[3]!, {}, { stage: 'dhcp' }, { maxDiscovered: 3 })).toBeUndefined();
    expect(() =>
      inv.transaction(() => {
        inv.hosts.remove(MACS[0]!);
        expect(inv.hosts.discover(MACS[3]!, {}, { stage: 'dhcp' }, { maxDiscovered: 3 })).toBeDefined();
        throw new Error('undo');
      }),
    ).toThrow('undo');
    // The removal and the discovery were undone: still full.
    expect(inv.hosts.discover(MACS[4]!, {}, { stage: 'dhcp' }, { maxDiscovered: 3 })).toBeUndefined();
    expectInStep(inv, MACS);
  });

  it('stays in step over a long random run of writes, refusals and rollbacks', () => {
    const { inv } = tempInventory();
    inv.profiles.create({ name: 'p' });
    const r = prng(7);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
    let done = 0;
    const attempt = (fn: () => void) => {
      try {
        fn();
        done++;
      } catch {
        /* refusals are part of the run */
      }
    };
    const step = () => {
      const mac = pick(MACS);
      switch (Math.floor(r() * 7)) {
        case 0:
          return attempt(() => inv.hosts.create({ mac, hostname: `h${Math.floor(r() * 4)}`, ip: r() < 0.5 ? pick(IPS) : undefined }));
        case 1:
          return attempt(() => inv.hosts.update(mac, { ip: r() < 0.3 ? null : pick(IPS), profile: r() < 0.5 ? 'p' : null }));
        case 2:
          return attempt(() => inv.hosts.discover(mac, { arch: '0' }, { stage: 'dhcp' }, { maxDiscovered: 4 }));
        case 3:
          return attempt(() => inv.hosts.approve(mac, { defaultProfile: 'p' }));
        case 4:
          return attempt(() => inv.hosts.remove(mac));
        case 5:
          return attempt(() => inv.hosts.update(mac, { state: pick(['discovered', 'pending', 'disabled'] as const) }));
        default:
          return attempt(() => inv.hosts.touch(mac, pick(IPS)));
      }
    };
    for (let i = 0; i < 400; i++) {
      if (r() < 0.2) {
        const fail = r() < 0.5;
        attempt(() =>
          inv.transaction(() => {
            for (let k = 0; k < 3; k++) step();
            if (fail) throw new Error('rolled back');
          }),
        );
      } else {
        step();
      }
      expectInStep(inv, MACS);
    }
    // The run did plenty besides being refused.
    expect(done).toBeGreaterThan(200);
  });

  it('sees what another connection committed to the same file within a second', () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const t = tempInventory();
    t.inv.hosts.create({ mac: MACS[0]!, ip: IPS[0] });
    expect(t.inv.hosts.reservationOwner(IPS[0]!)).toBe(MACS[0]);
    const other = t.reopen();
    other.hosts.update(MACS[0]!, { ip: IPS[1] });
    other.hosts.create({ mac: MACS[1]!, hostname: 'w1' });
    vi.advanceTimersByTime(1001);
    expectInStep(t.inv, MACS);
    expect(t.inv.hosts.brief(MACS[1]!)?.hostname).toBe('w1');
  });
});
