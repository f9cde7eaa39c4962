/**
 * The Security stage (RFC 7143 §6.3, §12): AuthMethod negotiation and CHAP as the target runs it.
 *
 *   I→T  AuthMethod=CHAP[,None]          T→I  AuthMethod=CHAP
 *   I→T  CHAP_A=<A1,A2,…>                T→I  CHAP_A=<A> CHAP_I=<I> CHAP_C=<C>
 *   I→T  CHAP_N=<N> CHAP_R=<R>           T→I  (one-way: nothing more)
 *        [CHAP_I=<I'> CHAP_C=<C'>]       T→I  CHAP_N=<N'> CHAP_R=<R'>   (mutual)
 *
 * Any step out of this order, any CHAP value that does not parse, and any response that does not
 * verify ends the login with Authentication Failure; nothing about the secrets leaves this module but
 * the digests CHAP itself defines. Failure reasons name users and keys, never secrets.
 */
import { randomBytes } from 'node:crypto';
import { formatHex, MAX_LARGE_BINARY_BYTES, parseBinary, parseList, parseNumber, printable, type TextPair } from '../text.js';
import {
  chapResponse,
  chooseChapAlgorithm,
  newChapChallenge,
  verifyChapResponse,
  type ChapAlgorithm,
  type ChapAlgorithmId,
  type ChapChallenge,
} from './chap.js';
import { LoginStatus, type TargetAccess } from './types.js';

export const SECURITY_KEYS: ReadonlySet<string> = new Set(['AuthMethod', 'CHAP_A', 'CHAP_I', 'CHAP_C', 'CHAP_N', 'CHAP_R']);

export interface LoginFailure {
  /** A LoginStatus code. */
  status: number;
  /** For events and logs; never contains a secret. */
  reason: string;
}

export interface SecuritySetup {
  /**
   * Targets whose CHAP credentials may authenticate this initiator: the session's target for a normal
   * session, every target whose ACL holds the initiator for a discovery session.
   */
  candidates: readonly TargetAccess[];
  /** CHAP is mandatory (AuthMethod=None refused). When false, only None is accepted. */
  chapRequired: boolean;
  /** CHAP_A values we accept. */
  algorithms: readonly ChapAlgorithmId[];
  /** Length of our CHAP_C in bytes. */
  challengeLength: number;
}

export type SecurityStep = { ok: true; answers: TextPair[]; progressed: boolean } | { ok: false; failure: LoginFailure };
export type TransitVerdict = 'ok' | 'wait' | LoginFailure;

type ChapState = 'idle' | 'await-algorithm' | 'await-response' | 'done';

/** Compared against when CHAP_N names nobody, so an unknown user costs the same time as a known one. */
const DECOY_SECRET = randomBytes(16).toString('hex');

export class SecurityNegotiation {
  private method: 'None' | 'CHAP' | undefined;
  private state: ChapState = 'idle';
  private algorithm: ChapAlgorithm | undefined;
  private challenge: ChapChallenge | undefined;
  private authenticatedBy: TargetAccess[] = [];
  private user: string | undefined;
  private mutual = false;

  constructor(private readonly setup: SecuritySetup) {}

  get authMethod(): 'None' | 'CHAP' | undefined {
    return this.method;
  }

  /** Whether security is settled: CHAP verified, or None agreed (or implied, see transit()). */
  get complete(): boolean {
    return this.method === 'None' || this.state === 'done';
  }

  get chapUser(): string | undefined {
    return this.user;
  }

  get chapAlgorithm(): ChapAlgorithm | undefined {
    return this.state === 'done' ? this.algorithm : undefined;
  }

  get mutualChap(): boolean {
    return this.mutual;
  }

  /** The candidate targets whose credentials the initiator proved it holds. */
  get matchedTargets(): readonly TargetAccess[] {
    return this.authenticatedBy;
  }

