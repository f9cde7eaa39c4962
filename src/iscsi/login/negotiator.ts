/**
 * The login phase of one connection (RFC 7143 §6.3, Login Request/Response §11.12–11.13): typed Login
 * Request PDUs in, typed Login Response PDUs and the final decision out. No sockets, no clock.
 *
 * What it enforces, in the order a request meets it:
 *  - header consistency: the same ISID, TSIH, CID, ITT and version range in every PDU of the login,
 *    version 0 only, CSG 0 or 1, T and C never together, NSG only forwards (LIO checks the same);
 *  - continuation: a text segment split over C=1 PDUs is reassembled (each acknowledged by an empty
 *    response), and our own long answers are split the same way;
 *  - the first complete request names the initiator, the session type and, for a normal session, a
 *    target that exists (Not Found) and whose ACL holds the initiator (Authorization Failure);
 *  - the Security stage (security.ts) before anything else when the target has CHAP;
 *  - the Operational stage (operational-params.ts), answering each offered key;
 *  - each stage's keys in their own stage only: elsewhere they are NotUnderstood, as with LIO.
 *
 * Every failure is a Login Response with a status and `close: true`; step() never throws.
 */
import {
  buildText,
  describeTextError,
  LOGIN_PDU_DATA_LIMIT,
  MAX_TEXT_SEGMENT,
  NOT_UNDERSTOOD,
  parseText,
  printable,
  splitText,
  TextAssembler,
  type TextPair,
} from '../text.js';
import { CHAP_ALGORITHMS, DEFAULT_CHAP_ALGORITHMS, type ChapAlgorithmId } from './chap.js';
import {
  checkLimits,
  DEFAULT_TARGET_LIMITS,
  isOperationalKey,
  OperationalNegotiation,
  RFC_DEFAULTS,
  type TargetOperationalLimits,
} from './operational-params.js';
import { SECURITY_KEYS, SecurityNegotiation, type LoginFailure } from './security.js';
import {
  LoginStage,
  LoginStatus,
  type LoginOutcome,
  type LoginPolicy,
  type LoginRequest,
  type LoginResponse,
  type SessionType,
  type TargetAccess,
} from './types.js';

export interface LoginNegotiatorOptions {
  /** TargetPortalGroupTag announced in the first response of a normal session (§13.9). Default 1. */
  portalGroupTag?: number;
  /** Our operational values; see TargetOperationalLimits. Defaults: DEFAULT_TARGET_LIMITS. */
  limits?: Partial<TargetOperationalLimits>;
  /** CHAP_A values we accept. Default: MD5, SHA-1, SHA-256 and SHA3-256 (when the runtime has it). */
  chapAlgorithms?: readonly ChapAlgorithmId[];
  /** Length of our CHAP challenge in bytes (16–1024). Default 32. */
  chapChallengeLength?: number;
  /** Largest data segment of one Login PDU, both ways (§13.12 default during login). Default 8192. */
  maxPduData?: number;
  /** Largest reassembled text segment. Default 64 KiB (§6.1). */
  maxTextLength?: number;
  /** Login PDUs (continuations included) before we give up on a looping initiator. Default 64. */
  maxLoginPdus?: number;
}

export interface LoginStep {
  response: LoginResponse;
  /** Present on the final response (T=1, NSG=FullFeature): the connection enters Full Feature Phase. */
  outcome?: LoginOutcome;
  /** The login failed: send the response, then close the connection. */
  close?: boolean;
  /** Why the login failed, for the host's timeline; never contains a secret. */
  reason?: string;
}

/** Keys the initiator declares on the first request (§13.4, §13.5, §13.7, §13.21). */
const LEADING_KEYS: ReadonlySet<string> = new Set(['InitiatorName', 'InitiatorAlias', 'TargetName', 'SessionType']);
/** §4.2.7.1: an iSCSI name is at most 223 bytes. */
const MAX_NAME_LENGTH = 223;

