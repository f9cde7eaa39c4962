import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../src/inventory/index.js';

/**
 * kill -9 in the middle of writes: a child process writes to the inventory as fast as it can and
 * reports each write after it committed; we SIGKILL it, open the database again and check that it is
 * intact and that nothing the child saw committed was lost. Three rounds on the same database, killed
 * at different points of the write loop.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WRITER = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));

type Kind = 'C' | 'U' | 'E' | 'D' | 'X';
interface Report {
  created: Map<string, string>; // mac → hostname
  seq: Map<string, number>; // mac → last reported labels.seq
  events: Map<number, string>; // event id → mac
  discovered: Set<string>;
  removed: Set<string>;
  /** The last discovered host each round reported: the writer may have removed it before it was killed. */
  lastDiscovered: Map<number, string>;
  /** Index of every created host, per round. */
  createdIndexes: Map<number, number[]>;
}

const LINE = {
  C: /^C ((?:[0-9a-f]{2}:){5}[0-9a-f]{2}) (r\d+-n\d+)$/,
  U: /^U ((?:[0-9a-f]{2}:){5}[0-9a-f]{2}) (\d+)$/,
  E: /^E ((?:[0-9a-f]{2}:){5}[0-9a-f]{2}) (\d+)$/,
  D: /^D ((?:[0-9a-f]{2}:){5}[0-9a-f]{2})$/,
  X: /^X ((?:[0-9a-f]{2}:){5}[0-9a-f]{2})$/,
} as const;

function emptyReport(): Report {
  return {
    created: new Map(),
    seq: new Map(),
    events: new Map(),
    discovered: new Set(),
    removed: new Set(),
    lastDiscovered: new Map(),
    createdIndexes: new Map(),
  };
}

function writerArgs(dbPath: string, round: number): string[] {
  return ['--import', 'tsx', WRITER, dbPath, String(round)];
}

/** Runs the writer until it has reported `count` lines of `kind`, then kills it with SIGKILL. */
function runAndKill(dbPath: string, round: number, kind: Kind, count: number, report: Report): Promise<{ signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, writerArgs(dbPath, round), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let seen = 0;
    let sawReady = false;
    let killed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`writer round ${round} did not reach ${count} ${kind} lines in time; stderr:\n${stderr}`));
    }, 20_000);
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (line === 'READY') {
        sawReady = true;
        return;
      }
      let m: RegExpExecArray | null;
      if ((m = LINE.C.exec(line))) {
        report.created.set(m[1]!, m[2]!);
        const index = Number(m[2]!.split('-n')[1]);
        const list = report.createdIndexes.get(round) ?? [];
        list.push(index);
        report.createdIndexes.set(round, list);
      } else if ((m = LINE.U.exec(line))) report.seq.set(m[1]!, Number(m[2]));
      else if ((m = LINE.E.exec(line))) report.events.set(Number(m[2]), m[1]!);
      else if ((m = LINE.D.exec(line))) {
        report.discovered.add(m[1]!);
        report.lastDiscovered.set(round, m[1]!);
      }
      else if ((m = LINE.X.exec(line))) report.removed.add(m[1]!);
      else return; // a line cut short by the kill: it was never fully reported
      if (line.startsWith(kind) && ++seen === count && !killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (!sawReady || !killed) {
        reject(new Error(`writer round ${round} exited by itself (code ${code}, signal ${signal}); stderr:\n${stderr}`));
        return;
      }
      resolve({ signal });
    });
  });
}

