// The connection's protocol behaviours (RFC 7143) as an initiator sees them, through the test
// initiator of test/support/iscsi-initiator.ts (its own codec, framing and CRC32C): CmdSN windowing and
// ordering, R2T and Data-In sizing, NOP both ways, login timeout, task management, Text, Logout, SNACK
// and digests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IscsiInitiator,
  NO_TAG,
  Opcode,
  TMF,
  cdb,
  dataOutPdu,
  nopOutPdu,
  scsiCommandPdu,
  sleep,
  snackPdu,
  within,
  type InitiatorOptions,
  type TargetPdu,
} from '../support/iscsi-initiator.js';
import { startTestTarget, type TestTarget } from '../support/iscsi-target.js';
import { prng } from '../support/prng.js';

const T1 = 'iqn.2026-01.io.hiveboot:conn-t1';
const T2 = 'iqn.2026-01.io.hiveboot:conn-t2';
const INI = 'iqn.2026-01.io.hiveboot:conn-ini';
const INI2 = 'iqn.2026-01.io.hiveboot:conn-ini2';
const T2_CHAP = { user: 'hb-conn-t2', secret: 'connsecret02' };

function pattern(seed: number, bytes: number): Buffer {
  const random = prng(seed);
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = Math.floor(random() * 256);
  return b;
}

async function eventually(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
}

