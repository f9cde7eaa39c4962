/**
 * A SCSI block device logical unit (SBC-4) over a BlockDevice: CDB and Data-Out in, status, sense and
 * Data-In out. Protocol only — it knows nothing of iSCSI sessions or PDUs.
 *
 * Every command goes through the same gate (prepare): the catalogue says whether we implement it,
 * which CDB bits are allowed, whether it writes and where its LBA range is; the command's own check
 * then looks at its fields. All of that needs no data, so the transport can call validate() before
 * soliciting Data-Out and fail a doomed WRITE without moving its payload. execute() runs the same gate
 * again and never throws: every failure becomes CHECK CONDITION with fixed-format sense.
 */
import type { BlockDevice } from '../backing/block-device.js';
import { CONTROL_BYTE_IGNORED, lookup, type CommandInfo, type Transfer } from './catalog.js';
import { highestBit } from './cdb.js';
import { IMPLEMENTATIONS } from './commands/index.js';
import { resolveLimits, type BlockLimits } from './limits.js';
import { DEFAULT_MODE_STATE } from './mode-pages.js';
import { SERVICE_ACTION_OPCODES } from './opcodes.js';
import { checkRange } from './range.js';
import {
  Asc,
  checkCondition,
  illegalRequest,
  invalidFieldInCdb,
  SenseError,
  SenseKey,
  writeProtected,
} from './sense.js';
import { dataTransfer } from './transfer.js';
import type { LogicalUnitIdentity, ScsiCommand, ScsiResult } from './types.js';
import type { BlockRange, Implementation, ModeState, Unit } from './unit.js';

export interface LogicalUnitOptions {
  device: BlockDevice;
  identity: LogicalUnitIdentity;
  /** Overrides of the advertised block limits (VPD B0h); see defaultLimits(). */
  limits?: Partial<BlockLimits>;
  /**
   * Called with an error execute() did not expect (a bug, not a backend I/O error, which is reported
   * as MEDIUM ERROR): the command still completes with HARDWARE ERROR / INTERNAL TARGET FAILURE.
   */
  onInternalError?: (err: unknown, cdb: Buffer) => void;
}

interface Prepared {
  impl: Implementation;
  range: BlockRange;
}

const EMPTY = Buffer.alloc(0);
const NO_RANGE: BlockRange = Object.freeze({ lba: 0, blocks: 0 });

export class LogicalUnit implements Unit {
  readonly device: BlockDevice;
  readonly identity: LogicalUnitIdentity;
  readonly limits: Readonly<BlockLimits>;
  readonly blockSize: number;
  readonly mode: ModeState = { ...DEFAULT_MODE_STATE };
  readonly #onInternalError: ((err: unknown, cdb: Buffer) => void) | undefined;

  constructor(options: LogicalUnitOptions) {
    const { device, identity } = options;
    if (!Number.isInteger(device.blockSize) || device.blockSize < 512 || device.blockSize > 0xff_ffff) {
      throw new RangeError(`unsupported block size ${device.blockSize}`);
    }
    if (identity.naaId.length !== 16) throw new RangeError('identity.naaId must be 16 bytes');
    this.device = device;
    this.identity = identity;
    this.limits = resolveLimits(device.blockSize, options.limits);
    this.blockSize = device.blockSize;
    this.#onInternalError = options.onInternalError;
  }

  /** Capacity in logical blocks, read from the device each time so a resized backend is seen at once. */
  get blocks(): number {
    return Math.floor(this.device.size / this.blockSize);
  }

  /** Data direction and size of a command, from its CDB alone (for the transport's R2T decisions). */
  dataTransfer(cdb: Buffer): Transfer {
    return dataTransfer(cdb, this.blockSize);
  }

  /**
   * The CHECK CONDITION a command will end in whatever its data, or undefined when it may proceed.
   * Lets the transport refuse a command before soliciting its Data-Out; execute() checks again.
   */
  validate(cdb: Buffer): ScsiResult | undefined {
    try {
      this.#prepare(cdb);
      return undefined;
    } catch (err) {
      return this.#failure(err, cdb);
    }
  }

  async execute(cmd: ScsiCommand): Promise<ScsiResult> {
    try {
      const { impl, range } = this.#prepare(cmd.cdb);
      return await impl.run(this, { cdb: cmd.cdb, data: cmd.dataOut ?? EMPTY, range });
    } catch (err) {
      return this.#failure(err, cmd.cdb);
    }
  }

  #failure(err: unknown, cdb: Buffer): ScsiResult {
    if (err instanceof SenseError) return checkCondition(err.sense);
    try {
      this.#onInternalError?.(err, cdb);
    } catch {
      // A failing error hook must not turn one failed command into a thrown one.
    }
    return checkCondition({ key: SenseKey.HardwareError, asc: Asc.InternalTargetFailure });
  }

  /** The generic checks, in the order SAM-5 and the SBC-4 command descriptions imply. */
  #prepare(cdb: Buffer): Prepared {
    const info = lookup(cdb);
    const impl = info && IMPLEMENTATIONS.get(info);
    if (!info || !impl || (info.thinOnly && !this.device.thin)) throw unsupported(cdb);
    if (cdb.length < info.cdbLength) throw illegalRequest(Asc.InvalidFieldInCdb);
    checkReservedBits(info, cdb);
    if (info.writes && this.device.readOnly) throw writeProtected();
    impl.check?.(this, cdb);
    return { impl, range: info.range ? checkRange(this, info.range, cdb) : NO_RANGE };
  }
}

/**
 * INVALID COMMAND OPERATION CODE, or for an opcode that takes service actions, INVALID FIELD IN CDB at
 * the SERVICE ACTION field (SPC-4; libiscsi accepts either for those).
 */
function unsupported(cdb: Buffer): SenseError {
  if (cdb.length > 1 && SERVICE_ACTION_OPCODES.has(cdb[0]!)) return invalidFieldInCdb(1, 4);
  return illegalRequest(Asc.InvalidCommandOperationCode, { inCdb: true, byte: 0 });
}

/**
 * Any bit the command does not use is refused, with the bit pointer on the left-most bit of the field in
 * error (SPC-4 §4.5.2.4.2). The one multi-bit field we refuse as a whole is byte 1 bits 7–5 (RDPROTECT,
 * WRPROTECT, VRPROTECT, or reserved in the commands without them); elsewhere the offending bit itself is
 * named (a single-bit field, or a bit inside a reserved run).
 */
function fieldBit(byte: number, refused: number, allowed: number): number {
  if (byte === 1 && refused & 0xe0 && (allowed & 0xe0) === 0) return 7;
  return highestBit(refused);
}

/** CONTROL byte fields (SAM-5): reserved 5–3, NACA 2, LINK 0. */
function controlFieldBit(refused: number): number {
  return refused & 0x38 ? 5 : highestBit(refused);
}

function checkReservedBits(info: CommandInfo, cdb: Buffer): void {
  const last = info.cdbLength - 1;
  for (let i = 1; i <= last; i++) {
    const allowed = info.usage[i]! | (i === last ? CONTROL_BYTE_IGNORED : 0);
    const refused = cdb[i]! & ~allowed;
    if (refused) throw invalidFieldInCdb(i, i === last ? controlFieldBit(refused) : fieldBit(i, refused, allowed));
  }
}
