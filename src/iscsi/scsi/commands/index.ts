/**
 * Which implementation serves which catalogue entry. Every catalogue entry has one and every
 * implementation has an entry (checked here at load, and by a test), so the catalogue that REPORT
 * SUPPORTED OPERATION CODES reports is exactly what execute() runs.
 */
import { CATALOG, lookupByCode, type CommandInfo } from '../catalog.js';
import { Op, ServiceAction } from '../opcodes.js';
import type { Implementation } from '../unit.js';
import { readCapacity10, readCapacity16 } from './capacity.js';
import { inquiry } from './inquiry.js';
import { modeSelectCommand, modeSenseCommand } from './mode.js';
import { getLbaStatus, unmap, writeSame } from './provisioning.js';
import { preFetch, read, synchronizeCache, verify, write, writeAndVerify } from './read-write.js';
import { reportLuns } from './report-luns.js';
import { reportSupportedOperationCodes } from './report-opcodes.js';
import { requestSense, startStopUnit, testUnitReady } from './unit-state.js';

const BY_CODE: ReadonlyArray<[opcode: number, serviceAction: number | undefined, impl: Implementation]> = [
  [Op.TestUnitReady, undefined, testUnitReady],
  [Op.RequestSense, undefined, requestSense],
  [Op.Read6, undefined, read],
  [Op.Write6, undefined, write],
  [Op.Inquiry, undefined, inquiry],
  [Op.ModeSelect6, undefined, modeSelectCommand],
  [Op.ModeSense6, undefined, modeSenseCommand],
  [Op.StartStopUnit, undefined, startStopUnit],
  [Op.ReadCapacity10, undefined, readCapacity10],
  [Op.Read10, undefined, read],
  [Op.Write10, undefined, write],
  [Op.WriteAndVerify10, undefined, writeAndVerify],
  [Op.Verify10, undefined, verify],
  [Op.PreFetch10, undefined, preFetch],
  [Op.SynchronizeCache10, undefined, synchronizeCache],
  [Op.WriteSame10, undefined, writeSame],
  [Op.Unmap, undefined, unmap],
  [Op.ModeSelect10, undefined, modeSelectCommand],
  [Op.ModeSense10, undefined, modeSenseCommand],
  [Op.Read16, undefined, read],
  [Op.Write16, undefined, write],
  [Op.WriteAndVerify16, undefined, writeAndVerify],
  [Op.Verify16, undefined, verify],
  [Op.PreFetch16, undefined, preFetch],
  [Op.SynchronizeCache16, undefined, synchronizeCache],
  [Op.WriteSame16, undefined, writeSame],
  [Op.ServiceActionIn16, ServiceAction.ReadCapacity16, readCapacity16],
  [Op.ServiceActionIn16, ServiceAction.GetLbaStatus, getLbaStatus],
  [Op.ReportLuns, undefined, reportLuns],
  [Op.MaintenanceIn, ServiceAction.ReportSupportedOperationCodes, reportSupportedOperationCodes],
  [Op.Read12, undefined, read],
  [Op.Write12, undefined, write],
  [Op.WriteAndVerify12, undefined, writeAndVerify],
  [Op.Verify12, undefined, verify],
];

function build(): ReadonlyMap<CommandInfo, Implementation> {
  const map = new Map<CommandInfo, Implementation>();
  for (const [opcode, sa, impl] of BY_CODE) {
    const info = lookupByCode(opcode, sa);
    if (!info) throw new Error(`no catalogue entry for opcode ${opcode.toString(16)}/${sa ?? '-'}`);
    map.set(info, impl);
  }
  const missing = CATALOG.filter((c) => !map.has(c)).map((c) => c.name);
  if (missing.length) throw new Error(`no implementation for ${missing.join(', ')}`);
  return map;
}

export const IMPLEMENTATIONS: ReadonlyMap<CommandInfo, Implementation> = build();
