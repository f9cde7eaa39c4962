import { statement, type Db } from './database.js';

export type LeaseState = 'offered' | 'bound' | 'declined' | 'released';

export interface Lease {
  ip: string;
  mac: string;
  clientId: string | null;
  state: LeaseState;
  expiresAt: string;
  updatedAt: string;
}

interface LeaseRow {
  ip: string;
  mac: string;
  client_id: string | null;
  state: LeaseState;
  expires_at: string;
  updated_at: string;
}

/**
 * Full-DHCP leases. Bound, declined and released leases are written to the database before the
 * client hears about them, so a restart forgets nothing: a client renewing after a daemon restart
 * gets its address back and an address is never handed to two machines. Offers are held in memory
 * only — an offer is a 60-second promise, and losing it in a crash just means the client's REQUEST
 * is judged afresh — which keeps a DISCOVER free of disk writes.
 *
 * Every lease is also kept in memory (the table is one row per address in use), so choosing an
 * address for a DISCOVER reads no rows at all.
 */
export class LeaseStore {
  private byIp?: Map<string, Lease>;
  private readonly byMac = new Map<string, Set<string>>();
  private readonly isoCache = new Map<number, string>();
  private readonly upsert;
  private readonly deleteOthers;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {
    this.upsert = db.prepare(
      `INSERT INTO leases (ip, mac, client_id, state, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, client_id = excluded.client_id, state = excluded.state,
         expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
    );
    this.deleteOthers = db.prepare("DELETE FROM leases WHERE mac = ? AND ip != ? AND state != 'declined'");
  }

  get(ip: string): Lease | undefined {
    return this.leases().get(ip);
  }

  /** The client's current (not declined) lease, newest first: what it had before, to offer again. */
  forMac(mac: string): Lease | undefined {
    this.leases();
    let best: Lease | undefined;
    for (const ip of this.byMac.get(mac) ?? []) {
      const l = this.byIp!.get(ip)!;
      if (l.state !== 'declined' && (!best || l.updatedAt > best.updatedAt)) best = l;
    }
    return best;
  }

  list(): Lease[] {
    return [...this.leases().values()].sort((a, b) => a.ip.localeCompare(b.ip, 'en', { numeric: true }));
  }

  /**
   * Every address that may not be handed out now — offered or bound and unexpired, or recently
   * declined — with who holds it.
   */
  occupancy(): Map<string, { mac: string; state: LeaseState }> {
    const at = this.now().toISOString();
    const out = new Map<string, { mac: string; state: LeaseState }>();
    for (const l of this.leases().values()) {
      if (l.state !== 'released' && l.expiresAt > at) out.set(l.ip, { mac: l.mac, state: l.state });
    }
    return out;
  }

  unavailable(): Set<string> {
    return new Set(this.occupancy().keys());
  }

  /** Records (or moves) a lease. Any other lease of the same MAC in another address is dropped. */
  put(ip: string, mac: string, clientId: string | null, state: LeaseState, seconds: number): Lease {
    const ms = this.now().getTime();
    const lease: Lease = { ip, mac, clientId, state, expiresAt: this.iso(ms + seconds * 1000), updatedAt: this.iso(ms) };
    if (state !== 'offered') {
      this.db.transaction(() => {
        if (state !== 'declined') this.deleteOthers.run(mac, ip);
        this.upsert.run(ip, mac, clientId, state, lease.expiresAt, lease.updatedAt);
      }).immediate();
    }
    // Memory follows only once the database has the change.
    if (state !== 'declined') {
      for (const other of [...(this.byMac.get(mac) ?? [])]) {
        if (other !== ip && this.leases().get(other)?.state !== 'declined') this.forget(other);
      }
    }
    this.remember(lease);
    return lease;
  }

  /**
   * An instant as leases store it (ISO 8601). toISOString() costs about a microsecond and a burst of
   * DISCOVERs asks for the same few instants (now, now + the offer hold) many times within one
   * millisecond: the last few are remembered.
   */
  private iso(ms: number): string {
    let text = this.isoCache.get(ms);
    if (text === undefined) {
      if (this.isoCache.size >= 8) this.isoCache.clear();
      this.isoCache.set(ms, (text = new Date(ms).toISOString()));
    }
    return text;
  }

  /** The client gave its address back (or took another server's offer): it is free at once. */
  release(ip: string, mac: string): boolean {
    const current = this.get(ip);
    if (!current || current.mac !== mac) return false;
    const at = this.now().toISOString();
    if (current.state !== 'offered') {
      statement(this.db, "UPDATE leases SET state = 'released', expires_at = ?, updated_at = ? WHERE ip = ? AND mac = ?").run(at, at, ip, mac);
    }
    this.remember({ ...current, state: 'released', expiresAt: at, updatedAt: at });
    return true;
  }

  private leases(): Map<string, Lease> {
    if (!this.byIp) {
      this.byIp = new Map();
      for (const r of statement(this.db, 'SELECT * FROM leases').all() as LeaseRow[]) this.remember(toLease(r));
    }
    return this.byIp;
  }

  private remember(l: Lease): void {
    const map = this.leases();
    const old = map.get(l.ip);
    if (old && old.mac !== l.mac) this.byMac.get(old.mac)?.delete(l.ip);
    map.set(l.ip, l);
    let set = this.byMac.get(l.mac);
    if (!set) this.byMac.set(l.mac, (set = new Set()));
    set.add(l.ip);
  }

  private forget(ip: string): void {
    const l = this.byIp?.get(ip);
    if (!l) return;
    this.byIp!.delete(ip);
    this.byMac.get(l.mac)?.delete(ip);
  }
}

function toLease(r: LeaseRow): Lease {
  return { ip: r.ip, mac: r.mac, clientId: r.client_id, state: r.state, expiresAt: r.expires_at, updatedAt: r.updated_at };
}
