/**
 * INQUIRY data: the standard page (SPC-4) and the vital product data pages a block device reports
 * (SPC-4 and SBC-4 VPD parameters). Builders are pure: the unit's identity and limits in, the full page out; the
 * INQUIRY command applies the allocation length.
 */
import type { Unit } from './unit.js';

/** Peripheral qualifier 000b (connected) and device type 00h (direct access block device). */
const PERIPHERAL = 0x00;

export const VpdPage = {
  SupportedPages: 0x00,
  UnitSerialNumber: 0x80,
  DeviceIdentification: 0x83,
  BlockLimits: 0xb0,
  BlockDeviceCharacteristics: 0xb1,
  LogicalBlockProvisioning: 0xb2,
} as const;

/** Ascending, as SPC-4 requires of the Supported VPD Pages list. */
export const SUPPORTED_VPD_PAGES: readonly number[] = [
  VpdPage.SupportedPages,
  VpdPage.UnitSerialNumber,
  VpdPage.DeviceIdentification,
  VpdPage.BlockLimits,
  VpdPage.BlockDeviceCharacteristics,
  VpdPage.LogicalBlockProvisioning,
];

/**
 * Version descriptors (SPC-4, standard INQUIRY data): SAM-5, iSCSI, SPC-4, SBC-3. SBC-3 is the one initiators
 * look for (libiscsi gates its SBC-3 checks and Linux its READ CAPACITY(16) use on it).
 */
const VERSION_DESCRIPTORS = [0x00a0, 0x0960, 0x0460, 0x04c0] as const;

/** SPC-4: ASCII fields hold 20h–7Eh only, left-aligned and padded with spaces. */
export function asciiField(value: string, width: number): Buffer {
  const out = Buffer.alloc(width, 0x20);
  for (let i = 0; i < Math.min(value.length, width); i++) {
    const c = value.charCodeAt(i);
    out[i] = c >= 0x20 && c <= 0x7e ? c : 0x3f; // '?'
  }
  return out;
}

/** Standard INQUIRY data: 96 bytes, so the version descriptors (bytes 58–73) are included. */
export function standardInquiry(unit: Unit): Buffer {
  const b = Buffer.alloc(96);
  b[0] = PERIPHERAL;
  b[1] = 0x00; // RMB=0: not removable
  b[2] = 0x06; // VERSION: SPC-4
  b[3] = 0x12; // HISUP=1 (we code LUNs per SAM-5), RESPONSE DATA FORMAT=2
  b[4] = b.length - 5; // ADDITIONAL LENGTH
  b[5] = 0x00; // no ACC, TPGS (no ALUA), 3PC or PROTECT
  b[6] = 0x00;
  b[7] = 0x02; // CMDQUE: tagged queuing; the transport may run commands concurrently
  asciiField(unit.identity.vendor, 8).copy(b, 8);
  asciiField(unit.identity.product, 16).copy(b, 16);
  asciiField(unit.identity.revision, 4).copy(b, 32);
  VERSION_DESCRIPTORS.forEach((d, i) => b.writeUInt16BE(d, 58 + 2 * i));
  return b;
}

