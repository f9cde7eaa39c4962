/**
 * Fuzzes the negotiator with login sequences mutated from those of iPXE, libiscsi and open-iscsi, and
 * with plain garbage: step() must never throw, must always answer with a well-formed response, and a
 * refusal must always close. Deterministic in the mutations (seeded PRNG); a failure names its seed
 * and iteration.
 */
import { describe, expect, it } from 'vitest';
import { LoginNegotiator, type LoginStep } from '../../../src/iscsi/login/negotiator.js';
import type { LoginRequest } from '../../../src/iscsi/login/types.js';
import { prng } from '../../support/prng.js';
import {
  ALL_SECRETS,
  INITIATOR7,
  INITIATOR8,
  NODE7,
  NODE8,
  OPEN,
  policy,
  SECRETS,
} from './fixtures.js';
import { drive, IpxeInitiator, LibiscsiInitiator, OpenIscsiInitiator } from './initiators.js';

const SEED = 0x15c5_1000;
const SEQUENCES = 4000;
const GARBAGE = 2000;

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;
const bytes = (r: Rand, n: number) => Buffer.from(Array.from({ length: n }, () => int(r, 256)));

const KEYS = [
  'InitiatorName', 'InitiatorAlias', 'TargetName', 'SessionType', 'AuthMethod', 'CHAP_A', 'CHAP_I', 'CHAP_C', 'CHAP_N',
  'CHAP_R', 'HeaderDigest', 'DataDigest', 'MaxConnections', 'InitialR2T', 'ImmediateData', 'MaxRecvDataSegmentLength',
  'MaxBurstLength', 'FirstBurstLength', 'DefaultTime2Wait', 'DefaultTime2Retain', 'MaxOutstandingR2T', 'DataPDUInOrder',
  'DataSequenceInOrder', 'ErrorRecoveryLevel', 'IFMarker', 'OFMarkInt', 'TaskReporting', 'iSCSIProtocolLevel',
  'RDMAExtensions', 'TargetAddress', 'TargetPortalGroupTag', 'SendTargets', 'X-com.example.k', 'Unknown',
];
const VALUES = [
  '', 'None', 'CHAP', 'CHAP,None', 'None,CHAP', 'KRB5', 'Normal', 'Discovery', 'Yes', 'No', '0', '1', '5', '7', '255', '256',
  '-1', '0x', '0x0', '0xfffffffffffffffff', '0b', '0b====', '0bAAAA', '512', '8192', '16777215', '16777216', 'CRC32C',
  'CRC32C,None', ',', 'Reject', 'NotUnderstood', 'Irrelevant', INITIATOR7, INITIATOR8, NODE7, NODE8, OPEN, 'node7-user',
  `0x${'ab'.repeat(16)}`, `0x${'cd'.repeat(1024)}`, 'é', 'a'.repeat(300),
];

/** Valid login sequences from the three initiators, to mutate. */
function corpus(): LoginRequest[][] {
  const runs = [
    new IpxeInitiator({ initiatorName: INITIATOR7, targetName: NODE7, user: 'node7-user', secret: SECRETS.node7 }),
    new IpxeInitiator({ initiatorName: INITIATOR7, targetName: NODE7, user: 'node7-user', secret: SECRETS.node7, targetUser: 'hiveboot-node7', targetSecret: SECRETS.node7Mutual }),
    new IpxeInitiator({ initiatorName: INITIATOR8, targetName: OPEN }),
    new LibiscsiInitiator({ initiatorName: INITIATOR8, targetName: NODE8, user: 'node8-user', secret: SECRETS.node8, chapAuth: 7 }),
    new LibiscsiInitiator({ initiatorName: INITIATOR8, discovery: true }),
    new LibiscsiInitiator({ initiatorName: INITIATOR8, targetName: OPEN, alias: 'n8' }),
    new OpenIscsiInitiator({ initiatorName: INITIATOR8, targetName: NODE8, user: 'node8-user', secret: SECRETS.node8, targetUser: 'hiveboot-node8', targetSecret: SECRETS.node8Mutual }),
    new OpenIscsiInitiator({ initiatorName: INITIATOR8, discovery: true, user: 'node8-user', secret: SECRETS.node8 }),
  ];
  return runs.map((initiator, i) => {
    const t = drive(new LoginNegotiator(policy({ discoveryNeedsChap: i === 7 })), initiator);
    expect(t.result, `corpus run ${i}`).toBe('done');
    return t.requests;
  });
}

