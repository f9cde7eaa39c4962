/**
 * Every way a login is refused: the status the initiator sees, that the connection is closed, and
 * that the reason names the cause without leaking a secret.
 */
import { describe, expect, it } from 'vitest';
import { LoginNegotiator, type LoginStep } from '../../../src/iscsi/login/negotiator.js';
import { LoginStatus, type LoginPolicy, type LoginRequest } from '../../../src/iscsi/login/types.js';
import {
  ALL_SECRETS,
  decodeBinary,
  INITIATOR7,
  INITIATOR8,
  INITIATOR9,
  keysOf,
  NODE7,
  NODE8,
  OPEN,
  policy,
  referenceChap,
  request,
  SECRETS,
  TARGET9,
} from './fixtures.js';
import { drive, IpxeInitiator, LibiscsiInitiator } from './initiators.js';

function status(step: LoginStep): number {
  return (step.response.statusClass << 8) | step.response.statusDetail;
}

function expectRefused(step: LoginStep, code: number, reason?: RegExp): void {
  expect(status(step), step.reason).toBe(code);
  expect(step.close).toBe(true);
  expect(step.outcome).toBeUndefined();
  expect(step.response.transit).toBe(false);
  expect(step.response.data.length).toBe(0);
  if (reason) expect(step.reason).toMatch(reason);
  for (const secret of ALL_SECRETS) expect(step.reason ?? '').not.toContain(secret);
}

const leading7: [string, string][] = [
  ['InitiatorName', INITIATOR7],
  ['TargetName', NODE7],
  ['SessionType', 'Normal'],
];

/** PDU 1 and 2 of a CHAP login to node7; returns the negotiator and our challenge. */
function challenged(p: LoginPolicy = policy(), algorithms = '5') {
  const neg = new LoginNegotiator(p);
  const r1 = neg.step(request({ transit: true, nsg: 1, pairs: [...leading7, ['AuthMethod', 'CHAP,None']] }));
  expect(status(r1)).toBe(0);
  const r2 = neg.step(request({ pairs: [['CHAP_A', algorithms]] }));
  expect(status(r2)).toBe(0);
  const keys = keysOf(r2.response.data);
  return {
    neg,
    algorithm: Number(keys.get('CHAP_A')),
    identifier: Number(keys.get('CHAP_I')),
    challenge: decodeBinary(keys.get('CHAP_C')!),
  };
}

function respond(c: ReturnType<typeof challenged>, user: string, secret: string, extra: [string, string][] = []): LoginStep {
  const r = referenceChap(c.algorithm, c.identifier, secret, c.challenge);
  return c.neg.step(request({ transit: true, nsg: 1, pairs: [['CHAP_N', user], ['CHAP_R', `0x${r.toString('hex')}`], ...extra] }));
}