interface FirstHeader {
  isid: Buffer;
  tsih: number;
  cid: number;
  itt: number;
  versionMax: number;
  versionMin: number;
}

/** What the last piece of a (possibly split) response carries, and what follows once it is sent. */
interface Decision {
  transit: boolean;
  nsg: number;
  outcome?: LoginOutcome;
}

export class LoginNegotiator {
  private readonly limits: TargetOperationalLimits;
  private readonly portalGroupTag: number;
  private readonly chapAlgorithms: readonly ChapAlgorithmId[];
  private readonly chapChallengeLength: number;
  private readonly maxPduData: number;
  private readonly maxLoginPdus: number;
  private readonly assembler: TextAssembler;

  private state: 'new' | 'login' | 'done' | 'failed' = 'new';
  private failure: LoginFailure | undefined;
  private first: FirstHeader | undefined;
  private stage: LoginStage.Security | LoginStage.Operational = LoginStage.Security;
  private pdus = 0;
  private pending: { chunks: Buffer[]; decision: Decision } | undefined;

  private initiatorName = '';
  private initiatorAlias: string | undefined;
  private sessionType: SessionType = 'Normal';
  private targetName: string | undefined;
  private target: TargetAccess | undefined;
  /** Discovery: targets whose ACL holds the initiator. */
  private aclTargets: TargetAccess[] = [];
  private chapRequired = false;
  private security: SecurityNegotiation | undefined;
  private operational: OperationalNegotiation | undefined;
  private announcedPortalGroup = false;

  constructor(
    private readonly policy: LoginPolicy,
    options: LoginNegotiatorOptions = {},
  ) {
    this.limits = { ...DEFAULT_TARGET_LIMITS, ...options.limits };
    const problem = checkLimits(this.limits);
    if (problem) throw new RangeError(`login limits: ${problem}`);
    this.portalGroupTag = options.portalGroupTag ?? 1;
    if (!Number.isInteger(this.portalGroupTag) || this.portalGroupTag < 0 || this.portalGroupTag > 65535) {
      throw new RangeError('portalGroupTag must be 0–65535');
    }
    this.chapAlgorithms = options.chapAlgorithms ?? DEFAULT_CHAP_ALGORITHMS;
    if (this.chapAlgorithms.length === 0 || !this.chapAlgorithms.every((id) => CHAP_ALGORITHMS.has(id))) {
      throw new RangeError('chapAlgorithms must name algorithms this runtime supports');
    }
    this.chapChallengeLength = options.chapChallengeLength ?? 32;
    if (!Number.isInteger(this.chapChallengeLength) || this.chapChallengeLength < 16 || this.chapChallengeLength > 1024) {
      throw new RangeError('chapChallengeLength must be 16–1024');
    }
    this.maxPduData = options.maxPduData ?? LOGIN_PDU_DATA_LIMIT;
    if (!Number.isInteger(this.maxPduData) || this.maxPduData < 64) throw new RangeError('maxPduData must be at least 64');
    this.maxLoginPdus = options.maxLoginPdus ?? 64;
    this.assembler = new TextAssembler(options.maxTextLength ?? MAX_TEXT_SEGMENT);
  }

  /** Handles one Login Request. Never throws. */
  step(req: LoginRequest): LoginStep {
    try {
      return this.handle(req);
    } catch {
      // A bug or a throwing policy lookup: the error text may carry anything, so it goes nowhere.
      return this.fail(req, { status: LoginStatus.TargetError, reason: 'internal error during login' });
    }
  }

