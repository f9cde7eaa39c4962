// Session reinstatement (RFC 7143 §6.3.5) and recovery after a target restart, as open-iscsi relies on
// them: it always logs in again with TSIH 0 and the same ISID. The old session must be gone — its
// connection closed, and none of its writes landing after the new session's — and the data must be
// what the acknowledgements promised.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IscsiInitiator, cdb, sleep, within, type InitiatorOptions } from '../support/iscsi-initiator.js';
import { spawnTestTarget, startTestTarget, type ChildTarget, type TestTarget } from '../support/iscsi-target.js';
import { BLOCK, readStamp, stampRange } from './workload.js';

const TARGET = 'iqn.2026-01.io.hiveboot:reinstate';
const INITIATOR = 'iqn.2026-01.io.hiveboot:reinstate-ini';
const CHAP = { user: 'hb-reinstate', secret: 'reinstatesec' };
const ISID = Buffer.from([0x80, 0x23, 0x45, 0x67, 0x00, 0x01]);

/**
 * The region the old session hammers: one lane per concurrent writer, each lane written over and over
 * (one write at a time, each covering the whole lane with one generation). SIMPLE tasks may complete
 * in any order (SAM-5), so lanes never overlap: within a lane, order is the initiator's own.
 */
const REGION_LBA = 4096;
const LANE_BLOCKS = 256; // 128 KiB: immediate data, then an R2T for the rest
const LANES = 6;

interface Lane {
  /** Generation of the write in flight or last issued. */
  issued: number;
  /** Highest generation acknowledged GOOD. */
  acked: number;
}

interface Hammer {
  lanes: Lane[];
  acks: number;
  done: Promise<void>;
}

/** Keeps one write per lane in flight until the connection goes. */
function hammer(ini: IscsiInitiator, firstGen: number, fua: boolean): Hammer {
  const h: Hammer = { lanes: Array.from({ length: LANES }, () => ({ issued: 0, acked: 0 })), acks: 0, done: Promise.resolve() };
  let gen = firstGen;
  const run = async (lane: Lane, index: number) => {
    const lba = REGION_LBA + index * LANE_BLOCKS;
    while (!ini.isClosed) {
      const g = gen++;
      lane.issued = g;
      try {
        const r = await ini.command(cdb.write10(lba, LANE_BLOCKS, fua), { data: stampRange(g, lba, LANE_BLOCKS) });
        if (r.status !== 0) return;
        lane.acked = g;
        h.acks++;
      } catch {
        return; // the connection was closed under us: that is the point
      }
    }
  };
  h.done = Promise.all(h.lanes.map(run)).then(() => undefined);
  return h;
}

/** Generation of every block of a lane, or 'foreign'. */
async function laneGenerations(ini: IscsiInitiator, index: number): Promise<(number | 'foreign')[]> {
  const lba = REGION_LBA + index * LANE_BLOCKS;
  const data = await ini.read(lba, LANE_BLOCKS);
  return Array.from({ length: LANE_BLOCKS }, (_, i) => readStamp(data.subarray(i * BLOCK, (i + 1) * BLOCK), lba + i));
}

