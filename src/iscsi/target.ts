// What the transport needs from the rest of hiveboot: which targets exist, who may log in (the
// LoginPolicy of login/types.ts), and the logical units behind each target. Provisioning (src/storage)
// fills it; the transport only reads it.

import type { LoginPolicy, TargetAccess } from './login/types.js';
import type { ScsiCommand, ScsiResult } from './scsi/types.js';

export interface LogicalUnitHandler {
  execute(cmd: ScsiCommand): Promise<ScsiResult>;
  /** Largest transfer a single command may carry, in bytes (VPD B0 maximum transfer length). */
  readonly maxTransferBytes: number;
  /** The CHECK CONDITION a command will end in whatever its data: lets us refuse before soliciting Data-Out. */
  validate?(cdb: Buffer): ScsiResult | undefined;
  readonly blockSize?: number;
  /** Data-Out bytes the CDB itself asks for (SPDTL), to check against the initiator's EDTL. */
  writeLength?(cdb: Buffer): number | undefined;
}

export interface TargetEntry {
  access: TargetAccess;
  luns: ReadonlyMap<number, LogicalUnitHandler>;
}

export interface TargetDirectory extends LoginPolicy {
  entry(name: string): TargetEntry | undefined;
}

/** A mutable in-memory directory: the storage provisioner adds and removes targets as hosts change. */
export class TargetTable implements TargetDirectory {
  private readonly byName = new Map<string, TargetEntry>();

  constructor(public discoveryNeedsChap = true) {}

  set(entry: TargetEntry): void {
    this.byName.set(entry.access.name, entry);
  }

  delete(name: string): boolean {
    return this.byName.delete(name);
  }

  entry(name: string): TargetEntry | undefined {
    return this.byName.get(name);
  }

  target(name: string): TargetAccess | undefined {
    return this.byName.get(name)?.access;
  }

  *targets(): Iterable<TargetAccess> {
    for (const e of this.byName.values()) yield e.access;
  }

  get size(): number {
    return this.byName.size;
  }
}
