/**
 * Shared by the SCSI tests: a logical unit over a MemoryBlockDevice, CDB builders that write the fields
 * where SBC-4/SPC-4 put them (so a test reads like the initiator's side), and sense decoding.
 */
import { expect } from 'vitest';
import type { BlockLimits } from '../../../src/iscsi/scsi/limits.js';
import { LogicalUnit } from '../../../src/iscsi/scsi/logical-unit.js';
import { ScsiStatus, type LogicalUnitIdentity, type ScsiResult } from '../../../src/iscsi/scsi/types.js';
import { MemoryBlockDevice, type MemoryBlockDeviceOptions } from '../../support/memory-block-device.js';

export const BS = 512;

export const IDENTITY: LogicalUnitIdentity = {
  serial: 'HB-0001-TEST',
  naaId: Buffer.from('0123456789abcdeffedcba9876543210', 'hex'),
  vendor: 'HIVEBOOT',
  product: 'Virtual Disk',
  revision: '0.1',
  targetName: 'iqn.2024-01.io.hiveboot:node-7',
  luns: () => [0],
};

export interface Fixture {
  lu: LogicalUnit;
  dev: MemoryBlockDevice;
}

export function makeUnit(
  device: Partial<MemoryBlockDeviceOptions> = {},
  extra: { limits?: Partial<BlockLimits>; identity?: Partial<LogicalUnitIdentity>; onInternalError?: (e: unknown) => void } = {},
): Fixture {
  const dev = new MemoryBlockDevice({ size: 1024 * BS, ...device });
  const lu = new LogicalUnit({
    device: dev,
    identity: { ...IDENTITY, ...extra.identity },
    ...(extra.limits ? { limits: extra.limits } : {}),
    ...(extra.onInternalError ? { onInternalError: extra.onInternalError } : {}),
  });
  return { lu, dev };
}

export function run(lu: LogicalUnit, cdb: Buffer, dataOut?: Buffer, expectedLength = 1 << 20): Promise<ScsiResult> {
  return lu.execute(dataOut ? { cdb, expectedLength, dataOut } : { cdb, expectedLength });
}

/** A 16-byte CDB buffer (what the iSCSI BHS carries) with the given leading bytes. */
function cdb16(bytes: number[]): Buffer {
  const b = Buffer.alloc(16);
  Buffer.from(bytes).copy(b);
  return b;
}

function put64(b: Buffer, at: number, v: number | bigint): void {
  b.writeBigUInt64BE(BigInt(v), at);
}

export interface RwFlags {
  /** Byte 1 as a whole (e.g. 0x08 for FUA, 0x10 for DPO, 0x02 for BYTCHK). */
  byte1?: number;
  group?: number;
  control?: number;
}

export const cdb = {
  testUnitReady: () => cdb16([0x00]),
  requestSense: (alloc = 252, desc = false) => cdb16([0x03, desc ? 1 : 0, 0, 0, alloc, 0]),
  inquiry: (alloc: number, evpd = false, page = 0) => {
    const b = cdb16([0x12, evpd ? 1 : 0, page]);
    b.writeUInt16BE(alloc, 3);
    return b;
  },
  read6: (lba: number, blocks: number) => cdb16([0x08, (lba >> 16) & 0x1f, (lba >> 8) & 0xff, lba & 0xff, blocks & 0xff, 0]),
  write6: (lba: number, blocks: number) => cdb16([0x0a, (lba >> 16) & 0x1f, (lba >> 8) & 0xff, lba & 0xff, blocks & 0xff, 0]),
  rw10: (op: number, lba: number, blocks: number, f: RwFlags = {}) => {
    const b = cdb16([op, f.byte1 ?? 0]);
    b.writeUInt32BE(lba >>> 0, 2);
    b[6] = f.group ?? 0;
    b.writeUInt16BE(blocks, 7);
    b[9] = f.control ?? 0;
    return b;
  },
  rw12: (op: number, lba: number, blocks: number, f: RwFlags = {}) => {
    const b = cdb16([op, f.byte1 ?? 0]);
    b.writeUInt32BE(lba >>> 0, 2);
    b.writeUInt32BE(blocks >>> 0, 6);
    b[10] = f.group ?? 0;
    b[11] = f.control ?? 0;
    return b;
  },
  rw16: (op: number, lba: number | bigint, blocks: number, f: RwFlags = {}) => {
    const b = cdb16([op, f.byte1 ?? 0]);
    put64(b, 2, lba);
    b.writeUInt32BE(blocks >>> 0, 10);
    b[14] = f.group ?? 0;
    b[15] = f.control ?? 0;
    return b;
  },
  readCapacity10: () => cdb16([0x25]),
  readCapacity16: (alloc = 32) => {
    const b = cdb16([0x9e, 0x10]);
    b.writeUInt32BE(alloc, 10);
    return b;
  },
  getLbaStatus: (lba: number | bigint, alloc = 24) => {
    const b = cdb16([0x9e, 0x12]);
    put64(b, 2, lba);
    b.writeUInt32BE(alloc, 10);
    return b;
  },
  modeSense6: (page: number, opts: { pc?: number; dbd?: boolean; subpage?: number; alloc?: number } = {}) =>
    cdb16([0x1a, opts.dbd ? 0x08 : 0, ((opts.pc ?? 0) << 6) | page, opts.subpage ?? 0, opts.alloc ?? 255, 0]),
  modeSense10: (page: number, opts: { pc?: number; dbd?: boolean; llbaa?: boolean; alloc?: number } = {}) => {
    const b = cdb16([0x5a, (opts.dbd ? 0x08 : 0) | (opts.llbaa ? 0x10 : 0), ((opts.pc ?? 0) << 6) | page, 0]);
    b.writeUInt16BE(opts.alloc ?? 1024, 7);
    return b;
  },
  modeSelect6: (length: number, opts: { pf?: boolean; sp?: boolean } = {}) =>
    cdb16([0x15, (opts.pf ?? true ? 0x10 : 0) | (opts.sp ? 0x01 : 0), 0, 0, length, 0]),
  modeSelect10: (length: number) => {
    const b = cdb16([0x55, 0x10]);
    b.writeUInt16BE(length, 7);
    return b;
  },
  reportLuns: (alloc = 4096, select = 0) => {
    const b = cdb16([0xa0, 0, select]);
    b.writeUInt32BE(alloc, 6);
    return b;
  },
  rsoc: (opts: { options?: number; rctd?: boolean; opcode?: number; sa?: number; alloc?: number } = {}) => {
    const b = cdb16([0xa3, 0x0c, (opts.rctd ? 0x80 : 0) | (opts.options ?? 0), opts.opcode ?? 0]);
    b.writeUInt16BE(opts.sa ?? 0, 4);
    b.writeUInt32BE(opts.alloc ?? 65535, 6);
    return b;
  },
  unmap: (length: number, anchor = false) => {
    const b = cdb16([0x42, anchor ? 1 : 0]);
    b.writeUInt16BE(length, 7);
    return b;
  },
  startStop: (byte4: number, immed = false) => cdb16([0x1b, immed ? 1 : 0, 0, 0, byte4, 0]),
};