  /**
   * Handles the security keys of one request (already checked for duplicates by the text parser).
   * Returns the answers to send, and whether the exchange moved on (so a T=1 request that brought
   * nothing new can be told apart from one we answered with the next CHAP step).
   */
  handle(pairs: readonly TextPair[]): SecurityStep {
    if (pairs.length === 0) return { ok: true, answers: [], progressed: false };
    if (this.complete) {
      // LIO does the same: once authenticated, more security keys are a protocol error.
      return fail(LoginStatus.InitiatorError, 'security keys sent after authentication completed');
    }
    const keys = new Map(pairs.map((p) => [p.key, p.value]));
    const answers: TextPair[] = [];

    const authMethod = keys.get('AuthMethod');
    if (authMethod !== undefined) {
      const failure = this.negotiateMethod(authMethod, answers);
      if (failure) return { ok: false, failure };
    }

    let challengedNow = false;
    const chapA = keys.get('CHAP_A');
    if (chapA !== undefined) {
      if (this.method !== 'CHAP' || this.state !== 'await-algorithm') return fail(LoginStatus.AuthenticationFailure, 'CHAP_A out of sequence');
      const failure = this.sendChallenge(chapA, answers);
      if (failure) return { ok: false, failure };
      challengedNow = true;
    }

    const hasResponse = keys.has('CHAP_N') || keys.has('CHAP_R');
    const hasMutual = keys.has('CHAP_I') || keys.has('CHAP_C');
    if (hasResponse) {
      if (this.state !== 'await-response' || challengedNow) return fail(LoginStatus.AuthenticationFailure, 'CHAP response out of sequence');
      const failure = this.checkResponse(keys, answers);
      if (failure) return { ok: false, failure };
    } else if (hasMutual) {
      // §12.1.3: the initiator's own challenge travels with its response, never alone.
      return fail(LoginStatus.AuthenticationFailure, 'CHAP_I/CHAP_C without CHAP_N/CHAP_R');
    }
    return { ok: true, answers, progressed: answers.length > 0 || this.state === 'done' };
  }

  /**
   * The initiator asks to leave the Security stage (T=1). 'ok': it may; 'wait': we answered with the
   * next CHAP step in this very response, so we stay (T=0); otherwise the login fails.
   */
  transit(progressed: boolean): TransitVerdict {
    if (this.method === undefined) {
      // No AuthMethod at all: §6.3 lets both sides skip authentication, which only a target without
      // CHAP can allow (open-iscsi does this when it has no credentials).
      if (this.setup.chapRequired) return { status: LoginStatus.AuthenticationFailure, reason: 'initiator left the security stage without authenticating' };
      this.method = 'None';
      return 'ok';
    }
    if (this.complete) return 'ok';
    if (progressed) return 'wait';
    return { status: LoginStatus.AuthenticationFailure, reason: 'initiator left the security stage before CHAP completed' };
  }

  private negotiateMethod(value: string, answers: TextPair[]): LoginFailure | undefined {
    if (this.method !== undefined) return { status: LoginStatus.InitiatorError, reason: 'AuthMethod negotiated twice' };
    const offered = parseList(value);
    if (offered === null) return { status: LoginStatus.AuthenticationFailure, reason: 'malformed AuthMethod' };
    // §12 AuthMethod: the first of the initiator's list we accept. CHAP only when the target
    // has credentials (so "CHAP,None" from iPXE or libiscsi settles on CHAP), None only when it has none.
    const wanted = this.setup.chapRequired ? 'CHAP' : 'None';
    if (!offered.includes(wanted)) {
      return {
        status: LoginStatus.AuthenticationFailure,
        reason: this.setup.chapRequired ? 'CHAP is required but the initiator did not offer it' : 'this target has no CHAP credentials but the initiator insists on CHAP',
      };
    }
    this.method = wanted;
    if (wanted === 'CHAP') this.state = 'await-algorithm';
    answers.push({ key: 'AuthMethod', value: wanted });
    return undefined;
  }

