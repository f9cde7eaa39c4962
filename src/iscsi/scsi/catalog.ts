/**
 * The commands this logical unit implements, as data: CDB length, which CDB bits we evaluate, which way
 * data flows and how much, and where the LBA and block count are for medium-access commands.
 *
 * One table serves four purposes, so they cannot drift apart:
 *  - REPORT SUPPORTED OPERATION CODES reports `usage` as the CDB USAGE DATA (SPC-4);
 *  - any CDB bit outside `usage` is refused with INVALID FIELD IN CDB and a bit-exact field pointer
 *    (SPC-4 lets a device server check reserved fields; the protection fields RDPROTECT /
 *    WRPROTECT / VRPROTECT and ANCHOR are left out because we support neither, and SBC-4 wants them
 *    refused when not zero);
 *  - `transfer` tells the transport the data direction and size before any data arrives (R2T);
 *  - `range` lets the logical unit check LBA range and length limits the same way for every command.
 */
import { u16, u24, u32, u64 } from './cdb.js';
import { Op, ServiceAction } from './opcodes.js';
import type { DataDirection } from './types.js';

export interface Transfer {
  direction: DataDirection;
  /** Bytes the command transfers at most (for data-in: the allocation length or the blocks to read). */
  length: number;
}

/** Which advertised limit (VPD B0h) bounds a command's block count; 'none' for SYNCHRONIZE CACHE. */
export type LengthLimit = 'transfer' | 'prefetch' | 'writeSame' | 'none';

export interface MediumRange {
  lba: (cdb: Buffer) => number;
  /** The block count as coded in the CDB (READ(6)/WRITE(6) already map 0 to 256). */
  blocks: (cdb: Buffer) => number;
  /** First byte of the block count field, for the sense field pointer. */
  lengthByte: number;
  limit: LengthLimit;
  /**
   * A block count of 0 means "up to the last LBA": WRITE SAME with WSNZ=0 and SYNCHRONIZE
   * CACHE (SBC-4, both commands).
   */
  zeroMeansToEnd?: boolean;
}

export interface CommandInfo {
  name: string;
  opcode: number;
  serviceAction?: number;
  cdbLength: number;
  /** CDB usage data: bit set = we evaluate that bit. Byte 0 is the opcode. */
  usage: readonly number[];
  transfer: (cdb: Buffer, blockSize: number) => Transfer;
  range?: MediumRange;
  /** Changes the medium: refused with DATA PROTECT on a read-only unit (SBC-4, write protection). */
  writes?: boolean;
  /** Only implemented on thin units (LBPME=1): UNMAP, which SBC-4 ties to LBPU. */
  thinOnly?: boolean;
}

/**
 * Bits of the CONTROL byte we accept and ignore: the vendor-specific bits 7–6 and the obsolete FLAG
 * bit. NACA must be refused because we report NORMACA=0 (SAM-5, NACA bit); LINK is obsolete and refused.
 */
export const CONTROL_BYTE_IGNORED = 0xc2;

const NONE: Transfer = Object.freeze({ direction: 'none', length: 0 });
const dataIn = (length: number): Transfer => (length > 0 ? { direction: 'read', length } : NONE);
const dataOut = (length: number): Transfer => (length > 0 ? { direction: 'write', length } : NONE);

const lba6 = (cdb: Buffer) => u24(cdb, 1) & 0x1f_ffff;
/** SBC-4 READ(6)/WRITE(6): a TRANSFER LENGTH of 0 means 256 blocks. */
const blocks6 = (cdb: Buffer) => cdb[4]! || 256;
const lba10 = (cdb: Buffer) => u32(cdb, 2);
const blocks10 = (cdb: Buffer) => u16(cdb, 7);
const blocks12 = (cdb: Buffer) => u32(cdb, 6);
const lba16 = (cdb: Buffer) => u64(cdb, 2);
const blocks16 = (cdb: Buffer) => u32(cdb, 10);

const range6: MediumRange = { lba: lba6, blocks: blocks6, lengthByte: 4, limit: 'transfer' };
const range10: MediumRange = { lba: lba10, blocks: blocks10, lengthByte: 7, limit: 'transfer' };
const range12: MediumRange = { lba: lba10, blocks: blocks12, lengthByte: 6, limit: 'transfer' };
const range16: MediumRange = { lba: lba16, blocks: blocks16, lengthByte: 10, limit: 'transfer' };

const blocksIn = (r: MediumRange) => (cdb: Buffer, bs: number) => dataIn(r.blocks(cdb) * bs);
const blocksOut = (r: MediumRange) => (cdb: Buffer, bs: number) => dataOut(r.blocks(cdb) * bs);

