/**
 * Login state machines of three real initiators, rebuilt from their sources (read, not copied) so the
 * negotiator meets the PDU sequences it will meet on the wire:
 *
 *  - iPXE, src/net/tcp/iscsi.c: every PDU has T=1 (CSG 0→1, then 1→3). The first carries
 *    InitiatorName, TargetName, SessionType=Normal, AuthMethod=CHAP,None (or CHAP when it must
 *    authenticate the target). Only after the target answers AuthMethod=CHAP does it send CHAP_A=5
 *    alone; on CHAP_I/CHAP_C it sends CHAP_N, CHAP_R=0x… (and its own CHAP_I, CHAP_C of 16 bytes for
 *    mutual). Its operational keys go out once, in the first Operational PDU. Any "Reject" is fatal;
 *    it only acts on TargetAddress, MaxBurstLength, AuthMethod and the CHAP keys.
 *  - libiscsi, lib/login.c: Security PDUs with T=1 except the CHAP_A one (T=0, but NSG bits still set);
 *    AuthMethod=CHAP,None; CHAP_A=<one configured algorithm>; CHAP_R in upper-case hex; a mutual
 *    CHAP_C twice the digest length. CHAP_C must come back as 0x hex and CHAP_R as 0x hex of exactly the
 *    digest length. Without credentials it starts in the Operational stage. It repeats the leading keys
 *    in the Operational stage when the target settled on AuthMethod=None.
 *  - open-iscsi, usr/login.c + usr/auth.c: AuthMethod=CHAP,None with T=1 for one-way, AuthMethod=CHAP
 *    with T=0 for mutual; CHAP_A=<list>, T=0; CHAP_N, CHAP_R[, CHAP_I, CHAP_C] with T=1. It refuses any
 *    key it does not know in a response (only TargetAlias, TargetAddress, TargetPortalGroupTag and the
 *    auth keys in the Security stage). A discovery session without credentials starts in the
 *    Operational stage.
 */
import { randomBytes } from 'node:crypto';
import type { LoginNegotiator, LoginStep } from '../../../src/iscsi/login/negotiator.js';
import type { LoginRequest } from '../../../src/iscsi/login/types.js';
import { decodeBinary, pairsOf, referenceChap, text } from './fixtures.js';

export type Reaction = LoginRequest | { done: true } | { failed: string };

export interface SimulatedInitiator {
  first(): LoginRequest;
  receive(step: LoginStep): Reaction;
}

export interface Transcript {
  requests: LoginRequest[];
  steps: LoginStep[];
  result: 'done' | string;
}

/** Runs a login between the negotiator and an initiator until Full Feature, a failure, or `limit` PDUs. */
export function drive(negotiator: LoginNegotiator, initiator: SimulatedInitiator, limit = 16): Transcript {
  const transcript: Transcript = { requests: [], steps: [], result: 'limit reached' };
  let req = initiator.first();
  for (let i = 0; i < limit; i++) {
    transcript.requests.push(req);
    const step = negotiator.step(req);
    transcript.steps.push(step);
    if (step.close) {
      transcript.result = `target closed: ${step.reason ?? ''}`;
      return transcript;
    }
    const reaction = initiator.receive(step);
    if ('done' in reaction) {
      transcript.result = 'done';
      return transcript;
    }
    if ('failed' in reaction) {
      transcript.result = `initiator failed: ${reaction.failed}`;
      return transcript;
    }
    req = reaction;
  }
  return transcript;
}

interface Credentials {
  user?: string;
  secret?: string;
  /** Mutual CHAP: what the target must answer with. */
  targetUser?: string;
  targetSecret?: string;
}

function statusOf(step: LoginStep): number {
  return (step.response.statusClass << 8) | step.response.statusDetail;
}

// ---------------------------------------------------------------------------------------------- iPXE

type IpxeStrings = 'security' | 'chapA' | 'chapResponse' | 'chapChallenge' | 'operational';

export class IpxeInitiator implements SimulatedInitiator {
  private phase: 0 | 1 = 0;
  private strings = new Set<IpxeStrings>(['security']);
  private chapId = 0;
  private chapResponse: Buffer = Buffer.alloc(0);
  /** chap_challenge[17]: the identifier, then 16 challenge bytes. */
  private readonly challenge = randomBytes(17);
  private reverseOk = false;
  private readonly isid = Buffer.from([0x40, 0x00, 0x27, 0x23, 0x5a, 0x17]);

