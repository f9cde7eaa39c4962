/**
 * The negotiator against the login sequences of iPXE, libiscsi and open-iscsi (initiators.ts rebuilds
 * them from their sources), with CHAP computed independently (fixtures.referenceChap).
 */
import { describe, expect, it } from 'vitest';
import { CHAP_ALGORITHMS } from '../../../src/iscsi/login/chap.js';
import { LoginNegotiator } from '../../../src/iscsi/login/negotiator.js';
import {
  INITIATOR7,
  INITIATOR8,
  keysOf,
  NODE7,
  NODE8,
  OPEN,
  pairsOf,
  policy,
  SECRETS,
  TARGET8,
} from './fixtures.js';
import { drive, IpxeInitiator, LibiscsiInitiator, OpenIscsiInitiator, type Transcript } from './initiators.js';

function flags(t: Transcript): string[] {
  return t.steps.map(({ response: r }) => `${r.transit ? 'T' : '-'}${r.continue ? 'C' : '-'} ${r.csg}>${r.nsg}`);
}

function allResponseValues(t: Transcript): string[] {
  return t.steps.flatMap((s) => pairsOf(s.response.data).map(([, v]) => v));
}

describe('iPXE (src/net/tcp/iscsi.c)', () => {
  it('one-way CHAP with MD5: security in three PDUs, then its operational keys', () => {
    const neg = new LoginNegotiator(policy());
    const ipxe = new IpxeInitiator({ initiatorName: INITIATOR7, targetName: NODE7, user: 'node7-user', secret: SECRETS.node7 });
    const t = drive(neg, ipxe);
    expect(t.result).toBe('done');
    expect(t.requests.map((r) => `${r.csg}>${r.nsg}`)).toEqual(['0>1', '0>1', '0>1', '1>3']);
    expect(flags(t)).toEqual(['-- 0>0', '-- 0>0', 'T- 0>1', 'T- 1>3']);

    const first = keysOf(t.steps[0]!.response.data);
    expect(first.get('AuthMethod')).toBe('CHAP');
    expect(first.get('TargetPortalGroupTag')).toBe('1');
    expect(first.get('TargetAlias')).toBe('node7');
    const challenge = keysOf(t.steps[1]!.response.data);
    expect(challenge.get('CHAP_A')).toBe('5');
    expect(Number(challenge.get('CHAP_I'))).toBeGreaterThanOrEqual(0);
    expect(challenge.get('CHAP_C')).toMatch(/^0x[0-9a-f]{64}$/);
    // iPXE treats any Reject as fatal.
    expect(allResponseValues(t)).not.toContain('Reject');

    const last = t.steps[3]!;
    expect(keysOf(last.response.data).get('MaxRecvDataSegmentLength')).toBe('262144');
    expect(keysOf(last.response.data).get('MaxBurstLength')).toBe('262144');
    expect(last.outcome).toMatchObject({
      sessionType: 'Normal',
      initiatorName: INITIATOR7,
      chapUser: 'node7-user',
      authMethod: 'CHAP',
      chapAlgorithm: 'MD5',
      mutualChap: false,
      tsih: 0,
      target: { name: NODE7 },
      params: {
        headerDigest: 'None',
        dataDigest: 'None',
        initiatorMaxRecvDataSegmentLength: 8192,
        targetMaxRecvDataSegmentLength: 262144,
        maxBurstLength: 262144,
        firstBurstLength: 65536,
        immediateData: false,
        initialR2T: true,
        maxOutstandingR2T: 1,
        defaultTime2Wait: 2,
        defaultTime2Retain: 0,
        errorRecoveryLevel: 0,
        maxConnections: 1,
      },
    });
    expect(last.outcome!.target!.chap).toBeUndefined();
  });

  it('mutual CHAP: CHAP_I/CHAP_C ride with the response and we answer with the target secret', () => {
    const neg = new LoginNegotiator(policy());
    const ipxe = new IpxeInitiator({
      initiatorName: INITIATOR7,
      targetName: NODE7,
      user: 'node7-user',
      secret: SECRETS.node7,
      targetUser: 'hiveboot-node7',
      targetSecret: SECRETS.node7Mutual,
    });
    const t = drive(neg, ipxe);
    expect(t.result).toBe('done');
    expect(keysOf(t.requests[0]!.data).get('AuthMethod')).toBe('CHAP');
    const third = keysOf(t.steps[2]!.response.data);
    expect(third.get('CHAP_N')).toBe('hiveboot-node7');
    expect(third.get('CHAP_R')).toMatch(/^0x[0-9a-f]{32}$/);
    expect(t.steps[3]!.outcome).toMatchObject({ chapUser: 'node7-user', mutualChap: true, chapAlgorithm: 'MD5' });
  });

  it('a target without CHAP: AuthMethod=None and straight to the operational stage', () => {
    const neg = new LoginNegotiator(policy());
    const ipxe = new IpxeInitiator({ initiatorName: INITIATOR8, targetName: OPEN });
    const t = drive(neg, ipxe);
    expect(t.result).toBe('done');
    expect(flags(t)).toEqual(['T- 0>1', 'T- 1>3']);
    expect(keysOf(t.steps[0]!.response.data).get('AuthMethod')).toBe('None');
    expect(t.steps[1]!.outcome).toMatchObject({ authMethod: 'None', target: { name: OPEN } });
    expect(t.steps[1]!.outcome!.chapUser).toBeUndefined();
  });
});

