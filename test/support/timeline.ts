import Database from 'better-sqlite3';

export interface TimelineEvent {
  stage: string;
  message: string;
  reason: string;
  sourceIp: string | null;
}

/** A machine's timeline read straight from a running daemon's database (WAL allows a reader). */
export function timeline(dbPath: string, mac: string, stage?: string): TimelineEvent[] {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const sql = `SELECT stage, message, reason, source_ip AS sourceIp FROM events WHERE mac = ?${stage ? ' AND stage = ?' : ''} ORDER BY id`;
    return db.prepare(sql).all(...(stage ? [mac, stage] : [mac])) as TimelineEvent[];
  } finally {
    db.close();
  }
}

/** Polls the timeline until `done` holds or the time is up; returns what it last saw. */
export async function waitForTimeline(dbPath: string, mac: string, done: (events: TimelineEvent[]) => boolean, ms: number): Promise<TimelineEvent[]> {
  const deadline = Date.now() + ms;
  let events = timeline(dbPath, mac);
  while (Date.now() < deadline && !done(events)) {
    await new Promise((r) => setTimeout(r, 500));
    events = timeline(dbPath, mac);
  }
  return events;
}

/** One line per event, for assertions and failure messages. */
export const describeTimeline = (events: TimelineEvent[]) => events.map((e) => `${e.stage}: ${e.message} — ${e.reason}`).join('\n');
