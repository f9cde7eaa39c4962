// iSCSI PDUs (RFC 7143 §11): the 48-byte Basic Header Segment of every opcode, typed, both ways.
// Pure byte code: no sockets, no policy. Framing (AHS, digests, padding) lives in framing.ts.

import type { LoginRequest, LoginResponse } from './login/types.js';

export const BHS_LENGTH = 48;
/** "No task" tag / "no target transfer tag" (RFC 7143 §11.2.1.8). */
export const RESERVED_TAG = 0xffffffff;

/** Initiator opcodes (RFC 7143 §11.2.1.2). */
export const Op = {
  NopOut: 0x00,
  ScsiCommand: 0x01,
  TaskManagementRequest: 0x02,
  LoginRequest: 0x03,
  TextRequest: 0x04,
  DataOut: 0x05,
  LogoutRequest: 0x06,
  Snack: 0x10,
  // Target opcodes
  NopIn: 0x20,
  ScsiResponse: 0x21,
  TaskManagementResponse: 0x22,
  LoginResponse: 0x23,
  TextResponse: 0x24,
  DataIn: 0x25,
  LogoutResponse: 0x26,
  ReadyToTransfer: 0x31,
  AsyncMessage: 0x32,
  Reject: 0x3f,
} as const;

/** Reject reasons (RFC 7143 §11.17.1). */
export const RejectReason = {
  DataDigestError: 0x02,
  SnackReject: 0x03,
  ProtocolError: 0x04,
  CommandNotSupported: 0x05,
  ImmediateCommandRejected: 0x06,
  TaskInProgress: 0x07,
  InvalidDataAck: 0x08,
  InvalidPduField: 0x09,
  OutOfResources: 0x0a,
  WaitingForLogout: 0x0c,
} as const;

/** Task management functions (RFC 7143 §11.5.1). */
export const TmfFunction = {
  AbortTask: 1,
  AbortTaskSet: 2,
  ClearAca: 3,
  ClearTaskSet: 4,
  LogicalUnitReset: 5,
  TargetWarmReset: 6,
  TargetColdReset: 7,
  TaskReassign: 8,
} as const;

/** Task management responses (RFC 7143 §11.6.1). */
export const TmfResponse = {
  Complete: 0,
  TaskDoesNotExist: 1,
  LunDoesNotExist: 2,
  TaskStillAllegiant: 3,
  ReassignmentNotSupported: 4,
  NotSupported: 5,
  AuthorizationFailed: 6,
  Rejected: 255,
} as const;

export class PduFormatError extends Error {
  constructor(readonly reason: number, message: string) {
    super(message);
    this.name = 'PduFormatError';
  }
}

// ----- Requests (what an initiator sends) -----

interface RequestCommon {
  /** The I bit: an immediate command does not advance CmdSN. */
  immediate: boolean;
  itt: number;
  /** The raw 48-byte header, kept for Reject PDUs (which echo it). */
  bhs: Buffer;
  data: Buffer;
}

export interface ScsiCommandPdu extends RequestCommon {
  opcode: typeof Op.ScsiCommand;
  final: boolean;
  read: boolean;
  write: boolean;
  taskAttribute: number;
  lun: number;
  expectedLength: number;
  cmdSN: number;
  expStatSN: number;
  /** 16 bytes, or longer with an extended CDB AHS. */
  cdb: Buffer;
}

export interface DataOutPdu extends RequestCommon {
  opcode: typeof Op.DataOut;
  final: boolean;
  lun: number;
  ttt: number;
  expStatSN: number;
  dataSN: number;
  bufferOffset: number;
}

export interface NopOutPdu extends RequestCommon {
  opcode: typeof Op.NopOut;
  lun: number;
  ttt: number;
  cmdSN: number;
  expStatSN: number;
}

