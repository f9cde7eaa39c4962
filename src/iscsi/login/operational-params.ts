/**
 * Operational parameter negotiation (RFC 7143 §6.2, keys in §13). We only ever answer: every key the
 * initiator offers gets our result in the same exchange, and we never originate an offer, so the
 * operational stage always completes in the round the initiator chooses (iPXE, for one, never answers
 * a target's offer). Keys the initiator does not offer keep their §13 defaults — our limits bound what
 * is offered, they cannot raise or lower an unoffered default.
 */
import { formatBoolean, IRRELEVANT, parseBoolean, parseList, parseNumber, REJECT, type TextPair } from '../text.js';
import type { NegotiatedParams, SessionType } from './types.js';

export type Digest = 'None' | 'CRC32C';

/** Our side of the negotiation: what we answer with. Constructor options of the negotiator. */
export interface TargetOperationalLimits {
  /** Declared in the first Operational-stage response: what we receive per PDU (§13.12). */
  maxRecvDataSegmentLength: number;
  /** Most we solicit in one R2T sequence / send in one Data-In sequence (§13.13, result: minimum). */
  maxBurstLength: number;
  /** Most unsolicited data we accept per command (§13.14, result: minimum, never above MaxBurstLength). */
  firstBurstLength: number;
  /** Whether we accept immediate data (§13.11, result: AND). */
  immediateData: boolean;
  /** Whether we insist on an R2T before any Data-Out (§13.10, result: OR). */
  initialR2T: boolean;
  /** §13.17, result: minimum. */
  maxOutstandingR2T: number;
  /** §13.15, result: maximum. */
  defaultTime2Wait: number;
  /** §13.16, result: minimum. */
  defaultTime2Retain: number;
  /** Digests we can compute, in no particular order: the initiator's order decides (§13.1). */
  headerDigests: readonly Digest[];
  dataDigests: readonly Digest[];
}

/** §13 defaults: what is in force for every key nobody negotiates. */
export const RFC_DEFAULTS: Readonly<NegotiatedParams> = Object.freeze<NegotiatedParams>({
  headerDigest: 'None',
  dataDigest: 'None',
  initiatorMaxRecvDataSegmentLength: 8192,
  targetMaxRecvDataSegmentLength: 8192,
  maxBurstLength: 262144,
  firstBurstLength: 65536,
  immediateData: true,
  initialR2T: true,
  maxOutstandingR2T: 1,
  dataPDUInOrder: true,
  dataSequenceInOrder: true,
  defaultTime2Wait: 2,
  defaultTime2Retain: 20,
  errorRecoveryLevel: 0,
  maxConnections: 1,
});

export const DEFAULT_TARGET_LIMITS: Readonly<TargetOperationalLimits> = Object.freeze<TargetOperationalLimits>({
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 1048576,
  firstBurstLength: 65536,
  immediateData: true,
  initialR2T: true,
  maxOutstandingR2T: 1,
  defaultTime2Wait: 2,
  defaultTime2Retain: 20,
  headerDigests: ['None', 'CRC32C'],
  dataDigests: ['None', 'CRC32C'],
});

/** Fixed by what the target implements: error recovery level 0 and one connection per session. */
const OUR_ERROR_RECOVERY_LEVEL = 0;
const OUR_MAX_CONNECTIONS = 1;
/** RFC 7143 is iSCSIProtocolLevel 1 (RFC 7144). */
const OUR_PROTOCOL_LEVEL = 1;

const SEGMENT_MIN = 512;
const SEGMENT_MAX = 16777215;

/** Checks a limits object; returns what is wrong, or null. */
export function checkLimits(limits: TargetOperationalLimits): string | null {
  const inRange = (n: number, lo: number, hi: number) => Number.isInteger(n) && n >= lo && n <= hi;
  if (!inRange(limits.maxRecvDataSegmentLength, SEGMENT_MIN, SEGMENT_MAX)) return 'maxRecvDataSegmentLength out of range';
  if (!inRange(limits.maxBurstLength, SEGMENT_MIN, SEGMENT_MAX)) return 'maxBurstLength out of range';
  if (!inRange(limits.firstBurstLength, SEGMENT_MIN, limits.maxBurstLength)) return 'firstBurstLength out of range';
  if (!inRange(limits.maxOutstandingR2T, 1, 65535)) return 'maxOutstandingR2T out of range';
  if (!inRange(limits.defaultTime2Wait, 0, 3600)) return 'defaultTime2Wait out of range';
  if (!inRange(limits.defaultTime2Retain, 0, 3600)) return 'defaultTime2Retain out of range';
  if (limits.headerDigests.length === 0 || limits.dataDigests.length === 0) return 'at least one digest is needed';
  return null;
}

type NumericField =
  | 'maxBurstLength'
  | 'firstBurstLength'
  | 'maxOutstandingR2T'
  | 'defaultTime2Wait'
  | 'defaultTime2Retain'
  | 'errorRecoveryLevel'
  | 'maxConnections';
