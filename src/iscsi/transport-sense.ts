// The few SCSI answers the transport gives on its own, before or instead of a logical unit: no such
// LUN, a broken data phase, a command too large to accept (SPC-4 §4.5 fixed-format sense).

import { ScsiStatus, type ScsiResult } from './scsi/types.js';

const ILLEGAL_REQUEST = 0x05;
const ABORTED_COMMAND = 0x0b;
const HARDWARE_ERROR = 0x04;

export const SenseCode = {
  InvalidFieldInCdb: [ILLEGAL_REQUEST, 0x24, 0x00],
  /** SPC-4: the transport's expected length disagrees with the CDB (iSCSI EDTL ≠ SPDTL). */
  InvalidFieldInInformationUnit: [ILLEGAL_REQUEST, 0x0e, 0x03],
  LogicalUnitNotSupported: [ILLEGAL_REQUEST, 0x25, 0x00],
  /** SPC-4: DATA PHASE ERROR — the Data-Out sequence broke the rules (DataSN, offsets, digest). */
  DataPhaseError: [ABORTED_COMMAND, 0x4b, 0x00],
  InternalTargetFailure: [HARDWARE_ERROR, 0x44, 0x00],
} as const;

export function checkCondition([key, asc, ascq]: readonly [number, number, number]): ScsiResult {
  const sense = Buffer.alloc(18);
  sense[0] = 0x70; // current error, fixed format
  sense[2] = key;
  sense[7] = 10; // additional sense length
  sense[12] = asc;
  sense[13] = ascq;
  return { status: ScsiStatus.CheckCondition, sense };
}

/**
 * A LUN that does not exist: INQUIRY still answers, with peripheral qualifier 011b ("not capable of
 * supporting a device on this LUN") and type 1Fh, so initiators scanning LUNs move on quietly.
 */
export function absentLunResult(cdb: Buffer): ScsiResult {
  if (cdb[0] === 0x12 && (cdb[1]! & 0x01) === 0) {
    const allocation = cdb.length >= 5 ? cdb.readUInt16BE(3) : 0;
    const data = Buffer.alloc(36, 0x20);
    data[0] = 0x7f;
    data[1] = 0;
    data[2] = 0x06; // SPC-4
    data[3] = 0x02; // response data format 2
    data[4] = 31;
    data[5] = 0;
    data[6] = 0;
    data[7] = 0;
    return { status: ScsiStatus.Good, dataIn: data.subarray(0, Math.min(36, allocation)) };
  }
  return checkCondition(SenseCode.LogicalUnitNotSupported);
}