describe('authentication failures (0x0201)', () => {
  it('wrong CHAP user', () => {
    const t = drive(new LoginNegotiator(policy()), new IpxeInitiator({ initiatorName: INITIATOR7, targetName: NODE7, user: 'node7-usr', secret: SECRETS.node7 }));
    expect(t.steps).toHaveLength(3);
    expectRefused(t.steps[2]!, LoginStatus.AuthenticationFailure, /unknown CHAP user/);
  });

  it('wrong secret', () => {
    const t = drive(new LoginNegotiator(policy()), new IpxeInitiator({ initiatorName: INITIATOR7, targetName: NODE7, user: 'node7-user', secret: 'Wr0ng-Secret!!' }));
    expectRefused(t.steps[2]!, LoginStatus.AuthenticationFailure, /node7-user did not verify/);
  });

  it('wrong secret, base64 encoding and SHA-256', () => {
    const c = challenged(policy(), '7');
    expect(c.algorithm).toBe(7);
    const bad = referenceChap(7, c.identifier, SECRETS.node8, c.challenge);
    const step = c.neg.step(request({ transit: true, nsg: 1, pairs: [['CHAP_N', 'node7-user'], ['CHAP_R', `0b${bad.toString('base64')}`]] }));
    expectRefused(step, LoginStatus.AuthenticationFailure);
  });

  it('the right secret in base64 passes', () => {
    const c = challenged(policy(), '7');
    const good = referenceChap(7, c.identifier, SECRETS.node7, c.challenge);
    const step = c.neg.step(request({ transit: true, nsg: 1, pairs: [['CHAP_N', 'node7-user'], ['CHAP_R', `0b${good.toString('base64')}`]] }));
    expect(status(step)).toBe(0);
    expect(step.response.transit).toBe(true);
  });

  it("another target's credentials", () => {
    const c = challenged();
    expectRefused(respond(c, 'node8-user', SECRETS.node8), LoginStatus.AuthenticationFailure, /unknown CHAP user/);
  });

  it('no CHAP offered when the target requires it (iPXE without credentials)', () => {
    const t = drive(new LoginNegotiator(policy()), new IpxeInitiator({ initiatorName: INITIATOR7, targetName: NODE7 }));
    expect(t.steps).toHaveLength(1);
    expectRefused(t.steps[0]!, LoginStatus.AuthenticationFailure, /CHAP is required/);
  });

  it('skipping the security stage when the target requires CHAP (libiscsi without credentials)', () => {
    const t = drive(new LoginNegotiator(policy()), new LibiscsiInitiator({ initiatorName: INITIATOR7, targetName: NODE7 }));
    expectRefused(t.steps[0]!, LoginStatus.AuthenticationFailure, /skipped the security stage/);
  });

  it('leaving the security stage with no AuthMethod at all', () => {
    const neg = new LoginNegotiator(policy());
    expectRefused(neg.step(request({ transit: true, nsg: 1, pairs: leading7 })), LoginStatus.AuthenticationFailure, /without authenticating/);
  });

  it('leaving the security stage after the challenge without answering it', () => {
    const c = challenged();
    expectRefused(c.neg.step(request({ transit: true, nsg: 1 })), LoginStatus.AuthenticationFailure, /before CHAP completed/);
  });

  it('CHAP with a target that has no credentials and an initiator that insists on it', () => {
    const neg = new LoginNegotiator(policy());
    const step = neg.step(request({ transit: true, nsg: 1, pairs: [['InitiatorName', INITIATOR8], ['TargetName', OPEN], ['AuthMethod', 'CHAP']] }));
    expectRefused(step, LoginStatus.AuthenticationFailure, /no CHAP credentials/);
  });

  it('reflected mutual challenge', () => {
    const c = challenged();
    const step = respond(c, 'node7-user', SECRETS.node7, [
      ['CHAP_I', String(c.identifier)],
      ['CHAP_C', `0x${c.challenge.toString('hex')}`],
    ]);
    expectRefused(step, LoginStatus.AuthenticationFailure, /reflected/);
  });

  it('reflected mutual challenge, re-encoded in base64', () => {
    const c = challenged();
    const step = respond(c, 'node7-user', SECRETS.node7, [
      ['CHAP_I', String((c.identifier + 1) & 0xff)],
      ['CHAP_C', `0b${c.challenge.toString('base64')}`],
    ]);
    expectRefused(step, LoginStatus.AuthenticationFailure, /reflected/);
  });

  it('mutual CHAP when the target has no mutual secret', () => {
    const neg = new LoginNegotiator(policy());
    const t = drive(
      neg,
      new IpxeInitiator({ initiatorName: INITIATOR9, targetName: TARGET9.name, user: 'node9-user', secret: SECRETS.node9, targetUser: 'x', targetSecret: 'whatever-secret' }),
    );
    expectRefused(t.steps.at(-1)!, LoginStatus.AuthenticationFailure, /no target secret/);
  });

  it('mutual CHAP with only one of CHAP_I and CHAP_C', () => {
    const c = challenged();
    expectRefused(respond(c, 'node7-user', SECRETS.node7, [['CHAP_I', '7']]), LoginStatus.AuthenticationFailure, /both CHAP_I and CHAP_C/);
  });

  it('no common CHAP algorithm', () => {
    const neg = new LoginNegotiator(policy());
    neg.step(request({ pairs: [...leading7, ['AuthMethod', 'CHAP']] }));
    expectRefused(neg.step(request({ pairs: [['CHAP_A', '99,4']] })), LoginStatus.AuthenticationFailure, /no common CHAP algorithm/);
  });

  it('an MD5-only initiator against a target configured for SHA-256 only', () => {
    const t = drive(
      new LoginNegotiator(policy(), { chapAlgorithms: [7] }),
      new IpxeInitiator({ initiatorName: INITIATOR7, targetName: NODE7, user: 'node7-user', secret: SECRETS.node7 }),
    );
    expectRefused(t.steps[1]!, LoginStatus.AuthenticationFailure, /no common CHAP algorithm/);
  });

  it.each(['deadbeef', '0xZZ', '0b!!!!', '0x', '', `0b${Buffer.alloc(1025, 1).toString('base64')}`])('malformed CHAP_R %j', (bad) => {
    const c = challenged();
    expectRefused(c.neg.step(request({ transit: true, nsg: 1, pairs: [['CHAP_N', 'node7-user'], ['CHAP_R', bad]] })), LoginStatus.AuthenticationFailure);
  });

  it('CHAP response before any challenge', () => {
    const neg = new LoginNegotiator(policy());
    const step = neg.step(
      request({ transit: true, nsg: 1, pairs: [...leading7, ['AuthMethod', 'CHAP'], ['CHAP_A', '5'], ['CHAP_N', 'node7-user'], ['CHAP_R', '0x00112233445566778899aabbccddeeff']] }),
    );
    expectRefused(step, LoginStatus.AuthenticationFailure, /out of sequence/);
  });

  it('CHAP_A before AuthMethod', () => {
    const neg = new LoginNegotiator(policy());
    expectRefused(neg.step(request({ pairs: [...leading7, ['CHAP_A', '5']] })), LoginStatus.AuthenticationFailure, /CHAP_A out of sequence/);
  });

  it('discovery with the credentials of a target whose ACL does not hold the initiator', () => {
    const neg = new LoginNegotiator(policy({ discoveryNeedsChap: true }));
    neg.step(request({ pairs: [['InitiatorName', INITIATOR7], ['SessionType', 'Discovery'], ['AuthMethod', 'CHAP']] }));
    const r2 = neg.step(request({ pairs: [['CHAP_A', '5']] }));
    const keys = keysOf(r2.response.data);
    const r = referenceChap(5, Number(keys.get('CHAP_I')), SECRETS.node8, decodeBinary(keys.get('CHAP_C')!));
    const step = neg.step(request({ transit: true, nsg: 1, pairs: [['CHAP_N', 'node8-user'], ['CHAP_R', `0x${r.toString('hex')}`]] }));
    expectRefused(step, LoginStatus.AuthenticationFailure, /unknown CHAP user/);
  });

  it('an unknown initiator is challenged like anyone else in a CHAP discovery, then refused', () => {
    const neg = new LoginNegotiator(policy({ discoveryNeedsChap: true }));
    const r1 = neg.step(request({ pairs: [['InitiatorName', 'iqn.2000-01.com.example:nobody'], ['SessionType', 'Discovery'], ['AuthMethod', 'CHAP']] }));
    expect(keysOf(r1.response.data).get('AuthMethod')).toBe('CHAP');
    const r2 = neg.step(request({ pairs: [['CHAP_A', '5']] }));
    expect(keysOf(r2.response.data).get('CHAP_C')).toBeDefined();
    expectRefused(neg.step(request({ transit: true, nsg: 1, pairs: [['CHAP_N', 'nobody'], ['CHAP_R', `0x${'00'.repeat(16)}`]] })), LoginStatus.AuthenticationFailure);
  });
});