type BooleanField = 'immediateData' | 'initialR2T' | 'dataPDUInOrder' | 'dataSequenceInOrder';

type KeySpec =
  | { kind: 'digest'; field: 'headerDigest' | 'dataDigest' }
  | { kind: 'number'; field: NumericField; min: number; max: number; result: 'min' | 'max'; normalOnly: boolean }
  | { kind: 'boolean'; field: BooleanField; result: 'and' | 'or'; normalOnly: boolean }
  | { kind: 'initiator-mrdsl' }
  | { kind: 'marker' }
  | { kind: 'marker-interval' }
  | { kind: 'task-reporting' }
  | { kind: 'protocol-level' }
  | { kind: 'rdma' };

/**
 * The operational keys (§13) and how each is answered. normalOnly = "Irrelevant when:
 * SessionType=Discovery" in §13, answered with Irrelevant in discovery sessions.
 */
const KEYS: ReadonlyMap<string, KeySpec> = new Map<string, KeySpec>([
  ['HeaderDigest', { kind: 'digest', field: 'headerDigest' }],
  ['DataDigest', { kind: 'digest', field: 'dataDigest' }],
  ['MaxConnections', { kind: 'number', field: 'maxConnections', min: 1, max: 65535, result: 'min', normalOnly: true }],
  ['InitialR2T', { kind: 'boolean', field: 'initialR2T', result: 'or', normalOnly: true }],
  ['ImmediateData', { kind: 'boolean', field: 'immediateData', result: 'and', normalOnly: true }],
  ['MaxRecvDataSegmentLength', { kind: 'initiator-mrdsl' }],
  ['MaxBurstLength', { kind: 'number', field: 'maxBurstLength', min: SEGMENT_MIN, max: SEGMENT_MAX, result: 'min', normalOnly: true }],
  ['FirstBurstLength', { kind: 'number', field: 'firstBurstLength', min: SEGMENT_MIN, max: SEGMENT_MAX, result: 'min', normalOnly: true }],
  ['DefaultTime2Wait', { kind: 'number', field: 'defaultTime2Wait', min: 0, max: 3600, result: 'max', normalOnly: false }],
  ['DefaultTime2Retain', { kind: 'number', field: 'defaultTime2Retain', min: 0, max: 3600, result: 'min', normalOnly: false }],
  ['MaxOutstandingR2T', { kind: 'number', field: 'maxOutstandingR2T', min: 1, max: 65535, result: 'min', normalOnly: true }],
  ['DataPDUInOrder', { kind: 'boolean', field: 'dataPDUInOrder', result: 'or', normalOnly: true }],
  ['DataSequenceInOrder', { kind: 'boolean', field: 'dataSequenceInOrder', result: 'or', normalOnly: true }],
  ['ErrorRecoveryLevel', { kind: 'number', field: 'errorRecoveryLevel', min: 0, max: 2, result: 'min', normalOnly: false }],
  // §13.25: markers are obsolete; IFMarker/OFMarker may be answered No (open-iscsi and libiscsi still
  // send them), IFMarkInt/OFMarkInt must be answered Reject — never NotUnderstood.
  ['IFMarker', { kind: 'marker' }],
  ['OFMarker', { kind: 'marker' }],
  ['IFMarkInt', { kind: 'marker-interval' }],
  ['OFMarkInt', { kind: 'marker-interval' }],
  ['TaskReporting', { kind: 'task-reporting' }],
  ['iSCSIProtocolLevel', { kind: 'protocol-level' }],
  ['RDMAExtensions', { kind: 'rdma' }],
]);

export function isOperationalKey(key: string): boolean {
  return KEYS.has(key);
}

export type OperationalVerdict =
  /** Append key=value to the response. */
  | { kind: 'answer'; value: string }
  /** A declaration: nothing to answer. */
  | { kind: 'declared' }
  /** A protocol error that ends the login (Initiator Error). */
  | { kind: 'error'; reason: string };

/** One login's operational negotiation: keys in, answers out, NegotiatedParams accumulated. */
export class OperationalNegotiation {
  readonly params: NegotiatedParams = { ...RFC_DEFAULTS };
  private readonly seen = new Set<string>();
  private declared = false;

  constructor(
    private readonly limits: TargetOperationalLimits,
    private readonly sessionType: SessionType,
  ) {}

