/** IPv4 arithmetic for pools and subnets: addresses as unsigned 32-bit numbers. */

export function ipToInt(ip: string): number {
  const n = parseIpv4(ip);
  if (n < 0) throw new RangeError(`not an IPv4 address: ${ip}`);
  return n;
}

/**
 * Dotted quad → unsigned 32-bit number, or -1: exactly four parts of one to three ASCII digits, each
 * at most 255. A loop over the characters rather than split and a regular expression per part, as
 * this runs several times for every DHCP packet.
 */
export function parseIpv4(ip: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (++digits > 3) return -1;
      part = part * 10 + (c - 48);
    } else if (c === 46 && digits > 0 && dots < 3) {
      if (part > 255) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0 || part > 255) return -1;
  return (n * 256 + part) >>> 0;
}

export function intToIp(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
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
