/**
 * Fuzzes execute() with CDBs mutated from valid ones (every command we implement, plus opcodes we do
 * not) and random Data-Out, on a thick, a thin and a read-only unit. Whatever comes in, the initiator
 * must get an answer: execute() never rejects; the status is GOOD or CHECK CONDITION; CHECK CONDITION
 * carries 18 bytes of fixed-format sense and GOOD none; Data-In never exceeds what dataTransfer()
 * promised the transport; and the backend is never asked for anything outside the device, unaligned,
 * or a write on a read-only unit.
 *
 * Deterministic: a failure names its seed and iteration; rerun with the same SEED to reproduce.
 */
import { describe, expect, it } from 'vitest';
import { absentLunResult } from '../../../src/iscsi/scsi/absent-lun.js';
import { dataTransfer } from '../../../src/iscsi/scsi/transfer.js';
import { ScsiStatus } from '../../../src/iscsi/scsi/types.js';
import { prng } from '../../support/prng.js';
import { BS, cdb, makeUnit, Op, unmapList, type Fixture } from './helpers.js';

const SEED = 0x5c51_0f2e;
const ITERATIONS = 6000;
const BLOCKS = 256;

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;

/** LBAs and counts near the interesting edges of a 256-block unit and of the field widths. */
function edgy(r: Rand): number {
  return pick(r, [0, 1, 7, BLOCKS - 1, BLOCKS, BLOCKS + 1, 255, 256, 65535, 0xffff_ffff, int(r, BLOCKS), int(r, 2 ** 32)]);
}

function seedCdbs(r: Rand): Buffer[] {
  const lba = edgy(r);
  const n = pick(r, [0, 1, 2, 8, 255, 256, int(r, 300)]);
  const b1 = pick(r, [0, 0, 0x02, 0x08, 0x10, 0x18, 0x01, 0x04, 0x06, 0x09, int(r, 256)]);
  return [
    cdb.testUnitReady(),
    cdb.requestSense(int(r, 256)),
    cdb.inquiry(int(r, 1024), r() < 0.5, pick(r, [0, 0x80, 0x83, 0xb0, 0xb1, 0xb2, int(r, 256)])),
    cdb.read6(lba & 0x1f_ffff, n & 0xff),
    cdb.write6(lba & 0x1f_ffff, n & 0xff),
    ...[Op.Read10, Op.Write10, Op.Verify10, Op.WriteAndVerify10, Op.PreFetch10, Op.SynchronizeCache10, Op.WriteSame10].map((op) =>
      cdb.rw10(op, lba, n & 0xffff, { byte1: b1 }),
    ),
    ...[Op.Read12, Op.Write12, Op.Verify12, Op.WriteAndVerify12].map((op) => cdb.rw12(op, lba, n, { byte1: b1 })),
    ...[Op.Read16, Op.Write16, Op.Verify16, Op.WriteAndVerify16, Op.PreFetch16, Op.SynchronizeCache16, Op.WriteSame16].map((op) =>
      cdb.rw16(op, r() < 0.1 ? 0xffff_ffff_ffff_fff0n : lba, n, { byte1: b1 }),
    ),
    cdb.readCapacity10(),
    cdb.readCapacity16(int(r, 64)),
    cdb.getLbaStatus(r() < 0.1 ? 2n ** 63n : lba, int(r, 200)),
    cdb.modeSense6(pick(r, [0x3f, 0x08, 0x0a, 0x1c, int(r, 64)]), { pc: int(r, 4), dbd: r() < 0.5, alloc: int(r, 256) }),
    cdb.modeSense10(pick(r, [0x3f, 0x08, 0x0a]), { pc: int(r, 4), llbaa: r() < 0.5, alloc: int(r, 600) }),
    cdb.modeSelect6(int(r, 64)),
    cdb.modeSelect10(int(r, 64)),
    cdb.reportLuns(int(r, 64), int(r, 4)),
    cdb.rsoc({ options: int(r, 5), rctd: r() < 0.5, opcode: int(r, 256), sa: int(r, 32), alloc: int(r, 2048) }),
    cdb.unmap(int(r, 100), r() < 0.1),
    cdb.startStop(int(r, 256)),
  ];
}

function mutate(r: Rand, c: Buffer): Buffer {
  const out = Buffer.from(c);
  const edits = int(r, 4);
  for (let i = 0; i < edits; i++) {
    const at = int(r, out.length);
    switch (int(r, 4)) {
      case 0:
        out[at] = out[at]! ^ (1 << int(r, 8));
        break;
      case 1:
        out[at] = pick(r, [0, 0xff, 0x80, 0x01, 0x7f]);
        break;
      case 2:
        out[at] = int(r, 256);
        break;
      default:
        out[0] = int(r, 256);
    }
  }
  // Sometimes cut the CDB short, as a broken transport might.
  return r() < 0.05 ? out.subarray(0, int(r, out.length)) : out;
}