describe('who may log in to what', () => {
  it('initiator not in the ACL: Authorization Failure (0x0202)', () => {
    const neg = new LoginNegotiator(policy());
    const step = neg.step(request({ transit: true, nsg: 1, pairs: [['InitiatorName', INITIATOR8], ['TargetName', NODE7], ['AuthMethod', 'CHAP,None']] }));
    expectRefused(step, LoginStatus.AuthorizationFailure, /not in the ACL/);
  });

  it('ACL entries compare case-insensitively (RFC 3722 normalises names to lower case)', () => {
    const neg = new LoginNegotiator(policy());
    const step = neg.step(request({ transit: true, nsg: 1, pairs: [['InitiatorName', INITIATOR7.toUpperCase()], ['TargetName', NODE7], ['AuthMethod', 'CHAP']] }));
    expect(status(step)).toBe(0);
  });

  it('unknown target: Not Found (0x0203)', () => {
    const neg = new LoginNegotiator(policy());
    const step = neg.step(request({ pairs: [['InitiatorName', INITIATOR7], ['TargetName', 'iqn.2024-01.org.hiveboot:nope']] }));
    expectRefused(step, LoginStatus.NotFound, /not found/);
  });

  it('peer text in a reason is made printable', () => {
    const neg = new LoginNegotiator(policy());
    const step = neg.step(request({ pairs: [['InitiatorName', INITIATOR7], ['TargetName', 'iqn.x\nFAKE LOG LINE']] }));
    expectRefused(step, LoginStatus.NotFound);
    expect(step.reason).toBe('target iqn.x?FAKE LOG LINE not found');
  });

  it('missing InitiatorName: Missing Parameter (0x0207)', () => {
    const neg = new LoginNegotiator(policy());
    expectRefused(neg.step(request({ pairs: [['TargetName', NODE7], ['AuthMethod', 'CHAP']] })), LoginStatus.MissingParameter, /InitiatorName/);
  });

  it('empty InitiatorName: Missing Parameter', () => {
    const neg = new LoginNegotiator(policy());
    expectRefused(neg.step(request({ pairs: [['InitiatorName', ''], ['TargetName', NODE7]] })), LoginStatus.MissingParameter);
  });

  it('normal session without TargetName: Missing Parameter', () => {
    const neg = new LoginNegotiator(policy());
    expectRefused(neg.step(request({ pairs: [['InitiatorName', INITIATOR7], ['SessionType', 'Normal']] })), LoginStatus.MissingParameter, /TargetName/);
  });

  it('unknown SessionType: Session Type Not Supported (0x0209)', () => {
    const neg = new LoginNegotiator(policy());
    expectRefused(neg.step(request({ pairs: [['InitiatorName', INITIATOR7], ['SessionType', 'Weird']] })), LoginStatus.SessionTypeNotSupported);
  });

  it('a policy that throws: Target Error (0x0300), and its message goes nowhere', () => {
    const broken: LoginPolicy = {
      target: () => {
        throw new Error(`database on fire, secret ${SECRETS.node7}`);
      },
      targets: () => [],
      discoveryNeedsChap: false,
    };
    const step = new LoginNegotiator(broken).step(request({ pairs: leading7 }));
    expectRefused(step, LoginStatus.TargetError, /internal error/);
  });
});

