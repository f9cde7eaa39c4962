import { describe, expect, it } from 'vitest';
import { makeCallerCheck, parseArpTable } from '../../src/boot/caller-check.js';

const ARP = `IP address       HW type     Flags       HW address            Mask     Device
10.99.0.21       0x1         0x2         52:54:00:aa:bb:cc     *        br0
10.99.0.22       0x1         0x0         00:00:00:00:00:00     *        br0
10.99.0.23       0x1         0x2         52:54:00:AA:BB:DD     *        br0
`;

describe('boot script caller check', () => {
  const check = makeCallerCheck({ arpTable: () => ARP, leaseMac: (ip) => (ip === '10.99.0.50' ? '52:54:00:00:00:50' : undefined) });

  it('reads complete neighbour entries only, MACs lower-cased', () => {
    expect(parseArpTable(ARP)).toEqual(
      new Map([
        ['10.99.0.21', '52:54:00:aa:bb:cc'],
        ['10.99.0.23', '52:54:00:aa:bb:dd'],
      ]),
    );
  });

  it('accepts the machine whose MAC the address resolves to', () => {
    expect(check('52:54:00:aa:bb:cc', '10.99.0.21')).toEqual({ ok: true, how: 'neighbour table' });
    expect(check('52:54:00:aa:bb:dd', '::ffff:10.99.0.23')).toEqual({ ok: true, how: 'neighbour table' });
  });

  it('refuses another machine asking for a MAC that is not its own, and says who it is', () => {
    expect(check('52:54:00:aa:bb:cc', '10.99.0.23')).toEqual({ ok: false, reason: '10.99.0.23 is 52:54:00:aa:bb:dd, not 52:54:00:aa:bb:cc' });
  });

  it('refuses callers with no neighbour entry (routed, or an incomplete entry) and no address', () => {
    expect(check('52:54:00:aa:bb:cc', '10.99.0.22').ok).toBe(false);
    expect(check('52:54:00:aa:bb:cc', '192.0.2.7')).toEqual({ ok: false, reason: '192.0.2.7 is not on a link of this host (no neighbour entry)' });
    expect(check('52:54:00:aa:bb:cc', null).ok).toBe(false);
  });

  it('trusts hiveboot\'s own DHCP lease first, and loopback', () => {
    expect(check('52:54:00:00:00:50', '10.99.0.50')).toEqual({ ok: true, how: 'dhcp lease' });
    expect(check('52:54:00:aa:bb:cc', '10.99.0.50')).toEqual({ ok: false, reason: '10.99.0.50 is leased to 52:54:00:00:00:50' });
    expect(check('52:54:00:aa:bb:cc', '127.0.0.1').ok).toBe(true);
  });
});
