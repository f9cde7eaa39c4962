/** REPORT LUNS (SPC-4): the LUNs of this target, from the identity the target gives each unit. */
import { u32 } from '../cdb.js';
import { invalidFieldInCdb } from '../sense.js';
import { ScsiStatus } from '../types.js';
import type { Implementation } from '../unit.js';

/**
 * Single-level LUN structure (SAM-5 LUN structure): peripheral device addressing for 0–255, flat space
 * addressing for 256–16383 — what Linux's scsilun_to_int and iPXE decode. Others cannot be coded so.
 */
export function encodeLun(lun: number): Buffer | undefined {
  const b = Buffer.alloc(8);
  if (!Number.isInteger(lun) || lun < 0 || lun > 0x3fff) return undefined;
  if (lun < 256) b[1] = lun;
  else {
    b[0] = 0x40 | (lun >> 8);
    b[1] = lun & 0xff;
  }
  return b;
}

/** The REPORT LUNS parameter data for a SELECT REPORT value (00h/02h: all LUNs; 01h: well-known only). */
export function reportLunsData(luns: readonly number[], selectReport: number): Buffer {
  // We have no well-known logical units, so SELECT REPORT 01h lists none.
  const listed = selectReport === 0x01 ? [] : luns;
  const entries = listed.map(encodeLun).filter((b): b is Buffer => b !== undefined);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(entries.length * 8, 0);
  return Buffer.concat([header, ...entries]);
}

export const reportLuns: Implementation = {
  check: (_unit, cdb) => {
    // 10h–12h (administrative and subsidiary LUs, SPC-5) and reserved values are not supported.
    if (cdb[2]! > 0x02) throw invalidFieldInCdb(2);
  },
  run: (unit, { cdb }) => {
    const data = reportLunsData(unit.identity.luns(), cdb[2]!);
    return { status: ScsiStatus.Good, dataIn: data.subarray(0, Math.min(data.length, u32(cdb, 6))) };
  },
};