  constructor(private readonly cfg: { initiatorName: string; targetName: string } & Credentials) {}

  first(): LoginRequest {
    return this.build();
  }

  receive(step: LoginStep): Reaction {
    for (const [key, value] of pairsOf(step.response.data)) {
      if (value === 'Reject') return { failed: `rejection: ${key}` };
      switch (key) {
        case 'AuthMethod':
          if (value === 'CHAP') this.strings.add('chapA');
          break;
        case 'CHAP_A':
          if (value !== '5') return { failed: 'invalid CHAP algorithm' };
          break;
        case 'CHAP_I':
          this.chapId = Number(value);
          break;
        case 'CHAP_C':
          this.chapResponse = referenceChap(5, this.chapId, this.cfg.secret ?? '', decodeBinary(value));
          this.strings.add('chapResponse');
          if (this.cfg.targetUser) this.strings.add('chapChallenge');
          break;
        case 'CHAP_N':
          if (this.cfg.targetUser && value !== this.cfg.targetUser) return { failed: 'target username incorrect' };
          break;
        case 'CHAP_R': {
          const expected = referenceChap(5, this.challenge[0]!, this.cfg.targetSecret ?? '', this.challenge.subarray(1));
          if (!decodeBinary(value).equals(expected)) return { failed: 'incorrect target password' };
          this.reverseOk = true;
          break;
        }
      }
    }
    if (statusOf(step) !== 0) return { failed: `login status 0x${statusOf(step).toString(16)}` };
    if (step.response.transit) {
      this.strings.clear();
      if (step.response.nsg === 1) {
        this.phase = 1;
        this.strings.add('operational');
      } else if (step.response.nsg === 3) {
        if (this.cfg.targetUser && !this.reverseOk) return { failed: 'nefarious target tried to bypass authentication' };
        return { done: true };
      } else {
        return { failed: 'invalid response flags' };
      }
    }
    return this.build();
  }

  private build(): LoginRequest {
    const pairs: [string, string][] = [];
    if (this.strings.has('security')) {
      let auth = 'None';
      if (this.cfg.user) auth = 'CHAP,None';
      if (this.cfg.targetUser) auth = 'CHAP';
      pairs.push(['InitiatorName', this.cfg.initiatorName], ['TargetName', this.cfg.targetName], ['SessionType', 'Normal'], ['AuthMethod', auth]);
    }
    if (this.strings.has('chapA')) pairs.push(['CHAP_A', '5']);
    if (this.strings.has('chapResponse')) pairs.push(['CHAP_N', this.cfg.user ?? ''], ['CHAP_R', `0x${this.chapResponse.toString('hex')}`]);
    if (this.strings.has('chapChallenge')) {
      pairs.push(['CHAP_I', String(this.challenge[0])], ['CHAP_C', `0x${this.challenge.subarray(1).toString('hex')}`]);
    }
    if (this.strings.has('operational')) {
      pairs.push(
        ['HeaderDigest', 'None'],
        ['DataDigest', 'None'],
        ['MaxConnections', '1'],
        ['InitialR2T', 'Yes'],
        ['ImmediateData', 'No'],
        ['MaxRecvDataSegmentLength', '8192'],
        ['MaxBurstLength', '262144'],
        ['FirstBurstLength', '65536'],
        ['DefaultTime2Wait', '0'],
        ['DefaultTime2Retain', '0'],
        ['MaxOutstandingR2T', '1'],
        ['DataPDUInOrder', 'Yes'],
        ['DataSequenceInOrder', 'Yes'],
        ['ErrorRecoveryLevel', '0'],
      );
    }
    this.strings.clear();
    return {
      transit: true,
      continue: false,
      csg: this.phase,
      nsg: this.phase === 0 ? 1 : 3,
      versionMax: 0,
      versionMin: 0,
      isid: this.isid,
      tsih: 0,
      itt: 0x0000_0001,
      cid: 0,
      cmdSN: 0,
      expStatSN: 1,
      data: text(pairs),
    };
  }
}

// ------------------------------------------------------------------------------------------ libiscsi

const DIGEST_LENGTH: Record<number, number> = { 5: 16, 6: 20, 7: 32, 8: 32 };