  private sendChallenge(value: string, answers: TextPair[]): LoginFailure | undefined {
    const offered = parseList(value);
    const algorithm = offered ? chooseChapAlgorithm(offered, this.setup.algorithms) : undefined;
    if (!algorithm) return { status: LoginStatus.AuthenticationFailure, reason: `no common CHAP algorithm (initiator offered CHAP_A=${printable(value, 40)})` };
    this.algorithm = algorithm;
    this.challenge = newChapChallenge(this.setup.challengeLength);
    this.state = 'await-response';
    answers.push(
      { key: 'CHAP_A', value: String(algorithm.id) },
      { key: 'CHAP_I', value: String(this.challenge.identifier) },
      { key: 'CHAP_C', value: formatHex(this.challenge.challenge) },
    );
    return undefined;
  }

  private checkResponse(keys: ReadonlyMap<string, string>, answers: TextPair[]): LoginFailure | undefined {
    const algorithm = this.algorithm!;
    const challenge = this.challenge!;
    const name = keys.get('CHAP_N');
    const encoded = keys.get('CHAP_R');
    if (name === undefined || encoded === undefined) return { status: LoginStatus.AuthenticationFailure, reason: 'CHAP_N and CHAP_R must come together' };
    const response = parseBinary(encoded, MAX_LARGE_BINARY_BYTES);
    if (response === null) return { status: LoginStatus.AuthenticationFailure, reason: 'malformed CHAP_R' };

    const sameUser = this.setup.candidates.filter((t) => t.chap !== undefined && t.chap.user === name);
    const verified = sameUser.filter((t) => verifyChapResponse(algorithm, challenge.identifier, t.chap!.secret, challenge.challenge, response));
    if (sameUser.length === 0) verifyChapResponse(algorithm, challenge.identifier, DECOY_SECRET, challenge.challenge, response);
    if (verified.length === 0) {
      // CHAP_N is echoed only when it names a configured user: an initiator that put something else
      // there (a secret typed into the wrong field) must not see it land in our logs.
      return {
        status: LoginStatus.AuthenticationFailure,
        reason: sameUser.length > 0 ? `CHAP response of user ${name} did not verify (wrong secret)` : 'unknown CHAP user',
      };
    }

    const mutualI = keys.get('CHAP_I');
    const mutualC = keys.get('CHAP_C');
    if (mutualI !== undefined || mutualC !== undefined) {
      if (mutualI === undefined || mutualC === undefined) return { status: LoginStatus.AuthenticationFailure, reason: 'mutual CHAP needs both CHAP_I and CHAP_C' };
      const credentials = verified.find((t) => t.chap?.mutual !== undefined)?.chap?.mutual;
      if (!credentials) return { status: LoginStatus.AuthenticationFailure, reason: 'initiator asked for mutual CHAP but no target secret is configured' };
      const identifier = parseNumber(mutualI);
      if (identifier === null || identifier > 255) return { status: LoginStatus.AuthenticationFailure, reason: 'malformed CHAP_I' };
      const theirs = parseBinary(mutualC, MAX_LARGE_BINARY_BYTES);
      if (theirs === null) return { status: LoginStatus.AuthenticationFailure, reason: 'malformed CHAP_C' };
      // §12.1.3: answering our own challenge would hand the initiator the very response it owes us
      // (reflection attack); the target must refuse and close.
      if (theirs.equals(challenge.challenge)) return { status: LoginStatus.AuthenticationFailure, reason: 'initiator reflected our CHAP challenge' };
      answers.push(
        { key: 'CHAP_N', value: credentials.user },
        { key: 'CHAP_R', value: formatHex(chapResponse(algorithm, identifier, credentials.secret, theirs)) },
      );
      this.mutual = true;
    }

    this.state = 'done';
    this.user = name;
    this.authenticatedBy = verified;
    return undefined;
  }
}

function fail(status: number, reason: string): SecurityStep {
  return { ok: false, failure: { status, reason } };
}