describe('libiscsi (lib/login.c)', () => {
  it('one-way CHAP with MD5 (its default): T=0 on the CHAP_A PDU, upper-case CHAP_R', () => {
    const neg = new LoginNegotiator(policy());
    const lib = new LibiscsiInitiator({ initiatorName: INITIATOR8, targetName: NODE8, user: 'node8-user', secret: SECRETS.node8 });
    const t = drive(neg, lib);
    expect(t.result).toBe('done');
    expect(t.requests.map((r) => `${r.transit ? 'T' : '-'} ${r.csg}>${r.nsg}`)).toEqual(['T 0>1', '- 0>1', 'T 0>1', 'T 1>3']);
    expect(keysOf(t.requests[2]!.data).get('CHAP_R')).toMatch(/^0x[0-9A-F]{32}$/);
    const op = keysOf(t.steps[3]!.response.data);
    expect(op.get('HeaderDigest')).toBe('None');
    expect(op.get('InitialR2T')).toBe('Yes');
    expect(op.get('ImmediateData')).toBe('Yes');
    expect(op.get('IFMarker')).toBe('No');
    expect(op.get('OFMarker')).toBe('No');
    expect(t.steps[3]!.outcome).toMatchObject({
      chapAlgorithm: 'MD5',
      params: { initiatorMaxRecvDataSegmentLength: 262144, firstBurstLength: 65536, maxBurstLength: 262144, initialR2T: true, immediateData: true },
    });
  });

  it('one-way CHAP with SHA-256 (CHAP_A=7)', () => {
    const neg = new LoginNegotiator(policy());
    const lib = new LibiscsiInitiator({ initiatorName: INITIATOR8, targetName: NODE8, user: 'node8-user', secret: SECRETS.node8, chapAuth: 7 });
    const t = drive(neg, lib);
    expect(t.result).toBe('done');
    expect(keysOf(t.steps[1]!.response.data).get('CHAP_A')).toBe('7');
    expect(t.steps[3]!.outcome).toMatchObject({ chapAlgorithm: 'SHA256' });
  });

  it('mutual CHAP with SHA-256: a 64-byte initiator challenge and a CHAP_R of exactly 32 bytes', () => {
    const neg = new LoginNegotiator(policy());
    const lib = new LibiscsiInitiator({
      initiatorName: INITIATOR8,
      targetName: NODE8,
      user: 'node8-user',
      secret: SECRETS.node8,
      targetUser: 'hiveboot-node8',
      targetSecret: SECRETS.node8Mutual,
      chapAuth: 7,
    });
    const t = drive(neg, lib);
    expect(t.result).toBe('done');
    expect(keysOf(t.steps[2]!.response.data).get('CHAP_R')).toMatch(/^0x[0-9a-f]{64}$/);
    expect(t.steps[3]!.outcome).toMatchObject({ mutualChap: true, chapAlgorithm: 'SHA256' });
  });

  it('without credentials it starts in the operational stage, which a target without CHAP accepts', () => {
    const neg = new LoginNegotiator(policy());
    const lib = new LibiscsiInitiator({ initiatorName: INITIATOR8, targetName: OPEN, alias: 'node8' });
    const t = drive(neg, lib);
    expect(t.result).toBe('done');
    expect(t.requests).toHaveLength(1);
    expect(flags(t)).toEqual(['T- 1>3']);
    const keys = keysOf(t.steps[0]!.response.data);
    expect(keys.get('TargetPortalGroupTag')).toBe('1');
    expect(keys.get('MaxRecvDataSegmentLength')).toBe('262144');
    expect(t.steps[0]!.outcome).toMatchObject({ authMethod: 'None', initiatorAlias: 'node8', target: { name: OPEN } });
  });

  it('with credentials against a target without CHAP: None, then it repeats its leading keys', () => {
    const neg = new LoginNegotiator(policy());
    const lib = new LibiscsiInitiator({ initiatorName: INITIATOR8, targetName: OPEN, user: 'node8-user', secret: SECRETS.node8 });
    const t = drive(neg, lib);
    expect(t.result).toBe('done');
    expect(keysOf(t.steps[0]!.response.data).get('AuthMethod')).toBe('None');
    expect(keysOf(t.requests[1]!.data).get('InitiatorName')).toBe(INITIATOR8);
  });

  it('a discovery session: normal-only keys are Irrelevant, SendTargets sees only its own targets', () => {
    const neg = new LoginNegotiator(policy());
    const lib = new LibiscsiInitiator({ initiatorName: INITIATOR8, discovery: true });
    const t = drive(neg, lib);
    expect(t.result).toBe('done');
    const keys = keysOf(t.steps[0]!.response.data);
    expect(keys.has('TargetPortalGroupTag')).toBe(false);
    for (const key of ['InitialR2T', 'ImmediateData', 'MaxBurstLength', 'FirstBurstLength', 'MaxOutstandingR2T', 'MaxConnections', 'DataPDUInOrder', 'DataSequenceInOrder']) {
      expect(keys.get(key), key).toBe('Irrelevant');
    }
    expect(keys.get('DefaultTime2Wait')).toBe('2');
    const outcome = t.steps[0]!.outcome!;
    expect(outcome.sessionType).toBe('Discovery');
    expect(outcome.target).toBeUndefined();
    expect(outcome.visibleTargets.map((v) => v.name).sort()).toEqual([NODE8, OPEN].sort());
    expect(outcome.visibleTargets.every((v) => v.chap === undefined)).toBe(true);
  });
});

