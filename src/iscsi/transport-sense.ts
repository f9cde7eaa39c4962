// The SCSI answers the transport gives on its own, before or instead of a logical unit: a broken
// data phase, a command too large to accept, a LUN that does not exist. Sense data is built by the
// SCSI layer's own helpers, so there is one fixed-format encoder.

import { absentLunResult as absentLun } from './scsi/absent-lun.js';
import { Asc, checkCondition as scsiCheckCondition, SenseKey, type Sense } from './scsi/sense.js';
import type { ScsiResult } from './scsi/types.js';

export const SenseCode = {
  InvalidFieldInCdb: { key: SenseKey.IllegalRequest, asc: Asc.InvalidFieldInCdb },
  /** SPC-4 DATA PHASE ERROR (4Bh/00h): the Data-Out sequence broke the rules (DataSN, offsets, digest). */
  DataPhaseError: { key: SenseKey.AbortedCommand, asc: 0x4b00 as Asc },
  InternalTargetFailure: { key: SenseKey.HardwareError, asc: Asc.InternalTargetFailure },
} as const satisfies Record<string, Sense>;

export function checkCondition(sense: Sense): ScsiResult {
  return scsiCheckCondition(sense);
}

/** REPORT LUNS, INQUIRY and REQUEST SENSE still answer on a LUN that does not exist (SPC-4). */
export function absentLunResult(cdb: Buffer, luns: readonly number[] = []): ScsiResult {
  return absentLun(cdb, luns);
}
