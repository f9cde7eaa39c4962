// The SCSI conditions the transport reports on its own, before or instead of a logical unit: a broken
// data phase, a command too large to accept, a failure inside the target. Built with the SCSI layer's
// sense encoder (scsi/sense.ts checkCondition).

import { Asc, SenseKey, type Sense } from './scsi/sense.js';

export const SenseCode = {
  InvalidFieldInCdb: { key: SenseKey.IllegalRequest, asc: Asc.InvalidFieldInCdb },
  /** SPC-4 DATA PHASE ERROR (4Bh/00h): the Data-Out sequence broke the rules (DataSN, offsets, digest). */
  DataPhaseError: { key: SenseKey.AbortedCommand, asc: 0x4b00 as Asc },
  InternalTargetFailure: { key: SenseKey.HardwareError, asc: Asc.InternalTargetFailure },
} as const satisfies Record<string, Sense>;
