import { describe, expect, it } from 'vitest';
import { tempInventory } from './helpers.js';

const A = '52:54:00:aa:00:01';
const B = '52:54:00:aa:00:02';
const IP1 = '10.99.0.100';
const IP2 = '10.99.0.101';
const IP3 = '10.99.0.102';

describe('leases: put and read back', () => {
  it('records a lease with its expiry from the clock', () => {
    const { inv, clock } = tempInventory();
    const lease = inv.leases.put(IP1, A, '01525400aa0001', 'offered', 60);
    expect(lease).toEqual({
      ip: IP1,
      mac: A,
      clientId: '01525400aa0001',
      state: 'offered',
      expiresAt: new Date(clock.current.getTime() + 60_000).toISOString(),
      updatedAt: clock.current.toISOString(),
    });
    expect(inv.leases.get(IP1)).toEqual(lease);
    expect(inv.leases.forMac(A)).toEqual(lease);
    expect(inv.leases.get(IP2)).toBeUndefined();
    expect(inv.leases.forMac(B)).toBeUndefined();
  });

  it('an offer becomes a binding in the same row, with the new expiry', () => {
    const { inv, clock } = tempInventory();
    inv.leases.put(IP1, A, null, 'offered', 60);
    clock.advance(2_000);
    const bound = inv.leases.put(IP1, A, null, 'bound', 3600);
    expect(bound.state).toBe('bound');
    expect(bound.expiresAt).toBe(new Date(clock.current.getTime() + 3_600_000).toISOString());
    expect(inv.leases.list()).toHaveLength(1);
  });

  it('lists leases in address order', () => {
    const { inv } = tempInventory();
    inv.leases.put(IP2, B, null, 'bound', 3600);
    inv.leases.put(IP1, A, null, 'bound', 3600);
    expect(inv.leases.list().map((l) => [l.ip, l.mac])).toEqual([
      [IP1, A],
      [IP2, B],
    ]);
  });

  it('survives a restart (a second open of the same database)', () => {
    const t = tempInventory();
    t.inv.leases.put(IP1, A, null, 'bound', 3600);
    t.inv.close();
    const again = t.reopen();
    expect(again.leases.forMac(A)).toMatchObject({ ip: IP1, state: 'bound' });
    expect(again.leases.unavailable()).toEqual(new Set([IP1]));
  });
});

describe('leases: one address per machine, one machine per address', () => {
  it('a MAC moving to a new address drops its old row', () => {
    const { inv } = tempInventory();
    inv.leases.put(IP1, A, null, 'bound', 3600);
    inv.leases.put(IP2, A, null, 'offered', 60);
    expect(inv.leases.get(IP1)).toBeUndefined();
    expect(inv.leases.forMac(A)).toMatchObject({ ip: IP2, state: 'offered' });
    expect(inv.leases.unavailable()).toEqual(new Set([IP2]));
  });

  it("moving one MAC leaves other machines' leases alone", () => {
    const { inv } = tempInventory();
    inv.leases.put(IP1, A, null, 'bound', 3600);
    inv.leases.put(IP2, B, null, 'bound', 3600);
    inv.leases.put(IP3, A, null, 'bound', 3600);
    expect(inv.leases.list().map((l) => [l.ip, l.mac])).toEqual([
      [IP2, B],
      [IP3, A],
    ]);
  });

  it('an address put for another MAC belongs to that MAC afterwards', () => {
    const { inv } = tempInventory();
    inv.leases.put(IP1, A, null, 'released', 0);
    inv.leases.put(IP1, B, null, 'offered', 60);
    expect(inv.leases.get(IP1)?.mac).toBe(B);
    expect(inv.leases.forMac(A)).toBeUndefined();
  });
});

describe('leases: unavailable', () => {
  it('offered and bound leases are unavailable until they expire', () => {
    const { inv, clock } = tempInventory();
    inv.leases.put(IP1, A, null, 'offered', 60);
    inv.leases.put(IP2, B, null, 'bound', 3600);
    expect(inv.leases.unavailable()).toEqual(new Set([IP1, IP2]));
    clock.advance(59_999);
    expect(inv.leases.unavailable()).toEqual(new Set([IP1, IP2]));
    clock.advance(1);
    expect(inv.leases.unavailable()).toEqual(new Set([IP2]));
    clock.advance(3_600_000);
    expect(inv.leases.unavailable()).toEqual(new Set());
    // Expired rows are kept (a returning client may get its old address back), just not counted.
    expect(inv.leases.forMac(B)).toMatchObject({ ip: IP2, state: 'bound' });
  });

  it('a released address is free at once', () => {
    const { inv, clock } = tempInventory();
    inv.leases.put(IP1, A, null, 'bound', 3600);
    clock.advance(1_000);
    expect(inv.leases.release(IP1, A)).toBe(true);
    expect(inv.leases.unavailable()).toEqual(new Set());
    expect(inv.leases.get(IP1)).toMatchObject({ state: 'released', expiresAt: clock.current.toISOString(), updatedAt: clock.current.toISOString() });
    // The machine's last address is still known, to offer it again.
    expect(inv.leases.forMac(A)).toMatchObject({ ip: IP1, state: 'released' });
  });

  it('only the holder can release an address', () => {
    const { inv } = tempInventory();
    inv.leases.put(IP1, A, null, 'bound', 3600);
    expect(inv.leases.release(IP1, B)).toBe(false);
    expect(inv.leases.release(IP2, A)).toBe(false);
    expect(inv.leases.get(IP1)?.state).toBe('bound');
    expect(inv.leases.unavailable()).toEqual(new Set([IP1]));
  });
});

describe('leases: declined addresses', () => {
  it('stay unavailable until their hold expires, then are free', () => {
    const { inv, clock } = tempInventory();
    inv.leases.put(IP1, A, null, 'bound', 3600);
    inv.leases.put(IP1, A, null, 'declined', 600);
    expect(inv.leases.get(IP1)).toMatchObject({ state: 'declined', mac: A });
    expect(inv.leases.unavailable()).toEqual(new Set([IP1]));
    clock.advance(599_000);
    expect(inv.leases.unavailable()).toEqual(new Set([IP1]));
    clock.advance(1_000);
    expect(inv.leases.unavailable()).toEqual(new Set());
  });

  it('are not the machine\'s lease: forMac skips them', () => {
    const { inv } = tempInventory();
    inv.leases.put(IP1, A, null, 'declined', 600);
    expect(inv.leases.forMac(A)).toBeUndefined();
  });

  it('survive the decliner moving to another address', () => {
    const { inv } = tempInventory();
    inv.leases.put(IP1, A, null, 'declined', 600);
    inv.leases.put(IP2, A, null, 'offered', 60);
    expect(inv.leases.get(IP1)?.state).toBe('declined');
    expect(inv.leases.forMac(A)).toMatchObject({ ip: IP2, state: 'offered' });
    expect(inv.leases.unavailable()).toEqual(new Set([IP1, IP2]));
  });

  it('a decline does not drop the machine\'s other lease', () => {
    const { inv } = tempInventory();
    inv.leases.put(IP2, A, null, 'bound', 3600);
    inv.leases.put(IP1, A, null, 'declined', 600);
    expect(inv.leases.forMac(A)).toMatchObject({ ip: IP2, state: 'bound' });
    expect(inv.leases.unavailable()).toEqual(new Set([IP1, IP2]));
  });
});