/** Whether a promise settles within ms (without failing the test if it rejects later). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await sleep(ms);
  return settled;
}

describe('iSCSI connection behaviours', () => {
  let dir: string;
  let target: TestTarget;
  let quick: TestTarget;
  const open: IscsiInitiator[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hiveboot-conn-'));
    target = await startTestTarget({
      backing: { kind: 'file', path: join(dir, 'disk.img'), size: 32 << 20 },
      targets: [
        { name: T1, acl: [INI] },
        { name: T2, acl: [INI2], chap: T2_CHAP },
      ],
      // Let an initiator that asks for it have several R2Ts outstanding, or send unsolicited Data-Out.
      limits: { maxOutstandingR2T: 8, initialR2T: false },
    });
    // Short timers for the ping, dead-initiator and login-timeout tests.
    quick = await startTestTarget({
      backing: { kind: 'file', path: join(dir, 'quick.img'), size: 4 << 20 },
      targets: [{ name: T1, acl: [INI] }],
      connection: { nopInterval: 200, nopTimeout: 600, loginTimeout: 700 },
    });
  });

  afterAll(async () => {
    for (const i of open) i.destroy();
    await target?.stop();
    await quick?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function login(extra: Partial<InitiatorOptions> = {}, on: TestTarget = target): Promise<IscsiInitiator> {
    const ini = await IscsiInitiator.open({ port: on.port, initiatorName: INI, targetName: T1, isid: randomIsid(), ...extra });
    open.push(ini);
    return ini;
  }

  let isidCounter = 1;
  function randomIsid(): Buffer {
    const b = Buffer.from([0x80, 0xc0, 0x11, 0x22, 0, 0]);
    b.writeUInt16BE(isidCounter++, 4);
    return b;
  }

  describe('CmdSN window (RFC 7143 §4.2.2.1)', () => {
    it('announces a window and ignores commands outside it, old or too new, without answering', async () => {
      const ini = await login();
      const first = await ini.nop();
      const exp = ini.cmdSN;
      expect(first.expCmdSN).toBe(exp);
      const window = ((first.maxCmdSN - first.expCmdSN) >>> 0) + 1;
      expect(window).toBeGreaterThan(1);

      const tooNew = ini.sendNop({ cmdSN: (exp + window + 10) >>> 0 });
      const old = ini.sendNop({ cmdSN: (exp - 1) >>> 0 });
      const wayOff = ini.sendNop({ cmdSN: (exp + 0x80000000) >>> 0 });
      expect(await settlesWithin(Promise.race([tooNew.reply, old.reply, wayOff.reply]), 400)).toBe(false);

      // The window did not move: the next in-order command is answered and ExpCmdSN advances by one.
      const next = await ini.nop();
      expect(next.expCmdSN).toBe((exp + 1) >>> 0);
      expect(await settlesWithin(Promise.race([tooNew.reply, old.reply, wayOff.reply]), 200)).toBe(false);
      expect(ini.rejects).toEqual([]);
      expect(ini.violations).toEqual([]);
    });

    it('holds commands that arrive ahead of ExpCmdSN and runs them in CmdSN order', async () => {
      const ini = await login();
      const c = ini.cmdSN;
      const third = ini.sendNop({ cmdSN: (c + 3) >>> 0, data: Buffer.from('third') });
      const data = pattern(11, 4096);
      const write = ini.start(cdb.write10(64, 8), { data, cmdSN: (c + 1) >>> 0 });
      // ORDERED (SAM-5): a read queued behind the write must see its data.
      const read = ini.start(cdb.read10(64, 8), { readLength: 4096, cmdSN: (c + 2) >>> 0, attr: 2 });
      expect(await settlesWithin(Promise.race([third.reply, write.done, read.done]), 300)).toBe(false);

      // An immediate command is not held by the gap (§3.2.2.1).
      const immediate = await ini.nop(Buffer.from('now'), { immediate: true });
      expect(immediate.data.toString()).toBe('now');

      const firstNop = ini.sendNop({ cmdSN: c, data: Buffer.from('first') });
      ini.cmdSN = (c + 4) >>> 0;
      const [a, w, r, b] = await Promise.all([firstNop.reply, write.done, read.done, third.reply]);
      expect(w.status).toBe(0);
      expect(r.status).toBe(0);
      expect(r.data.equals(data)).toBe(true);
      expect(a.data.toString()).toBe('first');
      expect(b.data.toString()).toBe('third');
      // The NOPs (answered as they are delivered) come back in CmdSN order, whatever order they came in.
      const nops = ini.received.filter((p) => p.opcode === Opcode.NopIn && (p.itt === firstNop.itt || p.itt === third.itt)).map((p) => p.itt);
      expect(nops).toEqual([firstNop.itt, third.itt]);
      expect(b.expCmdSN).toBe((c + 4) >>> 0);
      expect(ini.violations).toEqual([]);
    });
  });

  describe('data transfer sizing', () => {
    it('never has more R2Ts outstanding than MaxOutstandingR2T, none longer than MaxBurstLength', async () => {
      for (const [maxOutstandingR2T, maxBurstLength] of [
        [1, 16384],
        [3, 16384],
        [4, 8192],
      ] as const) {
        const ini = await login({ maxOutstandingR2T, maxBurstLength, firstBurstLength: 4096, immediateData: false, initialR2T: true });
        expect(ini.params.maxOutstandingR2T).toBe(maxOutstandingR2T);
        expect(ini.params.maxBurstLength).toBe(maxBurstLength);
        const data = pattern(maxOutstandingR2T, 192 * 1024);
        // Answer each R2T late, so the target has every chance to send more than it may.
        const w = await ini.write(1024, data, { r2tDelayMs: 15 });
        expect(w.maxOutstandingR2T).toBeLessThanOrEqual(maxOutstandingR2T);
        expect(w.maxOutstandingR2T).toBe(maxOutstandingR2T); // and it does use the window it was given
        expect(Math.max(...w.r2ts.map((r) => r.length))).toBeLessThanOrEqual(maxBurstLength);
        // The R2Ts cover the data exactly once, in order.
        let at = 0;
        for (const r of w.r2ts) {
          expect(r.offset).toBe(at);
          at += r.length;
        }
        expect(at).toBe(data.length);
        expect((await ini.read(1024, data.length / 512)).equals(data)).toBe(true);
        expect(ini.violations).toEqual([]);
        await ini.logout();
      }
    });

    it('solicits only what immediate and unsolicited data did not carry (FirstBurstLength)', async () => {
      const ini = await login({ immediateData: true, initialR2T: false, firstBurstLength: 16384, maxBurstLength: 65536 });
      expect(ini.params.initialR2T).toBe(false);
      const data = pattern(5, 100 * 1024);
      const w = await ini.write(2048, data);
      expect(w.r2ts[0]!.offset).toBe(16384);
      expect(w.r2ts.reduce((n, r) => n + r.length, 0)).toBe(data.length - 16384);
      expect((await ini.read(2048, data.length / 512, { sixteen: true })).equals(data)).toBe(true);
    });

    it('sends Data-In no larger than our MaxRecvDataSegmentLength, in sequences no longer than MaxBurstLength', async () => {
      for (const [mrdsl, maxBurstLength] of [
        [4096, 262144],
        [3000, 8192],
        [512, 4096],
        [65536, 16384],
      ] as const) {
        const ini = await login({ maxRecvDataSegmentLength: mrdsl, maxBurstLength });
        const data = pattern(mrdsl, 64 * 1024);
        await ini.write(4096, data);
        const r = await ini.command(cdb.read10(4096, 128), { readLength: data.length });
        expect(r.status).toBe(0);
        expect(r.data.equals(data)).toBe(true);
        expect(Math.max(...r.dataIn.map((d) => d.length))).toBeLessThanOrEqual(mrdsl);
        // Offsets are contiguous, DataSN counts up, and F closes every burst of at most MaxBurstLength.
        let offset = 0;
        let sequence = 0;
        for (const [i, d] of r.dataIn.entries()) {
          expect(d.dataSN).toBe(i);
          expect(d.offset).toBe(offset);
          offset += d.length;
          sequence += d.length;
          expect(sequence).toBeLessThanOrEqual(maxBurstLength);
          if (d.final) sequence = 0;
        }
        expect(r.dataIn.at(-1)!.final && r.dataIn.at(-1)!.status).toBe(true);
        expect(ini.violations).toEqual([]);
        await ini.logout();
      }
    });
  });

  describe('NOP', () => {
    it('echoes a NOP-Out with its data, ITT and a reserved TTT', async () => {
      const ini = await login();
      for (const data of [Buffer.alloc(0), Buffer.from('ping'), pattern(3, 8191)]) {
        const reply = await ini.nop(data);
        expect(reply.opcode).toBe(Opcode.NopIn);
        expect(reply.ttt).toBe(NO_TAG);
        expect(reply.data.equals(data)).toBe(true);
      }
      expect(ini.violations).toEqual([]);
    });

    it('pings an idle initiator with NOP-In and keeps a connection that answers', async () => {
      const ini = await login({}, quick);
      await sleep(1500);
      expect(ini.pings).toBeGreaterThan(0);
      const ping = ini.received.find((p) => p.opcode === Opcode.NopIn && p.itt === NO_TAG) as TargetPdu;
      expect(ping.ttt).not.toBe(NO_TAG); // a ping asks for an answer
      expect(ini.isClosed).toBe(false);
      expect((await ini.nop(Buffer.from('alive'))).data.toString()).toBe('alive');
      expect(ini.violations).toEqual([]);
    });

    it('drops an initiator that does not answer its pings', async () => {
      const ini = await login({ answerPings: false }, quick);
      await within(ini.closed, 8000, 'target closing a dead initiator');
      expect(ini.pings).toBeGreaterThan(0);
      await eventually(() => !quick.server.sessions.list().some((s) => s.isid === ini.options.isid!.toString('hex')), 5000, 'session forgotten');
    });

    it('drops an initiator that dies in the middle of a write (R2T open, nothing more coming)', async () => {
      const ini = await login({ answerPings: false }, quick);
      const h = ini.start(cdb.write10(0, 64), { data: pattern(8, 32768), noUnsolicited: true, holdR2T: true });
      await within(h.firstR2T, 5000, 'R2T');
      // The initiator is gone (power cut): it never sends the data, never answers a ping.
      await within(ini.closed, 8000, 'target closing a connection whose initiator died mid-write');
      expect(ini.pings).toBeGreaterThan(0);
    });
  });

  describe('login timeout', () => {
    it('closes a connection that never logs in, or stalls in the middle of login', async () => {
      const silent = await IscsiInitiator.connect({ port: quick.port, initiatorName: INI, targetName: T1 });
      open.push(silent);
      await within(silent.closed, 8000, 'close of a silent connection');

      // A login that starts with CHAP-style T=0 and then stops.
      const stalled = await IscsiInitiator.connect({ port: quick.port, initiatorName: INI, targetName: T1 });
      open.push(stalled);
      stalled.sendRaw(
        Buffer.concat([
          (() => {
            const text = Buffer.from(`InitiatorName=${INI}\0SessionType=Normal\0TargetName=${T1}\0AuthMethod=None\0`);
            const bhs = Buffer.alloc(48);
            bhs[0] = 0x43;
            bhs[1] = 0x01; // T=0, CSG 0, NSG 1
            bhs.writeUIntBE(text.length, 5, 3);
            bhs[8] = 0x80;
            return Buffer.concat([bhs, text, Buffer.alloc((4 - (text.length % 4)) % 4)]);
          })(),
        ]),
      );
      await within(stalled.closed, 8000, 'close of a stalled login');
      expect(stalled.received.filter((p) => p.opcode === Opcode.LoginResponse)).toHaveLength(1);
    });

    it('does not close a session that completed its login in time', async () => {
      const ini = await login({}, quick);
      await sleep(1200);
      expect(ini.isClosed).toBe(false);
      expect((await ini.nop()).opcode).toBe(Opcode.NopIn);
    });
  });

  describe('task management', () => {
    it('ABORT TASK ends a write waiting for Data-Out: no response, nothing written, the session goes on', async () => {
      const ini = await login();
      const before = pattern(21, 8192);
      await ini.write(6000, before);
      const h = ini.start(cdb.write10(6000, 16), { data: pattern(22, 8192), noUnsolicited: true, holdR2T: true });
      const r2t = await within(h.firstR2T, 5000, 'R2T for the write');
      expect(r2t.length).toBe(8192);

      expect(await ini.taskManagement(TMF.AbortTask, { refItt: h.itt, refCmdSN: h.cmdSN })).toBe(0);
      expect(await settlesWithin(h.done, 300)).toBe(false);
      // Data for the aborted task, arriving late, changes nothing and costs nothing.
      h.answer(r2t);
      expect((await ini.nop(Buffer.from('still here'))).data.toString()).toBe('still here');
      expect((await ini.read(6000, 16)).equals(before)).toBe(true);
      expect(await settlesWithin(h.done, 100)).toBe(false);
      expect(ini.rejects).toEqual([]);

      // A task that never existed, referenced by a CmdSN not yet received: "task does not exist".
      expect(await ini.taskManagement(TMF.AbortTask, { refItt: 0x7abcdef0, refCmdSN: (ini.cmdSN + 5) >>> 0 })).toBe(1);
      expect(ini.violations).toEqual([]);
    });

    it('ABORT TASK of a command the target discarded (data digest error) fills its CmdSN gap (§11.5.1 b)', async () => {
      const ini = await login({ headerDigest: true, dataDigest: true });
      const c = ini.cmdSN;
      // The WRITE with immediate data arrives with a bad data digest: rejected, its CmdSN never seen.
      const itt = ini.allocateItt();
      const data = pattern(51, 4096);
      ini.takeCmdSN(false);
      ini.sendPdu(scsiCommandPdu({ itt, cmdSN: c, expStatSN: ini.expStatSN, cdb: cdb.write10(6500, 8), edtl: 4096, write: true, dataLength: 4096 }), data, { data: true });
      // The next command waits behind the gap.
      const next = ini.sendNop({ cmdSN: ini.takeCmdSN(false), data: Buffer.from('behind the gap') });
      expect(await settlesWithin(next.reply, 300)).toBe(false);
      expect(ini.rejects.map((r) => [r.reason, r.opcode])).toEqual([[0x02, Opcode.ScsiCommand]]);
      // The initiator gives up on the write: the target must consider its CmdSN received.
      expect(await ini.taskManagement(TMF.AbortTask, { refItt: itt, refCmdSN: c })).toBe(0);
      expect((await within(next.reply, 5000, 'the command behind the gap')).data.toString()).toBe('behind the gap');
      expect((await ini.nop()).expCmdSN).toBe(ini.cmdSN);
      expect(ini.violations).toEqual([]);
    });

    it('LOGICAL UNIT RESET ends every task of the LUN and the LUN keeps serving', async () => {
      const ini = await login();
      const before = pattern(31, 16384);
      await ini.write(7000, before);
      const a = ini.start(cdb.write10(7000, 16), { data: pattern(32, 8192), noUnsolicited: true, holdR2T: true });
      const b = ini.start(cdb.write10(7016, 16), { data: pattern(33, 8192), noUnsolicited: true, holdR2T: true });
      await within(Promise.all([a.firstR2T, b.firstR2T]), 5000, 'R2Ts');
      expect(await ini.taskManagement(TMF.LunReset, { lun: 0 })).toBe(0);
      expect(await settlesWithin(Promise.race([a.done, b.done]), 300)).toBe(false);
      expect((await ini.testUnitReady()).status).toBe(0);
      expect((await ini.read(7000, 32)).equals(before)).toBe(true);
      // A LUN that does not exist.
      expect(await ini.taskManagement(TMF.LunReset, { lun: 9 })).toBe(2);
      expect(ini.violations).toEqual([]);
    });
  });

  describe('Text, Logout, SNACK', () => {
    it('answers SendTargets with the session target in a normal session and the initiator\'s targets in discovery', async () => {
      const ini = await login();
      expect(await ini.text([['SendTargets', 'All']])).toEqual([
        ['TargetName', T1],
        ['TargetAddress', `127.0.0.1:${target.port},1`],
      ]);
      const discovery = await IscsiInitiator.open({ port: target.port, initiatorName: INI2, sessionType: 'Discovery', chap: T2_CHAP });
      open.push(discovery);
      expect(await discovery.text([['SendTargets', 'All']])).toEqual([
        ['TargetName', T2],
        ['TargetAddress', `127.0.0.1:${target.port},1`],
      ]);
      // A SCSI command has no place in a discovery session.
      const r = await discovery.command(cdb.testUnitReady());
      expect(r.reject).toBeDefined();
      expect(discovery.violations).toEqual([]);
    });

    it('Logout answers, closes the connection and forgets the session', async () => {
      const ini = await login();
      const isid = ini.options.isid!.toString('hex');
      expect(target.server.sessions.list().some((s) => s.isid === isid)).toBe(true);
      expect(await ini.logout()).toBe(0);
      await within(ini.closed, 5000, 'close after logout');
      await eventually(() => !target.server.sessions.list().some((s) => s.isid === isid), 5000, 'session forgotten');
    });

    it('rejects a SNACK (ErrorRecoveryLevel 0) and keeps the connection', async () => {
      const ini = await login();
      ini.sendPdu(snackPdu({ itt: 0x1234, expStatSN: ini.expStatSN, begRun: 0, runLength: 0 }));
      expect((await ini.nop(Buffer.from('after snack'))).data.toString()).toBe('after snack');
      expect(ini.rejects).toHaveLength(1);
      expect(ini.rejects[0]!.opcode).toBe(Opcode.Snack);
      expect([0x04, 0x05]).toContain(ini.rejects[0]!.reason);
    });
  });

  describe('CRC32C digests', () => {
    it('moves data correctly with header and data digests checked both ways', async () => {
      const ini = await login({ headerDigest: true, dataDigest: true, maxRecvDataSegmentLength: 16384 });
      expect(ini.params.headerDigest && ini.params.dataDigest).toBe(true);
      const data = pattern(41, 300 * 1024 + 512);
      await ini.write(9000, data);
      expect((await ini.read(9000, data.length / 512)).equals(data)).toBe(true);
      expect((await ini.nop(Buffer.from('odd'))).data.toString()).toBe('odd'); // padded, digest over padding
      expect(ini.violations).toEqual([]);
    });

    it('rejects a non-data PDU whose data digest is wrong; the retry with the same CmdSN is answered', async () => {
      const ini = await login({ headerDigest: true, dataDigest: true });
      const itt = ini.allocateItt();
      const cmdSN = ini.takeCmdSN(false);
      ini.sendPdu(nopOutPdu({ itt, cmdSN, expStatSN: ini.expStatSN, dataLength: 8 }), Buffer.from('corrupt!'), { data: true });
      await within(
        (async () => {
          while (ini.rejects.length === 0) await sleep(10);
        })(),
        5000,
        'Reject',
      );
      expect(ini.rejects.map((r) => [r.reason, r.itt])).toEqual([[0x02, itt]]);
      // §7.8: the PDU was discarded, its CmdSN not consumed; the initiator retries it as it was.
      const retry = ini.expect(itt, 5000, 'NOP-In for the retry');
      ini.sendPdu(nopOutPdu({ itt, cmdSN, expStatSN: ini.expStatSN, dataLength: 8 }), Buffer.from('correct!'));
      expect((await retry).data.toString()).toBe('correct!');
      expect((await ini.nop(Buffer.from('next'))).data.toString()).toBe('next');
      expect(ini.violations).toEqual([]);
    });

    it('ends a write whose Data-Out had a bad data digest with CHECK CONDITION, after all its data', async () => {
      const ini = await login({ headerDigest: true, dataDigest: true, maxOutstandingR2T: 2, maxBurstLength: 4096, immediateData: false });
      const before = pattern(42, 8192);
      await ini.write(9800, before);
      const data = pattern(43, 8192);
      const h = ini.start(cdb.write10(9800, 16), { data, holdR2T: true });
      await within(
        (async () => {
          while (h.r2ts.length < 2) await sleep(5);
        })(),
        5000,
        'two R2Ts',
      );
      const [r1, r2] = h.r2ts as [typeof h.r2ts[0], typeof h.r2ts[0]];
      ini.sendPdu(dataOutPdu({ itt: h.itt, ttt: r1.ttt, expStatSN: ini.expStatSN, dataSN: 0, bufferOffset: r1.offset, final: true, dataLength: r1.length }), data.subarray(r1.offset, r1.offset + r1.length), { data: true });
      // §7.8 b): the target waits for the rest of the data before it answers.
      expect(await settlesWithin(h.done, 300)).toBe(false);
      h.answer(r2);
      const outcome = await within(h.done, 5000, 'the write to end');
      expect(outcome.status).toBe(2);
      expect(outcome.sense![2]! & 0x0f).toBe(0x0b); // ABORTED COMMAND
      expect(ini.rejects.map((r) => r.reason)).toEqual([0x02]);
      expect((await ini.read(9800, 16)).equals(before)).toBe(true);
      expect(ini.violations).toEqual([]);
    });

    it('closes the connection on a wrong header digest', async () => {
      const ini = await login({ headerDigest: true });
      ini.sendPdu(nopOutPdu({ itt: 77, cmdSN: ini.cmdSN, expStatSN: ini.expStatSN }), undefined, { header: true });
      await within(ini.closed, 5000, 'close after a header digest error');
      expect(ini.received.some((p) => p.itt === 77)).toBe(false);
    });
  });
});
