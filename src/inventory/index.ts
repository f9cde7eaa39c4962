import { openDatabase, type Db } from './database.js';
import { EventLog } from './events.js';
import { HostStore } from './hosts.js';
import { ImageStore } from './images.js';
import { LeaseStore } from './leases.js';
import { ProfileStore } from './profiles.js';

export type { Host, Disk, Actor } from './hosts.js';
export type { HostBrief } from './host-index.js';
export { hostView } from './hosts.js';
export type { EventPage, NewEvent } from './events.js';
export type { Lease, LeaseState } from './leases.js';

/** The inventory: the only module that touches the database. */
export class Inventory {
  readonly hosts: HostStore;
  readonly profiles: ProfileStore;
  readonly images: ImageStore;
  readonly events: EventLog;
  readonly leases: LeaseStore;

  private constructor(
    readonly db: Db,
    now: () => Date,
  ) {
    this.events = new EventLog(db, now);
    this.hosts = new HostStore(db, this.events, now);
    this.profiles = new ProfileStore(db, now);
    this.images = new ImageStore(db, now);
    this.leases = new LeaseStore(db, now);
  }

  static open(path: string, opts: { now?: () => Date } = {}): Inventory {
    return new Inventory(openDatabase(path), opts.now ?? (() => new Date()));
  }

  /**
   * Runs fn in one transaction: several stores' writes (a lease and its event) commit together.
   * Through the host store, so that its in-memory index learns how the transaction ended.
   */
  transaction<T>(fn: () => T): T {
    return this.hosts.transaction(fn);
  }

  /** Cheap liveness probe for /healthz. */
  ping(): boolean {
    return this.db.prepare('SELECT 1 AS ok').get() !== undefined;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
