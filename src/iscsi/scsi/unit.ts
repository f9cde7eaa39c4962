/**
 * What a command handler sees of its logical unit: the storage, who it is, the limits it advertises and
 * the mode parameters an initiator may have changed. LogicalUnit implements it; handlers take it rather
 * than the class so each command module can be tested and read on its own.
 */
import type { BlockDevice } from '../backing/block-device.js';
import type { BlockLimits } from './limits.js';
import type { ScsiResult, LogicalUnitIdentity } from './types.js';

/** Mode parameters that change behaviour (SPC-4 mode parameters). Shared by every I_T nexus to the unit. */
export interface ModeState {
  /** Caching page WCE (SBC-4): false = write-through, every write is forced to stable storage. */
  writeCacheEnabled: boolean;
}

export interface Unit {
  readonly device: BlockDevice;
  readonly identity: LogicalUnitIdentity;
  readonly limits: Readonly<BlockLimits>;
  readonly blockSize: number;
  /** Capacity in logical blocks. */
  readonly blocks: number;
  readonly mode: ModeState;
}

/** A run of logical blocks a medium-access command addresses, already checked against the capacity. */
export interface BlockRange {
  lba: number;
  blocks: number;
}

export interface Request {
  cdb: Buffer;
  /** The Data-Out payload as received (empty when there is none). */
  data: Buffer;
  /** For commands with a catalogue range: the checked LBA and block count (0 resolved where it means "to the end"). */
  range: BlockRange;
}

/** A command's implementation; the CDB has passed the generic checks (LogicalUnit.prepare). */
export type Handler = (unit: Unit, req: Request) => Promise<ScsiResult> | ScsiResult;

/** A command's own CDB checks that need no data, run before any Data-Out is solicited. */
export type CdbCheck = (unit: Unit, cdb: Buffer) => void;

export interface Implementation {
  run: Handler;
  check?: CdbCheck;
}
