import type { Db } from './database.js';

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
 * Full-DHCP leases, persisted so a restart forgets nothing: a bound client renewing after a daemon
 * restart gets its address back, and an address is never handed to two machines.
 */
export class LeaseStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  get(ip: string): Lease | undefined {
    const r = this.db.prepare('SELECT * FROM leases WHERE ip = ?').get(ip) as LeaseRow | undefined;
    return r && toLease(r);
  }

  /** The client's current (not declined) lease, newest first: what it had before, to offer again. */
  forMac(mac: string): Lease | undefined {
    const r = this.db
      .prepare("SELECT * FROM leases WHERE mac = ? AND state != 'declined' ORDER BY updated_at DESC LIMIT 1")
      .get(mac) as LeaseRow | undefined;
    return r && toLease(r);
  }

  list(): Lease[] {
    return (this.db.prepare('SELECT * FROM leases ORDER BY ip').all() as LeaseRow[]).map(toLease);
  }

  /** Addresses that may not be handed out now: offered or bound and unexpired, or recently declined. */
  unavailable(): Set<string> {
    const at = this.now().toISOString();
    const rows = this.db
      .prepare("SELECT ip FROM leases WHERE expires_at > ? AND state IN ('offered', 'bound', 'declined')")
      .all(at) as { ip: string }[];
    return new Set(rows.map((r) => r.ip));
  }

  /** Records (or moves) a lease. Any other row for the same MAC in another address is dropped. */
  put(ip: string, mac: string, clientId: string | null, state: LeaseState, seconds: number): Lease {
    const now = this.now();
    const expires = new Date(now.getTime() + seconds * 1000).toISOString();
    this.db.transaction(() => {
      if (state !== 'declined') this.db.prepare("DELETE FROM leases WHERE mac = ? AND ip != ? AND state != 'declined'").run(mac, ip);
      this.db
        .prepare(
          `INSERT INTO leases (ip, mac, client_id, state, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, client_id = excluded.client_id, state = excluded.state,
             expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
        )
        .run(ip, mac, clientId, state, expires, now.toISOString());
    }).immediate();
    return this.get(ip)!;
  }

  /** The client gave its address back: it is free at once. */
  release(ip: string, mac: string): boolean {
    const at = this.now().toISOString();
    return (
      this.db.prepare("UPDATE leases SET state = 'released', expires_at = ?, updated_at = ? WHERE ip = ? AND mac = ?").run(at, at, ip, mac)
        .changes > 0
    );
  }
}

function toLease(r: LeaseRow): Lease {
  return { ip: r.ip, mac: r.mac, clientId: r.client_id, state: r.state, expiresAt: r.expires_at, updatedAt: r.updated_at };
}
