import { openDatabase, type Db } from './database.js';
import { EventLog } from './events.js';
import { HostStore } from './hosts.js';
import { ImageStore } from './images.js';
import { ProfileStore } from './profiles.js';

export type { Host, Disk, Actor } from './hosts.js';
export { hostView } from './hosts.js';
export type { EventPage, NewEvent } from './events.js';

/** The inventory: the only module that touches the database. */
export class Inventory {
  readonly hosts: HostStore;
  readonly profiles: ProfileStore;
  readonly images: ImageStore;
  readonly events: EventLog;

  private constructor(
    readonly db: Db,
    now: () => Date,
  ) {
    this.events = new EventLog(db, now);
    this.hosts = new HostStore(db, this.events, now);
    this.profiles = new ProfileStore(db, now);
    this.images = new ImageStore(db, now);
  }

  static open(path: string, opts: { now?: () => Date } = {}): Inventory {
    return new Inventory(openDatabase(path), opts.now ?? (() => new Date()));
  }

  /** Cheap liveness probe for /healthz. */
  ping(): boolean {
    return this.db.prepare('SELECT 1 AS ok').get() !== undefined;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