  private handle(req: LoginRequest): LoginStep {
    if (this.state === 'failed') return this.fail(req, this.failure!);
    if (this.state === 'done') return this.fail(req, { status: LoginStatus.InitiatorError, reason: 'login request after the login completed' });
    if (++this.pdus > this.maxLoginPdus) return this.fail(req, { status: LoginStatus.InitiatorError, reason: 'too many login PDUs' });

    const headerProblem = this.checkHeader(req);
    if (headerProblem) return this.fail(req, headerProblem);

    if (this.pending) {
      // §6.2: after a response with C=1 the initiator asks for the rest with empty requests.
      if (req.data.length > 0 || req.continue) {
        return this.fail(req, { status: LoginStatus.InitiatorError, reason: 'initiator sent text while our response was incomplete' });
      }
      return this.nextChunk(req);
    }

    const text = this.assembler.push(req.data, req.continue);
    if (text === 'too-long') return this.fail(req, { status: LoginStatus.InitiatorError, reason: 'login text segment too long' });
    if (text === null) {
      // §6.2: each C=1 request is acknowledged by an empty response, T=0.
      return { response: this.response(req, { transit: false, continue: false, nsg: 0, data: Buffer.alloc(0) }) };
    }

    const parsed = parseText(text);
    if (!parsed.ok) return this.fail(req, { status: LoginStatus.InitiatorError, reason: describeTextError(parsed.error) });
    return this.negotiate(req, parsed.pairs);
  }

  /** Header rules of §11.12 that hold for every PDU of the login. */
  private checkHeader(req: LoginRequest): LoginFailure | undefined {
    const initiatorError = (reason: string): LoginFailure => ({ status: LoginStatus.InitiatorError, reason });
    // §11.12 Version-max/min: we speak version 0x00 only; Version-min above that cannot be served.
    if (req.versionMin > 0) return { status: LoginStatus.UnsupportedVersion, reason: `unsupported iSCSI version (min ${req.versionMin})` };
    if (req.versionMax < req.versionMin) return initiatorError('Version-max below Version-min');
    if (this.first === undefined) {
      this.first = { isid: Buffer.from(req.isid), tsih: req.tsih, cid: req.cid, itt: req.itt, versionMax: req.versionMax, versionMin: req.versionMin };
    } else {
      const f = this.first;
      if (!f.isid.equals(req.isid)) return initiatorError('ISID changed during login');
      if (f.tsih !== req.tsih) return initiatorError('TSIH changed during login');
      if (f.cid !== req.cid) return initiatorError('CID changed during login');
      if (f.itt !== req.itt) return initiatorError('ITT changed during login');
      if (f.versionMax !== req.versionMax || f.versionMin !== req.versionMin) return initiatorError('version range changed during login');
    }
    if (req.csg !== LoginStage.Security && req.csg !== LoginStage.Operational) return initiatorError(`invalid CSG ${req.csg}`);
    if (this.state === 'new' && !this.assembler.pending) {
      this.stage = req.csg === LoginStage.Operational ? LoginStage.Operational : LoginStage.Security;
    } else if (req.csg !== this.stage) {
      // The stage moves only when we answered T=1; any other change (backwards included) is an error.
      return initiatorError(`login stage changed from ${this.stage} to ${req.csg} without a transit`);
    }
    if (req.transit && req.continue) return initiatorError('T and C both set');
    if (req.transit && !(req.nsg > req.csg && (req.nsg === LoginStage.Operational || req.nsg === LoginStage.FullFeature))) {
      return initiatorError(`illegal transit from stage ${req.csg} to ${req.nsg}`);
    }
    if (req.data.length > this.maxPduData) return initiatorError(`login data segment over ${this.maxPduData} bytes`);
    return undefined;
  }