function mutateData(r: Rand, data: Buffer): Buffer {
  const text = data.toString('latin1');
  switch (int(r, 9)) {
    case 0: {
      const copy = Buffer.from(data);
      for (let i = 0; i < 1 + int(r, 4) && copy.length > 0; i++) copy[int(r, copy.length)]! ^= 1 << int(r, 8);
      return copy;
    }
    case 1:
      return data.subarray(0, int(r, data.length + 1));
    case 2:
      return Buffer.concat([data, bytes(r, int(r, 40))]);
    case 3: {
      const at = int(r, data.length + 1);
      return Buffer.concat([data.subarray(0, at), Buffer.from(pick(r, ['\0', '=', ',', '\0\0', '=='])), data.subarray(at)]);
    }
    case 4: {
      // Replace one value.
      const pairs = text.split('\0').filter(Boolean);
      if (pairs.length === 0) return data;
      const i = int(r, pairs.length);
      pairs[i] = `${pairs[i]!.split('=')[0]}=${pick(r, VALUES)}`;
      return Buffer.from(pairs.map((p) => `${p}\0`).join(''), 'latin1');
    }
    case 5: {
      // Duplicate or drop a pair.
      const pairs = text.split('\0').filter(Boolean);
      if (pairs.length === 0) return data;
      const i = int(r, pairs.length);
      if (r() < 0.5) pairs.push(pairs[i]!);
      else pairs.splice(i, 1);
      return Buffer.from(pairs.map((p) => `${p}\0`).join(''), 'latin1');
    }
    case 6:
      return Buffer.concat([data, Buffer.from(`${pick(r, KEYS)}=${pick(r, VALUES)}\0`, 'utf8')]);
    case 7:
      return Buffer.alloc(0);
    default:
      return bytes(r, int(r, 200));
  }
}

function mutateHeader(r: Rand, req: LoginRequest): LoginRequest {
  const m = { ...req };
  switch (int(r, 10)) {
    case 0:
      m.transit = !m.transit;
      break;
    case 1:
      m.continue = !m.continue;
      break;
    case 2:
      m.csg = pick(r, [0, 1, 2, 3, 7, 255]);
      break;
    case 3:
      m.nsg = pick(r, [0, 1, 2, 3, 9]);
      break;
    case 4:
      m.versionMin = pick(r, [0, 1, 2, 255]);
      m.versionMax = pick(r, [0, 1, 2, 255]);
      break;
    case 5:
      m.itt = int(r, 2 ** 32);
      break;
    case 6:
      m.isid = bytes(r, pick(r, [0, 5, 6, 7]));
      break;
    case 7:
      m.tsih = int(r, 65536);
      m.cid = int(r, 65536);
      break;
    default:
      m.data = Buffer.alloc(pick(r, [8192, 8193, 70000]), 0x41);
  }
  return m;
}

function mutateSequence(r: Rand, base: LoginRequest[]): LoginRequest[] {
  const seq = base.map((req) => ({ ...req }));
  const rounds = 1 + int(r, 3);
  for (let i = 0; i < rounds; i++) {
    const at = int(r, seq.length);
    switch (int(r, 6)) {
      case 0:
      case 1:
      case 2:
        seq[at] = { ...seq[at]!, data: mutateData(r, seq[at]!.data) };
        break;
      case 3:
        seq[at] = mutateHeader(r, seq[at]!);
        break;
      case 4:
        if (seq.length > 1) seq.splice(at, 1);
        break;
      default:
        seq.splice(at, 0, { ...seq[int(r, seq.length)]! });
    }
  }
  return seq;
}

