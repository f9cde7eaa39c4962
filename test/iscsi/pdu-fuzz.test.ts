// The target process against hostile bytes: every opcode before login, mutated and truncated login
// PDUs, absurd lengths (DataSegmentLength 16 MiB, TotalAHSLength 255), random streams, pipelined
// garbage after a valid login, and wrong digests — from many connections at once, every case derived
// from a seed (test/support/prng.ts) so a failure can be replayed.
//
// The target runs as a child process, so "it did not crash" and "its memory stayed bounded" are facts
// about a real process (/proc/<pid>), and a well-behaved session on another target of the same process
// keeps writing and reading back verified data the whole time, alongside libiscsi's iscsi-inq.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IscsiInitiator,
  NO_TAG,
  Opcode,
  cdb,
  dataOutPdu,
  framePdu,
  loginPdu,
  logoutPdu,
  nopOutPdu,
  scsiCommandPdu,
  sleep,
  snackPdu,
  textPdu,
  textSegment,
  tmfPdu,
  type TargetPdu,
} from '../support/iscsi-initiator.js';
import { spawnTestTarget, type ChildTarget } from '../support/iscsi-target.js';
import { prng } from '../support/prng.js';
import { BLOCK, MiB, fdCount, isAlive, memoryOf, readStamp, stampRange } from './workload.js';

const run = promisify(execFile);

const FUZZ_TARGET = 'iqn.2026-01.io.hiveboot:fuzz-target';
const GOOD_TARGET = 'iqn.2026-01.io.hiveboot:fuzz-good';
const FUZZER = 'iqn.2026-01.io.hiveboot:fuzzer';
const GOOD = 'iqn.2026-01.io.hiveboot:fuzz-good-initiator';
const INQ = 'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-inq';
const GOOD_CHAP = { user: 'hb-fuzz-good', secret: 'fuzzgoodsec1' };
const DISK = 16 * MiB;

/** Cases per kind of connection; every PDU sent after a login counts as one case. */
const CONNECTIONS = { prelogin: 256, login: 700, random: 300, lengths: 40, garbage: 260, digests: 120 };
const WORKERS = 8;
/**
 * Peak RSS may grow this much over the warmed-up process: about three times what a run takes, and below
 * what buffering one absurd 16 MiB segment on each of the WORKERS connections at once would cost.
 */
const RSS_GROWTH_LIMIT = 96 * MiB;

type Rnd = () => number;
const int = (r: Rnd, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rnd, xs: readonly T[]): T => xs[int(r, xs.length)]!;
const bytes = (r: Rnd, n: number) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = int(r, 256);
  return b;
};

function pad(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((4 - (data.length & 3)) & 3)]);
}

/** A whole PDU (no digests) with the data segment length already in its header. */
function raw(bhs: Buffer, data: Buffer = Buffer.alloc(0)): Buffer {
  bhs.writeUIntBE(data.length, 5, 3);
  return Buffer.concat([bhs, pad(data)]);
}

function validLogin(r: Rnd): Buffer {
  const isid = Buffer.from([0x80, 0xf0, 0, 0, 0, 0]);
  isid.writeUInt32BE(int(r, 0xffffffff), 2);
  const stage = int(r, 2);
  const text =
    stage === 0
      ? textSegment({ InitiatorName: FUZZER, SessionType: 'Normal', TargetName: FUZZ_TARGET, AuthMethod: 'None' })
      : textSegment({ InitiatorName: pick(r, [FUZZER, GOOD]), SessionType: pick(r, ['Normal', 'Discovery']), TargetName: pick(r, [FUZZ_TARGET, GOOD_TARGET]), HeaderDigest: 'None', MaxRecvDataSegmentLength: '8192' });
  return raw(loginPdu({ itt: int(r, 1000), isid, tsih: pick(r, [0, 0, 0, 1, 2, 0xffff]), cmdSN: int(r, 0xffffffff), expStatSN: 0, transit: r() < 0.8, csg: stage, nsg: stage === 0 ? 1 : 3, dataLength: 0 }), text);
}