  private negotiate(req: LoginRequest, pairs: TextPair[]): LoginStep {
    if (this.state === 'new') {
      const problem = this.begin(req, pairs);
      if (problem) return this.fail(req, problem);
      this.state = 'login';
    } else {
      const problem = this.redeclared(pairs);
      if (problem) return this.fail(req, problem);
    }

    const answers: TextPair[] = [];
    if (this.sessionType === 'Normal' && !this.announcedPortalGroup) {
      // §13.9: the target returns its TargetPortalGroupTag in the first response of a normal
      // session, so the initiator can check the SSID it logged in to (open-iscsi accepts it in the
      // Security stage too); TargetAlias (§13.6) goes along.
      this.announcedPortalGroup = true;
      answers.push({ key: 'TargetPortalGroupTag', value: String(this.portalGroupTag) });
      if (this.target?.alias) answers.push({ key: 'TargetAlias', value: this.target.alias });
    }

    const securityPairs: TextPair[] = [];
    const otherAnswers: TextPair[] = [];
    for (const pair of pairs) {
      const { key, value } = pair;
      if (LEADING_KEYS.has(key)) continue;
      const security = SECURITY_KEYS.has(key);
      const operational = isOperationalKey(key);
      if (security && this.stage === LoginStage.Security) {
        securityPairs.push(pair);
      } else if (operational && this.stage === LoginStage.Operational) {
        const verdict = this.operationalNegotiation().offer(key, value);
        if (verdict.kind === 'error') return this.fail(req, { status: LoginStatus.InitiatorError, reason: verdict.reason });
        if (verdict.kind === 'answer') otherAnswers.push({ key, value: verdict.value });
      } else {
        // §6.2: a key we do not know (X- and X# extensions included) is answered NotUnderstood. So is
        // a key outside its stage (an operational key in the Security stage, a CHAP key after it) or
        // one only a target sends: LIO answers those NotUnderstood too, and the initiator learns they
        // had no effect; an operational key can still be offered in the Operational stage.
        otherAnswers.push({ key, value: NOT_UNDERSTOOD });
      }
    }

    if (this.stage === LoginStage.Security) return this.securityStage(req, answers, securityPairs, otherAnswers);
    return this.operationalStage(req, answers, otherAnswers);
  }

  private securityStage(req: LoginRequest, answers: TextPair[], securityPairs: TextPair[], otherAnswers: TextPair[]): LoginStep {
    const security = this.security!;
    const step = security.handle(securityPairs);
    if (!step.ok) return this.fail(req, step.failure);
    answers.push(...step.answers, ...otherAnswers);
    if (!req.transit) return this.respond(req, answers, { transit: false, nsg: 0 });
    const verdict = security.transit(step.progressed);
    if (verdict === 'wait') return this.respond(req, answers, { transit: false, nsg: 0 });
    if (verdict !== 'ok') return this.fail(req, verdict);
    // Security done: go where the initiator asked, Operational or straight to Full Feature (§6.3).
    if (req.nsg === LoginStage.FullFeature) return this.respond(req, answers, { transit: true, nsg: req.nsg, outcome: this.outcome() });
    return this.respond(req, answers, { transit: true, nsg: req.nsg });
  }

  private operationalStage(req: LoginRequest, answers: TextPair[], otherAnswers: TextPair[]): LoginStep {
    const operational = this.operationalNegotiation();
    operational.settle(otherAnswers);
    // §13.12: MaxRecvDataSegmentLength is declared in the first Operational-stage response; open-iscsi
    // refuses it in the Security stage, so it never goes earlier.
    answers.push(...otherAnswers, ...operational.declarations());
    // We never originate an offer, so nothing is pending: follow the initiator's T bit (§6.2).
    if (!req.transit) return this.respond(req, answers, { transit: false, nsg: 0 });
    return this.respond(req, answers, { transit: true, nsg: req.nsg, outcome: this.outcome() });
  }

