/**
 * Answers for a LUN the target does not have (SPC-4, INQUIRY and REQUEST SENSE). Initiators probe LUNs that
 * may not exist: Linux sends REPORT LUNS and INQUIRY to LUN 0 even when a target only exports LUN 1,
 * so the transport needs a well-formed answer for them without a LogicalUnit behind the LUN:
 *  - INQUIRY (standard): peripheral qualifier 011b, device type 1Fh: "no logical unit here";
 *  - REPORT LUNS: the target's LUN list, which does not depend on the addressed LUN;
 *  - REQUEST SENSE: GOOD with sense data ILLEGAL REQUEST / LOGICAL UNIT NOT SUPPORTED (SPC-4 REQUEST SENSE);
 *  - anything else: CHECK CONDITION, ILLEGAL REQUEST / LOGICAL UNIT NOT SUPPORTED.
 */
import { u16, u32 } from './cdb.js';
import { reportLunsData } from './commands/report-luns.js';
import { Op } from './opcodes.js';
import { Asc, checkCondition, fixedSense, SenseKey } from './sense.js';
import { ScsiStatus, type ScsiResult } from './types.js';

const notSupported = { key: SenseKey.IllegalRequest, asc: Asc.LogicalUnitNotSupported } as const;

/** Standard INQUIRY data for an absent LUN: 36 bytes, qualifier 011b / type 1Fh, SPC-4. */
function absentInquiry(): Buffer {
  const b = Buffer.alloc(36, 0x20);
  b[0] = 0x7f;
  b[1] = 0;
  b[2] = 0x06;
  b[3] = 0x12;
  b[4] = 31;
  b.fill(0, 5, 8);
  return b;
}

export function absentLunResult(cdb: Buffer, luns: readonly number[]): ScsiResult {
  const opcode = cdb.length > 0 ? cdb[0] : undefined;
  if (opcode === Op.Inquiry && cdb.length >= 6 && (cdb[1]! & 0x01) === 0 && cdb[2] === 0) {
    const data = absentInquiry();
    return { status: ScsiStatus.Good, dataIn: data.subarray(0, Math.min(data.length, u16(cdb, 3))) };
  }
  if (opcode === Op.ReportLuns && cdb.length >= 12 && cdb[2]! <= 0x02) {
    const data = reportLunsData(luns, cdb[2]!);
    return { status: ScsiStatus.Good, dataIn: data.subarray(0, Math.min(data.length, u32(cdb, 6))) };
  }
  if (opcode === Op.RequestSense && cdb.length >= 6) {
    const data = fixedSense(notSupported);
    return { status: ScsiStatus.Good, dataIn: data.subarray(0, Math.min(data.length, cdb[4]!)) };
  }
  return checkCondition(notSupported);
}
