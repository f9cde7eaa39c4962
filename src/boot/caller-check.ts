import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

/**
 * Is the machine asking for MAC's boot script really that machine? The script carries the host's CHAP
 * secret, so it is only handed to a caller whose address resolves to that MAC on our link: the
 * kernel's neighbour (ARP) table, which it filled to answer the very request, says which MAC sent it.
 * This is as strong as layer 2 is (a MAC can be spoofed on the wire), and it closes the easy hole of
 * anyone on the network fetching any MAC's script.
 */
export type CallerVerdict = { ok: true; how: string } | { ok: false; reason: string };

export interface CallerCheckOptions {
  /** Address → MAC from hiveboot's own DHCP leases (full mode), consulted first. */
  leaseMac?: (ip: string) => string | undefined;
  /** The neighbour table; /proc/net/arp of our network namespace by default. */
  arpTable?: () => string;
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.');
}

/** Parses /proc/net/arp: complete entries (flags 0x2) as ip → mac. */
export function parseArpTable(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n').slice(1)) {
    const [ip, , flags, mac] = line.trim().split(/\s+/);
    if (!ip || !flags || !mac) continue;
    if ((Number.parseInt(flags, 16) & 0x2) === 0) continue;
    out.set(ip, mac.toLowerCase());
  }
  return out;
}

export function makeCallerCheck(opts: CallerCheckOptions = {}): (mac: string, sourceIp: string | null) => CallerVerdict {
  const arp = opts.arpTable ?? (() => readFileSync('/proc/net/arp', 'utf8'));
  return (mac, sourceIp) => {
    if (!sourceIp) return { ok: false, reason: 'the request has no source address' };
    const ip = sourceIp.replace(/^::ffff:/, '');
    // The gateway itself (tests, the operator's curl): whoever runs here already holds the database.
    if (isLoopback(ip)) return { ok: true, how: 'loopback' };
    const leased = opts.leaseMac?.(ip);
    if (leased) return leased === mac ? { ok: true, how: 'dhcp lease' } : { ok: false, reason: `${ip} is leased to ${leased}` };
    if (isIP(ip) !== 4) return { ok: false, reason: `${ip}: only IPv4 callers on the boot link can be checked` };
    const seen = parseArpTable(arp()).get(ip);
    if (!seen) return { ok: false, reason: `${ip} is not on a link of this host (no neighbour entry)` };
    return seen === mac ? { ok: true, how: 'neighbour table' } : { ok: false, reason: `${ip} is ${seen}, not ${mac}` };
  };
}