describe('session reinstatement', () => {
  let dir: string;
  let target: TestTarget;
  const opened: IscsiInitiator[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hiveboot-reinstate-'));
    target = await startTestTarget({
      backing: { kind: 'file', path: join(dir, 'disk.img'), size: 16 << 20 },
      targets: [{ name: TARGET, acl: [INITIATOR], chap: CHAP }],
      // Writes reach the disk after a random delay (a slow, reordering storage path): an old write
      // still on its way when the new session starts would land after the new session's writes.
      writeDelayMs: 120,
    });
  });

  afterAll(async () => {
    for (const i of opened) i.destroy();
    await target?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const options = (extra: Partial<InitiatorOptions> = {}): InitiatorOptions => ({
    port: target.port,
    initiatorName: INITIATOR,
    targetName: TARGET,
    chap: CHAP,
    isid: ISID,
    ...extra,
  });

  async function login(extra: Partial<InitiatorOptions> = {}): Promise<IscsiInitiator> {
    const ini = await IscsiInitiator.open(options(extra));
    opened.push(ini);
    return ini;
  }

  it('a login with the same initiator and ISID replaces a busy session; none of its writes lands after the new one', async () => {
    for (const round of [1, 2, 3, 4, 5]) {
      const fua = round % 2 === 0;
      // Odd rounds look at what the old session left first; even ones write at once, the closest race.
      const lookFirst = round % 2 === 1;
      const old = await login();
      const bystander = await login({ isid: Buffer.from([0x80, 0x23, 0x45, 0x67, 0x00, 0x02]) });
      const oldTsih = old.tsih;
      const h = hammer(old, round * 1_000_000, fua);
      // Let the old session get busy: writes queued, R2Ts open, data in flight.
      while (h.acks < 3 * LANES) await sleep(5);

      const fresh = await login();
      expect(fresh.tsih).not.toBe(oldTsih);
      // The old connection is closed by the target, and its workload stops.
      await within(old.closed, 5000, 'the old connection to close');
      await within(h.done, 5000, 'the old workload to stop');
      const sessions = target.server.sessions.list().filter((s) => s.isid === ISID.toString('hex'));
      expect(sessions.map((s) => s.tsih)).toEqual([fresh.tsih]);

      // First look: each lane holds the old session's last write there — at least the newest one it saw
      // acknowledged, never one it did not issue, never a torn or foreign block.
      for (const [index, lane] of h.lanes.entries()) {
        if (!lookFirst) break;
        const gens = new Set(await laneGenerations(fresh, index));
        expect(gens.size).toBe(1);
        const [g] = [...gens];
        expect(g).not.toBe('foreign');
        expect(g as number).toBeGreaterThanOrEqual(lane.acked);
        expect(g as number).toBeLessThanOrEqual(lane.issued);
      }

      // The new session writes every lane; nothing of the old session may overwrite it afterwards.
      const mine = round * 1_000_000 + 999_999;
      await Promise.all(
        h.lanes.map((_, index) => {
          const lba = REGION_LBA + index * LANE_BLOCKS;
          return fresh.write(lba, stampRange(mine, lba, LANE_BLOCKS));
        }),
      );
      for (let look = 0; look < 3; look++) {
        for (let index = 0; index < LANES; index++) expect(new Set(await laneGenerations(fresh, index))).toEqual(new Set([mine]));
        await sleep(50);
      }
      // Another session of the same initiator (different ISID) was not touched.
      expect((await bystander.nop(Buffer.from('bystander'))).data.toString()).toBe('bystander');
      expect(fresh.violations).toEqual([]);
      await fresh.logout();
      await bystander.logout();
    }
  });

  it('two logins racing to reinstate the same busy session leave exactly one session', async () => {
    for (const round of [1, 2, 3]) {
      const old = await login();
      const h = hammer(old, 10_000_000 + round * 1_000_000, false);
      while (h.acks < 2 * LANES) await sleep(5);
      // An initiator whose first reinstatement attempt seems slow (the old session's I/O is still
      // settling) tries again: both logins carry TSIH 0 and the same ISID.
      const attempts = await Promise.allSettled([login(), login()]);
      await within(old.closed, 5000, 'the old connection to close');
      await within(h.done, 5000, 'the old workload to stop');
      // One of the two is the session now; the other was replaced in turn and closed (before or after
      // its login completed).
      const logged = attempts.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
      expect(logged.length).toBeGreaterThanOrEqual(1);
      const deadline = Date.now() + 5000;
      while (logged.filter((i) => !i.isClosed).length > 1 && Date.now() < deadline) await sleep(10);
      const alive = logged.filter((i) => !i.isClosed);
      expect(alive).toHaveLength(1);
      const winner = alive[0]!;
      const sessions = target.server.sessions.list().filter((s) => s.isid === ISID.toString('hex'));
      expect(sessions.map((s) => s.tsih)).toEqual([winner.tsih]);
      // And none of the old session's writes lands after the winner's.
      const mine = 10_000_000 + round * 1_000_000 + 999_999;
      await Promise.all(
        h.lanes.map((_, index) => {
          const lba = REGION_LBA + index * LANE_BLOCKS;
          return winner.write(lba, stampRange(mine, lba, LANE_BLOCKS));
        }),
      );
      await sleep(150);
      for (let index = 0; index < LANES; index++) expect(new Set(await laneGenerations(winner, index))).toEqual(new Set([mine]));
      expect(winner.isClosed).toBe(false);
      await winner.logout();
    }
  });

  it('refuses a login that names a session that does not exist (non-zero TSIH) with 0x020a', async () => {
    const live = await login();
    for (const tsih of [0x4242, (live.tsih + 1000) & 0xffff || 1]) {
      const ini = await IscsiInitiator.connect(options({ tsih, isid: Buffer.from([0x80, 0x23, 0x45, 0x67, 0x00, 0x09]) }));
      opened.push(ini);
      const result = await ini.login();
      expect(result.status).toBe(0x020a);
      await within(ini.closed, 5000, 'close after the refusal');
    }
    // The live session did not suffer from it.
    expect((await live.nop()).data.length).toBe(0);
    await live.logout();
  });
});

describe('target restart mid-workload', () => {
  let dir: string;
  let child: ChildTarget | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hiveboot-restart-'));
  });

  afterAll(async () => {
    await child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('the initiator logs in again (TSIH 0, same ISID) and finds every acknowledged write', async () => {
    const spec = {
      backing: { kind: 'file' as const, path: join(dir, 'disk.img'), size: 16 << 20 },
      targets: [{ name: TARGET, acl: [INITIATOR], chap: CHAP }],
    };
    child = await spawnTestTarget(spec);
    const port = child.port;
    const options: InitiatorOptions = { port, initiatorName: INITIATOR, targetName: TARGET, chap: CHAP, isid: ISID };

    // Many small writes at distinct places, each recorded once acknowledged, while the target goes
    // down gracefully (SIGTERM: what `systemctl restart` does) in the middle.
    const acked = new Map<number, number>(); // lba -> generation
    let ini = await IscsiInitiator.open(options);
    const oldTsih = ini.tsih;
    let gen = 1;
    const lanes = Array.from({ length: 4 }, async (_, lane) => {
      for (let k = 0; ; k++) {
        const lba = 8192 + (lane * 10_000 + k) * 8;
        const g = gen++;
        try {
          await ini.write(lba, stampRange(g, lba, 8));
          acked.set(lba, g);
        } catch {
          return;
        }
      }
    });
    while (acked.size < 200) await sleep(5);
    const stopped = await child.kill('SIGTERM');
    await Promise.all(lanes);
    expect(stopped.code).toBe(0);
    expect(acked.size).toBeGreaterThanOrEqual(200);

    child = await spawnTestTarget({ ...spec, port });
    // The old TSIH means nothing to the new process.
    const stale = await IscsiInitiator.connect({ ...options, tsih: oldTsih });
    expect((await stale.login()).status).toBe(0x020a);
    stale.destroy();

    ini = await IscsiInitiator.open(options);
    for (const [lba, g] of acked) {
      const back = await ini.read(lba, 8);
      for (let i = 0; i < 8; i++) expect(readStamp(back.subarray(i * BLOCK, (i + 1) * BLOCK), lba + i)).toBe(g);
    }
    // And the restarted target takes writes as before.
    await ini.write(64, stampRange(424242, 64, 8), { fua: true });
    expect(readStamp((await ini.read(64, 1)).subarray(0, BLOCK), 64)).toBe(424242);
    expect(await ini.logout()).toBe(0);
  }, 60_000);
});
