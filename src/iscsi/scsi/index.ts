/**
 * The SCSI block command layer as the iSCSI transport uses it:
 *  - `dataTransfer(cdb, blockSize)` / `LogicalUnit.dataTransfer(cdb)`: direction and size before data
 *    moves, to size R2Ts and compute residuals;
 *  - `LogicalUnit.validate(cdb)`: the CHECK CONDITION a command will end in regardless of its data, so a
 *    doomed write can be refused without soliciting its Data-Out;
 *  - `LogicalUnit.execute(cmd)`: run it; never throws;
 *  - `absentLunResult(cdb, luns)`: the answer for a LUN the target does not have.
 */
export { absentLunResult } from './absent-lun.js';
export { defaultLimits, type BlockLimits } from './limits.js';
export { LogicalUnit, type LogicalUnitOptions } from './logical-unit.js';
export { dataDirection, dataTransfer, type Transfer } from './transfer.js';
export type { DataDirection, LogicalUnitIdentity, ScsiCommand, ScsiResult } from './types.js';
export { ScsiStatus } from './types.js';
