/** Mechanics of the negotiator: response headers, the C bit both ways, what the outcome carries. */
import { describe, expect, it } from 'vitest';
import { LoginNegotiator } from '../../../src/iscsi/login/negotiator.js';
import { LoginStatus } from '../../../src/iscsi/login/types.js';
import { INITIATOR7, INITIATOR8, ISID, keysOf, NODE7, OPEN, pairsOf, policy, request, text } from './fixtures.js';

describe('response headers', () => {
  it('echo ITT and ISID, version 0, TSIH 0 (the connection fills it), CSG of the request', () => {
    const neg = new LoginNegotiator(policy());
    const req = request({ itt: 0xdead_beef, pairs: [['InitiatorName', INITIATOR7], ['TargetName', NODE7], ['AuthMethod', 'CHAP']] });
    const { response } = neg.step(req);
    expect(response).toMatchObject({ itt: 0xdead_beef, versionMax: 0, versionActive: 0, tsih: 0, csg: 0, nsg: 0, transit: false, continue: false, statusClass: 0, statusDetail: 0 });
    expect(response.isid.equals(ISID)).toBe(true);
    expect(response.isid).not.toBe(req.isid);
  });

  it('ignore the NSG bits when T=0 (libiscsi sets them anyway)', () => {
    const neg = new LoginNegotiator(policy());
    neg.step(request({ transit: true, nsg: 1, pairs: [['InitiatorName', INITIATOR7], ['TargetName', NODE7], ['AuthMethod', 'CHAP']] }));
    const step = neg.step(request({ transit: false, nsg: 3, pairs: [['CHAP_A', '5']] }));
    expect(step.close).toBeUndefined();
    expect(keysOf(step.response.data).get('CHAP_A')).toBe('5');
  });

  it('a TSIH other than 0 passes through to the outcome for the connection layer to judge', () => {
    const neg = new LoginNegotiator(policy());
    const step = neg.step(request({ tsih: 0x0102, csg: 1, transit: true, nsg: 3, pairs: [['InitiatorName', INITIATOR8], ['TargetName', OPEN]] }));
    expect(step.outcome).toMatchObject({ tsih: 0x0102 });
    expect(step.outcome!.isid.equals(ISID)).toBe(true);
    expect(step.response.tsih).toBe(0);
  });
});

describe('C bit: the initiator continues', () => {
  const whole = text([
    ['InitiatorName', INITIATOR8],
    ['InitiatorAlias', 'node8'],
    ['TargetName', OPEN],
    ['SessionType', 'Normal'],
    ['HeaderDigest', 'None'],
  ]);

  it('acknowledges each piece with an empty response, then answers the whole', () => {
    const neg = new LoginNegotiator(policy());
    const cuts = [0, 7, 40, 61, whole.length];
    const steps = cuts.slice(1).map((end, i) => {
      const last = i === cuts.length - 2;
      return neg.step(request({ csg: 1, nsg: 3, transit: last, continue: !last, data: whole.subarray(cuts[i], end) }));
    });
    for (const ack of steps.slice(0, -1)) {
      expect(ack.response).toMatchObject({ transit: false, continue: false, statusClass: 0 });
      expect(ack.response.data.length).toBe(0);
    }
    const final = steps.at(-1)!;
    expect(final.response.transit).toBe(true);
    expect(final.outcome).toMatchObject({ initiatorName: INITIATOR8, initiatorAlias: 'node8', params: { headerDigest: 'None' } });
  });

  it('refuses a continued segment that grows past the cap', () => {
    const neg = new LoginNegotiator(policy(), { maxTextLength: 1000 });
    neg.step(request({ continue: true, data: Buffer.alloc(600, 0x41) }));
    const step = neg.step(request({ continue: true, data: Buffer.alloc(600, 0x41) }));
    expect(step.close).toBe(true);
    expect(step.reason).toMatch(/too long/);
  });

  it('refuses a stage change inside a continued segment', () => {
    const neg = new LoginNegotiator(policy());
    neg.step(request({ continue: true, csg: 0, data: whole.subarray(0, 10) }));
    const step = neg.step(request({ csg: 1, data: whole.subarray(10) }));
    expect(step.close).toBe(true);
    expect(step.reason).toMatch(/stage changed/);
  });
});