describe('protocol errors (0x0200 unless said otherwise)', () => {
  it('unsupported version: 0x0205', () => {
    const neg = new LoginNegotiator(policy());
    const step = neg.step(request({ versionMin: 1, versionMax: 2, pairs: leading7 }));
    expectRefused(step, LoginStatus.UnsupportedVersion);
    expect(step.response.versionMax).toBe(0);
  });

  it('version range changing during the login', () => {
    const neg = new LoginNegotiator(policy());
    neg.step(request({ pairs: [...leading7, ['AuthMethod', 'CHAP']] }));
    expectRefused(neg.step(request({ versionMax: 3, pairs: [['CHAP_A', '5']] })), LoginStatus.InitiatorError, /version/);
  });

  it('the stage going backwards after a transit to Operational', () => {
    const neg = new LoginNegotiator(policy());
    const r1 = neg.step(request({ transit: true, nsg: 1, pairs: [['InitiatorName', INITIATOR8], ['TargetName', OPEN], ['AuthMethod', 'None']] }));
    expect(r1.response.transit).toBe(true);
    expectRefused(neg.step(request({ csg: 0, pairs: [['AuthMethod', 'None']] })), LoginStatus.InitiatorError, /stage changed from 1 to 0/);
  });

  it('jumping to Operational without a transit', () => {
    const neg = new LoginNegotiator(policy());
    neg.step(request({ pairs: [...leading7, ['AuthMethod', 'CHAP']] }));
    expectRefused(neg.step(request({ csg: 1, pairs: [['HeaderDigest', 'None']] })), LoginStatus.InitiatorError, /stage changed/);
  });

  it.each([
    ['NSG equal to CSG', { csg: 1, nsg: 1 }],
    ['NSG behind CSG', { csg: 1, nsg: 0 }],
    ['NSG 2 (reserved)', { csg: 0, nsg: 2 }],
  ])('illegal transit: %s', (_name, stages) => {
    const neg = new LoginNegotiator(policy());
    expectRefused(neg.step(request({ transit: true, ...stages, pairs: [['InitiatorName', INITIATOR8], ['TargetName', OPEN]] })), LoginStatus.InitiatorError, /illegal transit/);
  });

  it.each([2, 3])('CSG %i', (csg) => {
    const neg = new LoginNegotiator(policy());
    expectRefused(neg.step(request({ csg, pairs: leading7 })), LoginStatus.InitiatorError, /invalid CSG/);
  });

  it('T and C together', () => {
    const neg = new LoginNegotiator(policy());
    expectRefused(neg.step(request({ transit: true, continue: true, nsg: 1, pairs: leading7 })), LoginStatus.InitiatorError, /T and C/);
  });

  it.each<[string, Partial<LoginRequest>]>([
    ['ISID', { isid: Buffer.from([0x80, 0, 0, 0, 0, 9]) }],
    ['ITT', { itt: 0x2000 }],
    ['CID', { cid: 4 }],
    ['TSIH', { tsih: 5 }],
  ])('%s changing during the login', (field, change) => {
    const neg = new LoginNegotiator(policy());
    neg.step(request({ pairs: [...leading7, ['AuthMethod', 'CHAP']] }));
    expectRefused(neg.step(request({ ...change, pairs: [['CHAP_A', '5']] })), LoginStatus.InitiatorError, new RegExp(`${field} changed`));
  });

  it('a key twice in one request', () => {
    const neg = new LoginNegotiator(policy());
    expectRefused(neg.step(request({ pairs: [...leading7, ['AuthMethod', 'CHAP'], ['AuthMethod', 'None']] })), LoginStatus.InitiatorError, /AuthMethod sent twice/);
  });

  it('an operational key negotiated twice across requests', () => {
    const neg = new LoginNegotiator(policy());
    neg.step(request({ csg: 1, pairs: [['InitiatorName', INITIATOR8], ['TargetName', OPEN], ['MaxBurstLength', '65536']] }));
    expectRefused(neg.step(request({ csg: 1, pairs: [['MaxBurstLength', '65536']] })), LoginStatus.InitiatorError, /negotiated twice/);
  });

  it('a leading key changed in a later request', () => {
    const neg = new LoginNegotiator(policy());
    neg.step(request({ pairs: [...leading7, ['AuthMethod', 'CHAP']] }));
    expectRefused(neg.step(request({ pairs: [['InitiatorName', INITIATOR8]] })), LoginStatus.InitiatorError, /InitiatorName changed/);
  });

  it('an operational key in the security stage is NotUnderstood there, and can be offered again later', () => {
    const neg = new LoginNegotiator(policy());
    const r1 = neg.step(request({ transit: true, nsg: 1, pairs: [['InitiatorName', INITIATOR8], ['TargetName', OPEN], ['AuthMethod', 'None'], ['MaxBurstLength', '65536']] }));
    expect(keysOf(r1.response.data).get('MaxBurstLength')).toBe('NotUnderstood');
    expect(r1.response.transit).toBe(true);
    const r2 = neg.step(request({ csg: 1, transit: true, nsg: 3, pairs: [['MaxBurstLength', '65536']] }));
    expect(keysOf(r2.response.data).get('MaxBurstLength')).toBe('65536');
    expect(r2.outcome?.params.maxBurstLength).toBe(65536);
  });

  it('a security key in the operational stage is NotUnderstood and changes nothing', () => {
    const neg = new LoginNegotiator(policy());
    const step = neg.step(request({ csg: 1, transit: true, nsg: 3, pairs: [['InitiatorName', INITIATOR8], ['TargetName', OPEN], ['AuthMethod', 'CHAP'], ['CHAP_A', '5']] }));
    const keys = keysOf(step.response.data);
    expect(keys.get('AuthMethod')).toBe('NotUnderstood');
    expect(keys.get('CHAP_A')).toBe('NotUnderstood');
    expect(step.outcome).toMatchObject({ authMethod: 'None' });
  });

  it('keys only a target sends are NotUnderstood', () => {
    for (const key of ['TargetAddress', 'TargetPortalGroupTag', 'TargetAlias', 'SendTargets']) {
      const neg = new LoginNegotiator(policy());
      const step = neg.step(request({ csg: 1, pairs: [['InitiatorName', INITIATOR8], ['TargetName', OPEN], [key, 'All']] }));
      expect(step.close).toBeUndefined();
      expect(keysOf(step.response.data).get(key)).toBe('NotUnderstood');
    }
  });

  it('CHAP keys on a target that requires CHAP still cannot skip the security stage', () => {
    const neg = new LoginNegotiator(policy());
    expectRefused(neg.step(request({ csg: 1, transit: true, nsg: 3, pairs: [...leading7, ['CHAP_N', 'node7-user'], ['CHAP_R', '0x00']] })), LoginStatus.AuthenticationFailure);
  });

  it('CHAP keys after authentication completed and the stage moved on are NotUnderstood', () => {
    const c = challenged();
    const ok = respond(c, 'node7-user', SECRETS.node7);
    expect(ok.response.transit).toBe(true);
    const step = c.neg.step(request({ csg: 1, pairs: [['CHAP_A', '5']] }));
    expect(step.close).toBeUndefined();
    expect(keysOf(step.response.data).get('CHAP_A')).toBe('NotUnderstood');
  });

  it('more CHAP keys after verification without leaving the stage', () => {
    const c = challenged();
    const r = referenceChap(5, c.identifier, SECRETS.node7, c.challenge);
    const ok = c.neg.step(request({ pairs: [['CHAP_N', 'node7-user'], ['CHAP_R', `0x${r.toString('hex')}`]] }));
    expect(status(ok)).toBe(0);
    expect(ok.response.transit).toBe(false);
    expectRefused(c.neg.step(request({ pairs: [['CHAP_A', '5']] })), LoginStatus.InitiatorError, /after authentication/);
  });

  it('malformed text', () => {
    for (const data of [Buffer.from('InitiatorName'), Buffer.from('NoEquals\0'), Buffer.from(`${'K'.repeat(64)}=v\0`), Buffer.from('=v\0')]) {
      const neg = new LoginNegotiator(policy());
      expectRefused(neg.step(request({ data })), LoginStatus.InitiatorError);
    }
  });

  it('a data segment over 8192 bytes', () => {
    const neg = new LoginNegotiator(policy());
    expectRefused(neg.step(request({ data: Buffer.alloc(8193, 0x41) })), LoginStatus.InitiatorError, /over 8192/);
  });

  it('too many login PDUs', () => {
    const neg = new LoginNegotiator(policy(), { maxLoginPdus: 5 });
    neg.step(request({ pairs: [...leading7, ['AuthMethod', 'CHAP']] }));
    let last: LoginStep | undefined;
    for (let i = 0; i < 5; i++) last = neg.step(request({}));
    expectRefused(last!, LoginStatus.InitiatorError, /too many/);
  });

  it('after a failure every further request gets the same refusal', () => {
    const neg = new LoginNegotiator(policy());
    const first = neg.step(request({ pairs: [['InitiatorName', INITIATOR8], ['TargetName', NODE7]] }));
    expectRefused(first, LoginStatus.AuthorizationFailure);
    expectRefused(neg.step(request({ pairs: leading7 })), LoginStatus.AuthorizationFailure);
  });

  it('a login request after the login completed', () => {
    const neg = new LoginNegotiator(policy());
    const done = neg.step(request({ csg: 1, transit: true, nsg: 3, pairs: [['InitiatorName', INITIATOR8], ['TargetName', OPEN]] }));
    expect(done.outcome).toBeDefined();
    expectRefused(neg.step(request({ csg: 1, transit: true, nsg: 3 })), LoginStatus.InitiatorError, /completed/);
  });

  it('a normal session with a target we know but the wrong name in a later request', () => {
    const neg = new LoginNegotiator(policy());
    neg.step(request({ pairs: [...leading7, ['AuthMethod', 'CHAP']] }));
    expectRefused(neg.step(request({ pairs: [['TargetName', NODE8]] })), LoginStatus.InitiatorError, /TargetName changed/);
  });
});