  /** Handles one operational key the initiator sent. key must satisfy isOperationalKey(). */
  offer(key: string, value: string): OperationalVerdict {
    const spec = KEYS.get(key);
    if (!spec) return { kind: 'error', reason: `${key} is not an operational key` };
    // §6.2: a key is negotiated once per login; a second offer is a protocol error.
    if (this.seen.has(key)) return { kind: 'error', reason: `${key} negotiated twice` };
    this.seen.add(key);
    switch (spec.kind) {
      case 'digest':
        return this.digest(spec.field, value);
      case 'number':
        if (spec.normalOnly && this.sessionType === 'Discovery') return answer(IRRELEVANT);
        return this.number(spec.field, value, spec.min, spec.max, spec.result);
      case 'boolean':
        if (spec.normalOnly && this.sessionType === 'Discovery') return answer(IRRELEVANT);
        return this.boolean(spec.field, value, spec.result);
      case 'initiator-mrdsl': {
        // Declarative (§13.12): the initiator says what it can receive; our Data-In must fit.
        const n = parseNumber(value);
        if (n === null || n < SEGMENT_MIN || n > SEGMENT_MAX) return answer(REJECT);
        this.params.initiatorMaxRecvDataSegmentLength = n;
        return { kind: 'declared' };
      }
      case 'marker':
        return answer(parseBoolean(value) === null ? REJECT : 'No');
      case 'marker-interval':
        return answer(REJECT);
      case 'task-reporting': {
        // §13.23: we implement the RFC 3720 semantics only.
        if (this.sessionType === 'Discovery') return answer(IRRELEVANT);
        const items = parseList(value);
        return answer(items?.includes('RFC3720') ? 'RFC3720' : REJECT);
      }
      case 'protocol-level': {
        const n = parseNumber(value);
        if (n === null || n > 31) return answer(REJECT);
        return answer(String(Math.min(n, OUR_PROTOCOL_LEVEL)));
      }
      case 'rdma': {
        // iSER only; over TCP the AND result is always No.
        return answer(parseBoolean(value) === null ? REJECT : 'No');
      }
    }
  }

  /**
   * Our declarations for the first Operational-stage response: MaxRecvDataSegmentLength, which the
   * initiator needs to size its Data-Out (§13.12). Empty after the first call.
   */
  declarations(): TextPair[] {
    if (this.declared) return [];
    this.declared = true;
    this.params.targetMaxRecvDataSegmentLength = this.limits.maxRecvDataSegmentLength;
    return [{ key: 'MaxRecvDataSegmentLength', value: String(this.limits.maxRecvDataSegmentLength) }];
  }

  /**
   * After all keys of one request: FirstBurstLength must not exceed MaxBurstLength (§13.14). When the
   * initiator's pair of offers breaks that, lower FirstBurstLength and fix our answer in `answers`.
   */
  settle(answers: TextPair[]): void {
    if (this.params.firstBurstLength <= this.params.maxBurstLength) return;
    this.params.firstBurstLength = this.params.maxBurstLength;
    const first = answers.find((pair) => pair.key === 'FirstBurstLength');
    if (first && first.value !== IRRELEVANT && first.value !== REJECT) first.value = String(this.params.firstBurstLength);
  }

  private digest(field: 'headerDigest' | 'dataDigest', value: string): OperationalVerdict {
    const ours = field === 'headerDigest' ? this.limits.headerDigests : this.limits.dataDigests;
    const items = parseList(value);
    if (items === null) return answer(REJECT);
    // §13.1: the first value of the initiator's list that we support.
    const choice = items.find((item): item is Digest => (item === 'None' || item === 'CRC32C') && ours.includes(item));
    if (choice === undefined) return answer(REJECT);
    this.params[field] = choice;
    return answer(choice);
  }

  private number(field: NumericField, value: string, min: number, max: number, result: 'min' | 'max'): OperationalVerdict {
    const n = parseNumber(value);
    if (n === null || n < min || n > max) return answer(REJECT);
    const ours = this.ourNumber(field);
    const agreed = result === 'min' ? Math.min(n, ours) : Math.max(n, ours);
    this.params[field] = agreed;
    return answer(String(agreed));
  }

  private boolean(field: BooleanField, value: string, result: 'and' | 'or'): OperationalVerdict {
    const offered = parseBoolean(value);
    if (offered === null) return answer(REJECT);
    const ours = this.ourBoolean(field);
    const agreed = result === 'and' ? offered && ours : offered || ours;
    this.params[field] = agreed;
    return answer(formatBoolean(agreed));
  }

  private ourNumber(field: NumericField): number {
    switch (field) {
      case 'errorRecoveryLevel':
        return OUR_ERROR_RECOVERY_LEVEL;
      case 'maxConnections':
        return OUR_MAX_CONNECTIONS;
      case 'firstBurstLength':
        // Never answer a FirstBurstLength above the MaxBurstLength already agreed.
        return Math.min(this.limits.firstBurstLength, this.params.maxBurstLength);
      default:
        return this.limits[field];
    }
  }

  private ourBoolean(field: BooleanField): boolean {
    switch (field) {
      case 'immediateData':
        return this.limits.immediateData;
      case 'initialR2T':
        return this.limits.initialR2T;
      // We deliver and expect data in order: OR with Yes makes the result Yes whatever is offered.
      case 'dataPDUInOrder':
      case 'dataSequenceInOrder':
        return true;
    }
  }
}

function answer(value: string): OperationalVerdict {
  return { kind: 'answer', value };
}