function vpd(page: number, body: Buffer): Buffer {
  const header = Buffer.from([PERIPHERAL, page, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([header, body]);
}

/** One designation descriptor (SPC-4, Device Identification VPD page). */
function designator(codeSet: number, typeAndAssociation: number, value: Buffer, protocol = 0): Buffer {
  return Buffer.concat([Buffer.from([(protocol << 4) | codeSet, typeAndAssociation, 0, value.length]), value]);
}

const CODE_SET_BINARY = 1;
const CODE_SET_ASCII = 2;
const CODE_SET_UTF8 = 3;
const PROTOCOL_ISCSI = 5;
const ASSOCIATION_LU = 0x00;
const ASSOCIATION_TARGET_DEVICE = 0x20;
const PIV = 0x80;
const TYPE_T10_VENDOR = 0x01;
const TYPE_NAA = 0x03;
const TYPE_SCSI_NAME = 0x08;

/**
 * NAA IEEE Registered Extended (NAA 6h, SPC-4): the 16 identity bytes with the NAA nibble
 * forced to 6. This is the designator Linux uses for the disk's WWN (/dev/disk/by-id/wwn-0x6…) and
 * multipath uses to match paths, so it must never change for a LUN.
 */
export function naaDesignator(naaId: Buffer): Buffer {
  const value = Buffer.alloc(16);
  naaId.copy(value, 0, 0, 16);
  value[0] = 0x60 | (value[0]! & 0x0f);
  return value;
}

/** SCSI name string (SPC-4): UTF-8, NUL-terminated, padded to a multiple of 4, at most 256. */
function scsiNameString(name: string): Buffer {
  const text = Buffer.from(name, 'utf8').subarray(0, 251);
  const padded = Buffer.alloc((text.length + 1 + 3) & ~3);
  text.copy(padded);
  return padded;
}

function deviceIdentification(unit: Unit): Buffer {
  const { identity } = unit;
  return vpd(
    VpdPage.DeviceIdentification,
    Buffer.concat([
      designator(CODE_SET_BINARY, ASSOCIATION_LU | TYPE_NAA, naaDesignator(identity.naaId)),
      // T10 vendor identification (SPC-4): vendor, then a vendor-specific part; the serial.
      designator(
        CODE_SET_ASCII,
        ASSOCIATION_LU | TYPE_T10_VENDOR,
        Buffer.concat([asciiField(identity.vendor, 8), asciiField(identity.serial, Math.min(identity.serial.length, 200))]),
      ),
      designator(
        CODE_SET_UTF8,
        PIV | ASSOCIATION_TARGET_DEVICE | TYPE_SCSI_NAME,
        scsiNameString(identity.targetName),
        PROTOCOL_ISCSI,
      ),
    ]),
  );
}

/** Block Limits (SBC-4, Block Limits VPD page): page length 3Ch, the SBC-3 and later layout. */
function blockLimits(unit: Unit): Buffer {
  const { limits } = unit;
  const thin = unit.device.thin;
  const b = Buffer.alloc(0x3c);
  const at = (byte: number) => byte - 4; // offsets below are the page's, the body starts at byte 4
  b[at(4)] = 0x00; // WSNZ=0: WRITE SAME with 0 blocks means "to the last LBA"
  b[at(5)] = 0; // MAXIMUM COMPARE AND WRITE LENGTH: not supported
  b.writeUInt16BE(limits.optimalGranularityBlocks, at(6));
  b.writeUInt32BE(limits.maxTransferBlocks, at(8));
  b.writeUInt32BE(limits.optimalTransferBlocks, at(12));
  b.writeUInt32BE(limits.maxPrefetchBlocks, at(16));
  // Unmap fields must be 0 when UNMAP is not supported (SBC-4; libiscsi checks it against LBPU).
  b.writeUInt32BE(thin ? limits.maxUnmapBlocks : 0, at(20));
  b.writeUInt32BE(thin ? limits.maxUnmapDescriptors : 0, at(24));
  b.writeUInt32BE(thin ? limits.unmapGranularityBlocks : 0, at(28));
  b.writeUInt32BE(thin ? 0x8000_0000 : 0, at(32)); // UGAVALID=1, UNMAP GRANULARITY ALIGNMENT 0
  b.writeUInt32BE(0, at(36)); // MAXIMUM WRITE SAME LENGTH, high half
  b.writeUInt32BE(limits.maxWriteSameBlocks, at(40));
  return vpd(VpdPage.BlockLimits, b);
}

/** Block Device Characteristics (SBC-4): MEDIUM ROTATION RATE 0001h = non-rotating medium. */
function blockDeviceCharacteristics(): Buffer {
  const b = Buffer.alloc(0x3c);
  b.writeUInt16BE(0x0001, 0);
  return vpd(VpdPage.BlockDeviceCharacteristics, b);
}

/**
 * Logical Block Provisioning (SBC-4). On a thin unit: UNMAP (LBPU), WRITE SAME(16) and (10) with
 * UNMAP (LBPWS, LBPWS10), and LBPRZ=001b because the BlockDevice contract says deallocated blocks read
 * back as zeroes; provisioning type 010b (thin). A fully provisioned unit reports all of it as zero.
 */
function logicalBlockProvisioning(unit: Unit): Buffer {
  const b = Buffer.alloc(4);
  if (unit.device.thin) {
    b[1] = 0x80 | 0x40 | 0x20 | 0x04;
    b[2] = 0x02;
  }
  return vpd(VpdPage.LogicalBlockProvisioning, b);
}

/** The full VPD page, or undefined for a page we do not have. */
export function vpdPage(unit: Unit, page: number): Buffer | undefined {
  switch (page) {
    case VpdPage.SupportedPages:
      return vpd(page, Buffer.from(SUPPORTED_VPD_PAGES));
    case VpdPage.UnitSerialNumber:
      return vpd(page, asciiField(unit.identity.serial, Math.min(unit.identity.serial.length, 252)));
    case VpdPage.DeviceIdentification:
      return deviceIdentification(unit);
    case VpdPage.BlockLimits:
      return blockLimits(unit);
    case VpdPage.BlockDeviceCharacteristics:
      return blockDeviceCharacteristics();
    case VpdPage.LogicalBlockProvisioning:
      return logicalBlockProvisioning(unit);
    default:
      return undefined;
  }
}
