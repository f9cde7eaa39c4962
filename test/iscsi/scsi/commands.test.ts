/** The small SPC commands, REPORT LUNS, REPORT SUPPORTED OPERATION CODES, and the dispatch gate. */
import { describe, expect, it } from 'vitest';
import { absentLunResult } from '../../../src/iscsi/scsi/absent-lun.js';
import { ScsiStatus } from '../../../src/iscsi/scsi/types.js';
import { BS, cdb, expectGood, expectInvalidCdbField, expectSense, Key, makeUnit, Op, run } from './helpers.js';

describe('TEST UNIT READY, REQUEST SENSE, START STOP UNIT', () => {
  it('TEST UNIT READY is GOOD with no data', async () => {
    const r = await run(makeUnit().lu, cdb.testUnitReady());
    expectGood(r);
    expect(r.dataIn).toBeUndefined();
  });

  it('REQUEST SENSE returns 18 bytes of fixed-format NO SENSE, cut to the allocation length', async () => {
    const { lu } = makeUnit();
    const r = await run(lu, cdb.requestSense());
    expectGood(r);
    expect(r.dataIn!.length).toBe(18);
    expect(r.dataIn![0]).toBe(0x70);
    expect(r.dataIn![2]! & 0x0f).toBe(0);
    expect(r.dataIn![7]).toBe(10);
    expect([r.dataIn![12], r.dataIn![13]]).toEqual([0, 0]);
    expect((await run(lu, cdb.requestSense(8))).dataIn!.length).toBe(8);
  });

  it('REQUEST SENSE with DESC=1 is refused: we only produce fixed format', async () => {
    expectInvalidCdbField(await run(makeUnit().lu, cdb.requestSense(252, true)), 1, 0);
  });

  it('START STOP UNIT: a stop flushes, a start does not, NO_FLUSH is honoured, and the unit stays ready', async () => {
    const { lu, dev } = makeUnit();
    expectGood(await run(lu, cdb.startStop(0x00)));
    expect(dev.flushes).toBe(1);
    expectGood(await run(lu, cdb.startStop(0x04)));
    expectGood(await run(lu, cdb.startStop(0x01)));
    expectGood(await run(lu, cdb.startStop(0x21, true)));
    expect(dev.flushes).toBe(1);
    expectGood(await run(lu, cdb.testUnitReady()));
  });

  it('START STOP UNIT refuses a reserved POWER CONDITION', async () => {
    expectInvalidCdbField(await run(makeUnit().lu, cdb.startStop(0x40)), 4, 7);
  });
});

describe('REPORT LUNS', () => {
  it('lists the target LUNs with single-level addressing (peripheral below 256, flat above)', async () => {
    const { lu } = makeUnit({}, { identity: { luns: () => [0, 1, 300] } });
    const r = await run(lu, cdb.reportLuns());
    expectGood(r);
    const d = r.dataIn!;
    expect(d.readUInt32BE(0)).toBe(24);
    expect(d.subarray(8, 16).toString('hex')).toBe('0000000000000000');
    expect(d.subarray(16, 24).toString('hex')).toBe('0001000000000000');
    expect(d.subarray(24, 32).toString('hex')).toBe('412c000000000000');
  });

  it('SELECT REPORT 01h (well-known LUs only) lists none; 02h lists all; others are refused', async () => {
    const { lu } = makeUnit({}, { identity: { luns: () => [0, 1] } });
    expect((await run(lu, cdb.reportLuns(4096, 1))).dataIn!.readUInt32BE(0)).toBe(0);
    expect((await run(lu, cdb.reportLuns(4096, 2))).dataIn!.readUInt32BE(0)).toBe(16);
    expectInvalidCdbField(await run(lu, cdb.reportLuns(4096, 0x10)), 2);
  });

  it('a short allocation length still carries the full LUN LIST LENGTH', async () => {
    const { lu } = makeUnit({}, { identity: { luns: () => [0, 1, 2, 3] } });
    const r = await run(lu, cdb.reportLuns(16));
    expect(r.dataIn!.length).toBe(16);
    expect(r.dataIn!.readUInt32BE(0)).toBe(32);
  });
});

