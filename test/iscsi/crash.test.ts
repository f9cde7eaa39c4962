// kill -9 of the target process in the middle of a write workload whose client issues SYNCHRONIZE
// CACHE, for both backings: after a restart, everything the client was promised is on disk, read back
// through a fresh target process. kill -9 leaves the page cache intact, so this proves the transport
// and the backing never acknowledge a write (or a sync, or a FUA write) before it reached the kernel —
// not that the disk survives a power loss (test/iscsi/backing covers the ordering for that).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCowOverlay } from '../../src/iscsi/backing/cow.js';
import type { BackingSpec } from '../../src/iscsi/backing/index.js';
import { IscsiInitiator, sleep } from '../support/iscsi-initiator.js';
import { spawnTestTarget, type ChildTarget, type TestTargetSpec } from '../support/iscsi-target.js';
import { prng } from '../support/prng.js';
import { BLOCK, MiB, readStamp, stampRange } from './workload.js';

const TARGET = 'iqn.2026-01.io.hiveboot:crash';
const INITIATOR = 'iqn.2026-01.io.hiveboot:crash-ini';
const CHAP = { user: 'hb-crash-ini', secret: 'crashsecret1' };

/** The region under test: LANES writers, each owning LANE_BLOCKS blocks (SIMPLE tasks may reorder). */
const LANES = 8;
const LANE_BLOCKS = 2048; // 1 MiB
const REGION_BLOCKS = LANES * LANE_BLOCKS;
const ROUNDS = 3;

interface WriteRecord {
  gen: number;
  lba: number;
  blocks: number;
  fua: boolean;
  /** Position in the order of acknowledgements; undefined if never acknowledged. */
  ackSeq?: number;
}

interface RoundLog {
  writes: WriteRecord[][];
  /** Every write acknowledged at or before this ack position was followed by a completed sync. */
  syncedUpTo: number;
  syncs: number;
}

/** Runs the workload until the target is killed under it; returns what the client was told. */
async function workload(port: number, seed: number, firstGen: number): Promise<{ log: RoundLog; kill: () => void; running: Promise<void> }> {
  const ini = await IscsiInitiator.open({ port, initiatorName: INITIATOR, targetName: TARGET, chap: CHAP, isid: Buffer.from([0x80, 0xcc, 0, 0, 0, seed & 0xff]) });
  const log: RoundLog = { writes: Array.from({ length: LANES }, () => []), syncedUpTo: 0, syncs: 0 };
  let acks = 0;
  let gen = firstGen;
  const random = prng(seed);
  const lane = async (index: number) => {
    const base = index * LANE_BLOCKS;
    while (!ini.isClosed) {
      const blocks = 1 + Math.floor(random() * 64);
      const lba = base + Math.floor(random() * (LANE_BLOCKS - blocks));
      const record: WriteRecord = { gen: gen++, lba, blocks, fua: random() < 0.2 };
      log.writes[index]!.push(record);
      try {
        await ini.write(lba, stampRange(record.gen, lba, blocks), { fua: record.fua, sixteen: random() < 0.5 });
        record.ackSeq = ++acks;
      } catch {
        return;
      }
    }
  };
  const syncer = async () => {
    while (!ini.isClosed) {
      const covers = acks;
      try {
        await ini.synchronizeCache();
      } catch {
        return;
      }
      log.syncedUpTo = Math.max(log.syncedUpTo, covers);
      log.syncs++;
      await sleep(10 + Math.floor(random() * 30));
    }
  };
  const running = Promise.all([...Array.from({ length: LANES }, (_, i) => lane(i)), syncer()]).then(() => undefined);
  return { log, kill: () => ini.destroy(), running };
}

/**
 * Checks one lane's blocks after the kill. Writes in a lane are sequential, so for each block the
 * writes covering it are ordered; it must hold the last one the client was told is durable (synced or
 * FUA) or one issued after it — and, kill -9 being page-cache safe, the last acknowledged one or the
 * one in flight after it. Blocks no acknowledged write covers hold their content from before the round
 * or a write of the round in flight.
 */
function verifyLane(writes: WriteRecord[], syncedUpTo: number, laneBase: number, before: Buffer, after: Buffer, problems: string[]): { durable: number; acked: number } {
  let durableBlocks = 0;
  let ackedBlocks = 0;
  for (let b = laneBase; b < laneBase + LANE_BLOCKS; b++) {
    const covering = writes.filter((w) => b >= w.lba && b < w.lba + w.blocks);
    const lastDurable = covering.findLastIndex((w) => w.ackSeq !== undefined && (w.fua || w.ackSeq <= syncedUpTo));
    const lastAcked = covering.findLastIndex((w) => w.ackSeq !== undefined);
    const block = after.subarray(b * BLOCK, (b + 1) * BLOCK);
    const found = readStamp(block, b);
    const index = found === 'foreign' ? -1 : covering.findIndex((w) => w.gen === found);
    const unchanged = block.equals(before.subarray(b * BLOCK, (b + 1) * BLOCK));
    if (lastDurable >= 0) durableBlocks++;
    if (lastAcked >= 0) ackedBlocks++;
    if (lastDurable >= 0 && index < lastDurable) {
      problems.push(`LBA ${b}: write ${covering[lastDurable]!.gen} was acknowledged${covering[lastDurable]!.fua ? ' with FUA' : ' and synced'}, the disk holds ${index >= 0 ? `older write ${found}` : unchanged ? 'the old content' : 'something else'}`);
    } else if (lastAcked >= 0 && index < lastAcked) {
      problems.push(`LBA ${b}: write ${covering[lastAcked]!.gen} was acknowledged, the disk holds ${index >= 0 ? `older write ${found}` : unchanged ? 'the old content' : 'something else'}`);
    } else if (index < 0 && !unchanged) {
      problems.push(`LBA ${b}: holds neither its old content nor a write of this round`);
    }
  }
  return { durable: durableBlocks, acked: ackedBlocks };
}

