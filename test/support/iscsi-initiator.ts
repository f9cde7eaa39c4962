/**
 * A small, honest iSCSI initiator (RFC 7143) for the transport tests: login (AuthMethod None or CHAP
 * MD5), SCSI commands with immediate data, unsolicited Data-Out and R2T-driven Data-Out, Data-In
 * reassembly, NOP-Out/NOP-In (answering the target's pings unless told not to), Text, task management,
 * Logout, header and data digests, and raw PDUs for fuzzing.
 *
 * It is written from the RFC, not from src/iscsi: its own PDU encoders and decoders, its own framing and
 * its own table CRC32C, so a mistake shared by the target's codec and this one is unlikely. It checks
 * what an initiator would trip over (digests, DataSN order, offsets, StatSN) and records it in
 * `violations` rather than throwing, so tests can assert on the whole list.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';

// ----- constants (RFC 7143 §11) -----

export const Opcode = {
  NopOut: 0x00,
  ScsiCommand: 0x01,
  TaskManagement: 0x02,
  Login: 0x03,
  Text: 0x04,
  DataOut: 0x05,
  Logout: 0x06,
  Snack: 0x10,
  NopIn: 0x20,
  ScsiResponse: 0x21,
  TaskManagementResponse: 0x22,
  LoginResponse: 0x23,
  TextResponse: 0x24,
  DataIn: 0x25,
  LogoutResponse: 0x26,
  R2T: 0x31,
  AsyncMessage: 0x32,
  Reject: 0x3f,
} as const;

export const TMF = { AbortTask: 1, AbortTaskSet: 2, ClearTaskSet: 4, LunReset: 5, TargetWarmReset: 6, TargetColdReset: 7 } as const;

export const NO_TAG = 0xffffffff;
const BHS = 48;

// ----- CRC32C (Castagnoli, reflected 0x82F63B78), sent least significant byte first (§13.1, B.4) -----

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(...parts: Buffer[]): number {
  let crc = 0xffffffff;
  for (const part of parts) for (let i = 0; i < part.length; i++) crc = CRC_TABLE[(crc ^ part[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function pad4(n: number): number {
  return (4 - (n & 3)) & 3;
}

// ----- initiator PDU encoders -----

function writeLun(bhs: Buffer, lun: number): void {
  // SAM-5 single level: peripheral addressing below 256, flat space above.
  if (lun < 256) bhs[9] = lun;
  else {
    bhs[8] = 0x40 | ((lun >> 8) & 0x3f);
    bhs[9] = lun & 0xff;
  }
}

function base(opcode: number, immediate: boolean, flags: number, dataLength: number, itt: number): Buffer {
  const b = Buffer.alloc(BHS);
  b[0] = (immediate ? 0x40 : 0) | opcode;
  b[1] = flags;
  b.writeUIntBE(dataLength, 5, 3);
  b.writeUInt32BE(itt >>> 0, 16);
  return b;
}

export interface ScsiCommandFields {
  itt: number;
  cmdSN: number;
  expStatSN: number;
  cdb: Buffer;
  edtl: number;
  lun?: number;
  read?: boolean;
  write?: boolean;
  /** F bit: no unsolicited Data-Out follows. Default true. */
  final?: boolean;
  immediate?: boolean;
  /** Task attribute (SAM): 0 untagged, 1 simple, 2 ordered, 3 head of queue, 4 ACA. Default simple. */
  attr?: number;
  dataLength?: number;
}

export function scsiCommandPdu(f: ScsiCommandFields): Buffer {
  const flags = (f.final ?? true ? 0x80 : 0) | (f.read ? 0x40 : 0) | (f.write ? 0x20 : 0) | ((f.attr ?? 1) & 7);
  const b = base(Opcode.ScsiCommand, f.immediate ?? false, flags, f.dataLength ?? 0, f.itt);
  writeLun(b, f.lun ?? 0);
  b.writeUInt32BE(f.edtl >>> 0, 20);
  b.writeUInt32BE(f.cmdSN >>> 0, 24);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  f.cdb.copy(b, 32, 0, Math.min(16, f.cdb.length));
  return b;
}

export function dataOutPdu(f: { itt: number; ttt: number; lun?: number; expStatSN: number; dataSN: number; bufferOffset: number; final: boolean; dataLength: number }): Buffer {
  const b = base(Opcode.DataOut, false, f.final ? 0x80 : 0, f.dataLength, f.itt);
  writeLun(b, f.lun ?? 0);
  b.writeUInt32BE(f.ttt >>> 0, 20);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  b.writeUInt32BE(f.dataSN >>> 0, 36);
  b.writeUInt32BE(f.bufferOffset >>> 0, 40);
  return b;
}

export function nopOutPdu(f: { itt: number; ttt?: number; cmdSN: number; expStatSN: number; immediate?: boolean; lun?: number; dataLength?: number }): Buffer {
  const b = base(Opcode.NopOut, f.immediate ?? false, 0x80, f.dataLength ?? 0, f.itt);
  writeLun(b, f.lun ?? 0);
  b.writeUInt32BE((f.ttt ?? NO_TAG) >>> 0, 20);
  b.writeUInt32BE(f.cmdSN >>> 0, 24);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  return b;
}