describe('REPORT SUPPORTED OPERATION CODES', () => {
  function descriptors(d: Buffer, rctd = false) {
    const size = rctd ? 20 : 8;
    const out: Array<{ opcode: number; sa: number; servactv: boolean; ctdp: boolean; cdbLength: number; timeoutLength: number }> = [];
    for (let at = 4; at < 4 + d.readUInt32BE(0); at += size) {
      out.push({
        opcode: d[at]!,
        sa: d.readUInt16BE(at + 2),
        servactv: (d[at + 5]! & 1) === 1,
        ctdp: (d[at + 5]! & 2) === 2,
        cdbLength: d.readUInt16BE(at + 6),
        timeoutLength: rctd ? d.readUInt16BE(at + 8) : 0,
      });
    }
    return out;
  }

  it('lists the commands we implement, with service actions flagged', async () => {
    const r = await run(makeUnit().lu, cdb.rsoc());
    expectGood(r);
    const list = descriptors(r.dataIn!);
    expect(list).toContainEqual({ opcode: 0x28, sa: 0, servactv: false, ctdp: false, cdbLength: 10, timeoutLength: 0 });
    expect(list).toContainEqual({ opcode: 0x9e, sa: 0x10, servactv: true, ctdp: false, cdbLength: 16, timeoutLength: 0 });
    expect(list.map((c) => c.opcode)).not.toContain(0x42); // no UNMAP on a thick unit
    expect(list.every((c) => c.servactv || c.sa === 0)).toBe(true);
    const thin = descriptors((await run(makeUnit({ thin: true }).lu, cdb.rsoc())).dataIn!);
    expect(thin.map((c) => c.opcode)).toContain(0x42);
  });

  it('with RCTD every descriptor carries a 10-byte command timeouts descriptor', async () => {
    const list = descriptors((await run(makeUnit().lu, cdb.rsoc({ rctd: true }))).dataIn!, true);
    expect(list.length).toBeGreaterThan(20);
    expect(list.every((c) => c.ctdp && c.timeoutLength === 0x0a)).toBe(true);
  });

  it('one command: READ(10) usage data shows DPO and FUA, matching MODE SENSE DPOFUA', async () => {
    const r = await run(makeUnit().lu, cdb.rsoc({ options: 1, opcode: Op.Read10 }));
    expectGood(r);
    const d = r.dataIn!;
    expect(d[1]! & 0x07).toBe(3); // supported
    expect(d.readUInt16BE(2)).toBe(10);
    expect(d[4]).toBe(0x28);
    expect(d[5]! & 0x18).toBe(0x18);
    expect(d[5]! & 0xe0).toBe(0); // no RDPROTECT
    expect(d.length).toBe(14);
  });

  it('one command by service action (02b), and an unsupported opcode reported as such', async () => {
    const { lu } = makeUnit();
    const rc16 = (await run(lu, cdb.rsoc({ options: 2, opcode: 0x9e, sa: 0x10 }))).dataIn!;
    expect(rc16[1]! & 0x07).toBe(3);
    expect([rc16[4], rc16[5]]).toEqual([0x9e, 0x1f]);
    const unsupported = (await run(lu, cdb.rsoc({ options: 1, opcode: 0x5e }))).dataIn!;
    expect(unsupported[1]! & 0x07).toBe(1);
  });

  it('refuses 01b for an opcode with service actions and 02b for one without', async () => {
    const { lu } = makeUnit();
    expectInvalidCdbField(await run(lu, cdb.rsoc({ options: 1, opcode: 0x9e })), 2, 2);
    expectInvalidCdbField(await run(lu, cdb.rsoc({ options: 2, opcode: 0x28 })), 2, 2);
    expectInvalidCdbField(await run(lu, cdb.rsoc({ options: 4 })), 2, 2);
  });
});