export class LibiscsiInitiator implements SimulatedInitiator {
  private currentPhase: 0 | 1 = 0;
  private secneg: 'offer' | 'select' | 'respond' = 'offer';
  private chapI = 0;
  private chapC: Buffer = Buffer.alloc(0);
  private targetChapI = 0;
  private targetChapR: Buffer = Buffer.alloc(0);
  private readonly itt = 0x5eed_0001;
  private readonly cmdSN = 0x1234_5678;
  private readonly isid = Buffer.from([0x80, 0x00, 0x00, 0x11, 0x22, 0x33]);
  private readonly chapAuth: number;

  constructor(
    private readonly cfg: { initiatorName: string; targetName?: string; discovery?: boolean; alias?: string; chapAuth?: 5 | 6 | 7 | 8 } & Credentials,
  ) {
    this.chapAuth = cfg.chapAuth ?? 5;
  }

  first(): LoginRequest {
    return this.build();
  }

  receive(step: LoginStep): Reaction {
    const r = step.response;
    let mustHaveChap = r.transit && r.csg === 0 && this.cfg.targetUser !== undefined;
    for (const [key, value] of pairsOf(r.data)) {
      if (key === 'AuthMethod' && value === 'CHAP') this.secneg = 'select';
      if (key === 'CHAP_A') this.secneg = 'respond';
      if (key === 'CHAP_I') {
        this.chapI = Number.parseInt(value, 10);
        this.secneg = 'respond';
      }
      if (key === 'CHAP_C') {
        if (!value.startsWith('0x')) return { failed: 'CHAP_C not in 0x form' };
        this.chapC = Buffer.from(value.slice(2), 'hex');
        this.secneg = 'respond';
      }
      if (key === 'CHAP_N') {
        if (value !== this.cfg.targetUser) return { failed: 'wrong CHAP targetname' };
      }
      if (key === 'CHAP_R') {
        if (!value.startsWith('0x') || value.length !== 2 + 2 * DIGEST_LENGTH[this.chapAuth]!) return { failed: 'wrong size of CHAP_R' };
        if (!Buffer.from(value.slice(2), 'hex').equals(this.targetChapR)) return { failed: 'invalid CHAP_R from the target' };
        mustHaveChap = false;
      }
    }
    if (statusOf(step) !== 0) return { failed: `login status 0x${statusOf(step).toString(16)}` };
    if (mustHaveChap) return { failed: 'target did not return CHAP_N/CHAP_R' };
    if (r.transit) {
      if (r.nsg === 3) return { done: true };
      this.currentPhase = r.nsg === 1 ? 1 : 0;
    }
    return this.build();
  }

  private build(): LoginRequest {
    if (!this.cfg.user) this.currentPhase = 1;
    const opneg = this.currentPhase === 1;
    const transit = opneg || this.secneg === 'offer' || this.secneg === 'respond';
    const pairs: [string, string][] = [];
    const offer = this.secneg === 'offer';
    if (offer) pairs.push(['InitiatorName', this.cfg.initiatorName]);
    if (offer && this.cfg.alias) pairs.push(['InitiatorAlias', this.cfg.alias]);
    if (offer && !this.cfg.discovery) pairs.push(['TargetName', this.cfg.targetName ?? '']);
    if (offer) pairs.push(['SessionType', this.cfg.discovery ? 'Discovery' : 'Normal']);
    if (opneg) pairs.push(['HeaderDigest', 'None,CRC32C']);
    if (!opneg && offer) pairs.push(['AuthMethod', 'CHAP,None']);
    if (!opneg && this.secneg === 'select') pairs.push(['CHAP_A', String(this.chapAuth)]);
    if (!opneg && this.secneg === 'respond') {
      pairs.push(['CHAP_N', this.cfg.user ?? '']);
      const r = referenceChap(this.chapAuth, this.chapI, this.cfg.secret ?? '', this.chapC);
      pairs.push(['CHAP_R', `0x${r.toString('hex').toUpperCase()}`]);
      if (this.cfg.targetUser) {
        this.targetChapI++;
        const challenge = randomBytes(DIGEST_LENGTH[this.chapAuth]! * 2);
        pairs.push(['CHAP_I', String(this.targetChapI)], ['CHAP_C', `0x${challenge.toString('hex').toUpperCase()}`]);
        this.targetChapR = referenceChap(this.chapAuth, this.targetChapI, this.cfg.targetSecret ?? '', challenge);
      }
    }
    if (opneg) {
      pairs.push(
        ['DataDigest', 'None'],
        ['InitialR2T', 'No'],
        ['ImmediateData', 'Yes'],
        ['MaxBurstLength', '262144'],
        ['FirstBurstLength', '262144'],
        ['DefaultTime2Wait', '2'],
        ['DefaultTime2Retain', '0'],
        ['MaxOutstandingR2T', '1'],
        ['ErrorRecoveryLevel', '0'],
        ['IFMarker', 'No'],
        ['OFMarker', 'No'],
        ['MaxConnections', '1'],
        ['MaxRecvDataSegmentLength', '262144'],
        ['DataPDUInOrder', 'Yes'],
        ['DataSequenceInOrder', 'Yes'],
      );
    }
    return {
      transit,
      continue: false,
      csg: this.currentPhase,
      // libiscsi sets the NSG bits whether or not T is set.
      nsg: this.currentPhase === 0 ? 1 : 3,
      versionMax: 0,
      versionMin: 0,
      isid: this.isid,
      tsih: 0,
      itt: this.itt,
      cid: 0,
      cmdSN: this.cmdSN,
      expStatSN: 0,
      data: text(pairs),
    };
  }
}

