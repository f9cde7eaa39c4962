/**
 * No CHAP secret ever leaves the login code as text: not in a response (CHAP_R/CHAP_C carry digests
 * and random bytes only), not in a failure reason, not in an outcome, not in a thrown error, not on
 * the console. Every string the negotiator produces across successful, refused and garbled logins is
 * captured and searched for every configured secret.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LoginNegotiator, type LoginStep } from '../../../src/iscsi/login/negotiator.js';
import type { LoginPolicy } from '../../../src/iscsi/login/types.js';
import { buildText } from '../../../src/iscsi/text.js';
import {
  ALL_SECRETS,
  decodeBinary,
  INITIATOR7,
  INITIATOR8,
  INITIATOR9,
  keysOf,
  NODE7,
  NODE8,
  pairsOf,
  policy,
  referenceChap,
  request,
  SECRETS,
  TARGET9,
} from './fixtures.js';
import { drive, IpxeInitiator, LibiscsiInitiator, OpenIscsiInitiator, type SimulatedInitiator } from './initiators.js';

const produced: string[] = [];

function capture(step: LoginStep): LoginStep {
  const pairs = pairsOf(step.response.data);
  for (const [key, value] of pairs) {
    produced.push(key);
    // CHAP_C and CHAP_R are digests and random bytes; they are searched as raw bytes below instead.
    if (key !== 'CHAP_C' && key !== 'CHAP_R') produced.push(value);
  }
  produced.push(step.response.data.toString('latin1'));
  if (step.reason !== undefined) produced.push(step.reason);
  if (step.outcome) produced.push(JSON.stringify(step.outcome), JSON.stringify(step.outcome, (_k, v: unknown) => v));
  return step;
}

function run(p: LoginPolicy, initiator: SimulatedInitiator): void {
  const t = drive(new LoginNegotiator(p), initiator);
  t.steps.forEach(capture);
}

let consoleCalls: unknown[][] = [];

beforeEach(() => {
  consoleCalls = [];
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      consoleCalls.push(args);
    });
  }
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('secrets stay secret', () => {
  it('across successful, refused and garbled logins', () => {
    const creds7 = { initiatorName: INITIATOR7, targetName: NODE7, user: 'node7-user', secret: SECRETS.node7 };
    const mutual7 = { ...creds7, targetUser: 'hiveboot-node7', targetSecret: SECRETS.node7Mutual };
    const creds8 = { initiatorName: INITIATOR8, targetName: NODE8, user: 'node8-user', secret: SECRETS.node8 };
    const mutual8 = { ...creds8, targetUser: 'hiveboot-node8', targetSecret: SECRETS.node8Mutual };

    // Successful logins, one-way and mutual, every initiator, every algorithm.
    run(policy(), new IpxeInitiator(creds7));
    run(policy(), new IpxeInitiator(mutual7));
    for (const chapAuth of [5, 6, 7, 8] as const) run(policy(), new LibiscsiInitiator({ ...mutual8, chapAuth }));
    run(policy(), new OpenIscsiInitiator(mutual8));
    run(policy({ discoveryNeedsChap: true }), new OpenIscsiInitiator({ initiatorName: INITIATOR8, discovery: true, user: 'node8-user', secret: SECRETS.node8, targetUser: 'hiveboot-node8', targetSecret: SECRETS.node8Mutual }));

    // Refusals: wrong secret, wrong user, someone else's credentials, no mutual secret.
    run(policy(), new IpxeInitiator({ ...creds7, secret: SECRETS.node8 }));
    run(policy(), new IpxeInitiator({ ...creds7, user: 'node8-user', secret: SECRETS.node8 }));
    run(policy(), new LibiscsiInitiator({ ...creds7, targetUser: 'x', targetSecret: SECRETS.node7 }));
    run(policy(), new IpxeInitiator({ initiatorName: INITIATOR9, targetName: TARGET9.name, user: 'node9-user', secret: SECRETS.node9, targetUser: 'x', targetSecret: 'y-y-y-y-y-y-y' }));
    run(policy({ discoveryNeedsChap: true }), new OpenIscsiInitiator({ initiatorName: INITIATOR7, discovery: true, user: 'node8-user', secret: SECRETS.node8 }));

    // An initiator that types its secret into CHAP_N (and into every other field it can).
    for (const secret of ALL_SECRETS) {
      const neg = new LoginNegotiator(policy());
      capture(neg.step(request({ pairs: [['InitiatorName', INITIATOR7], ['TargetName', NODE7], ['AuthMethod', 'CHAP']] })));
      const challenge = keysOf(capture(neg.step(request({ pairs: [['CHAP_A', '5']] }))).response.data);
      const r = referenceChap(5, Number(challenge.get('CHAP_I')), secret, decodeBinary(challenge.get('CHAP_C')!));
      capture(neg.step(request({ transit: true, nsg: 1, pairs: [['CHAP_N', secret], ['CHAP_R', `0x${r.toString('hex')}`]] })));
    }

    // A reflected challenge, after a correct response.
    {
      const neg = new LoginNegotiator(policy());
      capture(neg.step(request({ pairs: [['InitiatorName', INITIATOR7], ['TargetName', NODE7], ['AuthMethod', 'CHAP']] })));
      const challenge = keysOf(capture(neg.step(request({ pairs: [['CHAP_A', '7']] }))).response.data);
      const c = decodeBinary(challenge.get('CHAP_C')!);
      const r = referenceChap(7, Number(challenge.get('CHAP_I')), SECRETS.node7, c);
      capture(neg.step(request({ transit: true, nsg: 1, pairs: [['CHAP_N', 'node7-user'], ['CHAP_R', `0x${r.toString('hex')}`], ['CHAP_I', '1'], ['CHAP_C', `0x${c.toString('hex')}`]] })));
    }

    // A policy whose lookup throws with a secret in its message.
    const leaky: LoginPolicy = {
      target: () => {
        throw new Error(`lookup failed for secret ${SECRETS.node7}`);
      },
      targets: () => {
        throw new Error(`enumeration failed for ${SECRETS.node8}`);
      },
      discoveryNeedsChap: true,
    };
    capture(new LoginNegotiator(leaky).step(request({ pairs: [['InitiatorName', INITIATOR7], ['TargetName', NODE7]] })));
    capture(new LoginNegotiator(leaky).step(request({ pairs: [['InitiatorName', INITIATOR7], ['SessionType', 'Discovery']] })));

    // Errors we throw ourselves name keys, never values.
    for (const attempt of [
      () => buildText([{ key: 'CHAP_N', value: `${SECRETS.node7}\0` }]),
      () => buildText([{ key: `${SECRETS.node7}=`, value: 'x' }]),
      () => new LoginNegotiator(policy(), { chapChallengeLength: 1 }),
    ]) {
      try {
        attempt();
      } catch (error) {
        produced.push(String(error), (error as Error).stack ?? '');
      }
    }

    expect(produced.length).toBeGreaterThan(100);
    for (const secret of ALL_SECRETS) {
      for (const s of produced) expect(s, `a produced string contains a secret: ${s.slice(0, 80)}`).not.toContain(secret);
    }
    expect(consoleCalls).toEqual([]);
  });

  it('CHAP values on the wire are digests of the right length, not the secret in disguise', () => {
    const t = drive(
      new LoginNegotiator(policy()),
      new IpxeInitiator({ initiatorName: INITIATOR7, targetName: NODE7, user: 'node7-user', secret: SECRETS.node7, targetUser: 'hiveboot-node7', targetSecret: SECRETS.node7Mutual }),
    );
    const chapValues = t.steps.flatMap((s) => pairsOf(s.response.data).filter(([k]) => k === 'CHAP_C' || k === 'CHAP_R'));
    expect(chapValues.map(([k]) => k)).toEqual(['CHAP_C', 'CHAP_R']);
    for (const [, value] of chapValues) {
      const raw = decodeBinary(value);
      for (const secret of ALL_SECRETS) {
        expect(raw.includes(Buffer.from(secret))).toBe(false);
        expect(value).not.toContain(Buffer.from(secret).toString('hex'));
      }
    }
    expect(decodeBinary(chapValues[1]![1]).length).toBe(16);
  });

  it('outcomes carry copies of the targets without CHAP credentials', () => {
    const neg = new LoginNegotiator(policy());
    const t = drive(neg, new OpenIscsiInitiator({ initiatorName: INITIATOR8, targetName: NODE8, user: 'node8-user', secret: SECRETS.node8 }));
    const outcome = t.steps.at(-1)!.outcome!;
    expect(outcome.target).not.toHaveProperty('chap');
    for (const v of outcome.visibleTargets) expect(v).not.toHaveProperty('chap');
    expect(outcome.chapUser).toBe('node8-user');
  });
});
