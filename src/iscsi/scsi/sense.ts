/**
 * Sense data: what a CHECK CONDITION tells the initiator. We only produce fixed-format sense
 * (SPC-4 §4.5.3, response code 70h): the control mode page reports D_SENSE=0, and every initiator we
 * serve (Linux sd, iPXE, Windows, libiscsi) reads it.
 *
 * Commands report failures by throwing a SenseError; LogicalUnit.execute() turns it into a result, so
 * no handler has to thread error results through its return path.
 */
import { ScsiStatus, type ScsiResult } from './types.js';

export const SenseKey = {
  NoSense: 0x0,
  NotReady: 0x2,
  MediumError: 0x3,
  HardwareError: 0x4,
  IllegalRequest: 0x5,
  UnitAttention: 0x6,
  DataProtect: 0x7,
  AbortedCommand: 0xb,
  Miscompare: 0xe,
} as const;
export type SenseKey = (typeof SenseKey)[keyof typeof SenseKey];

/** Additional sense code and qualifier (SPC-4 §4.5.6), as ASC << 8 | ASCQ. */
export const Asc = {
  NoAdditionalSense: 0x0000,
  WriteError: 0x0c00,
  InvalidFieldInInformationUnit: 0x0e03,
  /** NOT READY, cause not reportable (SPC-4 table 50, 04h/00h). */
  LogicalUnitNotReady: 0x0400,
  UnrecoveredReadError: 0x1100,
  ParameterListLengthError: 0x1a00,
  MiscompareDuringVerify: 0x1d00,
  InvalidCommandOperationCode: 0x2000,
  LbaOutOfRange: 0x2100,
  InvalidFieldInCdb: 0x2400,
  LogicalUnitNotSupported: 0x2500,
  InvalidFieldInParameterList: 0x2600,
  WriteProtected: 0x2700,
  /** SBC-4 thin provisioning: a thin unit ran out of space for a write. */
  SpaceAllocationFailedWriteProtect: 0x2707,
  SavingParametersNotSupported: 0x3900,
  InternalTargetFailure: 0x4400,
} as const;
export type Asc = (typeof Asc)[keyof typeof Asc];

/** Where in the CDB or parameter list the offending field is (SPC-4 §4.5.2.4.2, field pointer). */
export interface FieldPointer {
  /** true: the byte is in the CDB (C/D=1); false: in the parameter list sent with the command. */
  inCdb: boolean;
  byte: number;
  /** The most significant bit of the field, 0–7, when it does not start on a byte boundary. */
  bit?: number;
}

export interface Sense {
  key: SenseKey;
  asc: Asc;
  /** The INFORMATION field (VALID=1): e.g. the offset of the first miscompared byte (SBC-4 VERIFY). */
  information?: number;
  field?: FieldPointer;
}

export const FIXED_SENSE_LENGTH = 18;

export function fixedSense(sense: Sense): Buffer {
  const b = Buffer.alloc(FIXED_SENSE_LENGTH);
  // Response code 70h (current error, fixed format); VALID says the INFORMATION field means something.
  b[0] = 0x70 | (sense.information !== undefined ? 0x80 : 0);
  b[2] = sense.key;
  if (sense.information !== undefined) b.writeUInt32BE(sense.information >>> 0, 3);
  // Additional sense length: the bytes after byte 7.
  b[7] = FIXED_SENSE_LENGTH - 8;
  b[12] = sense.asc >> 8;
  b[13] = sense.asc & 0xff;
  if (sense.field) {
    // Sense-key specific bytes 15–17: SKSV, C/D, BPV + bit pointer, then the field pointer.
    const { inCdb, byte, bit } = sense.field;
    b[15] = 0x80 | (inCdb ? 0x40 : 0) | (bit !== undefined ? 0x08 | (bit & 0x07) : 0);
    b.writeUInt16BE(byte & 0xffff, 16);
  }
  return b;
}

/** Thrown by command code for any CHECK CONDITION; caught in LogicalUnit.execute(). */
export class SenseError extends Error {
  constructor(readonly sense: Sense) {
    super(`sense ${sense.key.toString(16)}/${sense.asc.toString(16).padStart(4, '0')}`);
    this.name = 'SenseError';
  }
}

export function checkCondition(sense: Sense): ScsiResult {
  return { status: ScsiStatus.CheckCondition, sense: fixedSense(sense) };
}

/** A fresh GOOD result each time: the transport may add to what it gets back. */
export function good(): ScsiResult {
  return { status: ScsiStatus.Good };
}

export function illegalRequest(asc: Asc, field?: FieldPointer): SenseError {
  return new SenseError(field ? { key: SenseKey.IllegalRequest, asc, field } : { key: SenseKey.IllegalRequest, asc });
}

export function invalidFieldInCdb(byte: number, bit?: number): SenseError {
  return illegalRequest(Asc.InvalidFieldInCdb, bit === undefined ? { inCdb: true, byte } : { inCdb: true, byte, bit });
}

export function invalidFieldInParameterList(byte: number, bit?: number): SenseError {
  return illegalRequest(
    Asc.InvalidFieldInParameterList,
    bit === undefined ? { inCdb: false, byte } : { inCdb: false, byte, bit },
  );
}

export function lbaOutOfRange(): SenseError {
  return illegalRequest(Asc.LbaOutOfRange);
}

export function writeProtected(): SenseError {
  return new SenseError({ key: SenseKey.DataProtect, asc: Asc.WriteProtected });
}