/** Byte-level mutation of a PDU: bit flips, random bytes, extreme 32-bit fields, lengths, truncation. */
function mutate(r: Rnd, pdu: Buffer): Buffer {
  const out = Buffer.from(pdu);
  const n = 1 + int(r, 4);
  for (let i = 0; i < n; i++) {
    switch (int(r, 7)) {
      case 0: {
        const at = int(r, out.length);
        out[at]! ^= 1 << int(r, 8);
        break;
      }
      case 1:
        out[int(r, Math.min(48, out.length))] = int(r, 256);
        break;
      case 2: {
        const at = 4 * int(r, 12);
        if (at + 4 <= out.length) out.writeUInt32BE(pick(r, [0, 0xffffffff, 0x7fffffff, 0x80000000, int(r, 0xffffffff)]), at);
        break;
      }
      case 3:
        out.writeUIntBE(pick(r, [0, 1, 47, 48, 8192, 8193, 65536, 262145, 0xffffff, int(r, 0x1000000)]), 5, 3);
        break;
      case 4:
        out[4] = pick(r, [0, 1, 4, 255, int(r, 256)]);
        break;
      case 5:
        out[0] = (out[0]! & 0xc0) | int(r, 64);
        break;
      case 6:
        return out.subarray(0, int(r, out.length));
    }
  }
  return out;
}

/** What the target sent before a login completed (a final Login Response: status 0, T=1, NSG 3). */
function beforeFullFeature(pdus: TargetPdu[]): TargetPdu[] {
  const done = pdus.findIndex((p) => p.opcode === Opcode.LoginResponse && p.bhs[36] === 0 && (p.flags & 0x83) === 0x83);
  return done < 0 ? pdus : pdus.slice(0, done);
}

interface CaseResult {
  closed: boolean;
  pdus: TargetPdu[];
  violations: string[];
}

/**
 * Sends bytes on a fresh connection and watches: until the target closes or goes quiet, or — when the
 * target must close — until it does (5 s at most: the machine is busy with the other workers).
 */
async function rawCase(port: number, send: Buffer[], mustClose = false): Promise<CaseResult> {
  const ini = await IscsiInitiator.connect({ port, initiatorName: FUZZER });
  try {
    for (const b of send) ini.sendRaw(b);
    if (mustClose) await Promise.race([ini.closed, sleep(5000)]);
    else await settle(ini, 120);
    return { closed: ini.isClosed, pdus: [...ini.received], violations: [...ini.violations] };
  } finally {
    ini.destroy();
  }
}

/** Waits until the connection is closed or nothing arrived for quietMs (at most 3 s). */
async function settle(ini: IscsiInitiator, quietMs: number): Promise<void> {
  const deadline = Date.now() + 3000;
  let seen = -1;
  while (!ini.isClosed && Date.now() < deadline) {
    if (ini.received.length === seen) break;
    seen = ini.received.length;
    await Promise.race([ini.closed, sleep(quietMs)]);
  }
}

/** A request PDU of a random kind with plausible fields, for the session `ini`. */
function requestTemplate(r: Rnd, ini: IscsiInitiator): { bhs: Buffer; data?: Buffer } {
  const itt = pick(r, [int(r, 64), int(r, 0xffffffff), NO_TAG]);
  const cmdSN = pick(r, [ini.cmdSN, ini.cmdSN + int(r, 4), int(r, 0xffffffff)]) >>> 0;
  const expStatSN = ini.expStatSN;
  switch (int(r, 10)) {
    case 0:
    case 1: {
      const lba = pick(r, [0, int(r, DISK / BLOCK), DISK / BLOCK - 1, 0xffffffff]);
      const blocks = pick(r, [0, 1, 8, int(r, 65536)]);
      const c = pick(r, [cdb.read10(lba, blocks), cdb.write10(lba, blocks), cdb.read16(lba, blocks), cdb.write16(lba, blocks), cdb.testUnitReady(), cdb.inquiry(int(r, 65536)), cdb.synchronizeCache10(), bytes(r, 16)]);
      const write = c[0] === 0x2a || c[0] === 0x8a;
      const edtl = pick(r, [blocks * BLOCK, int(r, 1 << 20), 0xffffffff, 0]);
      const data = write && r() < 0.6 ? bytes(r, Math.min(edtl, int(r, 9000))) : undefined;
      return {
        bhs: scsiCommandPdu({ itt, cmdSN, expStatSN, cdb: c, edtl, lun: pick(r, [0, 0, 1, 300]), read: !write || r() < 0.1, write, final: r() < 0.8, immediate: r() < 0.2, attr: int(r, 8), dataLength: data?.length ?? 0 }),
        ...(data ? { data } : {}),
      };
    }
    case 2: {
      const data = bytes(r, pick(r, [0, 512, int(r, 9000)]));
      return { bhs: dataOutPdu({ itt, ttt: pick(r, [NO_TAG, int(r, 16)]), expStatSN, dataSN: int(r, 4), bufferOffset: pick(r, [0, 512, int(r, 1 << 20), 0xfffffe00]), final: r() < 0.5, dataLength: data.length }), data };
    }
    case 3: {
      const data = bytes(r, int(r, 600));
      return { bhs: nopOutPdu({ itt, ttt: pick(r, [NO_TAG, int(r, 16)]), cmdSN, expStatSN, immediate: r() < 0.5, dataLength: data.length }), data };
    }
    case 4: {
      const data = r() < 0.5 ? textSegment({ SendTargets: pick(r, ['All', FUZZ_TARGET, GOOD_TARGET, '']) }) : bytes(r, int(r, 700));
      return { bhs: textPdu({ itt, ttt: pick(r, [NO_TAG, int(r, 4)]), cmdSN, expStatSN, final: r() < 0.7, cont: r() < 0.3, immediate: r() < 0.3, dataLength: data.length }), data };
    }
    case 5:
      return { bhs: tmfPdu({ itt, fn: int(r, 20), lun: pick(r, [0, 1, 300]), refItt: pick(r, [int(r, 64), NO_TAG]), cmdSN, expStatSN, refCmdSN: pick(r, [ini.cmdSN, int(r, 0xffffffff)]), immediate: r() < 0.7 }) };
    case 6:
      return { bhs: logoutPdu({ itt, reason: int(r, 4), cid: int(r, 3), cmdSN, expStatSN, immediate: r() < 0.5 }) };
    case 7:
      return { bhs: snackPdu({ itt, type: int(r, 4), expStatSN, begRun: int(r, 10), runLength: int(r, 10) }) };
    case 8: {
      const data = textSegment({ InitiatorName: FUZZER, TargetName: FUZZ_TARGET });
      return { bhs: loginPdu({ itt, isid: bytes(r, 6), tsih: int(r, 4), cmdSN, expStatSN, transit: true, csg: 1, nsg: 3, dataLength: data.length }), data };
    }
    default: {
      const b = bytes(r, 48);
      b[4] = 0;
      b.writeUIntBE(0, 5, 3);
      return { bhs: b };
    }
  }
}