  /** The first complete request: who is logging in, to what, and how it must authenticate. */
  private begin(req: LoginRequest, pairs: TextPair[]): LoginFailure | undefined {
    const keys = new Map(pairs.map((p) => [p.key, p.value]));
    const name = keys.get('InitiatorName');
    if (!name) return { status: LoginStatus.MissingParameter, reason: 'InitiatorName missing from the first login request' };
    if (Buffer.byteLength(name) > MAX_NAME_LENGTH) return { status: LoginStatus.InitiatorError, reason: 'InitiatorName too long' };
    this.initiatorName = name;
    this.initiatorAlias = keys.get('InitiatorAlias');

    // §13.21: SessionType defaults to Normal.
    const type = keys.get('SessionType') ?? 'Normal';
    if (type !== 'Normal' && type !== 'Discovery') return { status: LoginStatus.SessionTypeNotSupported, reason: `unsupported SessionType ${printable(type, 40)}` };
    this.sessionType = type;

    if (type === 'Normal') {
      const targetName = keys.get('TargetName');
      if (!targetName) return { status: LoginStatus.MissingParameter, reason: 'TargetName missing from a normal session login' };
      if (Buffer.byteLength(targetName) > MAX_NAME_LENGTH) return { status: LoginStatus.InitiatorError, reason: 'TargetName too long' };
      this.targetName = targetName;
      const target = this.policy.target(targetName);
      if (!target) return { status: LoginStatus.NotFound, reason: `target ${printable(targetName)} not found` };
      if (!inAcl(target, name)) return { status: LoginStatus.AuthorizationFailure, reason: `initiator ${printable(name)} is not in the ACL of target ${printable(target.name)}` };
      this.target = target;
      this.chapRequired = target.chap !== undefined;
      this.security = new SecurityNegotiation({
        candidates: target.chap ? [target] : [],
        chapRequired: this.chapRequired,
        algorithms: this.chapAlgorithms,
        challengeLength: this.chapChallengeLength,
      });
    } else {
      // A discovery session sees only the targets whose ACL holds the initiator; with CHAP, only those
      // whose credentials it proves it holds (security.ts matchedTargets).
      this.aclTargets = [...this.policy.targets()].filter((t) => inAcl(t, name));
      this.chapRequired = this.policy.discoveryNeedsChap;
      this.security = new SecurityNegotiation({
        candidates: this.chapRequired ? this.aclTargets.filter((t) => t.chap !== undefined) : [],
        chapRequired: this.chapRequired,
        algorithms: this.chapAlgorithms,
        challengeLength: this.chapChallengeLength,
      });
    }

    if (req.csg === LoginStage.Operational) {
      // §6.3: starting in the Operational stage skips authentication; only a target without CHAP
      // allows that (tgt and LIO answer the same status).
      if (this.chapRequired) return { status: LoginStatus.AuthenticationFailure, reason: 'CHAP is required but the initiator skipped the security stage' };
      this.security.transit(false);
    }
    return undefined;
  }

  /**
   * Leading keys again in a later request: libiscsi repeats them when it had CHAP credentials and the
   * target settled on None. The same value is harmless; a different one is a protocol error (§6.2).
   */
  private redeclared(pairs: readonly TextPair[]): LoginFailure | undefined {
    for (const { key, value } of pairs) {
      const changed =
        (key === 'InitiatorName' && value !== this.initiatorName) ||
        (key === 'SessionType' && value !== this.sessionType) ||
        (key === 'TargetName' && this.sessionType === 'Normal' && value !== this.targetName) ||
        (key === 'InitiatorAlias' && this.initiatorAlias !== undefined && value !== this.initiatorAlias);
      if (changed) return { status: LoginStatus.InitiatorError, reason: `${key} changed during login` };
      if (key === 'InitiatorAlias') this.initiatorAlias = value;
    }
    return undefined;
  }

  private operationalNegotiation(): OperationalNegotiation {
    this.operational ??= new OperationalNegotiation(this.limits, this.sessionType);
    return this.operational;
  }