function dataOut(r: Rand, c: Buffer): Buffer | undefined {
  switch (int(r, 6)) {
    case 0:
      return undefined;
    case 1:
      return Buffer.alloc(int(r, 4) * BS, int(r, 256));
    case 2:
      return Buffer.alloc(int(r, 3000), int(r, 256));
    case 3:
      return unmapList(Array.from({ length: int(r, 4) }, () => [edgy(r), pick(r, [0, 1, 8, int(r, 300)])] as [number, number]));
    case 4: {
      // A MODE SELECT(6) list around the caching page, with random damage.
      const list = Buffer.from([0, 0, 0, 0, 0x08, 0x12, 0x04, ...new Array<number>(17).fill(0)]);
      if (r() < 0.7) list[int(r, list.length)] = int(r, 256);
      return list;
    }
    default:
      return Buffer.alloc(Math.min(c.length > 8 ? 64 * BS : BS, int(r, 64) * BS));
  }
}

function checkCalls(f: Fixture, where: string): void {
  for (const call of f.dev.calls) {
    if (call.op === 'flush') continue;
    const { offset = -1, length = -1 } = call;
    const ok = offset >= 0 && length >= 0 && offset % BS === 0 && length % BS === 0 && offset + length <= f.dev.size;
    expect(ok, `${where}: ${call.op} ${offset}+${length}`).toBe(true);
    if (f.dev.readOnly) expect(call.op === 'write' || call.op === 'discard', `${where}: ${call.op} on read-only`).toBe(false);
  }
  f.dev.calls.length = 0;
}

describe('execute() under fuzzed CDBs', () => {
  it.each([
    ['thick', {}],
    ['thin', { thin: true }],
    ['read-only', { readOnly: true, thin: true }],
  ])('%s unit: always answers, sanely, within the device', async (name, device) => {
    const r = prng(SEED ^ name.length);
    const f = makeUnit({ size: BLOCKS * BS, ...device }, { limits: { maxTransferBlocks: 128, maxWriteSameBlocks: 200 } });
    let checkConditions = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const base = pick(r, seedCdbs(r));
      const c = r() < 0.8 ? mutate(r, base) : base;
      const data = dataOut(r, c);
      const expectedLength = pick(r, [0, 512, int(r, 1 << 20)]);
      const where = `seed ${SEED} ${name} #${i} cdb ${c.toString('hex')}`;
      // Occasionally the backend fails, so error paths are fuzzed too.
      if (r() < 0.03) f.dev.failNext(pick(r, ['read', 'write', 'flush', 'discard', 'extents'] as const));
      const res = await f.lu.execute(data ? { cdb: c, expectedLength, dataOut: data } : { cdb: c, expectedLength });
      expect([ScsiStatus.Good, ScsiStatus.CheckCondition], where).toContain(res.status);
      if (res.status === ScsiStatus.CheckCondition) {
        checkConditions++;
        expect(res.sense?.length, where).toBe(18);
        expect(res.sense![0]! & 0x7f, where).toBe(0x70);
        expect(res.sense![2]! & 0x0f, where).not.toBe(0);
        expect(res.dataIn, where).toBeUndefined();
      } else {
        expect(res.sense, where).toBeUndefined();
      }
      if (res.dataIn) expect(res.dataIn.length, where).toBeLessThanOrEqual(f.lu.dataTransfer(c).length);
      checkCalls(f, where);
    }
    // Both outcomes were exercised.
    expect(checkConditions).toBeGreaterThan(ITERATIONS / 10);
    expect(checkConditions).toBeLessThan(ITERATIONS);
  });
});

describe('absentLunResult under fuzzed CDBs', () => {
  it('always answers GOOD or CHECK CONDITION with 18 bytes of sense', () => {
    const r = prng(SEED);
    for (let i = 0; i < ITERATIONS; i++) {
      const c = mutate(r, pick(r, seedCdbs(r)));
      const res = absentLunResult(c, [0, 1, 2]);
      expect([ScsiStatus.Good, ScsiStatus.CheckCondition]).toContain(res.status);
      if (res.status === ScsiStatus.CheckCondition) expect(res.sense?.length).toBe(18);
      if (res.dataIn) expect(res.dataIn.length).toBeLessThanOrEqual(dataTransfer(c, BS).length);
    }
  });
});
