import type { HostState } from '../model/schemas.js';

/** What the DHCP server needs to know about a host on every packet: no disk, no secrets, no JSON. */
export interface HostBrief {
  readonly mac: string;
  readonly hostname: string | null;
  readonly profile: string | null;
  readonly state: HostState;
  /** Reserved address in full-DHCP mode. */
  readonly ip: string | null;
  readonly bootFile: string | null;
}

/**
 * Every host in memory, by MAC and by reserved address, with a count per state. Pure bookkeeping:
 * HostStore decides when an entry is (re)read from the database and puts it here, so a DHCP request
 * or a discovery costs no query, whatever the number of hosts.
 */
export class HostIndex {
  private readonly byMac = new Map<string, HostBrief>();
  private readonly byIp = new Map<string, string>();
  private readonly counts: Record<HostState, number> = { discovered: 0, pending: 0, ready: 0, disabled: 0 };

  get size(): number {
    return this.byMac.size;
  }

  macs(): IterableIterator<string> {
    return this.byMac.keys();
  }

  get(mac: string): HostBrief | undefined {
    return this.byMac.get(mac);
  }

  /** Replaces what is known of `mac`: its new row, or undefined when it is gone. */
  put(mac: string, brief: HostBrief | undefined): void {
    const old = this.byMac.get(mac);
    if (old) {
      this.counts[old.state]--;
      // Only drop the address if it is still ours: another host may already have been given it.
      if (old.ip !== null && this.byIp.get(old.ip) === mac) this.byIp.delete(old.ip);
      this.byMac.delete(mac);
    }
    if (brief) {
      this.byMac.set(mac, brief);
      this.counts[brief.state]++;
      if (brief.ip !== null) this.byIp.set(brief.ip, mac);
    }
  }

  clear(): void {
    this.byMac.clear();
    this.byIp.clear();
    for (const state of Object.keys(this.counts) as HostState[]) this.counts[state] = 0;
  }

  reservationOwner(ip: string): string | undefined {
    return this.byIp.get(ip);
  }

  /** Address → MAC of every reservation; a live view, read it before the next write. */
  reservations(): ReadonlyMap<string, string> {
    return this.byIp;
  }

  count(state: HostState): number {
    return this.counts[state];
  }

  countByState(): Record<HostState, number> {
    return { ...this.counts };
  }
}