  private outcome(): LoginOutcome {
    const security = this.security!;
    const algorithm = security.chapAlgorithm;
    const visible =
      this.sessionType === 'Normal' ? [this.target!] : this.chapRequired ? [...security.matchedTargets] : this.aclTargets;
    const outcome: LoginOutcome = {
      sessionType: this.sessionType,
      initiatorName: this.initiatorName,
      visibleTargets: visible.map(withoutSecrets),
      isid: Buffer.from(this.first!.isid),
      tsih: this.first!.tsih,
      params: { ...(this.operational?.params ?? RFC_DEFAULTS) },
      authMethod: security.authMethod ?? 'None',
    };
    if (this.initiatorAlias !== undefined) outcome.initiatorAlias = this.initiatorAlias;
    if (this.target) outcome.target = withoutSecrets(this.target);
    if (security.chapUser !== undefined) outcome.chapUser = security.chapUser;
    if (algorithm) {
      outcome.chapAlgorithm = algorithm.name;
      outcome.mutualChap = security.mutualChap;
    }
    return outcome;
  }

  /** Sends our answer, split over C=1 responses when longer than one PDU may carry (§6.2). */
  private respond(req: LoginRequest, answers: readonly TextPair[], decision: Decision): LoginStep {
    const chunks = splitText(buildText(answers), this.maxPduData);
    if (chunks.length > 1) {
      this.pending = { chunks: chunks.slice(1), decision };
      return { response: this.response(req, { transit: false, continue: true, nsg: 0, data: chunks[0]! }) };
    }
    return this.finish(req, chunks[0]!, decision);
  }

  private nextChunk(req: LoginRequest): LoginStep {
    const pending = this.pending!;
    const chunk = pending.chunks.shift()!;
    if (pending.chunks.length > 0) return { response: this.response(req, { transit: false, continue: true, nsg: 0, data: chunk }) };
    this.pending = undefined;
    return this.finish(req, chunk, pending.decision);
  }

  /** The last (or only) piece of a response: the stage changes now, and the login may be over. */
  private finish(req: LoginRequest, data: Buffer, decision: Decision): LoginStep {
    const response = this.response(req, { transit: decision.transit, continue: false, nsg: decision.transit ? decision.nsg : 0, data });
    if (decision.transit && decision.nsg === LoginStage.Operational) this.stage = LoginStage.Operational;
    if (decision.outcome) {
      this.state = 'done';
      return { response, outcome: decision.outcome };
    }
    return { response };
  }

  private fail(req: LoginRequest, failure: LoginFailure): LoginStep {
    this.state = 'failed';
    this.failure = failure;
    this.pending = undefined;
    this.assembler.reset();
    return {
      response: this.response(req, { transit: false, continue: false, nsg: 0, data: Buffer.alloc(0), status: failure.status }),
      close: true,
      reason: failure.reason,
    };
  }

  private response(
    req: LoginRequest,
    fields: { transit: boolean; continue: boolean; nsg: number; data: Buffer; status?: number },
  ): LoginResponse {
    const status = fields.status ?? LoginStatus.Success;
    const csg = req.csg === LoginStage.Security || req.csg === LoginStage.Operational ? req.csg : this.stage;
    return {
      transit: fields.transit,
      continue: fields.continue,
      csg,
      nsg: fields.nsg,
      versionMax: 0,
      versionActive: 0,
      isid: Buffer.isBuffer(req.isid) ? Buffer.from(req.isid) : Buffer.alloc(6),
      // The connection fills in the session's TSIH on the final response.
      tsih: 0,
      itt: req.itt,
      statusClass: status >> 8,
      statusDetail: status & 0xff,
      data: fields.data,
    };
  }
}

/**
 * iSCSI names compare case-insensitively: RFC 3722 normalises them to lower case, and initiators
 * differ in how they print the hex of eui./naa. names.
 */
function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function inAcl(target: TargetAccess, initiator: string): boolean {
  return target.acl.some((entry) => sameName(entry, initiator));
}

/** A TargetAccess as outcomes carry it: everything but the CHAP credentials. */
function withoutSecrets(target: TargetAccess): TargetAccess {
  const copy: TargetAccess = { name: target.name, acl: [...target.acl], portals: [...target.portals] };
  if (target.alias !== undefined) copy.alias = target.alias;
  return copy;
}