export interface TaskManagementRequestPdu extends RequestCommon {
  opcode: typeof Op.TaskManagementRequest;
  function: number;
  lun: number;
  referencedTaskTag: number;
  cmdSN: number;
  expStatSN: number;
  refCmdSN: number;
  expDataSN: number;
}

export interface TextRequestPdu extends RequestCommon {
  opcode: typeof Op.TextRequest;
  final: boolean;
  continue: boolean;
  lun: number;
  ttt: number;
  cmdSN: number;
  expStatSN: number;
}

export interface LogoutRequestPdu extends RequestCommon {
  opcode: typeof Op.LogoutRequest;
  reason: number;
  cid: number;
  cmdSN: number;
  expStatSN: number;
}

export interface LoginRequestPdu extends RequestCommon, LoginRequest {
  opcode: typeof Op.LoginRequest;
}

export interface SnackPdu extends RequestCommon {
  opcode: typeof Op.Snack;
}

export type RequestPdu =
  | ScsiCommandPdu
  | DataOutPdu
  | NopOutPdu
  | TaskManagementRequestPdu
  | TextRequestPdu
  | LogoutRequestPdu
  | LoginRequestPdu
  | SnackPdu;

/**
 * LUN field (SAM-5 §4.7): we use the single-level peripheral (0x00) and flat (0x40) addressing that
 * every initiator sends for LUNs below 16384; anything else maps to a LUN that does not exist.
 */
export function decodeLun(buf: Buffer, offset: number): number {
  const b0 = buf[offset]!;
  const method = b0 >> 6;
  if (method === 0 || method === 1) {
    // Bytes 2..7 must be zero for a single-level LUN.
    for (let i = offset + 2; i < offset + 8; i++) if (buf[i] !== 0) return -1;
    return ((b0 & 0x3f) << 8) | buf[offset + 1]!;
  }
  return -1;
}

export function encodeLun(lun: number, buf: Buffer, offset: number): void {
  buf.fill(0, offset, offset + 8);
  if (lun < 256) {
    buf[offset + 1] = lun;
  } else {
    buf[offset] = 0x40 | ((lun >> 8) & 0x3f);
    buf[offset + 1] = lun & 0xff;
  }
}

/**
 * Decodes a request header. `ahs` is the additional header segment (already split off by framing),
 * `data` the data segment without padding.
 */
