// The login phase as the connection sees it: typed Login Request/Response PDUs (RFC 7143 §11.12–11.13)
// in, decisions out. The PDU codec (src/iscsi/pdu.ts) produces LoginRequest and serializes
// LoginResponse; the negotiator in this folder decides everything in between.

/** Login stages (CSG/NSG). */
export const enum LoginStage {
  Security = 0,
  Operational = 1,
  FullFeature = 3,
}

export interface LoginRequest {
  transit: boolean;
  continue: boolean;
  csg: number;
  nsg: number;
  versionMax: number;
  versionMin: number;
  /** 6 bytes. */
  isid: Buffer;
  tsih: number;
  itt: number;
  cid: number;
  cmdSN: number;
  expStatSN: number;
  /** The text segment: NUL-terminated key=value pairs (may be split over several PDUs with C=1). */
  data: Buffer;
}

export interface LoginResponse {
  transit: boolean;
  continue: boolean;
  csg: number;
  nsg: number;
  versionMax: number;
  versionActive: number;
  isid: Buffer;
  /** 0 until the final response; the connection fills in the session's TSIH then. */
  tsih: number;
  itt: number;
  statusClass: number;
  statusDetail: number;
  data: Buffer;
}

/** Login status codes (class << 8 | detail), RFC 7143 §11.13.5. */
export const LoginStatus = {
  Success: 0x0000,
  TargetMovedTemporarily: 0x0101,
  InitiatorError: 0x0200,
  AuthenticationFailure: 0x0201,
  AuthorizationFailure: 0x0202,
  NotFound: 0x0203,
  TargetRemoved: 0x0204,
  UnsupportedVersion: 0x0205,
  TooManyConnections: 0x0206,
  MissingParameter: 0x0207,
  CantIncludeInSession: 0x0208,
  SessionTypeNotSupported: 0x0209,
  SessionDoesNotExist: 0x020a,
  InvalidDuringLogin: 0x020b,
  TargetError: 0x0300,
  ServiceUnavailable: 0x0301,
  OutOfResources: 0x0302,
} as const;

export interface ChapCredentials {
  /** What the initiator must send as CHAP_N, and the secret its CHAP_R is computed with. */
  user: string;
  secret: string;
  /** Mutual CHAP: what the target answers with when the initiator challenges it. */
  mutual?: { user: string; secret: string };
}

export interface TargetAccess {
  name: string;
  /** Initiator IQNs allowed to open a normal session. */
  acl: readonly string[];
  /** undefined = no authentication (AuthMethod=None); hiveboot always sets it for hosts. */
  chap?: ChapCredentials;
  /** Portals announced by SendTargets, "ip:port,tpgt". */
  portals: readonly string[];
  /** Sent as TargetAlias during login of a normal session (RFC 7143 §13.6), e.g. the host's name. */
  alias?: string;
}

/** Policy the negotiator asks; it never decides on its own who may log in. */
export interface LoginPolicy {
  target(name: string): TargetAccess | undefined;
  /** Every target (for discovery sessions; the negotiator filters by initiator and credentials). */
  targets(): Iterable<TargetAccess>;
  /** Whether a discovery session needs CHAP (with the credentials of one of the initiator's targets). */
  discoveryNeedsChap: boolean;
}

/** Operational parameters in force once login completes (declarative values of the session/connection). */
export interface NegotiatedParams {
  headerDigest: 'None' | 'CRC32C';
  dataDigest: 'None' | 'CRC32C';
  /** What the initiator can receive per PDU: our Data-In segments must not exceed it. */
  initiatorMaxRecvDataSegmentLength: number;
  /** What we declared we receive per PDU. */
  targetMaxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  immediateData: boolean;
  initialR2T: boolean;
  maxOutstandingR2T: number;
  dataPDUInOrder: boolean;
  dataSequenceInOrder: boolean;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
  errorRecoveryLevel: number;
  maxConnections: number;
}

export type SessionType = 'Normal' | 'Discovery';

export interface LoginOutcome {
  sessionType: SessionType;
  initiatorName: string;
  initiatorAlias?: string;
  /** undefined for discovery sessions. A copy without `chap`: outcomes never carry secrets. */
  target?: TargetAccess;
  /**
   * The targets SendTargets may report on this session, copies without `chap`: for discovery sessions
   * the initiator's own (see LoginPolicy.discoveryNeedsChap), for normal sessions the session's target.
   */
  visibleTargets: TargetAccess[];
  isid: Buffer;
  /** TSIH the initiator sent (non-zero = adding a connection to / reinstating an existing session). */
  tsih: number;
  params: NegotiatedParams;
  /** The CHAP user that authenticated, if any (for events; never the secret). */
  chapUser?: string;
  /** How the initiator authenticated. */
  authMethod: 'None' | 'CHAP';
  /** The CHAP_A algorithm used, when authMethod is CHAP. */
  chapAlgorithm?: 'MD5' | 'SHA1' | 'SHA256' | 'SHA3-256';
  /** Whether the initiator also authenticated the target (mutual CHAP). */
  mutualChap?: boolean;
}
