/** Operation codes (SPC-4 and SBC-4 operation code tables) and service actions of the commands we know. */

export const Op = {
  TestUnitReady: 0x00,
  RequestSense: 0x03,
  Read6: 0x08,
  Write6: 0x0a,
  Inquiry: 0x12,
  ModeSelect6: 0x15,
  ModeSense6: 0x1a,
  StartStopUnit: 0x1b,
  ReadCapacity10: 0x25,
  Read10: 0x28,
  Write10: 0x2a,
  WriteAndVerify10: 0x2e,
  Verify10: 0x2f,
  PreFetch10: 0x34,
  SynchronizeCache10: 0x35,
  WriteSame10: 0x41,
  Unmap: 0x42,
  ModeSelect10: 0x55,
  ModeSense10: 0x5a,
  Read16: 0x88,
  Write16: 0x8a,
  WriteAndVerify16: 0x8e,
  Verify16: 0x8f,
  PreFetch16: 0x90,
  SynchronizeCache16: 0x91,
  WriteSame16: 0x93,
  ServiceActionIn16: 0x9e,
  ReportLuns: 0xa0,
  MaintenanceIn: 0xa3,
  Read12: 0xa8,
  Write12: 0xaa,
  WriteAndVerify12: 0xae,
  Verify12: 0xaf,
} as const;

/** Service actions of SERVICE ACTION IN(16) (9Eh) and MAINTENANCE IN (A3h). */
export const ServiceAction = {
  ReadCapacity16: 0x10,
  GetLbaStatus: 0x12,
  ReportSupportedOperationCodes: 0x0c,
} as const;

/** Opcodes whose meaning depends on the service action in byte 1. */
export const SERVICE_ACTION_OPCODES: ReadonlySet<number> = new Set([Op.ServiceActionIn16, Op.MaintenanceIn]);