export function decodeRequest(bhs: Buffer, ahs: Buffer, data: Buffer): RequestPdu {
  const opcode = bhs[0]! & 0x3f;
  const immediate = (bhs[0]! & 0x40) !== 0;
  const flags = bhs[1]!;
  const itt = bhs.readUInt32BE(16);
  // Each result is one object literal: on the V8 of Node 20, `{ ...common, a, b }` takes a slow path
  // (several µs a PDU, and a dictionary-mode object every later property read pays for).
  switch (opcode) {
    case Op.ScsiCommand: {
      let cdb = bhs.subarray(32, 48);
      if (ahs.length > 0) cdb = extendedCdb(cdb, ahs);
      const read = (flags & 0x40) !== 0;
      const write = (flags & 0x20) !== 0;
      return {
        opcode,
        immediate,
        itt,
        bhs,
        data,
        final: (flags & 0x80) !== 0,
        read,
        write,
        taskAttribute: flags & 0x07,
        lun: decodeLun(bhs, 8),
        expectedLength: bhs.readUInt32BE(20),
        cmdSN: bhs.readUInt32BE(24),
        expStatSN: bhs.readUInt32BE(28),
        cdb,
      };
    }
    case Op.DataOut:
      return {
        opcode,
        immediate,
        itt,
        bhs,
        data,
        final: (flags & 0x80) !== 0,
        lun: decodeLun(bhs, 8),
        ttt: bhs.readUInt32BE(20),
        expStatSN: bhs.readUInt32BE(28),
        dataSN: bhs.readUInt32BE(36),
        bufferOffset: bhs.readUInt32BE(40),
      };
    case Op.NopOut:
      return {
        opcode,
        immediate,
        itt,
        bhs,
        data,
        lun: decodeLun(bhs, 8),
        ttt: bhs.readUInt32BE(20),
        cmdSN: bhs.readUInt32BE(24),
        expStatSN: bhs.readUInt32BE(28),
      };
    case Op.TaskManagementRequest:
      return {
        opcode,
        immediate,
        itt,
        bhs,
        data,
        function: flags & 0x7f,
        lun: decodeLun(bhs, 8),
        referencedTaskTag: bhs.readUInt32BE(20),
        cmdSN: bhs.readUInt32BE(24),
        expStatSN: bhs.readUInt32BE(28),
        refCmdSN: bhs.readUInt32BE(32),
        expDataSN: bhs.readUInt32BE(36),
      };
    case Op.TextRequest:
      return {
        opcode,
        immediate,
        itt,
        bhs,
        data,
        final: (flags & 0x80) !== 0,
        continue: (flags & 0x40) !== 0,
        lun: decodeLun(bhs, 8),
        ttt: bhs.readUInt32BE(20),
        cmdSN: bhs.readUInt32BE(24),
        expStatSN: bhs.readUInt32BE(28),
      };
    case Op.LogoutRequest:
      return {
        opcode,
        immediate,
        itt,
        bhs,
        data,
        reason: flags & 0x7f,
        cid: bhs.readUInt16BE(20),
        cmdSN: bhs.readUInt32BE(24),
        expStatSN: bhs.readUInt32BE(28),
      };
    case Op.LoginRequest:
      return {
        opcode,
        immediate,
        itt,
        bhs,
        data,
        transit: (flags & 0x80) !== 0,
        continue: (flags & 0x40) !== 0,
        csg: (flags >> 2) & 0x03,
        nsg: flags & 0x03,
        versionMax: bhs[2]!,
        versionMin: bhs[3]!,
        isid: Buffer.from(bhs.subarray(8, 14)),
        tsih: bhs.readUInt16BE(14),
        cid: bhs.readUInt16BE(20),
        cmdSN: bhs.readUInt32BE(24),
        expStatSN: bhs.readUInt32BE(28),
      };
    case Op.Snack:
      return { opcode, immediate, itt, bhs, data };
    default:
      throw new PduFormatError(RejectReason.CommandNotSupported, `unsupported opcode 0x${opcode.toString(16)}`);
  }
}

/**
 * Extended CDB AHS (RFC 7143 §11.3.2.1): AHSLength (2), type 0x01 (1), reserved (1), then the CDB
 * bytes beyond the first 16. Other AHS types (bidirectional read length) are accepted and ignored.
 */
function extendedCdb(base: Buffer, ahs: Buffer): Buffer {
  let offset = 0;
  let cdb = base;
  while (offset + 4 <= ahs.length) {
    const length = ahs.readUInt16BE(offset);
    const type = ahs[offset + 2]!;
    const end = offset + 4 + length - 1; // AHSLength counts the reserved byte, not the type
    if (length === 0 || end > ahs.length) throw new PduFormatError(RejectReason.InvalidPduField, 'AHS length overruns the header');
    if (type === 0x01) cdb = Buffer.concat([base, ahs.subarray(offset + 4, end)]);
    offset += (4 + length - 1 + 3) & ~3;
  }
  return cdb;
}

// ----- Responses (what we send). Each encoder returns a 48-byte header; data goes separately. -----

export interface SequenceNumbers {
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
}

function header(opcode: number, flags: number, dataLength: number): Buffer {
  const bhs = Buffer.alloc(BHS_LENGTH);
  bhs[0] = opcode;
  bhs[1] = flags;
  bhs.writeUIntBE(dataLength, 5, 3);
  return bhs;
}