function checkStep(req: LoginRequest, step: LoginStep, maxPduData: number): void {
  const r = step.response;
  expect(r.itt).toBe(req.itt);
  expect(Buffer.isBuffer(r.data)).toBe(true);
  expect(r.data.length).toBeLessThanOrEqual(maxPduData);
  expect(r.versionMax).toBe(0);
  expect(r.transit && r.continue).toBe(false);
  const status = (r.statusClass << 8) | r.statusDetail;
  if (step.close) {
    expect(status).not.toBe(0);
    expect(r.data.length).toBe(0);
    expect(typeof step.reason).toBe('string');
  } else {
    expect(status).toBe(0);
  }
  if (step.outcome) {
    expect(r).toMatchObject({ transit: true, nsg: 3 });
    const json = JSON.stringify(step.outcome);
    for (const secret of ALL_SECRETS) expect(json).not.toContain(secret);
  }
  for (const secret of ALL_SECRETS) expect(step.reason ?? '').not.toContain(secret);
}

describe('login fuzz', () => {
  it(`${SEQUENCES} mutated initiator sequences never make step() throw`, () => {
    const r = prng(SEED);
    const bases = corpus();
    let steps = 0;
    let completed = 0;
    const refusals = new Set<number>();
    for (let i = 0; i < SEQUENCES; i++) {
      const sequence = mutateSequence(r, pick(r, bases));
      const maxPduData = r() < 0.2 ? 128 : 8192;
      const neg = new LoginNegotiator(policy({ discoveryNeedsChap: r() < 0.5 }), { maxPduData });
      for (const req of sequence) {
        let step: LoginStep;
        try {
          step = neg.step(req);
        } catch (error) {
          throw new Error(`seed ${SEED} iteration ${i}: step threw ${String(error)}`);
        }
        steps++;
        checkStep(req, step, maxPduData);
        if (step.outcome) completed++;
        if (step.close) refusals.add((step.response.statusClass << 8) | step.response.statusDetail);
        if (step.close || step.outcome) break;
      }
    }
    expect(steps).toBeGreaterThan(SEQUENCES);
    // The mutations reach both ends: some logins still complete, and many kinds of refusal occur.
    expect(completed).toBeGreaterThan(SEQUENCES / 20);
    expect([...refusals].sort()).toEqual(expect.arrayContaining([0x0200, 0x0201, 0x0202, 0x0203, 0x0205, 0x0207]));
  });

  it(`${GARBAGE} random requests on fresh and used negotiators`, () => {
    const r = prng(SEED + 1);
    let neg = new LoginNegotiator(policy());
    for (let i = 0; i < GARBAGE; i++) {
      if (r() < 0.3) neg = new LoginNegotiator(policy({ discoveryNeedsChap: r() < 0.5 }));
      const req: LoginRequest = {
        transit: r() < 0.5,
        continue: r() < 0.3,
        csg: int(r, 4),
        nsg: int(r, 4),
        versionMax: int(r, 3),
        versionMin: int(r, 2),
        isid: bytes(r, 6),
        tsih: int(r, 3),
        itt: int(r, 3),
        cid: int(r, 2),
        cmdSN: int(r, 2 ** 32),
        expStatSN: int(r, 2 ** 32),
        data:
          r() < 0.5
            ? bytes(r, int(r, 300))
            : Buffer.from(Array.from({ length: int(r, 8) }, () => `${pick(r, KEYS)}=${pick(r, VALUES)}\0`).join(''), 'utf8'),
      };
      let step: LoginStep;
      try {
        step = neg.step(req);
      } catch (error) {
        throw new Error(`seed ${SEED + 1} iteration ${i}: step threw ${String(error)}`);
      }
      checkStep(req, step, 8192);
    }
  });
});
