/**
 * REPORT SUPPORTED OPERATION CODES (SPC-4), answered from the command catalogue, so what we
 * report is by construction what we accept. Initiators use it to learn which optional bits we honour:
 * libiscsi checks that DPO/FUA appear in the CDB usage data of READ and WRITE, as MODE SENSE's DPOFUA
 * promises.
 */
import { CATALOG, hasServiceActions, lookupByCode, type CommandInfo } from '../catalog.js';
import { u16, u32 } from '../cdb.js';
import { invalidFieldInCdb } from '../sense.js';
import { ScsiStatus } from '../types.js';
import type { Implementation, Unit } from '../unit.js';

/** Whether the unit implements the command (UNMAP only on thin units). */
export function isSupported(unit: Unit, info: CommandInfo): boolean {
  return !info.thinOnly || unit.device.thin;
}

/**
 * Command timeouts descriptor (SPC-4): length 0Ah, nominal and recommended timeouts 0 =
 * "not specified"; how long a command takes depends on the backend, which we cannot promise.
 */
function timeoutsDescriptor(): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(0x0a, 0);
  return b;
}

/** All-commands format (reporting options 000b): one 8-byte descriptor per command (SPC-4). */
function allCommands(unit: Unit, rctd: boolean): Buffer {
  const descriptors = CATALOG.filter((c) => isSupported(unit, c)).map((c) => {
    const d = Buffer.alloc(8);
    d[0] = c.opcode;
    d.writeUInt16BE(c.serviceAction ?? 0, 2);
    d[5] = (rctd ? 0x02 : 0) | (c.serviceAction !== undefined ? 0x01 : 0); // CTDP, SERVACTV
    d.writeUInt16BE(c.cdbLength, 6);
    return rctd ? Buffer.concat([d, timeoutsDescriptor()]) : d;
  });
  const header = Buffer.alloc(4);
  const body = Buffer.concat(descriptors);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

/** One-command format (SPC-4): SUPPORT 011b with the usage data, or 001b (not supported). */
function oneCommand(unit: Unit, info: CommandInfo | undefined, rctd: boolean): Buffer {
  if (!info || !isSupported(unit, info)) return Buffer.from([0, 0x01, 0, 0]);
  const header = Buffer.from([0, (rctd ? 0x80 : 0) | 0x03, 0, 0]);
  header.writeUInt16BE(info.cdbLength, 2);
  return Buffer.concat([header, Buffer.from(info.usage), ...(rctd ? [timeoutsDescriptor()] : [])]);
}

export const reportSupportedOperationCodes: Implementation = {
  check: (_unit, cdb) => {
    const options = cdb[2]! & 0x07;
    const opcode = cdb[3]!;
    // 001b names an opcode without service actions, 010b one with; asking the other way is an error.
    if (options === 0x01 && hasServiceActions(opcode)) throw invalidFieldInCdb(2, 2);
    if (options === 0x02 && !hasServiceActions(opcode)) throw invalidFieldInCdb(2, 2);
    if (options > 0x03) throw invalidFieldInCdb(2, 2);
  },
  run: (unit, { cdb }) => {
    const rctd = (cdb[2]! & 0x80) !== 0;
    const options = cdb[2]! & 0x07;
    const opcode = cdb[3]!;
    let data: Buffer;
    if (options === 0x00) data = allCommands(unit, rctd);
    // 011b (SPC-4 r37): by service action when the opcode has them, by opcode alone otherwise.
    else data = oneCommand(unit, lookupByCode(opcode, hasServiceActions(opcode) ? u16(cdb, 4) : undefined), rctd);
    return { status: ScsiStatus.Good, dataIn: data.subarray(0, Math.min(data.length, u32(cdb, 6))) };
  },
};