// ---------------------------------------------------------------------------------------- open-iscsi

/** Keys open-iscsi accepts in a Security-stage response (get_security_text_keys + the auth keys). */
const OPEN_ISCSI_SECURITY_KEYS = new Set(['TargetAlias', 'TargetAddress', 'TargetPortalGroupTag', 'AuthMethod', 'CHAP_A', 'CHAP_N', 'CHAP_R', 'CHAP_I', 'CHAP_C']);
/** Keys open-iscsi accepts in an Operational-stage response (get_op_params_text_keys). */
const OPEN_ISCSI_OPERATIONAL_KEYS = new Set([
  'TargetAlias', 'TargetAddress', 'TargetPortalGroupTag', 'InitialR2T', 'ImmediateData', 'MaxRecvDataSegmentLength',
  'FirstBurstLength', 'MaxBurstLength', 'HeaderDigest', 'DataDigest', 'MaxConnections', 'ErrorRecoveryLevel',
  'MaxOutstandingR2T', 'DefaultTime2Wait', 'DefaultTime2Retain', 'OFMarker', 'OFMarkInt', 'IFMarker', 'IFMarkInt',
  'DataPDUInOrder', 'DataSequenceInOrder', 'RDMAExtensions', 'InitiatorRecvDataSegmentLength',
  'TargetRecvDataSegmentLength', 'X-com.cisco.protocol', 'X-com.cisco.PingTimeout', 'X-com.cisco.sendAsyncText',
]);

export class OpenIscsiInitiator implements SimulatedInitiator {
  private stage: 'initial' | 0 | 1 = 'initial';
  private auth: 'negotiate' | 'algorithm' | 'respond' | 'done' = 'negotiate';
  private algorithm = 0;
  private chapI = 0;
  private chapC: Buffer = Buffer.alloc(0);
  private sendChallenge: Buffer = Buffer.alloc(0);
  private sendIdentifier = 0;
  private reverseOk = false;
  private opSent = false;
  private readonly isid = Buffer.from([0x00, 0x02, 0x3d, 0x00, 0x00, 0x01]);
  readonly received: [string, string][] = [];

  constructor(
    private readonly cfg: {
      initiatorName: string;
      targetName?: string;
      discovery?: boolean;
      alias?: string;
      /** node.session.auth.chap_algs as CHAP_A numbers, most preferred first. */
      chapAlgs?: number[];
    } & Credentials,
  ) {}

  private get hasAuth(): boolean {
    return this.cfg.user !== undefined;
  }

  private get mutual(): boolean {
    return this.cfg.targetUser !== undefined;
  }

  first(): LoginRequest {
    return this.build();
  }

