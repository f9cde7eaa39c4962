/** TEST UNIT READY, REQUEST SENSE and START STOP UNIT (SPC-4; START STOP UNIT from SBC-4). */
import { flushMedium } from '../medium.js';
import { Asc, fixedSense, good, invalidFieldInCdb, SenseKey } from '../sense.js';
import { ScsiStatus } from '../types.js';
import type { Implementation } from '../unit.js';

/** The unit is always ready: the backend is open before the unit is served. */
export const testUnitReady: Implementation = { run: () => good() };

/**
 * REQUEST SENSE: sense is delivered with each CHECK CONDITION (autosense), and we keep no deferred
 * errors or unit attentions, so there is never pending sense: NO SENSE (SPC-4 REQUEST SENSE).
 */
export const requestSense: Implementation = {
  // DESC=1 asks for descriptor-format sense, which we do not produce.
  check: (_unit, cdb) => {
    if (cdb[1]! & 0x01) throw invalidFieldInCdb(1, 0);
  },
  run: (_unit, { cdb }) => {
    const data = fixedSense({ key: SenseKey.NoSense, asc: Asc.NoAdditionalSense });
    return { status: ScsiStatus.Good, dataIn: data.subarray(0, Math.min(data.length, cdb[4]!)) };
  },
};

/** POWER CONDITION values SBC-4 defines; the rest are reserved. */
const POWER_CONDITIONS: ReadonlySet<number> = new Set([0x0, 0x1, 0x2, 0x3, 0x5, 0x7, 0xa, 0xb]);

/**
 * START STOP UNIT: there is no motor or medium to move, so the unit stays ready. A stop (START=0 with
 * POWER CONDITION 0) without NO_FLUSH still flushes, as SBC-4 asks before entering the stopped
 * state; Linux sends it at shutdown when it manages start/stop.
 */
export const startStopUnit: Implementation = {
  check: (_unit, cdb) => {
    if (!POWER_CONDITIONS.has(cdb[4]! >> 4)) throw invalidFieldInCdb(4, 7);
  },
  run: async (unit, { cdb }) => {
    const start = (cdb[4]! & 0x01) !== 0;
    const noFlush = (cdb[4]! & 0x04) !== 0;
    if (!start && !noFlush && cdb[4]! >> 4 === 0) await flushMedium(unit.device);
    return good();
  },
};