describe('the dispatch gate', () => {
  it('an unknown opcode is INVALID COMMAND OPERATION CODE pointing at byte 0', async () => {
    const { lu } = makeUnit();
    for (const op of [0x01, 0x04, 0x1e, 0x37, 0x7f, 0x89, 0xc0, 0xff]) {
      const s = expectSense(await run(lu, Buffer.from([op, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), Key.Illegal, 0x20);
      expect(s.fieldPointer).toBe(0);
    }
    expectSense(await run(lu, Buffer.alloc(0)), Key.Illegal, 0x20);
  });

  it('an unknown service action is INVALID FIELD IN CDB at the SERVICE ACTION field', async () => {
    const { lu } = makeUnit();
    expectInvalidCdbField(await run(lu, Buffer.from([0x9e, 0x13, ...new Array<number>(14).fill(0)])), 1, 4);
    expectInvalidCdbField(await run(lu, Buffer.from([0xa3, 0x0a, ...new Array<number>(10).fill(0)])), 1, 4);
  });

  it('a CDB shorter than its command is refused', async () => {
    expectSense(await run(makeUnit().lu, Buffer.from([0x28, 0, 0, 0])), Key.Illegal, 0x24);
  });

  it('reserved bits are refused with a field pointer', async () => {
    const { lu } = makeUnit();
    expectInvalidCdbField(await run(lu, cdb.rw10(Op.Read10, 0, 1, { byte1: 0x01 })), 1, 0);
    const tur = cdb.testUnitReady();
    tur[3] = 0x10;
    expectInvalidCdbField(await run(lu, tur), 3, 4);
  });

  it('an unexpected error becomes HARDWARE ERROR / INTERNAL TARGET FAILURE and is reported to the hook', async () => {
    const seen: unknown[] = [];
    const { lu } = makeUnit(
      {},
      {
        identity: {
          luns: () => {
            throw new TypeError('bug');
          },
        },
        onInternalError: (e) => seen.push(e),
      },
    );
    expectSense(await run(lu, cdb.reportLuns()), Key.Hardware, 0x44);
    expect(seen).toHaveLength(1);
  });

  it('validate() refuses a doomed command before any data moves, and passes a good one', async () => {
    const ro = makeUnit({ readOnly: true }).lu;
    const refused = ro.validate(cdb.rw10(Op.Write10, 0, 1));
    expect(refused?.status).toBe(ScsiStatus.CheckCondition);
    expect(refused?.sense?.[2]).toBe(Key.DataProtect);
    const { lu } = makeUnit();
    expect(lu.validate(cdb.rw10(Op.Write10, 0, 1))).toBeUndefined();
    expect(lu.validate(cdb.rw10(Op.Write10, 1024, 1))?.sense?.[12]).toBe(0x21);
    expect(lu.validate(cdb.rw10(Op.Verify10, 0, 1, { byte1: 0x04 }))?.sense?.[12]).toBe(0x24);
  });

  it('commands run concurrently without mixing their data', async () => {
    const { lu, dev } = makeUnit();
    const writes = Array.from({ length: 32 }, (_, i) => run(lu, cdb.rw10(Op.Write10, i * 4, 4), Buffer.alloc(4 * BS, i + 1)));
    (await Promise.all(writes)).forEach(expectGood);
    const reads = await Promise.all(Array.from({ length: 32 }, (_, i) => run(lu, cdb.rw10(Op.Read10, i * 4, 4))));
    reads.forEach((r, i) => expect(r.dataIn!.every((x) => x === i + 1)).toBe(true));
    expect(dev.callsOf('write')).toHaveLength(32);
  });
});

describe('absent LUN', () => {
  it('INQUIRY says "no logical unit here" (qualifier 011b, type 1Fh)', () => {
    const r = absentLunResult(cdb.inquiry(96), [1]);
    expect(r.status).toBe(ScsiStatus.Good);
    expect(r.dataIn![0]).toBe(0x7f);
    expect(r.dataIn!.length).toBe(36);
    expect(r.dataIn![4]).toBe(31);
  });

  it('REPORT LUNS lists the target LUNs whatever LUN it is sent to', () => {
    const r = absentLunResult(cdb.reportLuns(), [1, 2]);
    expect(r.dataIn!.readUInt32BE(0)).toBe(16);
    expect(r.dataIn!.subarray(8, 10).toString('hex')).toBe('0001');
  });

  it('REQUEST SENSE returns LOGICAL UNIT NOT SUPPORTED as data; other commands fail with it', () => {
    const sense = absentLunResult(cdb.requestSense(), [1]);
    expect(sense.status).toBe(ScsiStatus.Good);
    expect([sense.dataIn![2]! & 0x0f, sense.dataIn![12]]).toEqual([Key.Illegal, 0x25]);
    for (const c of [cdb.testUnitReady(), cdb.rw10(Op.Read10, 0, 1), cdb.inquiry(255, true, 0x83), Buffer.alloc(0)]) {
      expectSense(absentLunResult(c, [1]), Key.Illegal, 0x25);
    }
  });
});
