import { describe, expect, it } from 'vitest';
import { broadcastOf, contains, intToIp, ipToInt, parseCidr, subnetOf } from '../../src/dhcp/addresses.js';
import { thrown } from '../support/thrown.js';

describe('ipToInt / intToIp', () => {
  it.each([
    ['0.0.0.0', 0],
    ['0.0.0.1', 1],
    ['10.99.0.2', 0x0a630002],
    ['127.0.0.1', 0x7f000001],
    ['192.168.1.255', 0xc0a801ff],
    ['255.255.255.255', 0xffffffff],
  ])('%s is %i and back', (ip, n) => {
    expect(ipToInt(ip)).toBe(n);
    expect(intToIp(n)).toBe(ip);
  });

  it('addresses above 128.0.0.0 stay unsigned, so they compare in order', () => {
    expect(ipToInt('200.1.1.1')).toBeGreaterThan(0);
    expect(ipToInt('10.0.0.255') + 1).toBe(ipToInt('10.0.1.0'));
    expect(ipToInt('192.168.0.10')).toBeLessThan(ipToInt('192.168.0.20'));
  });

  it('round-trips every address of a /24 and across octet boundaries', () => {
    for (let n = ipToInt('10.0.0.250'); n <= ipToInt('10.0.2.5'); n++) expect(ipToInt(intToIp(n))).toBe(n);
  });

  it.each(['', '10.0.0', '10.0.0.0.1', '10.0.0.256', '10.0.0.-1', '10.0.0.x', '10..0.1', ' 10.0.0.1', '10.0.0.1 ', '1e1.0.0.1', '0x10.0.0.1', '1000.0.0.1'])(
    'refuses %j',
    (bad) => {
      const err = thrown(() => ipToInt(bad), RangeError);
      expect(err.message).toContain('not an IPv4 address');
    },
  );
});

describe('parseCidr', () => {
  it('parses a network, its prefix and mask', () => {
    expect(parseCidr('10.99.0.0/24')).toEqual({ network: ipToInt('10.99.0.0'), prefix: 24, mask: 0xffffff00 });
    expect(parseCidr('172.16.0.0/12')).toEqual({ network: ipToInt('172.16.0.0'), prefix: 12, mask: ipToInt('255.240.0.0') });
    expect(parseCidr('0.0.0.0/0')).toEqual({ network: 0, prefix: 0, mask: 0 });
    expect(parseCidr('10.1.2.3/32')).toEqual({ network: ipToInt('10.1.2.3'), prefix: 32, mask: 0xffffffff });
  });

  it('masks host bits off the network address', () => {
    expect(intToIp(parseCidr('10.99.0.77/24').network)).toBe('10.99.0.0');
    expect(intToIp(parseCidr('192.168.255.1/17').network)).toBe('192.168.128.0');
  });

  it.each(['10.0.0.0', '10.0.0.0/', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/8.5', '10.0.0.0/x', '10.0.0.0/ 24', '10.0.0.0/0x18', '10.0.0.0/24/8', '/24', '10.0.0/24', '10.0.0.300/24'])(
    'refuses %j',
    (bad) => {
      thrown(() => parseCidr(bad), RangeError);
    },
  );
});

describe('subnetOf (an interface address and its netmask)', () => {
  it('gives the same subnet as the CIDR form', () => {
    expect(subnetOf('10.99.0.2', '255.255.255.0')).toEqual(parseCidr('10.99.0.0/24'));
    expect(subnetOf('172.20.5.9', '255.255.0.0')).toEqual(parseCidr('172.20.0.0/16'));
    expect(subnetOf('10.1.2.3', '255.255.255.255')).toEqual(parseCidr('10.1.2.3/32'));
    expect(subnetOf('10.1.2.3', '0.0.0.0')).toEqual(parseCidr('0.0.0.0/0'));
  });

  it('refuses a malformed address or netmask', () => {
    thrown(() => subnetOf('10.99.0', '255.255.255.0'), RangeError);
    thrown(() => subnetOf('10.99.0.2', '255.255.255.256'), RangeError);
  });
});

describe('contains and broadcastOf', () => {
  const s = parseCidr('10.99.0.0/24');

  it('contains the network, its hosts and its broadcast address, nothing else', () => {
    for (const ip of ['10.99.0.0', '10.99.0.1', '10.99.0.128', '10.99.0.255']) expect(contains(s, ip), ip).toBe(true);
    for (const ip of ['10.99.1.0', '10.98.255.255', '192.168.0.1', '0.0.0.0', '255.255.255.255']) expect(contains(s, ip), ip).toBe(false);
  });

  it('a /0 contains everything, a /32 only itself', () => {
    expect(contains(parseCidr('0.0.0.0/0'), '203.0.113.9')).toBe(true);
    expect(contains(parseCidr('10.1.2.3/32'), '10.1.2.3')).toBe(true);
    expect(contains(parseCidr('10.1.2.3/32'), '10.1.2.4')).toBe(false);
  });

  it('works for networks above 128.0.0.0 (no sign trouble)', () => {
    const high = parseCidr('192.168.128.0/17');
    expect(contains(high, '192.168.200.1')).toBe(true);
    expect(contains(high, '192.168.127.255')).toBe(false);
    expect(broadcastOf(high)).toBe('192.168.255.255');
  });

  it('gives the broadcast address', () => {
    expect(broadcastOf(s)).toBe('10.99.0.255');
    expect(broadcastOf(parseCidr('10.0.0.0/8'))).toBe('10.255.255.255');
    expect(broadcastOf(parseCidr('10.99.0.64/26'))).toBe('10.99.0.127');
    expect(broadcastOf(parseCidr('10.1.2.3/32'))).toBe('10.1.2.3');
    expect(broadcastOf(parseCidr('0.0.0.0/0'))).toBe('255.255.255.255');
  });

  it('a malformed address is refused, not treated as outside', () => {
    thrown(() => contains(s, '10.99.0'), RangeError);
  });
});