export const Op = {
  Read10: 0x28,
  Write10: 0x2a,
  WriteAndVerify10: 0x2e,
  Verify10: 0x2f,
  PreFetch10: 0x34,
  SynchronizeCache10: 0x35,
  WriteSame10: 0x41,
  Read16: 0x88,
  Write16: 0x8a,
  WriteAndVerify16: 0x8e,
  Verify16: 0x8f,
  PreFetch16: 0x90,
  SynchronizeCache16: 0x91,
  WriteSame16: 0x93,
  Read12: 0xa8,
  Write12: 0xaa,
  WriteAndVerify12: 0xae,
  Verify12: 0xaf,
} as const;

/** UNMAP parameter list (SBC-4 UNMAP) for the given (lba, blocks) descriptors. */
export function unmapList(descriptors: Array<[number, number]>): Buffer {
  const b = Buffer.alloc(8 + 16 * descriptors.length);
  b.writeUInt16BE(b.length - 2, 0);
  b.writeUInt16BE(16 * descriptors.length, 2);
  descriptors.forEach(([lba, n], i) => {
    put64(b, 8 + 16 * i, lba);
    b.writeUInt32BE(n, 16 + 16 * i);
  });
  return b;
}

export function pattern(blocks: number, seed = 1): Buffer {
  const b = Buffer.alloc(blocks * BS);
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return b;
}

export interface DecodedSense {
  responseCode: number;
  valid: boolean;
  key: number;
  asc: number;
  ascq: number;
  information: number;
  sksv: boolean;
  inCdb: boolean;
  bitPointer: number | undefined;
  fieldPointer: number;
}

export function decodeSense(sense: Buffer): DecodedSense {
  return {
    responseCode: sense[0]! & 0x7f,
    valid: (sense[0]! & 0x80) !== 0,
    key: sense[2]! & 0x0f,
    asc: sense[12]!,
    ascq: sense[13]!,
    information: sense.readUInt32BE(3),
    sksv: (sense[15]! & 0x80) !== 0,
    inCdb: (sense[15]! & 0x40) !== 0,
    bitPointer: sense[15]! & 0x08 ? sense[15]! & 0x07 : undefined,
    fieldPointer: sense.readUInt16BE(16),
  };
}

export function expectGood(r: ScsiResult): void {
  expect(r.sense ? decodeSense(r.sense) : undefined).toBeUndefined();
  expect(r.status).toBe(ScsiStatus.Good);
}

/** CHECK CONDITION with this sense key and ASC/ASCQ; returns the decoded sense for further checks. */
export function expectSense(r: ScsiResult, key: number, asc: number, ascq = 0): DecodedSense {
  expect(r.status).toBe(ScsiStatus.CheckCondition);
  expect(r.sense).toBeDefined();
  const s = decodeSense(r.sense!);
  expect(r.sense!.length).toBe(18);
  expect(s.responseCode).toBe(0x70);
  expect({ key: s.key, asc: s.asc, ascq: s.ascq }).toEqual({ key, asc, ascq });
  return s;
}

export const Key = { NoSense: 0, NotReady: 2, Medium: 3, Hardware: 4, Illegal: 5, DataProtect: 7, Miscompare: 0xe } as const;

export function expectInvalidCdbField(r: ScsiResult, byte: number, bit?: number): void {
  const s = expectSense(r, Key.Illegal, 0x24);
  expect(s.sksv).toBe(true);
  expect(s.inCdb).toBe(true);
  expect(s.fieldPointer).toBe(byte);
  if (bit !== undefined) expect(s.bitPointer).toBe(bit);
}
