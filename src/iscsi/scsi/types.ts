// What the iSCSI transport hands the SCSI layer, and what it gets back. The transport has already
// collected all Data-Out (immediate, unsolicited and solicited) before execute() is called.

export const enum ScsiStatus {
  Good = 0x00,
  CheckCondition = 0x02,
  ConditionMet = 0x04,
  Busy = 0x08,
  ReservationConflict = 0x18,
  TaskSetFull = 0x28,
}

export type DataDirection = 'none' | 'read' | 'write';

export interface ScsiCommand {
  /** The CDB as received (16 bytes in the BHS, longer with an extended-CDB AHS). */
  cdb: Buffer;
  /** Expected Data Transfer Length from the initiator (the iSCSI header's EDTL). */
  expectedLength: number;
  /** Data-Out payload for write-direction commands (exactly what the initiator sent, may be empty). */
  dataOut?: Buffer;
}

export interface ScsiResult {
  status: ScsiStatus;
  /** Fixed-format sense data (18 bytes or more) when status is CheckCondition. */
  sense?: Buffer;
  /**
   * Data-In payload. Its length is what the command produced (allocation length applied); the transport
   * truncates to expectedLength and reports residual over/underflow.
   */
  dataIn?: Buffer;
}

/** What a logical unit needs to know about its target for REPORT LUNS and identification VPD pages. */
export interface LogicalUnitIdentity {
  /** Unit serial number (VPD 0x80), printable ASCII. */
  serial: string;
  /** 16 random bytes fixed per LUN, used for the NAA-6 designator in VPD 0x83 (stable across restarts). */
  naaId: Buffer;
  /** T10 vendor id (8 chars), product id (16 chars), revision (4 chars). */
  vendor: string;
  product: string;
  revision: string;
  /** Target name, for the SCSI name string designator in VPD 0x83. */
  targetName: string;
  /** The LUNs present on this target (REPORT LUNS), sorted. */
  luns: () => number[];
}