export function textPdu(f: { itt: number; ttt?: number; cmdSN: number; expStatSN: number; final?: boolean; cont?: boolean; immediate?: boolean; dataLength: number }): Buffer {
  const b = base(Opcode.Text, f.immediate ?? false, (f.final ?? true ? 0x80 : 0) | (f.cont ? 0x40 : 0), f.dataLength, f.itt);
  b.writeUInt32BE((f.ttt ?? NO_TAG) >>> 0, 20);
  b.writeUInt32BE(f.cmdSN >>> 0, 24);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  return b;
}

export function tmfPdu(f: { itt: number; fn: number; lun?: number; refItt?: number; cmdSN: number; expStatSN: number; refCmdSN?: number; immediate?: boolean }): Buffer {
  const b = base(Opcode.TaskManagement, f.immediate ?? true, 0x80 | (f.fn & 0x7f), 0, f.itt);
  writeLun(b, f.lun ?? 0);
  b.writeUInt32BE((f.refItt ?? NO_TAG) >>> 0, 20);
  b.writeUInt32BE(f.cmdSN >>> 0, 24);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  b.writeUInt32BE((f.refCmdSN ?? 0) >>> 0, 32);
  return b;
}

export function logoutPdu(f: { itt: number; reason?: number; cid?: number; cmdSN: number; expStatSN: number; immediate?: boolean }): Buffer {
  const b = base(Opcode.Logout, f.immediate ?? false, 0x80 | ((f.reason ?? 0) & 0x7f), 0, f.itt);
  b.writeUInt16BE(f.cid ?? 0, 20);
  b.writeUInt32BE(f.cmdSN >>> 0, 24);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  return b;
}

export function loginPdu(f: {
  itt: number;
  isid: Buffer;
  tsih: number;
  cid?: number;
  cmdSN: number;
  expStatSN: number;
  transit: boolean;
  cont?: boolean;
  csg: number;
  nsg: number;
  dataLength: number;
}): Buffer {
  const flags = (f.transit ? 0x80 : 0) | (f.cont ? 0x40 : 0) | ((f.csg & 3) << 2) | (f.nsg & 3);
  const b = base(Opcode.Login, true, flags, f.dataLength, f.itt);
  f.isid.copy(b, 8, 0, 6);
  b.writeUInt16BE(f.tsih, 14);
  b.writeUInt16BE(f.cid ?? 0, 20);
  b.writeUInt32BE(f.cmdSN >>> 0, 24);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  return b;
}

export function snackPdu(f: { itt: number; type?: number; ttt?: number; expStatSN: number; begRun?: number; runLength?: number }): Buffer {
  const b = base(Opcode.Snack, false, 0x80 | ((f.type ?? 0) & 0x0f), 0, f.itt);
  b.writeUInt32BE((f.ttt ?? NO_TAG) >>> 0, 20);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  b.writeUInt32BE((f.begRun ?? 0) >>> 0, 40);
  b.writeUInt32BE((f.runLength ?? 0) >>> 0, 44);
  return b;
}

