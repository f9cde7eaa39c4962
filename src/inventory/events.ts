import type { EventView } from '../model/schemas.js';
import { statement, type Db } from './database.js';

export interface NewEvent {
  mac: string;
  stage: string;
  message: string;
  reason?: string | null;
  sourceIp?: string | null;
}

export interface EventPage {
  items: EventView[];
  /** Cursor for the next (older) page, or null at the beginning of the timeline. */
  nextBefore: number | null;
}

interface EventRow {
  id: number;
  mac: string;
  at: string;
  stage: string;
  source_ip: string | null;
  message: string;
  reason: string | null;
}

const MAX_TEXT = 2000;

/** The boot timeline: append-only, paged newest first, pruned by age. */
export class EventLog {
  private readonly insertStmt;
  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {
    this.insertStmt = db.prepare(
      'INSERT INTO events (mac, at, stage, source_ip, message, reason) VALUES (@mac, @at, @stage, @sourceIp, @message, @reason)',
    );
  }

  /** Appends one event; callers inside a transaction get it committed atomically with their change. */
  record(e: NewEvent): number {
    const info = this.insertStmt.run({
      mac: e.mac,
      at: this.now().toISOString(),
      stage: e.stage.slice(0, 64),
      sourceIp: e.sourceIp ?? null,
      message: e.message.slice(0, MAX_TEXT),
      reason: e.reason ? e.reason.slice(0, MAX_TEXT) : null,
    });
    return Number(info.lastInsertRowid);
  }

  /** A host's events, newest first; `before` is the id cursor from the previous page. */
  forMac(mac: string, opts: { before?: number; limit?: number } = {}): EventPage {
    const limit = clampLimit(opts.limit);
    const rows = this.db
      .prepare('SELECT * FROM events WHERE mac = ? AND id < ? ORDER BY id DESC LIMIT ?')
      .all(mac, opts.before ?? Number.MAX_SAFE_INTEGER, limit + 1) as EventRow[];
    return page(rows, limit);
  }

  /** All events, newest first, optionally only one stage. */
  all(opts: { before?: number; limit?: number; stage?: string } = {}): EventPage {
    const limit = clampLimit(opts.limit);
    const rows = (
      opts.stage
        ? this.db
            .prepare('SELECT * FROM events WHERE stage = ? AND id < ? ORDER BY id DESC LIMIT ?')
            .all(opts.stage, opts.before ?? Number.MAX_SAFE_INTEGER, limit + 1)
        : statement(this.db, 'SELECT * FROM events WHERE id < ? ORDER BY id DESC LIMIT ?').all(opts.before ?? Number.MAX_SAFE_INTEGER, limit + 1)
    ) as EventRow[];
    return page(rows, limit);
  }

  /** Deletes events older than the cutoff; returns how many. */
  pruneOlderThan(cutoff: Date): number {
    return statement(this.db, 'DELETE FROM events WHERE at < ?').run(cutoff.toISOString()).changes;
  }
}

function clampLimit(limit: number | undefined): number {
  return Math.min(Math.max(Math.trunc(limit ?? 50), 1), 1000);
}

function page(rows: EventRow[], limit: number): EventPage {
  const more = rows.length > limit;
  const items = rows.slice(0, limit).map(toView);
  return { items, nextBefore: more ? items[items.length - 1]!.id : null };
}

function toView(r: EventRow): EventView {
  return { id: r.id, mac: r.mac, at: r.at, stage: r.stage, sourceIp: r.source_ip, message: r.message, reason: r.reason };
}
