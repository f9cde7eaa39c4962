/** READ CAPACITY(10) and (16) (SBC-4): the last LBA and the block length. */
import { putU64, u32 } from '../cdb.js';
import { ScsiStatus } from '../types.js';
import type { Implementation } from '../unit.js';

export const readCapacity10: Implementation = {
  run: (unit) => {
    const b = Buffer.alloc(8);
    const last = Math.max(0, unit.blocks - 1);
    // FFFFFFFFh when the last LBA does not fit: the initiator then asks READ CAPACITY(16) (iPXE and Linux do).
    b.writeUInt32BE(Math.min(last, 0xffff_ffff), 0);
    b.writeUInt32BE(unit.blockSize, 4);
    return { status: ScsiStatus.Good, dataIn: b };
  },
};

export const readCapacity16: Implementation = {
  run: (unit, { cdb }) => {
    const b = Buffer.alloc(32);
    putU64(b, 0, Math.max(0, unit.blocks - 1));
    b.writeUInt32BE(unit.blockSize, 8);
    // Byte 12: no protection information (P_TYPE, PROT_EN 0). Byte 13: one logical block per physical
    // block (LBPPBE 0). Byte 14: LBPME and LBPRZ on thin units (deallocated blocks read as zeroes),
    // lowest aligned LBA 0.
    if (unit.device.thin) b[14] = 0x80 | 0x40;
    return { status: ScsiStatus.Good, dataIn: b.subarray(0, Math.min(32, u32(cdb, 10))) };
  },
};