function putSequence(bhs: Buffer, seq: SequenceNumbers): void {
  bhs.writeUInt32BE(seq.statSN >>> 0, 24);
  bhs.writeUInt32BE(seq.expCmdSN >>> 0, 28);
  bhs.writeUInt32BE(seq.maxCmdSN >>> 0, 32);
}

export interface Residual {
  overflow: boolean;
  underflow: boolean;
  count: number;
}

export const NO_RESIDUAL: Residual = { overflow: false, underflow: false, count: 0 };

function residualFlags(r: Residual): number {
  return (r.overflow ? 0x04 : 0) | (r.underflow ? 0x02 : 0);
}

export function encodeScsiResponse(
  p: { itt: number; status: number; residual: Residual; expDataSN: number; response?: number },
  seq: SequenceNumbers,
  dataLength: number,
): Buffer {
  const bhs = header(Op.ScsiResponse, 0x80 | residualFlags(p.residual), dataLength);
  bhs[2] = p.response ?? 0;
  bhs[3] = p.status;
  bhs.writeUInt32BE(p.itt >>> 0, 16);
  putSequence(bhs, seq);
  bhs.writeUInt32BE(p.expDataSN >>> 0, 36);
  bhs.writeUInt32BE(p.residual.count >>> 0, 44);
  return bhs;
}

/** Sense data travels in the SCSI Response's data segment behind a 2-byte length (§11.4.7.2). */
export function senseSegment(sense: Buffer): Buffer {
  const seg = Buffer.allocUnsafe(2 + sense.length);
  seg.writeUInt16BE(sense.length, 0);
  sense.copy(seg, 2);
  return seg;
}

export function encodeDataIn(
  p: {
    itt: number;
    lun: number;
    final: boolean;
    dataSN: number;
    bufferOffset: number;
    /** When set, the PDU carries status (S bit) and the residual. */
    status?: { status: number; residual: Residual };
  },
  seq: SequenceNumbers,
  dataLength: number,
): Buffer {
  let flags = p.final ? 0x80 : 0;
  if (p.status) flags |= 0x01 | residualFlags(p.status.residual);
  const bhs = header(Op.DataIn, flags, dataLength);
  if (p.status) bhs[3] = p.status.status;
  encodeLun(p.lun, bhs, 8);
  bhs.writeUInt32BE(p.itt >>> 0, 16);
  bhs.writeUInt32BE(RESERVED_TAG, 20);
  // StatSN is only meaningful with the S bit; ExpCmdSN/MaxCmdSN always are.
  bhs.writeUInt32BE(p.status ? seq.statSN >>> 0 : 0, 24);
  bhs.writeUInt32BE(seq.expCmdSN >>> 0, 28);
  bhs.writeUInt32BE(seq.maxCmdSN >>> 0, 32);
  bhs.writeUInt32BE(p.dataSN >>> 0, 36);
  bhs.writeUInt32BE(p.bufferOffset >>> 0, 40);
  if (p.status) bhs.writeUInt32BE(p.status.residual.count >>> 0, 44);
  return bhs;
}

export function encodeR2T(
  p: { itt: number; lun: number; ttt: number; r2tSN: number; bufferOffset: number; length: number },
  seq: SequenceNumbers,
): Buffer {
  const bhs = header(Op.ReadyToTransfer, 0x80, 0);
  encodeLun(p.lun, bhs, 8);
  bhs.writeUInt32BE(p.itt >>> 0, 16);
  bhs.writeUInt32BE(p.ttt >>> 0, 20);
  putSequence(bhs, seq);
  bhs.writeUInt32BE(p.r2tSN >>> 0, 36);
  bhs.writeUInt32BE(p.bufferOffset >>> 0, 40);
  bhs.writeUInt32BE(p.length >>> 0, 44);
  return bhs;
}

