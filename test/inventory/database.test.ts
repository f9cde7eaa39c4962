import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate, openDatabase, schemaVersion, type Db } from '../../src/inventory/database.js';
import { Inventory } from '../../src/inventory/index.js';
import { migrations, type Migration } from '../../src/inventory/migrations.js';

let dir: string;
const toClose: { close(): unknown; open?: boolean }[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hiveboot-db-'));
});
afterEach(() => {
  for (const d of toClose.splice(0)) if (d.open !== false) d.close();
  rmSync(dir, { recursive: true, force: true });
});

function open(path = join(dir, 'hiveboot.db'), m?: Migration[]): Db {
  const db = m ? openDatabase(path, m) : openDatabase(path);
  toClose.push(db);
  return db;
}

const LATEST = Math.max(...migrations.map((m) => m.version));
const mode = (path: string): number => statSync(path).mode & 0o777;

describe('openDatabase: files', () => {
  it('creates the database, its WAL and shared-memory files readable by the owner only', () => {
    const path = join(dir, 'state', 'nested', 'hiveboot.db');
    const db = open(path);
    db.prepare("INSERT INTO images (name, location, created_at, updated_at) VALUES ('x', '/x', 'now', 'now')").run();
    expect(mode(path)).toBe(0o600);
    expect(existsSync(`${path}-wal`)).toBe(true);
    expect(mode(`${path}-wal`)).toBe(0o600);
    expect(mode(`${path}-shm`)).toBe(0o600);
    // The directories it had to create are private as well.
    expect(mode(join(dir, 'state', 'nested')) & 0o077).toBe(0);
  });

  it('tightens an existing world-readable database file to 0600', () => {
    const path = join(dir, 'hiveboot.db');
    writeFileSync(path, '');
    chmodSync(path, 0o644);
    open(path);
    expect(mode(path)).toBe(0o600);
  });

  it('opens an in-memory database for tests and tools', () => {
    const db = open(':memory:');
    expect(schemaVersion(db)).toBe(LATEST);
  });
});

describe('openDatabase: pragmas', () => {
  it('turns foreign keys on, uses WAL and synchronous=FULL', () => {
    const db = open();
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
  });

  it('enforces foreign keys: a disk for a host that does not exist is refused', () => {
    const db = open();
    expect(() =>
      db
        .prepare("INSERT INTO disks (host_id, portals, target_iqn, created_at, updated_at) VALUES (999, '[]', 'iqn.x', 'now', 'now')")
        .run(),
    ).toThrow(/FOREIGN KEY constraint failed/);
  });

  it('keeps WAL mode in the file, so another connection sees it too', () => {
    const path = join(dir, 'hiveboot.db');
    open(path);
    const raw = new Database(path, { readonly: true });
    toClose.push(raw);
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
  });
});

describe('migrations', () => {
  it('sets user_version to the latest migration and creates every table', () => {
    const db = open();
    expect(schemaVersion(db)).toBe(LATEST);
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as {
      name: string;
    }[]).map((t) => t.name);
    expect(tables).toEqual(['disks', 'events', 'hosts', 'images', 'leases', 'profiles']);
  });

  it('re-opening is idempotent and keeps the data', () => {
    const path = join(dir, 'hiveboot.db');
    const inv = Inventory.open(path);
    inv.profiles.create({ name: 'workers' });
    inv.hosts.create({ mac: '52:54:00:00:00:01', hostname: 'worker-1', profile: 'workers' });
    const schema = inv.db.prepare('SELECT sql FROM sqlite_master ORDER BY name').all();
    inv.close();

    for (let i = 0; i < 2; i++) {
      const again = Inventory.open(path);
      expect(schemaVersion(again.db)).toBe(LATEST);
      expect(again.db.prepare('SELECT sql FROM sqlite_master ORDER BY name').all()).toEqual(schema);
      expect(again.hosts.get('52:54:00:00:00:01').hostname).toBe('worker-1');
      expect(again.ping()).toBe(true);
      again.close();
      again.close(); // closing twice is harmless
    }
  });

  it('refuses a database written by a newer hiveboot, and leaves it untouched', () => {
    const path = join(dir, 'hiveboot.db');
    open(path).pragma(`user_version = ${LATEST + 1}`);
    for (const d of toClose.splice(0)) d.close();

    expect(() => Inventory.open(path)).toThrow(`database schema version ${LATEST + 1} is newer than this hiveboot (knows ${LATEST}): upgrade hiveboot`);
    const raw = new Database(path, { readonly: true });
    toClose.push(raw);
    expect(raw.pragma('user_version', { simple: true })).toBe(LATEST + 1);
  });

  const m1: Migration = { version: 1, name: 'one', sql: 'CREATE TABLE one (x INTEGER) STRICT;' };
  const m2: Migration = { version: 2, name: 'two', sql: 'CREATE TABLE two (x INTEGER) STRICT;' };
  const m3bad: Migration = { version: 3, name: 'bad', sql: 'CREATE TABLE three (x INTEGER) STRICT; INSERT INTO no_such_table VALUES (1);' };

  function tables(db: Db): string[] {
    return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
  }

  it('applies only the migrations not yet applied, in version order', () => {
    const path = join(dir, 'custom.db');
    const db = open(path, [m1]);
    expect(schemaVersion(db)).toBe(1);
    db.close();
    // Listed out of order on purpose; version 1 must not run again (it would fail: table exists).
    const db2 = open(path, [m2, m1]);
    expect(schemaVersion(db2)).toBe(2);
    expect(tables(db2)).toEqual(['one', 'two']);
  });

  it('a failing migration leaves the previous version intact', () => {
    const db = new Database(':memory:');
    toClose.push(db);
    migrate(db, [m1, m2]);
    expect(() => migrate(db, [m1, m2, m3bad])).toThrow(/no such table/);
    expect(schemaVersion(db)).toBe(2);
    expect(tables(db)).toEqual(['one', 'two']);
  });
});
