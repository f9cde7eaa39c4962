import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { Inventory } from '../../src/inventory/index.js';
import type { DiskInput } from '../../src/model/schemas.js';

/** A clock the test moves by hand; each reading is also a distinct instant unless frozen. */
export class TestClock {
  constructor(public current = new Date('2026-03-01T12:00:00.000Z')) {}
  now = (): Date => new Date(this.current.getTime());
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

export interface TempInventory {
  inv: Inventory;
  dir: string;
  path: string;
  clock: TestClock;
  /** Opens the same database file again (a second process, or a restart). */
  reopen(): Inventory;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

/** A fresh inventory in its own temp directory, closed and deleted after the test. */
export function tempInventory(): TempInventory {
  const dir = mkdtempSync(join(tmpdir(), 'hiveboot-inv-'));
  const path = join(dir, 'hiveboot.db');
  const clock = new TestClock();
  const opened: Inventory[] = [];
  const open = (): Inventory => {
    const inv = Inventory.open(path, { now: clock.now });
    opened.push(inv);
    return inv;
  };
  const inv = open();
  cleanups.push(() => {
    for (const i of opened) i.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { inv, dir, path, clock, reopen: open };
}

export function disk(overrides: Partial<DiskInput> = {}): DiskInput {
  return {
    portals: ['192.0.2.10:3260'],
    targetIqn: 'iqn.2003-01.org.linux-iscsi.gw:worker-1',
    lun: 0,
    chapUser: 'worker-1-user',
    chapSecret: 'Secret-123456',
    ...overrides,
  };
}

/** Runs fn and returns what it throws, checking the class and (optionally) the field it names. */
export { thrown } from '../support/thrown.js';

/** Every event of one MAC, oldest first, read straight from the table. */
export function rawEvents(inv: Inventory, mac: string): { stage: string; message: string; reason: string | null }[] {
  return inv.db.prepare('SELECT stage, message, reason FROM events WHERE mac = ? ORDER BY id').all(mac) as {
    stage: string;
    message: string;
    reason: string | null;
  }[];
}
