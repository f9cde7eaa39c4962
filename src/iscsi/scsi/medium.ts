/**
 * Calls into the BlockDevice, with its failures turned into the sense data an initiator expects
 * (SPC-4 §4.5.6): a failed read is MEDIUM ERROR / UNRECOVERED READ ERROR, a failed write, flush or
 * deallocation MEDIUM ERROR / WRITE ERROR. Errors that carry a known `code` say more:
 *  - ENOSPC (a thin backend out of space): DATA PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT
 *    (SBC-4 thin provisioning), which Linux reports to the filesystem as ENOSPC rather than as an I/O error;
 *  - READ_ONLY (the backing store refused a write): DATA PROTECT / WRITE PROTECTED;
 *  - OUT_OF_RANGE (the device shrank under us): ILLEGAL REQUEST / LBA OUT OF RANGE;
 *  - CLOSED (the device is being closed, e.g. the LUN is going away): NOT READY / LOGICAL UNIT NOT
 *    READY, CAUSE NOT REPORTABLE — the unit is unavailable, the medium has not failed.
 * The codes are matched by value, not by importing the backends' error class: any backend may use them.
 */
import type { BlockDevice, BlockExtent } from '../backing/block-device.js';
import { Asc, SenseError, SenseKey } from './sense.js';

function codeOf(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

function mediumError(err: unknown, asc: Asc): SenseError {
  if (err instanceof SenseError) return err;
  switch (codeOf(err)) {
    case 'ENOSPC':
      return new SenseError({ key: SenseKey.DataProtect, asc: Asc.SpaceAllocationFailedWriteProtect });
    case 'READ_ONLY':
      return new SenseError({ key: SenseKey.DataProtect, asc: Asc.WriteProtected });
    case 'OUT_OF_RANGE':
      return new SenseError({ key: SenseKey.IllegalRequest, asc: Asc.LbaOutOfRange });
    case 'CLOSED':
      return new SenseError({ key: SenseKey.NotReady, asc: Asc.LogicalUnitNotReady });
    default:
      return new SenseError({ key: SenseKey.MediumError, asc });
  }
}

export async function readMedium(device: BlockDevice, offset: number, length: number): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await device.read(offset, length);
  } catch (err) {
    throw mediumError(err, Asc.UnrecoveredReadError);
  }
  // A short read from a misbehaving backend must not reach the initiator as if it were whole.
  if (data.length < length) throw new SenseError({ key: SenseKey.MediumError, asc: Asc.UnrecoveredReadError });
  return data.length === length ? data : data.subarray(0, length);
}

export async function writeMedium(device: BlockDevice, offset: number, data: Buffer, fua: boolean): Promise<void> {
  try {
    await device.write(offset, data, fua ? { fua: true } : undefined);
  } catch (err) {
    throw mediumError(err, Asc.WriteError);
  }
}

export async function flushMedium(device: BlockDevice): Promise<void> {
  try {
    await device.flush();
  } catch (err) {
    throw mediumError(err, Asc.WriteError);
  }
}

export async function discardMedium(device: BlockDevice, offset: number, length: number): Promise<void> {
  try {
    await device.discard(offset, length);
  } catch (err) {
    throw mediumError(err, Asc.WriteError);
  }
}

export async function extentsOf(device: BlockDevice, offset: number, length: number): Promise<BlockExtent[]> {
  try {
    return await device.extents(offset, length);
  } catch (err) {
    throw mediumError(err, Asc.UnrecoveredReadError);
  }
}
