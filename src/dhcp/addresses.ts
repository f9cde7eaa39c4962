/** IPv4 arithmetic for pools and subnets: addresses as unsigned 32-bit numbers. */

export function ipToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new RangeError(`not an IPv4 address: ${ip}`);
  let n = 0;
  for (const p of parts) {
    const v = Number(p);
    if (!/^\d{1,3}$/.test(p) || v > 255) throw new RangeError(`not an IPv4 address: ${ip}`);
    n = n * 256 + v;
  }
  return n >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Subnet {
  network: number;
  prefix: number;
  mask: number;
}

export function parseCidr(cidr: string): Subnet {
  const [addr, len, ...rest] = cidr.split('/');
  // Digits only: Number() would read "" as 0 (a /0 that matches every address), " 24" and "0x18" as numbers.
  const prefix = len !== undefined && /^\d{1,2}$/.test(len) ? Number(len) : NaN;
  if (!addr || rest.length > 0 || !Number.isInteger(prefix) || prefix > 32) throw new RangeError(`not a CIDR subnet: ${cidr}`);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { network: (ipToInt(addr) & mask) >>> 0, prefix, mask };
}

export function subnetOf(ip: string, netmask: string): Subnet {
  const mask = ipToInt(netmask);
  let prefix = 0;
  for (let m = mask; m & 0x80000000; m = (m << 1) >>> 0) prefix++;
  return { network: (ipToInt(ip) & mask) >>> 0, prefix, mask };
}

export function contains(s: Subnet, ip: string): boolean {
  return ((ipToInt(ip) & s.mask) >>> 0) === s.network;
}

export function broadcastOf(s: Subnet): string {
  return intToIp((s.network | (~s.mask >>> 0)) >>> 0);
}