/** BYTCHK (SBC-4 VERIFY): 01b compares a block per LBA, 11b compares one block against every LBA. */
export const bytchk = (cdb: Buffer): number => (cdb[1]! >> 1) & 0x03;
const verifyOut = (r: MediumRange) => (cdb: Buffer, bs: number) => {
  const check = bytchk(cdb);
  return check === 1 ? dataOut(r.blocks(cdb) * bs) : check === 3 ? dataOut(bs) : NONE;
};
/** WRITE SAME(16) NDOB (SBC-4): no Data-Out, the block is zeroes. */
export const ndob = (cdb: Buffer): boolean => cdb[0] === Op.WriteSame16 && (cdb[1]! & 0x01) !== 0;

// CDB usage data. READ: DPO, FUA, RARC, FUA_NV in byte 1; WRITE: DPO, FUA, FUA_NV; VERIFY and WRITE AND
// VERIFY: DPO, BYTCHK. GROUP NUMBER is accepted and ignored (we keep no per-group statistics).
const READ_FLAGS = 0x1e;
const WRITE_FLAGS = 0x1a;
const VERIFY_FLAGS = 0x16;
const GROUP = 0x3f;
const ALL = 0xff;

export const CATALOG: readonly CommandInfo[] = [
  {
    name: 'TEST UNIT READY',
    opcode: Op.TestUnitReady,
    cdbLength: 6,
    usage: [Op.TestUnitReady, 0, 0, 0, 0, 0],
    transfer: () => NONE,
  },
  {
    name: 'REQUEST SENSE',
    opcode: Op.RequestSense,
    cdbLength: 6,
    // DESC is evaluated: we refuse DESC=1 because we only produce fixed-format sense.
    usage: [Op.RequestSense, 0x01, 0, 0, ALL, 0],
    transfer: (cdb) => dataIn(cdb[4]!),
  },
  {
    name: 'READ(6)',
    opcode: Op.Read6,
    cdbLength: 6,
    usage: [Op.Read6, 0x1f, ALL, ALL, ALL, 0],
    transfer: blocksIn(range6),
    range: range6,
  },
  {
    name: 'WRITE(6)',
    opcode: Op.Write6,
    cdbLength: 6,
    usage: [Op.Write6, 0x1f, ALL, ALL, ALL, 0],
    transfer: blocksOut(range6),
    range: range6,
    writes: true,
  },
  {
    name: 'INQUIRY',
    opcode: Op.Inquiry,
    cdbLength: 6,
    usage: [Op.Inquiry, 0x01, ALL, ALL, ALL, 0],
    transfer: (cdb) => dataIn(u16(cdb, 3)),
  },
  {
    name: 'MODE SELECT(6)',
    opcode: Op.ModeSelect6,
    cdbLength: 6,
    // PF only: SP=1 (save pages) is refused since we have no saved values (SPC-4 MODE SELECT: SP).
    usage: [Op.ModeSelect6, 0x10, 0, 0, ALL, 0],
    transfer: (cdb) => dataOut(cdb[4]!),
  },
  {
    name: 'MODE SENSE(6)',
    opcode: Op.ModeSense6,
    cdbLength: 6,
    usage: [Op.ModeSense6, 0x08, ALL, ALL, ALL, 0],
    transfer: (cdb) => dataIn(cdb[4]!),
  },
  {
    name: 'START STOP UNIT',
    opcode: Op.StartStopUnit,
    cdbLength: 6,
    usage: [Op.StartStopUnit, 0x01, 0, 0x0f, 0xf7, 0],
    transfer: () => NONE,
  },
  {
    name: 'READ CAPACITY(10)',
    opcode: Op.ReadCapacity10,
    cdbLength: 10,
    // LOGICAL BLOCK ADDRESS and PMI are obsolete in SBC-4 and ignored.
    usage: [Op.ReadCapacity10, 0, ALL, ALL, ALL, ALL, 0, 0, 0x01, 0],
    transfer: () => dataIn(8),
  },
  {
    name: 'READ(10)',
    opcode: Op.Read10,
    cdbLength: 10,
    usage: [Op.Read10, READ_FLAGS, ALL, ALL, ALL, ALL, GROUP, ALL, ALL, 0],
    transfer: blocksIn(range10),
    range: range10,
  },
  {
    name: 'WRITE(10)',
    opcode: Op.Write10,
    cdbLength: 10,
    usage: [Op.Write10, WRITE_FLAGS, ALL, ALL, ALL, ALL, GROUP, ALL, ALL, 0],
    transfer: blocksOut(range10),
    range: range10,
    writes: true,
  },
  {
    name: 'WRITE AND VERIFY(10)',
    opcode: Op.WriteAndVerify10,
    cdbLength: 10,
    usage: [Op.WriteAndVerify10, VERIFY_FLAGS, ALL, ALL, ALL, ALL, GROUP, ALL, ALL, 0],
    transfer: blocksOut(range10),
    range: range10,
    writes: true,
  },
  {
    name: 'VERIFY(10)',
    opcode: Op.Verify10,
    cdbLength: 10,
    usage: [Op.Verify10, VERIFY_FLAGS, ALL, ALL, ALL, ALL, GROUP, ALL, ALL, 0],
    transfer: verifyOut(range10),
    range: range10,
  },
  {
    name: 'PRE-FETCH(10)',
    opcode: Op.PreFetch10,
    cdbLength: 10,
    usage: [Op.PreFetch10, 0x02, ALL, ALL, ALL, ALL, GROUP, ALL, ALL, 0],
    transfer: () => NONE,
    range: { ...range10, limit: 'prefetch' },
  },
  {
    name: 'SYNCHRONIZE CACHE(10)',
    opcode: Op.SynchronizeCache10,
    cdbLength: 10,
    // SYNC_NV (obsolete) and IMMED.
    usage: [Op.SynchronizeCache10, 0x06, ALL, ALL, ALL, ALL, GROUP, ALL, ALL, 0],
    transfer: () => NONE,
    range: { ...range10, limit: 'none', zeroMeansToEnd: true },
  },
  {
    name: 'WRITE SAME(10)',
    opcode: Op.WriteSame10,
    cdbLength: 10,
    // UNMAP only: ANCHOR (ANC_SUP=0) and the obsolete PBDATA/LBDATA are refused.
    usage: [Op.WriteSame10, 0x08, ALL, ALL, ALL, ALL, GROUP, ALL, ALL, 0],
    transfer: (_cdb, bs) => dataOut(bs),
    range: { ...range10, limit: 'writeSame', zeroMeansToEnd: true },
    writes: true,
  },
  {
    name: 'UNMAP',
    opcode: Op.Unmap,
    cdbLength: 10,
    usage: [Op.Unmap, 0, 0, 0, 0, 0, GROUP, ALL, ALL, 0],
    transfer: (cdb) => dataOut(u16(cdb, 7)),
    writes: true,
    thinOnly: true,
  },
  {
    name: 'MODE SELECT(10)',
    opcode: Op.ModeSelect10,
    cdbLength: 10,
    usage: [Op.ModeSelect10, 0x10, 0, 0, 0, 0, 0, ALL, ALL, 0],
    transfer: (cdb) => dataOut(u16(cdb, 7)),
  },
  {
    name: 'MODE SENSE(10)',
    opcode: Op.ModeSense10,
    cdbLength: 10,
    usage: [Op.ModeSense10, 0x18, ALL, ALL, 0, 0, 0, ALL, ALL, 0],
    transfer: (cdb) => dataIn(u16(cdb, 7)),
  },
  {
    name: 'READ(16)',
    opcode: Op.Read16,
    cdbLength: 16,
    // Byte 1 bit 0 and byte 14 bits 7–6 are the duration limit descriptor (DLD2–0), accepted and ignored.
    usage: [Op.Read16, READ_FLAGS | 0x01, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, 0],
    transfer: blocksIn(range16),
    range: range16,
  },
  {
    name: 'WRITE(16)',
    opcode: Op.Write16,
    cdbLength: 16,
    usage: [Op.Write16, WRITE_FLAGS | 0x01, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, 0],
    transfer: blocksOut(range16),
    range: range16,
    writes: true,
  },
  {
    name: 'WRITE AND VERIFY(16)',
    opcode: Op.WriteAndVerify16,
    cdbLength: 16,
    usage: [Op.WriteAndVerify16, VERIFY_FLAGS, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, GROUP, 0],
    transfer: blocksOut(range16),
    range: range16,
    writes: true,
  },
  {
    name: 'VERIFY(16)',
    opcode: Op.Verify16,
    cdbLength: 16,
    usage: [Op.Verify16, VERIFY_FLAGS, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, GROUP, 0],
    transfer: verifyOut(range16),
    range: range16,
  },
  {
    name: 'PRE-FETCH(16)',
    opcode: Op.PreFetch16,
    cdbLength: 16,
    usage: [Op.PreFetch16, 0x02, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, GROUP, 0],
    transfer: () => NONE,
    range: { ...range16, limit: 'prefetch' },
  },
  {
    name: 'SYNCHRONIZE CACHE(16)',
    opcode: Op.SynchronizeCache16,
    cdbLength: 16,
    usage: [Op.SynchronizeCache16, 0x06, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, GROUP, 0],
    transfer: () => NONE,
    range: { ...range16, limit: 'none', zeroMeansToEnd: true },
  },
  {
    name: 'WRITE SAME(16)',
    opcode: Op.WriteSame16,
    cdbLength: 16,
    // UNMAP and NDOB.
    usage: [Op.WriteSame16, 0x09, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, GROUP, 0],
    transfer: (cdb, bs) => (ndob(cdb) ? NONE : dataOut(bs)),
    range: { ...range16, limit: 'writeSame', zeroMeansToEnd: true },
    writes: true,
  },
  {
    name: 'READ CAPACITY(16)',
    opcode: Op.ServiceActionIn16,
    serviceAction: ServiceAction.ReadCapacity16,
    cdbLength: 16,
    // LOGICAL BLOCK ADDRESS and PMI are obsolete (SBC-4 READ CAPACITY(16)) and ignored.
    usage: [Op.ServiceActionIn16, 0x1f, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, 0x01, 0],
    transfer: (cdb) => dataIn(u32(cdb, 10)),
  },
  {
    name: 'GET LBA STATUS',
    opcode: Op.ServiceActionIn16,
    serviceAction: ServiceAction.GetLbaStatus,
    cdbLength: 16,
    usage: [Op.ServiceActionIn16, 0x1f, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, 0, 0],
    transfer: (cdb) => dataIn(u32(cdb, 10)),
  },
  {
    name: 'REPORT LUNS',
    opcode: Op.ReportLuns,
    cdbLength: 12,
    usage: [Op.ReportLuns, 0, ALL, 0, 0, 0, ALL, ALL, ALL, ALL, 0, 0],
    transfer: (cdb) => dataIn(u32(cdb, 6)),
  },
  {
    name: 'REPORT SUPPORTED OPERATION CODES',
    opcode: Op.MaintenanceIn,
    serviceAction: ServiceAction.ReportSupportedOperationCodes,
    cdbLength: 12,
    // RCTD and REPORTING OPTIONS in byte 2.
    usage: [Op.MaintenanceIn, 0x1f, 0x87, ALL, ALL, ALL, ALL, ALL, ALL, ALL, 0, 0],
    transfer: (cdb) => dataIn(u32(cdb, 6)),
  },
  {
    name: 'READ(12)',
    opcode: Op.Read12,
    cdbLength: 12,
    usage: [Op.Read12, READ_FLAGS, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, GROUP, 0],
    transfer: blocksIn(range12),
    range: range12,
  },
  {
    name: 'WRITE(12)',
    opcode: Op.Write12,
    cdbLength: 12,
    usage: [Op.Write12, WRITE_FLAGS, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, GROUP, 0],
    transfer: blocksOut(range12),
    range: range12,
    writes: true,
  },
  {
    name: 'WRITE AND VERIFY(12)',
    opcode: Op.WriteAndVerify12,
    cdbLength: 12,
    usage: [Op.WriteAndVerify12, VERIFY_FLAGS, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, GROUP, 0],
    transfer: blocksOut(range12),
    range: range12,
    writes: true,
  },
  {
    name: 'VERIFY(12)',
    opcode: Op.Verify12,
    cdbLength: 12,
    usage: [Op.Verify12, VERIFY_FLAGS, ALL, ALL, ALL, ALL, ALL, ALL, ALL, ALL, GROUP, 0],
    transfer: verifyOut(range12),
    range: range12,
  },
];

const byKey = new Map<number, CommandInfo>(CATALOG.map((c) => [key(c.opcode, c.serviceAction), c]));

function key(opcode: number, sa: number | undefined): number {
  return (opcode << 8) | (sa ?? 0xff);
}

/** The catalogue entry for a CDB, or undefined when we do not implement it. */
export function lookup(cdb: Buffer): CommandInfo | undefined {
  if (cdb.length === 0) return undefined;
  const opcode = cdb[0]!;
  const plain = byKey.get(key(opcode, undefined));
  if (plain) return plain;
  return cdb.length > 1 ? byKey.get(key(opcode, cdb[1]! & 0x1f)) : undefined;
}

/** Looks up by opcode and service action, as REPORT SUPPORTED OPERATION CODES asks. */
export function lookupByCode(opcode: number, sa?: number): CommandInfo | undefined {
  return byKey.get(key(opcode, sa));
}

/** Whether the opcode is one of ours that takes a service action. */
export function hasServiceActions(opcode: number): boolean {
  return CATALOG.some((c) => c.opcode === opcode && c.serviceAction !== undefined);
}