/** Opens the database as the daemon would after a crash and checks everything the writers reported. */
function verify(dbPath: string, report: Report, rounds: number[]): void {
  const inv = Inventory.open(dbPath);
  try {
    expect(inv.db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(inv.db.pragma('foreign_key_check')).toEqual([]);

    for (const [mac, hostname] of report.created) {
      const h = inv.hosts.find(mac);
      expect(h, `committed host ${mac} is missing`).toBeDefined();
      expect(h!.hostname).toBe(hostname);
      expect(h!.profile).toBe('workers');
      expect(h!.state).toBe('ready');
      expect(h!.disk).toMatchObject({
        portals: ['192.0.2.10:3260', '[2001:db8::10]:3260'],
        targetIqn: `iqn.2003-01.org.linux-iscsi.gw:${hostname}`,
        chapUser: `user-${hostname}`,
      });
    }
    for (const [mac, seq] of report.seq) expect(inv.hosts.find(mac)?.labels.seq, `labels of ${mac}`).toBe(String(seq));
    for (const [id, mac] of report.events) {
      expect(inv.db.prepare('SELECT mac FROM events WHERE id = ?').get(id), `event ${id}`).toEqual({ mac });
    }
    const lastDiscovered = new Set(report.lastDiscovered.values());
    for (const mac of report.discovered) {
      const h = inv.hosts.find(mac);
      if (report.removed.has(mac)) {
        expect(h, `removed host ${mac} came back`).toBeUndefined();
      } else if (h === undefined) {
        // Only allowed for the very last discovery of a round when the writer's next step was to remove
        // it (every fifth): that removal may have committed just before the kill, unreported.
        expect(lastDiscovered.has(mac) && parseInt(mac.split(':').slice(3).join(''), 16) % 5 === 4, `discovered host ${mac} is missing`).toBe(true);
        expect(
          inv.db.prepare(`SELECT count(*) AS n FROM events WHERE mac = ? AND message = 'removed'`).get(mac),
          `${mac} vanished without its removal event`,
        ).toEqual({ n: 1 });
      } else {
        expect(h.state, `discovered host ${mac}`).toBe('discovered');
        expect(h.facts.serial).toMatch(/^S\d+$/);
      }
    }

    // Nothing half-done: hosts exist only with the event of the same transaction, ready ones with their disk.
    expect(
      inv.db
        .prepare(
          `SELECT h.mac FROM hosts h WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.mac = h.mac
             AND (e.message LIKE 'registered%' OR e.message LIKE 'discovered%'))`,
        )
        .all(),
    ).toEqual([]);
    expect(
      inv.db.prepare(`SELECT h.mac FROM hosts h LEFT JOIN disks d ON d.host_id = h.id WHERE h.state = 'ready' AND d.host_id IS NULL`).all(),
    ).toEqual([]);
    expect(
      inv.db
        .prepare(
          `SELECT h.mac FROM hosts h WHERE json_extract(h.labels, '$.seq') != '0'
             AND NOT EXISTS (SELECT 1 FROM events e WHERE e.mac = h.mac AND e.message = 'updated labels')`,
        )
        .all(),
    ).toEqual([]);

    // Per round, the created hosts are exactly the reported ones, plus at most the one whose commit
    // happened just before the kill, before the child could print it.
    for (const round of rounds) {
      const reported = report.createdIndexes.get(round) ?? [];
      expect(reported.length).toBeGreaterThan(0);
      expect(reported).toEqual(reported.map((_, i) => i));
      const prefix = `02:${round.toString(16).padStart(2, '0')}:01:`;
      const stored = (inv.db.prepare(`SELECT hostname FROM hosts WHERE mac LIKE ? || '%'`).all(prefix) as { hostname: string }[])
        .map((r) => Number(r.hostname.split('-n')[1]))
        .sort((a, b) => a - b);
      const extra = stored.filter((i) => !reported.includes(i));
      expect(extra.length, `round ${round}: unreported hosts ${extra.join(',')}`).toBeLessThanOrEqual(1);
      if (extra.length === 1) expect(extra[0]).toBe(reported.length);
      expect(stored.slice(0, reported.length)).toEqual(reported);
    }
  } finally {
    inv.close();
  }
}

describe('inventory survives kill -9 during writes', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hiveboot-crash-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the writer fixture under node --import tsx', () => {
    // Without arguments the writer prints its usage and exits 2: proof the TypeScript file loaded.
    const r = spawnSync(process.execPath, ['--import', 'tsx', WRITER], { cwd: ROOT, encoding: 'utf8', timeout: 15_000 });
    expect(r.stderr).toContain('usage: crash-writer.ts <db path> <round>');
    expect(r.status).toBe(2);
  });

  it('keeps every committed write across three SIGKILLs at different points of the write loop', async () => {
    const dbPath = join(dir, 'hiveboot.db');
    const report = emptyReport();
    const plan: [number, Kind, number][] = [
      [1, 'C', 300], // right after a create committed
      [2, 'U', 200], // right after an update committed
      [3, 'D', 250], // right after a discovery committed
    ];
    const done: number[] = [];
    for (const [round, kind, count] of plan) {
      const { signal } = await runAndKill(dbPath, round, kind, count, report);
      expect(signal).toBe('SIGKILL');
      done.push(round);
      verify(dbPath, report, done);
    }
    // Each round really wrote something: hundreds of hosts, updates and events in total.
    expect(report.created.size).toBeGreaterThanOrEqual(750);
    expect(report.events.size).toBeGreaterThanOrEqual(700);
    expect(report.removed.size).toBeGreaterThan(100);
  });
});