describe('PDU fuzzing against a target child process', () => {
  let dir: string;
  let child: ChildTarget;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hiveboot-fuzz-'));
    child = await spawnTestTarget({
      backing: { kind: 'file', path: join(dir, 'disk.img'), size: DISK },
      targets: [
        { name: FUZZ_TARGET, acl: [FUZZER] },
        { name: GOOD_TARGET, acl: [GOOD, INQ], chap: GOOD_CHAP },
      ],
      // Stalled fuzz connections are closed soon; normal ones are not bothered.
      connection: { loginTimeout: 3000 },
    });
  }, 60_000);

  afterAll(async () => {
    await child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('survives thousands of hostile cases with bounded memory while a good session keeps working', async () => {
    const port = child.port;
    // The well-behaved session: CHAP, digests, its own target (its own disk).
    const good = await IscsiInitiator.open({ port, initiatorName: GOOD, targetName: GOOD_TARGET, chap: GOOD_CHAP, headerDigest: true, dataDigest: true, isid: Buffer.from([0x80, 0, 0, 0, 0x60, 0x0d]) });
    const goodRandom = prng(7);
    let goodOps = 0;
    const goodCheck = async (gen: number): Promise<void> => {
      const blocks = 1 + int(goodRandom, 128);
      const lba = int(goodRandom, DISK / BLOCK - blocks);
      const data = stampRange(gen, lba, blocks);
      await good.write(lba, data);
      const back = await good.read(lba, blocks);
      for (let i = 0; i < blocks; i++) {
        const g = readStamp(back.subarray(i * BLOCK, (i + 1) * BLOCK), lba + i);
        if (g !== gen) throw new Error(`good session read back generation ${g} at LBA ${lba + i}, wrote ${gen}`);
      }
      goodOps++;
    };
    // Warm up (JIT, buffers, the first sessions) before the baseline.
    for (let i = 0; i < 20; i++) await goodCheck(i + 1);
    await rawCase(port, [validLogin(prng(1))]);
    await sleep(200);
    const before = memoryOf(child.pid);
    const fdsBefore = fdCount(child.pid);

    let fuzzing = true;
    let cases = 0;
    const kinds: Record<string, number> = {};
    const count = (kind: string, n = 1) => {
      cases += n;
      kinds[kind] = (kinds[kind] ?? 0) + n;
    };
    const problems: string[] = [];
    const started = Date.now();

    // The good session runs alongside the fuzz, each operation verified.
    const goodLoop = (async () => {
      let gen = 1000;
      while (fuzzing) {
        await goodCheck(gen++);
        await sleep(5);
      }
    })();
    const inqRuns: { code: number; out: string }[] = [];
    const inqLoop = (async () => {
      while (fuzzing) {
        try {
          const { stdout } = await run('iscsi-inq', [`iscsi://${GOOD_CHAP.user}%${GOOD_CHAP.secret}@127.0.0.1:${port}/${GOOD_TARGET}/0`], { timeout: 20_000 });
          inqRuns.push({ code: 0, out: stdout });
        } catch (err) {
          const e = err as { code?: number; stdout?: string; stderr?: string };
          inqRuns.push({ code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` });
        }
        await sleep(500);
      }
    })();
    let peakDuring = before.rss;
    const memoryLoop = (async () => {
      while (fuzzing) {
        if (isAlive(child.pid)) peakDuring = Math.max(peakDuring, memoryOf(child.pid).rss);
        await sleep(100);
      }
    })();

    // Every case, by kind and index; a worker takes the next one.
    const queue: { kind: keyof typeof CONNECTIONS; i: number }[] = [];
    for (const [kind, n] of Object.entries(CONNECTIONS) as [keyof typeof CONNECTIONS, number][]) for (let i = 0; i < n; i++) queue.push({ kind, i });
    // Interleave kinds so every moment of the run mixes them.
    const order = prng(99);
    for (let i = queue.length - 1; i > 0; i--) {
      const j = int(order, i + 1);
      [queue[i], queue[j]] = [queue[j]!, queue[i]!];
    }

    const runOne = async (kind: keyof typeof CONNECTIONS, i: number): Promise<void> => {
      const seed = (Object.keys(CONNECTIONS).indexOf(kind) << 20) | i;
      const r = prng(seed);
      const where = `${kind} #${i} (seed ${seed})`;
      switch (kind) {
        case 'prelogin': {
          // Every opcode before login, with and without the I bit, with and without data.
          const opcode = i % 64;
          const b = bytes(r, 48);
          b[0] = (i & 64 ? 0x40 : 0) | opcode;
          b[4] = 0;
          const data = i & 128 ? bytes(r, int(r, 300)) : Buffer.alloc(0);
          const res = await rawCase(port, [raw(b, data)], opcode !== Opcode.Login);
          count(kind);
          if (opcode !== Opcode.Login && !res.closed) problems.push(`${where}: opcode 0x${opcode.toString(16)} before login did not close the connection`);
          if (res.pdus.some((p) => p.opcode !== Opcode.LoginResponse)) problems.push(`${where}: answered a PDU before login with something other than a Login Response`);
          return;
        }
        case 'login': {
          // A plausible first Login Request, mutated or cut short; sometimes followed by more.
          const pdus = [mutate(r, validLogin(r))];
          if (r() < 0.3) pdus.push(mutate(r, validLogin(r)));
          const res = await rawCase(port, pdus);
          count(kind, pdus.length);
          const other = beforeFullFeature(res.pdus).find((p) => p.opcode !== Opcode.LoginResponse);
          if (other) problems.push(`${where}: opcode 0x${other.opcode.toString(16)} during login`);
          return;
        }
        case 'random': {
          const stream = bytes(r, 1 + int(r, 3000));
          const res = await rawCase(port, [stream]);
          count(kind);
          if (beforeFullFeature(res.pdus).some((p) => p.opcode !== Opcode.LoginResponse)) problems.push(`${where}: random bytes drew a non-login answer`);
          return;
        }
        case 'lengths': {
          // DataSegmentLength 16 MiB - 1 and TotalAHSLength 255, before and after login.
          const afterLogin = i % 2 === 1;
          const b = afterLogin ? nopOutPdu({ itt: 1, cmdSN: 1, expStatSN: 1 }) : validLogin(r).subarray(0, 48);
          if (i % 4 < 2) b.writeUIntBE(0xffffff, 5, 3);
          else b[4] = 255;
          const tail = i % 4 >= 2 ? bytes(r, 255 * 4 + int(r, 64)) : bytes(r, int(r, 4096));
          if (afterLogin) {
            const ini = await IscsiInitiator.open({ port, initiatorName: FUZZER, targetName: FUZZ_TARGET, skipSecurity: true, isid: bytes(r, 6) });
            ini.sendRaw(Buffer.concat([b, tail]));
            if (i % 4 < 2) await Promise.race([ini.closed, sleep(5000)]);
            else await settle(ini, 150);
            const closed = ini.isClosed;
            ini.destroy();
            count(kind);
            if (i % 4 < 2 && !closed) problems.push(`${where}: a 16 MiB data segment after login did not close the connection`);
          } else {
            const res = await rawCase(port, [b, tail], i % 4 < 2);
            count(kind);
            if (i % 4 < 2 && !res.closed) problems.push(`${where}: a 16 MiB data segment during login did not close the connection`);
          }
          return;
        }
        case 'garbage':
        case 'digests': {
          const digests = kind === 'digests';
          const ini = await IscsiInitiator.open({
            port,
            initiatorName: FUZZER,
            targetName: FUZZ_TARGET,
            skipSecurity: true,
            isid: bytes(r, 6),
            headerDigest: digests,
            dataDigest: digests && r() < 0.7,
            maxRecvDataSegmentLength: pick(r, [512, 4096, 262144]),
            immediateData: r() < 0.7,
            initialR2T: r() < 0.7,
          });
          try {
            const n = 5 + int(r, 20);
            const wire: Buffer[] = [];
            for (let k = 0; k < n; k++) {
              const t = requestTemplate(r, ini);
              if (digests) {
                // Valid PDUs with one digest wrong now and then.
                const corrupt = { header: r() < 0.15, data: r() < 0.3 };
                wire.push(framePdu(t.bhs, t.data, ini.digestsInForce, corrupt));
              } else {
                const whole = framePdu(t.bhs, t.data, ini.digestsInForce);
                wire.push(r() < 0.6 ? mutate(r, whole) : whole);
              }
            }
            // Pipelined: all at once, in one or a few writes.
            const all = Buffer.concat(wire);
            const cut = int(r, all.length);
            ini.sendRaw(all.subarray(0, cut));
            ini.sendRaw(all.subarray(cut));
            count(kind, n);
            await settle(ini, 100);
            const bad = ini.violations.filter((v) => /digest|MaxRecvDataSegmentLength/.test(v));
            if (bad.length) problems.push(`${where}: ${bad.join('; ')}`);
          } finally {
            ini.destroy();
          }
          return;
        }
      }
    };

    const workers = Array.from({ length: WORKERS }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        try {
          await runOne(next.kind, next.i);
        } catch (err) {
          // A login refused or a connection reset is a fine answer to garbage; the target being gone is not.
          if (!isAlive(child.pid)) throw err;
          count(next.kind);
        }
      }
    });
    try {
      await Promise.all(workers);
    } finally {
      fuzzing = false;
      await Promise.allSettled([goodLoop, inqLoop, memoryLoop]);
    }
    await goodLoop; // rethrows a wrong read-back or a failed command of the good session
    const seconds = (Date.now() - started) / 1000;

    expect(isAlive(child.pid), child.stderr()).toBe(true);
    expect(child.child.exitCode).toBeNull();
    await sleep(300);
    const after = memoryOf(child.pid);
    // Still fully working after the storm: the same session, a fresh one, and libiscsi.
    await goodCheck(99_999);
    const fresh = await IscsiInitiator.open({ port, initiatorName: GOOD, targetName: GOOD_TARGET, chap: GOOD_CHAP, isid: Buffer.from([0x80, 0, 0, 0, 0x60, 0x0e]) });
    expect((await fresh.nop(Buffer.from('after'))).data.toString()).toBe('after');
    await fresh.logout();
    // Every hostile connection is gone from the target (stalled logins included, by the login timeout).
    const deadline = Date.now() + 10_000;
    while (fdCount(child.pid) > fdsBefore && Date.now() < deadline) await sleep(100);
    const fdsAfter = fdCount(child.pid);

    console.log(
      `fuzz: ${cases} cases (${Object.entries(kinds).map(([k, n]) => `${k} ${n}`).join(', ')}) in ${seconds.toFixed(1)} s; ` +
        `good session ${goodOps} verified write+read pairs, iscsi-inq ${inqRuns.length} runs; ` +
        `fds ${fdsBefore} before, ${fdsAfter} after; RSS ${(before.rss / MiB).toFixed(1)} MiB before, ${(after.rss / MiB).toFixed(1)} MiB after, peak ${(Math.max(peakDuring, after.peak) / MiB).toFixed(1)} MiB`,
    );
    expect(problems).toEqual([]);
    expect(fdsAfter).toBeLessThanOrEqual(fdsBefore);
    expect(cases).toBeGreaterThan(3000);
    expect(goodOps).toBeGreaterThan(40);
    expect(good.violations).toEqual([]);
    expect(inqRuns.length).toBeGreaterThan(0);
    for (const r of inqRuns) {
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain('Vendor:HIVEBOOT');
    }
    expect(peakDuring - before.rss).toBeLessThan(RSS_GROWTH_LIMIT);
    expect(after.rss - before.rss).toBeLessThan(RSS_GROWTH_LIMIT);
    await good.logout();
  }, 120_000);
});