/** key=value\0 pairs (§6.1). */
export function textSegment(pairs: Record<string, string> | [string, string][]): Buffer {
  const list = Array.isArray(pairs) ? pairs : Object.entries(pairs);
  return Buffer.from(list.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

export function parseTextSegment(data: Buffer): [string, string][] {
  return data
    .toString('utf8')
    .split('\0')
    .filter((s) => s.length > 0)
    .map((s) => {
      const i = s.indexOf('=');
      return [s.slice(0, i), s.slice(i + 1)] as [string, string];
    });
}

/** One PDU on the wire: header (+ digest), data + padding (+ digest). */
export function framePdu(
  bhs: Buffer,
  data: Buffer | undefined,
  digests: { header: boolean; data: boolean },
  corrupt: { header?: boolean; data?: boolean } = {},
): Buffer {
  const parts = [bhs];
  if (digests.header) {
    const d = Buffer.alloc(4);
    d.writeUInt32LE((crc32c(bhs) ^ (corrupt.header ? 0x5a5a5a5a : 0)) >>> 0);
    parts.push(d);
  }
  if (data && data.length > 0) {
    const padding = Buffer.alloc(pad4(data.length));
    parts.push(data, padding);
    if (digests.data) {
      const d = Buffer.alloc(4);
      d.writeUInt32LE((crc32c(data, padding) ^ (corrupt.data ? 0xa5a5a5a5 : 0)) >>> 0);
      parts.push(d);
    }
  }
  return Buffer.concat(parts);
}

// ----- CDBs (SBC-4) -----

export const cdb = {
  testUnitReady: (): Buffer => Buffer.alloc(6),
  inquiry: (alloc = 96): Buffer => {
    const c = Buffer.alloc(6);
    c[0] = 0x12;
    c.writeUInt16BE(alloc, 3);
    return c;
  },
  readCapacity10: (): Buffer => {
    const c = Buffer.alloc(10);
    c[0] = 0x25;
    return c;
  },
  read10: (lba: number, blocks: number): Buffer => {
    const c = Buffer.alloc(10);
    c[0] = 0x28;
    c.writeUInt32BE(lba, 2);
    c.writeUInt16BE(blocks, 7);
    return c;
  },
  write10: (lba: number, blocks: number, fua = false): Buffer => {
    const c = Buffer.alloc(10);
    c[0] = 0x2a;
    c[1] = fua ? 0x08 : 0;
    c.writeUInt32BE(lba, 2);
    c.writeUInt16BE(blocks, 7);
    return c;
  },
  read16: (lba: number, blocks: number): Buffer => {
    const c = Buffer.alloc(16);
    c[0] = 0x88;
    c.writeBigUInt64BE(BigInt(lba), 2);
    c.writeUInt32BE(blocks, 10);
    return c;
  },
  write16: (lba: number, blocks: number, fua = false): Buffer => {
    const c = Buffer.alloc(16);
    c[0] = 0x8a;
    c[1] = fua ? 0x08 : 0;
    c.writeBigUInt64BE(BigInt(lba), 2);
    c.writeUInt32BE(blocks, 10);
    return c;
  },
  synchronizeCache10: (): Buffer => {
    const c = Buffer.alloc(10);
    c[0] = 0x35;
    return c;
  },
  synchronizeCache16: (): Buffer => {
    const c = Buffer.alloc(16);
    c[0] = 0x91;
    return c;
  },
};

// ----- target PDUs as this initiator reads them -----

export interface TargetPdu {
  opcode: number;
  flags: number;
  bhs: Buffer;
  ahs: Buffer;
  data: Buffer;
  itt: number;
  /** TTT (R2T, NOP-In, Data-In) — bytes 20..23. */
  ttt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
}

function decodeTargetPdu(bhs: Buffer, ahs: Buffer, data: Buffer): TargetPdu {
  return {
    opcode: bhs[0]! & 0x3f,
    flags: bhs[1]!,
    bhs,
    ahs,
    data,
    itt: bhs.readUInt32BE(16),
    ttt: bhs.readUInt32BE(20),
    statSN: bhs.readUInt32BE(24),
    expCmdSN: bhs.readUInt32BE(28),
    maxCmdSN: bhs.readUInt32BE(32),
  };
}

/** RFC 1982 serial arithmetic on 32 bits. */
export function snGreater(a: number, b: number): boolean {
  return a !== b && ((a - b) >>> 0) < 0x80000000;
}

// ----- the initiator -----

export interface InitiatorOptions {
  port: number;
  host?: string;
  initiatorName: string;
  /** Normal session target; omit with sessionType 'Discovery'. */
  targetName?: string;
  sessionType?: 'Normal' | 'Discovery';
  isid?: Buffer;
  tsih?: number;
  chap?: { user: string; secret: string };
  /** Start in the Operational stage (skip security): only a target without CHAP allows it. */
  skipSecurity?: boolean;
  headerDigest?: boolean;
  dataDigest?: boolean;
  /** What we receive per PDU: the target's Data-In must fit (§13.12). Default 262144. */
  maxRecvDataSegmentLength?: number;
  maxBurstLength?: number;
  firstBurstLength?: number;
  immediateData?: boolean;
  initialR2T?: boolean;
  maxOutstandingR2T?: number;
  /** Answer the target's NOP-In pings (default true). */
  answerPings?: boolean;
  /** First CmdSN (default 1). */
  cmdSN?: number;
  /** Per step of login, ms (default 10 s). */
  timeoutMs?: number;
}

export interface LoginResult {
  /** class << 8 | detail of the last Login Response (0 = success). */
  status: number;
  tsih: number;
  /** Every key the target sent, last value wins. */
  keys: Map<string, string>;
}

export interface Negotiated {
  headerDigest: boolean;
  dataDigest: boolean;
  /** The target's MaxRecvDataSegmentLength: our Data-Out and immediate data must fit. */
  targetMaxRecvDataSegmentLength: number;
  maxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  immediateData: boolean;
  initialR2T: boolean;
  maxOutstandingR2T: number;
}

export interface DataInRecord {
  dataSN: number;
  offset: number;
  length: number;
  final: boolean;
  status: boolean;
}

export interface R2TRecord {
  ttt: number;
  r2tSN: number;
  offset: number;
  length: number;
}

export interface ScsiOutcome {
  itt: number;
  /** SCSI status (0 GOOD, 2 CHECK CONDITION…), or -1 if the command ended in a Reject. */
  status: number;
  /** iSCSI response (0 = command completed at target). */
  response: number;
  sense?: Buffer;
  data: Buffer;
  underflow: boolean;
  overflow: boolean;
  residual: number;
  dataIn: DataInRecord[];
  r2ts: R2TRecord[];
  /** Most R2Ts we had received and not yet answered in full, at once. */
  maxOutstandingR2T: number;
  reject?: number;
}

export interface CommandOptions {
  lun?: number;
  /** Read: the expected Data-In length. */
  readLength?: number;
  /** Write: the data. */
  data?: Buffer;
  /** Override EDTL (default readLength or data.length). */
  edtl?: number;
  immediate?: boolean;
  cmdSN?: number;
  attr?: number;
  /** Send no unsolicited data at all (neither immediate data nor unsolicited Data-Out). */
  noUnsolicited?: boolean;
  /** Record R2Ts but do not answer them (for abort tests). */
  holdR2T?: boolean;
  /** Wait this long before answering each R2T (lets the target show how many it keeps outstanding). */
  r2tDelayMs?: number;
}

export interface CommandHandle {
  itt: number;
  cmdSN: number;
  done: Promise<ScsiOutcome>;
  /** Resolves with the first R2T. */
  firstR2T: Promise<R2TRecord>;
  r2ts: R2TRecord[];
  /** Sends the Data-Out for one R2T we held. */
  answer(r2t: R2TRecord): void;
}

interface Pending {
  onPdu(pdu: TargetPdu): void;
  onReject(reason: number, pdu: TargetPdu): void;
  onClose(err: Error): void;
}

export class IscsiError extends Error {}

export class IscsiInitiator {
  readonly socket: net.Socket;
  readonly violations: string[] = [];
  readonly rejects: { reason: number; opcode: number; itt: number }[] = [];
  readonly asyncMessages: TargetPdu[] = [];
  /** PDUs that answered nothing we were waiting for (late answers, answers to raw PDUs). */
  readonly unsolicited: TargetPdu[] = [];
  /** Every PDU received, in order (bounded). */
  readonly received: TargetPdu[] = [];
  pings = 0;
  params!: Negotiated;
  tsih = 0;
  cmdSN: number;
  expStatSN = 0;
  expCmdSN = 0;
  maxCmdSN = 0;
  closed: Promise<void>;
  isClosed = false;
  private buffered: Buffer = Buffer.alloc(0);
  private digests = { header: false, data: false };
  private readonly pending = new Map<number, Pending>();
  private nextItt = 1;
  private readonly isid: Buffer;
  private answerPings: boolean;

  private constructor(
    socket: net.Socket,
    readonly options: InitiatorOptions,
  ) {
    this.socket = socket;
    this.cmdSN = (options.cmdSN ?? 1) >>> 0;
    this.isid = options.isid ?? Buffer.from([0x80, 0x12, 0x34, 0x56, 0x00, 0x01]);
    this.answerPings = options.answerPings ?? true;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.isClosed = true;
        const err = new IscsiError('connection closed by the target');
        for (const p of [...this.pending.values()]) p.onClose(err);
        this.pending.clear();
        resolve();
      });
    });
    socket.on('error', () => undefined);
  }

  /** Opens the TCP connection only. */
  static async connect(options: InitiatorOptions): Promise<IscsiInitiator> {
    const socket = net.connect({ host: options.host ?? '127.0.0.1', port: options.port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new IscsiInitiator(socket, options);
  }

  /** Connects and logs in; throws when the login is refused. */
  static async open(options: InitiatorOptions): Promise<IscsiInitiator> {
    const ini = await IscsiInitiator.connect(options);
    const result = await ini.login();
    if (result.status !== 0) {
      ini.destroy();
      throw new IscsiError(`login refused: status 0x${result.status.toString(16).padStart(4, '0')}`);
    }
    return ini;
  }

  set pingAnswers(on: boolean) {
    this.answerPings = on;
  }

  allocateItt(): number {
    const itt = this.nextItt;
    this.nextItt = this.nextItt >= 0x7fffffff ? 1 : this.nextItt + 1;
    return itt;
  }

  // ----- login -----

  async login(): Promise<LoginResult> {
    const o = this.options;
    const timeout = o.timeoutMs ?? 10_000;
    const itt = this.allocateItt();
    const tsih = o.tsih ?? 0;
    const keys = new Map<string, string>();
    const leading: [string, string][] = [['InitiatorName', o.initiatorName]];
    if (o.sessionType === 'Discovery') leading.push(['SessionType', 'Discovery']);
    else leading.push(['SessionType', 'Normal'], ['TargetName', o.targetName ?? '']);

    const exchange = async (csg: number, nsg: number, transit: boolean, pairs: [string, string][]): Promise<{ pdu: TargetPdu; status: number; pairs: [string, string][] }> => {
      let data = textSegment(pairs);
      let collected: [string, string][] = [];
      for (;;) {
        const bhs = loginPdu({ itt, isid: this.isid, tsih, cmdSN: this.cmdSN, expStatSN: this.expStatSN, transit, csg, nsg, dataLength: data.length });
        const reply = this.expect(itt, timeout, 'login response');
        this.sendPdu(bhs, data);
        const pdu = await reply;
        if (pdu.opcode !== Opcode.LoginResponse) throw new IscsiError(`expected a Login Response, got opcode 0x${pdu.opcode.toString(16)}`);
        const status = (pdu.bhs[36]! << 8) | pdu.bhs[37]!;
        collected = collected.concat(parseTextSegment(pdu.data));
        for (const [k, v] of parseTextSegment(pdu.data)) keys.set(k, v);
        if (status !== 0 || !(pdu.flags & 0x40)) return { pdu, status, pairs: collected };
        // C=1: the target has more text; ask with an empty request (§6.2).
        data = Buffer.alloc(0);
      }
    };

    const operational: [string, string][] = [
      ['HeaderDigest', o.headerDigest ? 'CRC32C,None' : 'None'],
      ['DataDigest', o.dataDigest ? 'CRC32C,None' : 'None'],
    ];
    if (o.sessionType !== 'Discovery') {
      operational.push(
        ['InitialR2T', (o.initialR2T ?? true) ? 'Yes' : 'No'],
        ['ImmediateData', (o.immediateData ?? true) ? 'Yes' : 'No'],
        ['MaxBurstLength', String(o.maxBurstLength ?? 262144)],
        ['FirstBurstLength', String(o.firstBurstLength ?? 65536)],
        ['MaxOutstandingR2T', String(o.maxOutstandingR2T ?? 1)],
        ['MaxConnections', '1'],
        ['ErrorRecoveryLevel', '0'],
      );
    }
    operational.push(['MaxRecvDataSegmentLength', String(o.maxRecvDataSegmentLength ?? 262144)]);

    let last: { pdu: TargetPdu; status: number; pairs: [string, string][] };
    if (o.skipSecurity) {
      last = await exchange(1, 3, true, [...leading, ...operational]);
    } else if (!o.chap) {
      last = await exchange(0, 1, true, [...leading, ['AuthMethod', 'None']]);
      if (last.status !== 0) return { status: last.status, tsih: 0, keys };
      if (!(last.pdu.flags & 0x80)) throw new IscsiError('target did not let us leave the security stage');
      last = await exchange(1, 3, true, operational);
    } else {
      last = await exchange(0, 1, false, [...leading, ['AuthMethod', 'CHAP,None']]);
      if (last.status !== 0) return { status: last.status, tsih: 0, keys };
      if (keys.get('AuthMethod') !== 'CHAP') throw new IscsiError(`target chose AuthMethod=${keys.get('AuthMethod')}`);
      last = await exchange(0, 1, false, [['CHAP_A', '5']]);
      if (last.status !== 0) return { status: last.status, tsih: 0, keys };
      const id = Number(keys.get('CHAP_I'));
      const challenge = Buffer.from((keys.get('CHAP_C') ?? '').replace(/^0x/i, ''), 'hex');
      if (keys.get('CHAP_A') !== '5' || !Number.isInteger(id) || challenge.length === 0) throw new IscsiError('bad CHAP challenge');
      // RFC 1994: MD5(identifier || secret || challenge).
      const response = createHash('md5').update(Buffer.of(id)).update(o.chap.secret, 'utf8').update(challenge).digest();
      last = await exchange(0, 1, true, [['CHAP_N', o.chap.user], ['CHAP_R', `0x${response.toString('hex')}`]]);
      if (last.status !== 0) return { status: last.status, tsih: 0, keys };
      if (!(last.pdu.flags & 0x80)) throw new IscsiError('target did not accept our CHAP response');
      last = await exchange(1, 3, true, operational);
    }
    if (last.status !== 0) return { status: last.status, tsih: 0, keys };
    if (!(last.pdu.flags & 0x80) || (last.pdu.flags & 3) !== 3) throw new IscsiError('login did not reach Full Feature Phase');
    this.tsih = last.pdu.bhs.readUInt16BE(14);
    const num = (k: string, d: number) => (keys.has(k) && /^\d+$/.test(keys.get(k)!) ? Number(keys.get(k)) : d);
    this.params = {
      headerDigest: keys.get('HeaderDigest') === 'CRC32C',
      dataDigest: keys.get('DataDigest') === 'CRC32C',
      targetMaxRecvDataSegmentLength: num('MaxRecvDataSegmentLength', 8192),
      maxRecvDataSegmentLength: o.maxRecvDataSegmentLength ?? 262144,
      maxBurstLength: num('MaxBurstLength', 262144),
      firstBurstLength: num('FirstBurstLength', 65536),
      immediateData: keys.has('ImmediateData') ? keys.get('ImmediateData') === 'Yes' : true,
      initialR2T: keys.has('InitialR2T') ? keys.get('InitialR2T') === 'Yes' : true,
      maxOutstandingR2T: num('MaxOutstandingR2T', 1),
    };
    // Digests start with the first PDU after the final Login Response (§13.1).
    this.digests = { header: this.params.headerDigest, data: this.params.dataDigest };
    return { status: 0, tsih: this.tsih, keys };
  }

  // ----- sending -----

  sendPdu(bhs: Buffer, data?: Buffer, corrupt: { header?: boolean; data?: boolean } = {}): void {
    if (this.isClosed) return;
    this.socket.write(framePdu(bhs, data, this.digests, corrupt));
  }

  sendRaw(bytes: Buffer): void {
    if (!this.isClosed) this.socket.write(bytes);
  }

  get digestsInForce(): { header: boolean; data: boolean } {
    return { ...this.digests };
  }

  /** The CmdSN for a new request; advances unless immediate (§4.2.2.1). */
  takeCmdSN(immediate: boolean): number {
    const sn = this.cmdSN;
    if (!immediate) this.cmdSN = (this.cmdSN + 1) >>> 0;
    return sn;
  }

  // ----- receiving -----

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    for (;;) {
      if (this.buffered.length < BHS) return;
      const ahsLength = this.buffered[4]! * 4;
      const dataLength = this.buffered.readUIntBE(5, 3);
      const hd = this.digests.header ? 4 : 0;
      const dd = this.digests.data && dataLength > 0 ? 4 : 0;
      const total = BHS + ahsLength + hd + dataLength + pad4(dataLength) + dd;
      if (this.buffered.length < total) return;
      const pdu = this.buffered.subarray(0, total);
      this.buffered = this.buffered.subarray(total);
      const bhs = Buffer.from(pdu.subarray(0, BHS));
      const ahs = Buffer.from(pdu.subarray(BHS, BHS + ahsLength));
      let at = BHS + ahsLength;
      if (hd) {
        if (crc32c(pdu.subarray(0, at)) !== pdu.readUInt32LE(at)) {
          this.violation('header digest of a target PDU does not match');
          this.destroy();
          return;
        }
        at += 4;
      }
      const data = Buffer.from(pdu.subarray(at, at + dataLength));
      if (dd) {
        const padded = pdu.subarray(at, at + dataLength + pad4(dataLength));
        if (crc32c(padded) !== pdu.readUInt32LE(at + padded.length)) {
          this.violation('data digest of a target PDU does not match');
          this.destroy();
          return;
        }
      }
      if (dataLength > (this.params?.maxRecvDataSegmentLength ?? 8192)) {
        this.violation(`target sent a ${dataLength}-byte data segment, above our MaxRecvDataSegmentLength`);
      }
      this.onPdu(decodeTargetPdu(bhs, ahs, data));
    }
  }

  private onPdu(pdu: TargetPdu): void {
    if (this.received.length < 10_000) this.received.push(pdu);
    const carriesStatSN =
      pdu.opcode !== Opcode.R2T &&
      !(pdu.opcode === Opcode.DataIn && !(pdu.flags & 0x01)) &&
      !(pdu.opcode === Opcode.NopIn && pdu.itt === NO_TAG);
    if (carriesStatSN) {
      if (this.expStatSN !== 0 && pdu.opcode !== Opcode.LoginResponse && pdu.statSN !== this.expStatSN && this.tsih !== 0) {
        this.violation(`StatSN ${pdu.statSN} where ${this.expStatSN} was expected (opcode 0x${pdu.opcode.toString(16)})`);
      }
      this.expStatSN = (pdu.statSN + 1) >>> 0;
    }
    // ExpCmdSN and MaxCmdSN only move forward; a stale pair on a late PDU is ignored (§4.2.2.1).
    if (this.maxCmdSN === 0 || snGreater(pdu.expCmdSN, this.expCmdSN)) this.expCmdSN = pdu.expCmdSN;
    if (this.maxCmdSN === 0 || snGreater(pdu.maxCmdSN, this.maxCmdSN)) this.maxCmdSN = pdu.maxCmdSN;
    switch (pdu.opcode) {
      case Opcode.NopIn:
        if (pdu.itt === NO_TAG) {
          this.pings++;
          if (this.answerPings && pdu.ttt !== NO_TAG) {
            // §11.18: the answer to a ping carries its TTT, ITT reserved, immediate, CmdSN not advanced.
            this.sendPdu(nopOutPdu({ itt: NO_TAG, ttt: pdu.ttt, cmdSN: this.cmdSN, expStatSN: this.expStatSN, immediate: true }));
          }
          return;
        }
        break;
      case Opcode.AsyncMessage:
        this.asyncMessages.push(pdu);
        return;
      case Opcode.Reject: {
        const rejected = pdu.data.length >= BHS ? pdu.data : Buffer.alloc(BHS);
        const itt = rejected.readUInt32BE(16);
        const entry = { reason: pdu.bhs[2]!, opcode: rejected[0]! & 0x3f, itt };
        this.rejects.push(entry);
        this.pending.get(itt)?.onReject(entry.reason, pdu);
        return;
      }
    }
    const p = this.pending.get(pdu.itt);
    if (p) p.onPdu(pdu);
    else if (pdu.opcode !== Opcode.DataIn && pdu.opcode !== Opcode.R2T) this.unsolicited.push(pdu);
    else this.violation(`opcode 0x${pdu.opcode.toString(16)} for unknown ITT ${pdu.itt}`);
  }


  private violation(message: string): void {
    if (this.violations.length < 100) this.violations.push(message);
  }

  /** The next PDU with this ITT (a Reject of the ITT's PDU rejects the promise). */
  expect(itt: number, timeoutMs = 10_000, what = 'response'): Promise<TargetPdu> {
    return new Promise<TargetPdu>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(itt);
        reject(new IscsiError(`no ${what} for ITT ${itt} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.pending.delete(itt);
      };
      this.pending.set(itt, {
        onPdu: (pdu) => {
          done();
          resolve(pdu);
        },
        onReject: (reason) => {
          done();
          reject(Object.assign(new IscsiError(`rejected with reason 0x${reason.toString(16)}`), { reason }));
        },
        onClose: (err) => {
          done();
          reject(err);
        },
      });
    });
  }

  // ----- SCSI -----

  start(command: Buffer, o: CommandOptions = {}): CommandHandle {
    const itt = this.allocateItt();
    const immediate = o.immediate ?? false;
    const cmdSN = o.cmdSN ?? this.takeCmdSN(immediate);
    const write = o.data;
    const readLength = o.readLength ?? 0;
    const edtl = o.edtl ?? (write ? write.length : readLength);
    const p = this.params;
    const lun = o.lun ?? 0;

    // Unsolicited data: immediate data, then unsolicited Data-Out up to FirstBurstLength (§13.10, §13.11).
    let immediateData: Buffer = Buffer.alloc(0);
    let unsolicitedEnd = 0;
    if (write && !o.noUnsolicited) {
      const firstBurst = Math.min(p.firstBurstLength, write.length);
      if (p.immediateData) immediateData = write.subarray(0, Math.min(firstBurst, p.targetMaxRecvDataSegmentLength));
      unsolicitedEnd = p.initialR2T ? immediateData.length : firstBurst;
    }
    const followUp = unsolicitedEnd > immediateData.length;

    const outcome: ScsiOutcome = {
      itt,
      status: -1,
      response: 0,
      data: Buffer.alloc(readLength),
      underflow: false,
      overflow: false,
      residual: 0,
      dataIn: [],
      r2ts: [],
      maxOutstandingR2T: 0,
    };
    let outstanding = 0;
    let resolveFirst!: (r: R2TRecord) => void;
    const firstR2T = new Promise<R2TRecord>((resolve) => (resolveFirst = resolve));
    firstR2T.catch(() => undefined);

    const sendData = (ttt: number, from: number, to: number) => {
      const seg = this.params.targetMaxRecvDataSegmentLength;
      let dataSN = 0;
      for (let off = from; off < to; off += seg) {
        const end = Math.min(to, off + seg);
        const piece = write!.subarray(off, end);
        this.sendPdu(
          dataOutPdu({ itt, ttt, lun, expStatSN: this.expStatSN, dataSN: dataSN++, bufferOffset: off, final: end >= to, dataLength: piece.length }),
          piece,
        );
      }
    };
    const answer = (r2t: R2TRecord) => {
      sendData(r2t.ttt, r2t.offset, r2t.offset + r2t.length);
      outstanding--;
    };

    const done = new Promise<ScsiOutcome>((resolve, reject) => {
      let nextDataSN = 0;
      let expectedR2TSN = 0;
      const finish = () => {
        this.pending.delete(itt);
        resolve(outcome);
      };
      this.pending.set(itt, {
        onPdu: (pdu) => {
          switch (pdu.opcode) {
            case Opcode.DataIn: {
              const b = pdu.bhs;
              const rec: DataInRecord = {
                dataSN: b.readUInt32BE(36),
                offset: b.readUInt32BE(40),
                length: pdu.data.length,
                final: (pdu.flags & 0x80) !== 0,
                status: (pdu.flags & 0x01) !== 0,
              };
              outcome.dataIn.push(rec);
              if (rec.dataSN !== nextDataSN) this.violation(`Data-In DataSN ${rec.dataSN}, expected ${nextDataSN}`);
              nextDataSN = rec.dataSN + 1;
              if (rec.offset + rec.length > readLength) this.violation(`Data-In at ${rec.offset}+${rec.length} beyond EDTL ${readLength}`);
              else pdu.data.copy(outcome.data, rec.offset);
              if (rec.status) {
                outcome.status = b[3]!;
                outcome.response = 0;
                outcome.underflow = (pdu.flags & 0x02) !== 0;
                outcome.overflow = (pdu.flags & 0x04) !== 0;
                outcome.residual = b.readUInt32BE(44);
                finish();
              }
              return;
            }
            case Opcode.R2T: {
              const b = pdu.bhs;
              const r2t: R2TRecord = { ttt: pdu.ttt, r2tSN: b.readUInt32BE(36), offset: b.readUInt32BE(40), length: b.readUInt32BE(44) };
              if (r2t.r2tSN !== expectedR2TSN) this.violation(`R2TSN ${r2t.r2tSN}, expected ${expectedR2TSN}`);
              expectedR2TSN = r2t.r2tSN + 1;
              if (!write || r2t.offset + r2t.length > write.length) this.violation(`R2T for ${r2t.offset}+${r2t.length} beyond the data`);
              outcome.r2ts.push(r2t);
              outstanding++;
              outcome.maxOutstandingR2T = Math.max(outcome.maxOutstandingR2T, outstanding);
              if (outcome.r2ts.length === 1) resolveFirst(r2t);
              if (!write || o.holdR2T) return;
              if (o.r2tDelayMs) setTimeout(() => answer(r2t), o.r2tDelayMs);
              else answer(r2t);
              return;
            }
            case Opcode.ScsiResponse: {
              const b = pdu.bhs;
              outcome.response = b[2]!;
              outcome.status = b[3]!;
              outcome.underflow = (pdu.flags & 0x02) !== 0;
              outcome.overflow = (pdu.flags & 0x04) !== 0;
              outcome.residual = b.readUInt32BE(44);
              if (pdu.data.length >= 2) {
                const len = pdu.data.readUInt16BE(0);
                outcome.sense = pdu.data.subarray(2, 2 + len);
              }
              finish();
              return;
            }
            default:
              this.violation(`opcode 0x${pdu.opcode.toString(16)} for a SCSI task`);
          }
        },
        onReject: (reason, pdu) => {
          // A rejected Data-Out does not end the command: the target still answers it (§7.8).
          if (pdu.data.length >= BHS && (pdu.data[0]! & 0x3f) === Opcode.DataOut) return;
          outcome.reject = reason;
          finish();
        },
        onClose: (err) => {
          this.pending.delete(itt);
          reject(err);
        },
      });
    });
    done.catch(() => undefined);

    const bhs = scsiCommandPdu({
      itt,
      cmdSN,
      expStatSN: this.expStatSN,
      cdb: command,
      edtl,
      lun,
      read: readLength > 0,
      write: write !== undefined && write.length > 0,
      final: !followUp,
      immediate,
      ...(o.attr !== undefined ? { attr: o.attr } : {}),
      dataLength: immediateData.length,
    });
    this.sendPdu(bhs, immediateData);
    if (followUp) sendData(NO_TAG, immediateData.length, unsolicitedEnd);
    return { itt, cmdSN, done, firstR2T, r2ts: outcome.r2ts, answer };
  }

  async command(command: Buffer, o: CommandOptions = {}, timeoutMs = 20_000): Promise<ScsiOutcome> {
    const h = this.start(command, o);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        h.done,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new IscsiError(`SCSI command 0x${command[0]!.toString(16)} (ITT ${h.itt}) got no answer in ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private static good(r: ScsiOutcome, what: string): ScsiOutcome {
    if (r.status !== 0) {
      const sense = r.sense && r.sense.length >= 14 ? ` sense ${(r.sense[2]! & 0x0f).toString(16)}/${r.sense[12]!.toString(16)}/${r.sense[13]!.toString(16)}` : '';
      throw new IscsiError(`${what}: status 0x${r.status.toString(16)}${r.reject !== undefined ? ` (reject 0x${r.reject.toString(16)})` : ''}${sense}`);
    }
    return r;
  }

  async read(lba: number, blocks: number, o: CommandOptions & { sixteen?: boolean } = {}): Promise<Buffer> {
    const c = o.sixteen ? cdb.read16(lba, blocks) : cdb.read10(lba, blocks);
    return IscsiInitiator.good(await this.command(c, { ...o, readLength: blocks * 512 }), `READ at ${lba}`).data;
  }

  async write(lba: number, data: Buffer, o: CommandOptions & { fua?: boolean; sixteen?: boolean } = {}): Promise<ScsiOutcome> {
    const blocks = data.length / 512;
    const c = o.sixteen ? cdb.write16(lba, blocks, o.fua) : cdb.write10(lba, blocks, o.fua);
    return IscsiInitiator.good(await this.command(c, { ...o, data }), `WRITE at ${lba}`);
  }

  async synchronizeCache(o: CommandOptions = {}): Promise<void> {
    IscsiInitiator.good(await this.command(cdb.synchronizeCache10(), o), 'SYNCHRONIZE CACHE');
  }

  /** TEST UNIT READY; a pending UNIT ATTENTION is consumed and the command retried once. */
  async testUnitReady(o: CommandOptions = {}): Promise<ScsiOutcome> {
    let r = await this.command(cdb.testUnitReady(), o);
    if (r.status === 2 && r.sense && (r.sense[2]! & 0x0f) === 6) r = await this.command(cdb.testUnitReady(), o);
    return r;
  }

  // ----- other requests -----

  async nop(data: Buffer = Buffer.alloc(0), o: { immediate?: boolean; cmdSN?: number; timeoutMs?: number } = {}): Promise<TargetPdu> {
    const itt = this.allocateItt();
    const immediate = o.immediate ?? false;
    const cmdSN = o.cmdSN ?? this.takeCmdSN(immediate);
    const reply = this.expect(itt, o.timeoutMs ?? 10_000, 'NOP-In');
    this.sendPdu(nopOutPdu({ itt, cmdSN, expStatSN: this.expStatSN, immediate, dataLength: data.length }), data);
    return reply;
  }

  /** Sends a NOP-Out and returns its ITT without waiting (for CmdSN window tests). */
  sendNop(o: { cmdSN: number; immediate?: boolean; data?: Buffer }): { itt: number; reply: Promise<TargetPdu> } {
    const itt = this.allocateItt();
    const reply = this.expect(itt, 30_000, 'NOP-In');
    reply.catch(() => undefined);
    const data = o.data ?? Buffer.alloc(0);
    this.sendPdu(nopOutPdu({ itt, cmdSN: o.cmdSN, expStatSN: this.expStatSN, immediate: o.immediate ?? false, dataLength: data.length }), data);
    return { itt, reply };
  }

  async text(pairs: [string, string][], o: { timeoutMs?: number } = {}): Promise<[string, string][]> {
    const itt = this.allocateItt();
    let data = textSegment(pairs);
    let ttt = NO_TAG;
    let text = Buffer.alloc(0);
    for (;;) {
      const reply = this.expect(itt, o.timeoutMs ?? 10_000, 'Text Response');
      this.sendPdu(textPdu({ itt, ttt, cmdSN: this.takeCmdSN(false), expStatSN: this.expStatSN, dataLength: data.length }), data);
      const pdu = await reply;
      if (pdu.opcode !== Opcode.TextResponse) throw new IscsiError(`expected a Text Response, got 0x${pdu.opcode.toString(16)}`);
      text = Buffer.concat([text, pdu.data]);
      if (pdu.flags & 0x80) break;
      ttt = pdu.ttt;
      data = Buffer.alloc(0);
    }
    return parseTextSegment(text);
  }

  async taskManagement(fn: number, o: { lun?: number; refItt?: number; refCmdSN?: number; timeoutMs?: number } = {}): Promise<number> {
    const itt = this.allocateItt();
    const reply = this.expect(itt, o.timeoutMs ?? 15_000, 'Task Management Response');
    this.sendPdu(
      tmfPdu({ itt, fn, lun: o.lun ?? 0, refItt: o.refItt ?? NO_TAG, cmdSN: this.cmdSN, expStatSN: this.expStatSN, refCmdSN: o.refCmdSN ?? 0, immediate: true }),
    );
    const pdu = await reply;
    if (pdu.opcode !== Opcode.TaskManagementResponse) throw new IscsiError(`expected a TMF response, got 0x${pdu.opcode.toString(16)}`);
    return pdu.bhs[2]!;
  }

  /** Logout (reason 0: close the session); resolves with the response code once the target closed. */
  async logout(reason = 0): Promise<number> {
    const itt = this.allocateItt();
    const reply = this.expect(itt, 10_000, 'Logout Response');
    this.sendPdu(logoutPdu({ itt, reason, cmdSN: this.takeCmdSN(false), expStatSN: this.expStatSN }));
    const pdu = await reply;
    if (pdu.opcode !== Opcode.LogoutResponse) throw new IscsiError(`expected a Logout Response, got 0x${pdu.opcode.toString(16)}`);
    return pdu.bhs[2]!;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Waits for `p` or fails after ms, with a message that says what did not happen. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