  receive(step: LoginStep): Reaction {
    const r = step.response;
    if (statusOf(step) !== 0) return { failed: `login status 0x${statusOf(step).toString(16)}` };
    const allowed = this.stage === 0 ? OPEN_ISCSI_SECURITY_KEYS : OPEN_ISCSI_OPERATIONAL_KEYS;
    for (const [key, value] of pairsOf(r.data)) {
      this.received.push([key, value]);
      if (!allowed.has(key)) return { failed: `couldn't recognize text ${key}=${value}` };
      switch (key) {
        case 'AuthMethod':
          if (value !== 'CHAP') return { failed: `unexpected AuthMethod ${value}` };
          this.auth = 'algorithm';
          break;
        case 'CHAP_A':
          this.algorithm = Number(value);
          if (!(this.cfg.chapAlgs ?? [7, 6, 5]).includes(this.algorithm)) return { failed: 'CHAP_A not offered' };
          break;
        case 'CHAP_I':
          this.chapI = Number(value);
          if (!(this.chapI >= 0 && this.chapI <= 255)) return { failed: 'bad CHAP_I' };
          break;
        case 'CHAP_C':
          this.chapC = decodeBinary(value);
          this.auth = 'respond';
          break;
        case 'CHAP_N':
          if (value !== this.cfg.targetUser) return { failed: 'wrong target CHAP user' };
          break;
        case 'CHAP_R': {
          const expected = referenceChap(this.algorithm, this.sendIdentifier, this.cfg.targetSecret ?? '', this.sendChallenge);
          if (!decodeBinary(value).equals(expected)) return { failed: 'target failed mutual authentication' };
          this.reverseOk = true;
          break;
        }
        case 'HeaderDigest':
        case 'DataDigest':
          if (value !== 'None') return { failed: `${key}=${value} not acceptable` };
          break;
      }
    }
    if (r.transit) {
      if (this.stage === 0 && this.mutual && !this.reverseOk) return { failed: 'target not authenticated' };
      if (r.nsg === 3) return { done: true };
      this.stage = 1;
    }
    return this.build();
  }

  private build(): LoginRequest {
    const pairs: [string, string][] = [];
    let transit = false;
    let nsg = 0;
    if (this.stage === 'initial') {
      pairs.push(['InitiatorName', this.cfg.initiatorName]);
      if (this.cfg.alias) pairs.push(['InitiatorAlias', this.cfg.alias]);
      if (!this.cfg.discovery && this.cfg.targetName) pairs.push(['TargetName', this.cfg.targetName]);
      pairs.push(['SessionType', this.cfg.discovery ? 'Discovery' : 'Normal']);
      this.stage = this.hasAuth ? 0 : 1;
    }
    if (this.stage === 0) {
      if (this.auth === 'negotiate') {
        pairs.push(['AuthMethod', this.mutual ? 'CHAP' : 'CHAP,None']);
        transit = !this.mutual;
      } else if (this.auth === 'algorithm') {
        pairs.push(['CHAP_A', (this.cfg.chapAlgs ?? [7, 6, 5]).join(',')]);
        transit = false;
      } else if (this.auth === 'respond') {
        const response = referenceChap(this.algorithm, this.chapI, this.cfg.secret ?? '', this.chapC);
        pairs.push(['CHAP_N', this.cfg.user ?? ''], ['CHAP_R', `0x${response.toString('hex')}`]);
        if (this.mutual) {
          this.sendIdentifier = randomBytes(1)[0]!;
          this.sendChallenge = randomBytes(DIGEST_LENGTH[this.algorithm]!);
          pairs.push(['CHAP_I', String(this.sendIdentifier)], ['CHAP_C', `0x${this.sendChallenge.toString('hex')}`]);
        }
        this.auth = 'done';
        transit = true;
      } else {
        transit = true;
      }
      // A discovery session with non-default MaxRecvDataSegmentLength (32768) goes through the
      // Operational stage; a normal session always does.
      nsg = transit ? 1 : 0;
    } else {
      if (!this.opSent) {
        pairs.push(
          ['HeaderDigest', 'None'],
          ['DataDigest', 'None'],
          ['DefaultTime2Wait', '2'],
          ['DefaultTime2Retain', '0'],
          ['IFMarker', 'No'],
          ['OFMarker', 'No'],
          ['ErrorRecoveryLevel', '0'],
        );
        if (this.cfg.discovery) {
          pairs.push(['MaxRecvDataSegmentLength', '32768']);
        } else {
          pairs.push(
            ['InitialR2T', 'No'],
            ['ImmediateData', 'Yes'],
            ['MaxBurstLength', '16776192'],
            ['FirstBurstLength', '262144'],
            ['MaxOutstandingR2T', '1'],
            ['MaxConnections', '1'],
            ['DataPDUInOrder', 'Yes'],
            ['DataSequenceInOrder', 'Yes'],
            ['MaxRecvDataSegmentLength', '262144'],
          );
        }
        this.opSent = true;
      }
      transit = true;
      nsg = 3;
    }
    return {
      transit,
      continue: false,
      csg: this.stage,
      nsg,
      versionMax: 0,
      versionMin: 0,
      isid: this.isid,
      tsih: 0,
      itt: 0,
      cid: 0,
      cmdSN: 1,
      expStatSN: 0,
      data: text(pairs),
    };
  }
}