describe('open-iscsi (usr/login.c, usr/auth.c)', () => {
  it('one-way CHAP picking SHA-256 from CHAP_A=7,6,5; every response key is one it recognises', () => {
    const neg = new LoginNegotiator(policy());
    const iscsid = new OpenIscsiInitiator({ initiatorName: INITIATOR8, targetName: NODE8, alias: 'node8', user: 'node8-user', secret: SECRETS.node8 });
    const t = drive(neg, iscsid);
    expect(t.result).toBe('done');
    expect(t.requests.map((r) => `${r.transit ? 'T' : '-'} ${r.csg}>${r.nsg}`)).toEqual(['T 0>1', '- 0>0', 'T 0>1', 'T 1>3']);
    expect(keysOf(t.steps[1]!.response.data).get('CHAP_A')).toBe('7');
    const op = keysOf(t.steps[3]!.response.data);
    expect(op.get('MaxBurstLength')).toBe('1048576');
    expect(op.get('FirstBurstLength')).toBe('65536');
    expect(op.get('DefaultTime2Retain')).toBe('0');
    expect(t.steps[3]!.outcome).toMatchObject({
      chapAlgorithm: 'SHA256',
      initiatorAlias: 'node8',
      params: { maxBurstLength: 1048576, firstBurstLength: 65536, initiatorMaxRecvDataSegmentLength: 262144 },
    });
  });

  it('mutual CHAP: AuthMethod=CHAP with T=0 first, its challenge as long as the digest', () => {
    const neg = new LoginNegotiator(policy());
    const iscsid = new OpenIscsiInitiator({
      initiatorName: INITIATOR8,
      targetName: NODE8,
      user: 'node8-user',
      secret: SECRETS.node8,
      targetUser: 'hiveboot-node8',
      targetSecret: SECRETS.node8Mutual,
    });
    const t = drive(neg, iscsid);
    expect(t.result).toBe('done');
    expect(t.requests[0]!.transit).toBe(false);
    expect(t.steps[3]!.outcome).toMatchObject({ mutualChap: true, chapAlgorithm: 'SHA256' });
  });

  it.runIf(CHAP_ALGORITHMS.has(8))('prefers SHA3-256 when offered first (its default chap_algs)', () => {
    const neg = new LoginNegotiator(policy());
    const iscsid = new OpenIscsiInitiator({ initiatorName: INITIATOR8, targetName: NODE8, user: 'node8-user', secret: SECRETS.node8, chapAlgs: [8, 7, 6, 5] });
    const t = drive(neg, iscsid);
    expect(t.result).toBe('done');
    expect(t.steps.at(-1)!.outcome).toMatchObject({ chapAlgorithm: 'SHA3-256' });
  });

  it('MD5 only when the initiator allows only MD5', () => {
    const neg = new LoginNegotiator(policy());
    const iscsid = new OpenIscsiInitiator({ initiatorName: INITIATOR8, targetName: NODE8, user: 'node8-user', secret: SECRETS.node8, chapAlgs: [5] });
    const t = drive(neg, iscsid);
    expect(t.result).toBe('done');
    expect(t.steps.at(-1)!.outcome).toMatchObject({ chapAlgorithm: 'MD5' });
  });

  it('discovery without credentials starts in the operational stage', () => {
    const neg = new LoginNegotiator(policy());
    const iscsid = new OpenIscsiInitiator({ initiatorName: INITIATOR7, discovery: true });
    const t = drive(neg, iscsid);
    expect(t.result).toBe('done');
    expect(flags(t)).toEqual(['T- 1>3']);
    expect(t.steps[0]!.outcome).toMatchObject({
      sessionType: 'Discovery',
      authMethod: 'None',
      params: { initiatorMaxRecvDataSegmentLength: 32768, targetMaxRecvDataSegmentLength: 262144 },
    });
    expect(t.steps[0]!.outcome!.visibleTargets.map((v) => v.name)).toEqual([NODE7]);
  });

  it('discovery with CHAP: the host\'s own credentials open discovery, and it sees only its own target', () => {
    const neg = new LoginNegotiator(policy({ discoveryNeedsChap: true }));
    const iscsid = new OpenIscsiInitiator({ initiatorName: INITIATOR8, discovery: true, user: 'node8-user', secret: SECRETS.node8 });
    const t = drive(neg, iscsid);
    expect(t.result).toBe('done');
    const outcome = t.steps.at(-1)!.outcome!;
    expect(outcome).toMatchObject({ sessionType: 'Discovery', chapUser: 'node8-user', authMethod: 'CHAP' });
    // TARGET_OPEN also lists this initiator, but has no CHAP credentials: not visible over CHAP discovery.
    expect(outcome.visibleTargets.map((v) => v.name)).toEqual([TARGET8.name]);
    expect(JSON.stringify(outcome)).not.toContain(SECRETS.node8);
  });

  it('discovery without CHAP is refused when discovery needs CHAP', () => {
    const neg = new LoginNegotiator(policy({ discoveryNeedsChap: true }));
    const iscsid = new OpenIscsiInitiator({ initiatorName: INITIATOR8, discovery: true });
    const t = drive(neg, iscsid);
    expect(t.result).toMatch(/^target closed/);
    expect(t.steps[0]!.response.statusClass).toBe(2);
    expect(t.steps[0]!.response.statusDetail).toBe(1);
  });

  it('a target alias is announced only when configured', () => {
    const neg = new LoginNegotiator(policy());
    const t = drive(neg, new OpenIscsiInitiator({ initiatorName: INITIATOR8, targetName: NODE8, user: 'node8-user', secret: SECRETS.node8 }));
    expect(t.result).toBe('done');
    expect(TARGET8.alias).toBeUndefined();
    expect(t.steps.some((s) => keysOf(s.response.data).has('TargetAlias'))).toBe(false);
  });
});