async function readRegion(port: number): Promise<Buffer> {
  const ini = await IscsiInitiator.open({ port, initiatorName: INITIATOR, targetName: TARGET, chap: CHAP, isid: Buffer.from([0x80, 0xcc, 0, 0, 1, 0]) });
  const parts: Buffer[] = [];
  for (let lba = 0; lba < REGION_BLOCKS; lba += 2048) parts.push(await ini.read(lba, 2048));
  await ini.logout();
  return Buffer.concat(parts);
}

describe.each(['file', 'cow'] as const)('kill -9 of the target during writes, %s backing', (kind) => {
  let dir: string;
  let child: ChildTarget | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), `hiveboot-crash-${kind}-`));
  });

  afterAll(async () => {
    await child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it(`keeps every write acknowledged before a completed SYNCHRONIZE CACHE, and every FUA write, over ${ROUNDS} rounds`, async () => {
    let backing: BackingSpec;
    let initial: Buffer;
    if (kind === 'file') {
      backing = { kind: 'file', path: join(dir, 'disk.img'), size: 12 * MiB };
      initial = Buffer.alloc(REGION_BLOCKS * BLOCK);
    } else {
      // A golden image with content of its own, so "the old content" is not just zeroes.
      const golden = join(dir, 'golden.img');
      const random = prng(1234);
      const g = Buffer.alloc(12 * MiB);
      for (let i = 0; i < g.length; i += 4) g.writeUInt32LE(Math.floor(random() * 0x100000000), i);
      writeFileSync(golden, g);
      await createCowOverlay(golden, join(dir, 'overlay.cow'));
      backing = { kind: 'cow', golden, overlay: join(dir, 'overlay.cow') };
      initial = g.subarray(0, REGION_BLOCKS * BLOCK);
    }
    const spec: TestTargetSpec = { backing, targets: [{ name: TARGET, acl: [INITIATOR], chap: CHAP }] };
    child = await spawnTestTarget(spec);
    let before = initial;
    const figures: string[] = [];

    for (let round = 1; round <= ROUNDS; round++) {
      const seed = (kind === 'file' ? 100 : 200) + round;
      const w = await workload(child.port, seed, round * 10_000_000);
      // Let it run: enough syncs to matter, then a kill at a moment the seed picks.
      const start = Date.now();
      while ((w.log.syncs < 3 || Date.now() - start < 200 + (seed % 7) * 60) && Date.now() - start < 20_000) await sleep(5);
      const killed = await child.kill('SIGKILL');
      expect(killed.signal).toBe('SIGKILL');
      w.kill();
      await w.running;

      child = await spawnTestTarget(spec);
      const after = await readRegion(child.port);
      const problems: string[] = [];
      let durable = 0;
      let ackedBlocks = 0;
      for (let lane = 0; lane < LANES; lane++) {
        const r = verifyLane(w.log.writes[lane]!, w.log.syncedUpTo, lane * LANE_BLOCKS, before, after, problems);
        durable += r.durable;
        ackedBlocks += r.acked;
      }
      const all = w.log.writes.flat();
      const acked = all.filter((x) => x.ackSeq !== undefined);
      const synced = acked.filter((x) => x.fua || x.ackSeq! <= w.log.syncedUpTo);
      figures.push(`round ${round}: ${all.length} writes issued, ${acked.length} acknowledged (${acked.filter((x) => x.fua).length} FUA), ${synced.length} durable by sync or FUA, ${w.log.syncs} syncs; ${durable} blocks checked against a durable write`);
      expect(problems.slice(0, 20)).toEqual([]);
      expect(w.log.syncs).toBeGreaterThanOrEqual(3);
      expect(synced.length).toBeGreaterThan(0);
      expect(durable).toBeGreaterThan(0);
      expect(ackedBlocks).toBeGreaterThanOrEqual(durable);
      before = after;
    }

    // A FUA write alone, the target killed the moment it is acknowledged: it is there.
    const ini = await IscsiInitiator.open({ port: child.port, initiatorName: INITIATOR, targetName: TARGET, chap: CHAP });
    const lba = 12345;
    await ini.write(lba, stampRange(777_777, lba, 16), { fua: true });
    await child.kill('SIGKILL');
    ini.destroy();
    child = await spawnTestTarget(spec);
    const check = await IscsiInitiator.open({ port: child.port, initiatorName: INITIATOR, targetName: TARGET, chap: CHAP });
    const back = await check.read(lba, 16);
    for (let i = 0; i < 16; i++) expect(readStamp(back.subarray(i * BLOCK, (i + 1) * BLOCK), lba + i)).toBe(777_777);
    await check.logout();
    console.log(`crash (${kind}): ${figures.join('; ')}`);
  }, 120_000);
});