export function encodeNopIn(p: { itt: number; ttt: number; lun: number }, seq: SequenceNumbers, dataLength: number): Buffer {
  const bhs = header(Op.NopIn, 0x80, dataLength);
  encodeLun(p.lun, bhs, 8);
  bhs.writeUInt32BE(p.itt >>> 0, 16);
  bhs.writeUInt32BE(p.ttt >>> 0, 20);
  putSequence(bhs, seq);
  return bhs;
}

export function encodeTaskManagementResponse(p: { itt: number; response: number }, seq: SequenceNumbers): Buffer {
  const bhs = header(Op.TaskManagementResponse, 0x80, 0);
  bhs[2] = p.response;
  bhs.writeUInt32BE(p.itt >>> 0, 16);
  putSequence(bhs, seq);
  return bhs;
}

export function encodeTextResponse(
  p: { itt: number; ttt: number; lun: number; final: boolean; continue: boolean },
  seq: SequenceNumbers,
  dataLength: number,
): Buffer {
  const bhs = header(Op.TextResponse, (p.final ? 0x80 : 0) | (p.continue ? 0x40 : 0), dataLength);
  encodeLun(p.lun, bhs, 8);
  bhs.writeUInt32BE(p.itt >>> 0, 16);
  bhs.writeUInt32BE(p.ttt >>> 0, 20);
  putSequence(bhs, seq);
  return bhs;
}

export function encodeLogoutResponse(
  p: { itt: number; response: number; time2Wait: number; time2Retain: number },
  seq: SequenceNumbers,
): Buffer {
  const bhs = header(Op.LogoutResponse, 0x80, 0);
  bhs[2] = p.response;
  bhs.writeUInt32BE(p.itt >>> 0, 16);
  putSequence(bhs, seq);
  bhs.writeUInt16BE(p.time2Wait, 40);
  bhs.writeUInt16BE(p.time2Retain, 42);
  return bhs;
}

export function encodeLoginResponse(r: LoginResponse, seq: SequenceNumbers, dataLength: number): Buffer {
  const flags = (r.transit ? 0x80 : 0) | (r.continue ? 0x40 : 0) | ((r.csg & 3) << 2) | (r.nsg & 3);
  const bhs = header(Op.LoginResponse, flags, dataLength);
  bhs[2] = r.versionMax;
  bhs[3] = r.versionActive;
  r.isid.copy(bhs, 8, 0, 6);
  bhs.writeUInt16BE(r.tsih, 14);
  bhs.writeUInt32BE(r.itt >>> 0, 16);
  putSequence(bhs, seq);
  bhs[36] = r.statusClass;
  bhs[37] = r.statusDetail;
  return bhs;
}

/** Reject carries the rejected PDU's header as its data segment (§11.17). */
export function encodeReject(reason: number, seq: SequenceNumbers, dataSN = 0): Buffer {
  const bhs = header(Op.Reject, 0x80, BHS_LENGTH);
  bhs[2] = reason;
  bhs.writeUInt32BE(RESERVED_TAG, 16);
  putSequence(bhs, seq);
  bhs.writeUInt32BE(dataSN >>> 0, 36);
  return bhs;
}

export function encodeAsyncMessage(
  p: { event: number; parameter1?: number; parameter2?: number; parameter3?: number },
  seq: SequenceNumbers,
): Buffer {
  const bhs = header(Op.AsyncMessage, 0x80, 0);
  bhs.writeUInt32BE(RESERVED_TAG, 16);
  putSequence(bhs, seq);
  bhs[36] = p.event;
  bhs.writeUInt16BE(p.parameter1 ?? 0, 38);
  bhs.writeUInt16BE(p.parameter2 ?? 0, 40);
  bhs.writeUInt16BE(p.parameter3 ?? 0, 42);
  return bhs;
}

/** Serial number arithmetic (RFC 1982, 32 bits) for CmdSN comparisons (RFC 7143 §4.2.2.1). */
export function snLess(a: number, b: number): boolean {
  return a !== b && ((b - a) >>> 0) < 0x80000000;
}

export function snAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
