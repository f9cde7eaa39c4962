import { describe, expect, it } from 'vitest';
import { LoginNegotiator } from '../../../src/iscsi/login/negotiator.js';
import {
  checkLimits,
  DEFAULT_TARGET_LIMITS,
  isOperationalKey,
  OperationalNegotiation,
  RFC_DEFAULTS,
  type TargetOperationalLimits,
} from '../../../src/iscsi/login/operational-params.js';
import { INITIATOR8, keysOf, OPEN, policy, request } from './fixtures.js';

function negotiation(limits: Partial<TargetOperationalLimits> = {}, type: 'Normal' | 'Discovery' = 'Normal') {
  return new OperationalNegotiation({ ...DEFAULT_TARGET_LIMITS, ...limits }, type);
}

function answerOf(n: OperationalNegotiation, key: string, value: string): string | undefined {
  const verdict = n.offer(key, value);
  return verdict.kind === 'answer' ? verdict.value : verdict.kind;
}

describe('OperationalNegotiation', () => {
  it('starts from the RFC 7143 §13 defaults', () => {
    expect(negotiation().params).toEqual(RFC_DEFAULTS);
    expect(RFC_DEFAULTS).toMatchObject({ maxBurstLength: 262144, firstBurstLength: 65536, defaultTime2Retain: 20, initialR2T: true, immediateData: true });
  });

  it('digests: the first of the initiator\'s list we support', () => {
    const n = negotiation();
    expect(answerOf(n, 'HeaderDigest', 'CRC32C,None')).toBe('CRC32C');
    expect(answerOf(n, 'DataDigest', 'None,CRC32C')).toBe('None');
    expect(n.params).toMatchObject({ headerDigest: 'CRC32C', dataDigest: 'None' });
    const noCrc = negotiation({ headerDigests: ['None'], dataDigests: ['None'] });
    expect(answerOf(noCrc, 'HeaderDigest', 'CRC32C,None')).toBe('None');
    expect(answerOf(noCrc, 'DataDigest', 'CRC32C')).toBe('Reject');
    expect(answerOf(negotiation(), 'HeaderDigest', 'MD5,SHA1')).toBe('Reject');
    expect(answerOf(negotiation(), 'HeaderDigest', 'MD5,,None')).toBe('Reject');
  });

  it('numbers: minimum or maximum with ours', () => {
    const n = negotiation();
    expect(answerOf(n, 'MaxBurstLength', '16776192')).toBe('1048576');
    expect(answerOf(n, 'FirstBurstLength', '262144')).toBe('65536');
    expect(answerOf(n, 'MaxOutstandingR2T', '8')).toBe('1');
    expect(answerOf(n, 'DefaultTime2Wait', '0')).toBe('2');
    expect(answerOf(n, 'DefaultTime2Retain', '0')).toBe('0');
    expect(answerOf(n, 'ErrorRecoveryLevel', '2')).toBe('0');
    expect(answerOf(n, 'MaxConnections', '8')).toBe('1');
    expect(n.params).toMatchObject({ maxBurstLength: 1048576, firstBurstLength: 65536, maxOutstandingR2T: 1, defaultTime2Wait: 2, defaultTime2Retain: 0, errorRecoveryLevel: 0, maxConnections: 1 });
  });

  it('numbers in hex are read too, answers are decimal', () => {
    expect(answerOf(negotiation(), 'MaxBurstLength', '0x10000')).toBe('65536');
  });

  it.each([
    ['MaxBurstLength', '511'],
    ['MaxBurstLength', '16777216'],
    ['FirstBurstLength', 'lots'],
    ['MaxOutstandingR2T', '0'],
    ['DefaultTime2Wait', '3601'],
    ['ErrorRecoveryLevel', '3'],
    ['MaxConnections', '0'],
    ['InitialR2T', 'Maybe'],
    ['ImmediateData', 'yes'],
    ['MaxRecvDataSegmentLength', '100'],
    ['MaxRecvDataSegmentLength', '0x1000000'],
  ])('out of range: %s=%s → Reject', (key, value) => {
    const n = negotiation();
    expect(answerOf(n, key, value)).toBe('Reject');
    expect(n.params).toEqual(RFC_DEFAULTS);
  });

  it('booleans: AND and OR with ours', () => {
    const n = negotiation({ immediateData: true, initialR2T: false });
    expect(answerOf(n, 'ImmediateData', 'No')).toBe('No');
    expect(answerOf(n, 'InitialR2T', 'No')).toBe('No');
    expect(answerOf(n, 'DataPDUInOrder', 'No')).toBe('Yes');
    expect(answerOf(n, 'DataSequenceInOrder', 'No')).toBe('Yes');
    expect(n.params).toMatchObject({ immediateData: false, initialR2T: false, dataPDUInOrder: true, dataSequenceInOrder: true });
    const strict = negotiation({ immediateData: false, initialR2T: true });
    expect(answerOf(strict, 'ImmediateData', 'Yes')).toBe('No');
    expect(answerOf(strict, 'InitialR2T', 'No')).toBe('Yes');
  });

  it('MaxRecvDataSegmentLength is a declaration each way', () => {
    const n = negotiation({ maxRecvDataSegmentLength: 65536 });
    expect(n.offer('MaxRecvDataSegmentLength', '262144')).toEqual({ kind: 'declared' });
    expect(n.params.initiatorMaxRecvDataSegmentLength).toBe(262144);
    expect(n.params.targetMaxRecvDataSegmentLength).toBe(8192);
    expect(n.declarations()).toEqual([{ key: 'MaxRecvDataSegmentLength', value: '65536' }]);
    expect(n.params.targetMaxRecvDataSegmentLength).toBe(65536);
    expect(n.declarations()).toEqual([]);
  });

  it('obsolete markers (§13.25): IFMarker/OFMarker answered No, the intervals Reject', () => {
    const n = negotiation();
    expect(answerOf(n, 'IFMarker', 'No')).toBe('No');
    expect(answerOf(n, 'OFMarker', 'Yes')).toBe('No');
    expect(answerOf(n, 'IFMarkInt', '2048~8192')).toBe('Reject');
    expect(answerOf(n, 'OFMarkInt', '2048')).toBe('Reject');
  });

  it('TaskReporting, iSCSIProtocolLevel and RDMAExtensions', () => {
    const n = negotiation();
    expect(answerOf(n, 'TaskReporting', 'ResponseFence,RFC3720')).toBe('RFC3720');
    expect(answerOf(n, 'iSCSIProtocolLevel', '2')).toBe('1');
    expect(answerOf(n, 'RDMAExtensions', 'Yes')).toBe('No');
    expect(answerOf(negotiation(), 'TaskReporting', 'FastAbort')).toBe('Reject');
  });

  it('discovery sessions answer Irrelevant to the normal-session keys', () => {
    const n = negotiation({}, 'Discovery');
    for (const key of ['MaxConnections', 'InitialR2T', 'ImmediateData', 'MaxBurstLength', 'FirstBurstLength', 'MaxOutstandingR2T', 'DataPDUInOrder', 'DataSequenceInOrder']) {
      expect(answerOf(n, key, key.includes('R2T') || key.includes('Order') || key === 'ImmediateData' ? 'Yes' : '1024'), key).toBe('Irrelevant');
    }
    expect(answerOf(n, 'HeaderDigest', 'None')).toBe('None');
    expect(answerOf(n, 'DefaultTime2Wait', '5')).toBe('5');
    expect(n.params).toMatchObject({ ...RFC_DEFAULTS, defaultTime2Wait: 5 });
  });

  it('a key offered twice is an error', () => {
    const n = negotiation();
    n.offer('MaxBurstLength', '65536');
    expect(n.offer('MaxBurstLength', '65536')).toEqual({ kind: 'error', reason: 'MaxBurstLength negotiated twice' });
  });

  it('FirstBurstLength never ends above MaxBurstLength, whatever the order of offers', () => {
    const a = negotiation({ maxBurstLength: 1048576, firstBurstLength: 262144 });
    const answers = [{ key: 'FirstBurstLength', value: answerOf(a, 'FirstBurstLength', '262144')! }, { key: 'MaxBurstLength', value: answerOf(a, 'MaxBurstLength', '16384')! }];
    a.settle(answers);
    expect(a.params).toMatchObject({ maxBurstLength: 16384, firstBurstLength: 16384 });
    expect(answers[0]).toEqual({ key: 'FirstBurstLength', value: '16384' });

    const b = negotiation({ maxBurstLength: 1048576, firstBurstLength: 262144 });
    expect(answerOf(b, 'MaxBurstLength', '16384')).toBe('16384');
    expect(answerOf(b, 'FirstBurstLength', '262144')).toBe('16384');

    const c = negotiation();
    expect(answerOf(c, 'MaxBurstLength', '4096')).toBe('4096');
    c.settle([]);
    expect(c.params.firstBurstLength).toBe(4096);
  });

  it('knows its keys', () => {
    expect(isOperationalKey('HeaderDigest')).toBe(true);
    expect(isOperationalKey('AuthMethod')).toBe(false);
    expect(isOperationalKey('X-com.example.Foo')).toBe(false);
  });

  it('checks its limits', () => {
    expect(checkLimits(DEFAULT_TARGET_LIMITS)).toBeNull();
    expect(checkLimits({ ...DEFAULT_TARGET_LIMITS, firstBurstLength: 2_000_000 })).toMatch(/firstBurstLength/);
    expect(checkLimits({ ...DEFAULT_TARGET_LIMITS, maxRecvDataSegmentLength: 100 })).toMatch(/maxRecvDataSegmentLength/);
    expect(checkLimits({ ...DEFAULT_TARGET_LIMITS, headerDigests: [] })).toMatch(/digest/);
  });
});