describe('C bit: our answer continues', () => {
  const unknown: [string, string][] = Array.from({ length: 12 }, (_, i) => [`X-org.example.key${i}`, 'value']);

  /** Sends a request in pieces of at most 64 bytes (C=1), as the PDU limit in these tests requires. */
  function send(neg: LoginNegotiator, fields: Parameters<typeof request>[0]) {
    const data = request(fields).data;
    let step;
    for (let offset = 0; offset < data.length; offset += 64) {
      const last = offset + 64 >= data.length;
      step = neg.step(request({ ...fields, pairs: undefined, transit: last && fields.transit, continue: !last, data: data.subarray(offset, offset + 64) }));
      if (!last) expect(step.response.data.length).toBe(0);
    }
    return step!;
  }

  it('splits a long answer and hands out the rest on empty requests; the last piece carries T', () => {
    const neg = new LoginNegotiator(policy(), { maxPduData: 64 });
    const pieces = [];
    let step = send(neg, { csg: 1, transit: true, nsg: 3, pairs: [['InitiatorName', INITIATOR8], ['TargetName', OPEN], ...unknown] });
    pieces.push(step);
    while (step.response.continue) {
      expect(step.response.transit).toBe(false);
      expect(step.response.data.length).toBe(64);
      expect(step.outcome).toBeUndefined();
      step = neg.step(request({ csg: 1 }));
      pieces.push(step);
    }
    expect(pieces.length).toBeGreaterThan(3);
    expect(step.response).toMatchObject({ transit: true, nsg: 3, continue: false });
    expect(step.outcome).toBeDefined();
    const answer = pairsOf(Buffer.concat(pieces.map((p) => p.response.data)));
    expect(answer.filter(([, v]) => v === 'NotUnderstood')).toHaveLength(12);
    expect(new Map(answer).get('MaxRecvDataSegmentLength')).toBe('262144');
  });

  it('moves to the next stage only after the last piece', () => {
    const neg = new LoginNegotiator(policy(), { maxPduData: 64 });
    let step = send(neg, { transit: true, nsg: 1, pairs: [['InitiatorName', INITIATOR8], ['TargetName', OPEN], ['AuthMethod', 'None'], ...unknown] });
    while (step.response.continue) step = neg.step(request({ csg: 0 }));
    expect(step.response).toMatchObject({ transit: true, csg: 0, nsg: 1 });
    const op = neg.step(request({ csg: 1, transit: true, nsg: 3, pairs: [['MaxBurstLength', '65536']] }));
    expect(op.outcome?.params.maxBurstLength).toBe(65536);
  });

  it('refuses new text while our answer is incomplete', () => {
    const neg = new LoginNegotiator(policy(), { maxPduData: 64 });
    send(neg, { csg: 1, transit: true, nsg: 3, pairs: [['InitiatorName', INITIATOR8], ['TargetName', OPEN], ...unknown] });
    const step = neg.step(request({ csg: 1, pairs: [['MaxBurstLength', '65536']] }));
    expect(step.close).toBe(true);
    expect((step.response.statusClass << 8) | step.response.statusDetail).toBe(LoginStatus.InitiatorError);
  });
});

describe('outcome', () => {
  it('a normal session sees its own target only, without credentials', () => {
    const neg = new LoginNegotiator(policy());
    const step = neg.step(request({ csg: 1, transit: true, nsg: 3, pairs: [['InitiatorName', INITIATOR8], ['TargetName', OPEN]] }));
    expect(step.outcome?.visibleTargets.map((t) => t.name)).toEqual([OPEN]);
    expect(step.outcome?.target).toEqual({ name: OPEN, acl: [INITIATOR8, 'iqn.1993-08.org.debian:01:deadbeef'], portals: ['192.0.2.10:3260,1'] });
  });

  it('the outcome does not share mutable state with the negotiator', () => {
    const neg = new LoginNegotiator(policy());
    const step = neg.step(request({ csg: 1, transit: true, nsg: 3, pairs: [['InitiatorName', INITIATOR8], ['TargetName', OPEN]] }));
    step.outcome!.params.maxBurstLength = 1;
    const again = new LoginNegotiator(policy()).step(request({ csg: 1, transit: true, nsg: 3, pairs: [['InitiatorName', INITIATOR8], ['TargetName', OPEN]] }));
    expect(again.outcome!.params.maxBurstLength).toBe(262144);
  });
});
