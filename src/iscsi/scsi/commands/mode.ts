/** MODE SENSE(6)/(10) and MODE SELECT(6)/(10) (SPC-4) over the pages in mode-pages.ts. */
import { u16 } from '../cdb.js';
import { applyModeSelect, modeSense, parseModeSelect } from '../mode-pages.js';
import { Op } from '../opcodes.js';
import { good } from '../sense.js';
import { ScsiStatus } from '../types.js';
import type { Implementation } from '../unit.js';

export const modeSenseCommand: Implementation = {
  run: (unit, { cdb }) => {
    const ten = cdb[0] === Op.ModeSense10;
    const data = modeSense(unit, {
      ten,
      dbd: (cdb[1]! & 0x08) !== 0,
      llbaa: ten && (cdb[1]! & 0x10) !== 0,
      pageControl: cdb[2]! >> 6,
      pageCode: cdb[2]! & 0x3f,
      subpageCode: cdb[3]!,
    });
    const allocation = ten ? u16(cdb, 7) : cdb[4]!;
    return { status: ScsiStatus.Good, dataIn: data.subarray(0, Math.min(data.length, allocation)) };
  },
};

export const modeSelectCommand: Implementation = {
  run: (unit, { cdb, data }) => {
    const ten = cdb[0] === Op.ModeSelect10;
    const listLength = ten ? u16(cdb, 7) : cdb[4]!;
    const pages = parseModeSelect(unit, { ten, pf: (cdb[1]! & 0x10) !== 0, params: data.subarray(0, listLength) });
    // Only a list that passed every check changes anything (SPC-4 MODE SELECT).
    applyModeSelect(unit.mode, pages);
    return good();
  },
};