describe('operational answers through the negotiator', () => {
  const leading: [string, string][] = [
    ['InitiatorName', INITIATOR8],
    ['TargetName', OPEN],
  ];

  it('unknown keys and X- extensions are NotUnderstood; the login goes on', () => {
    const neg = new LoginNegotiator(policy());
    const step = neg.step(
      request({
        csg: 1,
        transit: true,
        nsg: 3,
        pairs: [...leading, ['X-com.cisco.PingTimeout', '5'], ['X#org.example.thing', '1'], ['FancyNewKey', 'Yes'], ['HeaderDigest', 'CRC32C,None'], ['ErrorRecoveryLevel', '9']],
      }),
    );
    const keys = keysOf(step.response.data);
    expect(keys.get('X-com.cisco.PingTimeout')).toBe('NotUnderstood');
    expect(keys.get('X#org.example.thing')).toBe('NotUnderstood');
    expect(keys.get('FancyNewKey')).toBe('NotUnderstood');
    expect(keys.get('HeaderDigest')).toBe('CRC32C');
    expect(keys.get('ErrorRecoveryLevel')).toBe('Reject');
    expect(step.outcome?.params.headerDigest).toBe('CRC32C');
    expect(step.outcome?.params.errorRecoveryLevel).toBe(0);
  });

  it('our limits come from the constructor', () => {
    const neg = new LoginNegotiator(policy(), { limits: { maxRecvDataSegmentLength: 65536, maxBurstLength: 131072, dataDigests: ['None'] }, portalGroupTag: 7 });
    const step = neg.step(request({ csg: 1, transit: true, nsg: 3, pairs: [...leading, ['MaxBurstLength', '262144'], ['DataDigest', 'CRC32C,None']] }));
    const keys = keysOf(step.response.data);
    expect(keys.get('MaxRecvDataSegmentLength')).toBe('65536');
    expect(keys.get('MaxBurstLength')).toBe('131072');
    expect(keys.get('DataDigest')).toBe('None');
    expect(keys.get('TargetPortalGroupTag')).toBe('7');
    expect(step.outcome?.params).toMatchObject({ targetMaxRecvDataSegmentLength: 65536, maxBurstLength: 131072, dataDigest: 'None' });
  });

  it('keys spread over several Operational requests, T=0 until the initiator transits', () => {
    const neg = new LoginNegotiator(policy());
    const a = neg.step(request({ csg: 1, nsg: 3, pairs: [...leading, ['HeaderDigest', 'None']] }));
    expect(a.response.transit).toBe(false);
    expect(keysOf(a.response.data).get('MaxRecvDataSegmentLength')).toBe('262144');
    const b = neg.step(request({ csg: 1, transit: true, nsg: 3, pairs: [['MaxBurstLength', '65536']] }));
    expect(b.response.transit).toBe(true);
    // Declared once only.
    expect(keysOf(b.response.data).has('MaxRecvDataSegmentLength')).toBe(false);
    expect(b.outcome?.params).toMatchObject({ maxBurstLength: 65536, targetMaxRecvDataSegmentLength: 262144 });
  });

  it('Security straight to Full Feature keeps every default, ours included', () => {
    const neg = new LoginNegotiator(policy());
    const step = neg.step(request({ transit: true, nsg: 3, pairs: [...leading, ['AuthMethod', 'None']] }));
    expect(step.response).toMatchObject({ transit: true, csg: 0, nsg: 3 });
    expect(keysOf(step.response.data).has('MaxRecvDataSegmentLength')).toBe(false);
    expect(step.outcome?.params).toEqual(RFC_DEFAULTS);
  });

  it('refuses nonsense limits at construction', () => {
    expect(() => new LoginNegotiator(policy(), { limits: { maxBurstLength: 100 } })).toThrow(RangeError);
    expect(() => new LoginNegotiator(policy(), { portalGroupTag: 70000 })).toThrow(RangeError);
    expect(() => new LoginNegotiator(policy(), { chapAlgorithms: [] })).toThrow(RangeError);
    expect(() => new LoginNegotiator(policy(), { chapChallengeLength: 8 })).toThrow(RangeError);
  });
});
