/** INQUIRY (SPC-4): the standard data or one VPD page, cut to the allocation length. */
import { u16 } from '../cdb.js';
import { standardInquiry, SUPPORTED_VPD_PAGES, vpdPage } from '../inquiry.js';
import { invalidFieldInCdb } from '../sense.js';
import { ScsiStatus } from '../types.js';
import type { Implementation } from '../unit.js';

export const inquiry: Implementation = {
  check: (_unit, cdb) => {
    const evpd = (cdb[1]! & 0x01) !== 0;
    // SPC-4: a PAGE CODE with EVPD=0 is an error, and so is a VPD page we do not have.
    if (evpd ? !SUPPORTED_VPD_PAGES.includes(cdb[2]!) : cdb[2] !== 0) throw invalidFieldInCdb(2);
  },
  run: (unit, { cdb }) => {
    const evpd = (cdb[1]! & 0x01) !== 0;
    const data = evpd ? vpdPage(unit, cdb[2]!) : standardInquiry(unit);
    if (!data) throw invalidFieldInCdb(2);
    const allocation = u16(cdb, 3);
    return { status: ScsiStatus.Good, dataIn: data.subarray(0, Math.min(data.length, allocation)) };
  },
};
