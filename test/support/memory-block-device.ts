/**
 * An in-memory BlockDevice for tests: a Buffer for the data, one "mapped" flag per block for thin
 * provisioning, a log of every call, and injectable failures. It checks the contract the SCSI layer must
 * honour (block-aligned, in range, no writes when read-only) by throwing, so a test catches a layer that
 * calls it wrongly.
 */
import type { BlockDevice, BlockExtent } from '../../src/iscsi/backing/block-device.js';

export type DeviceOp = 'read' | 'write' | 'flush' | 'discard' | 'extents';

export interface DeviceCall {
  op: DeviceOp;
  offset?: number;
  length?: number;
  fua?: boolean;
}

export interface MemoryBlockDeviceOptions {
  /** Size in bytes (a multiple of blockSize). */
  size: number;
  blockSize?: number;
  readOnly?: boolean;
  thin?: boolean;
  /** Initial content is this byte (0 by default); a thin device starts fully deallocated. */
  fill?: number;
}

export class MemoryBlockDevice implements BlockDevice {
  readonly blockSize: number;
  readonly size: number;
  readonly readOnly: boolean;
  readonly thin: boolean;
  readonly data: Buffer;
  /** 1 = the block is mapped (allocated). */
  readonly mapped: Uint8Array;
  readonly calls: DeviceCall[] = [];
  flushes = 0;
  fuaWrites = 0;
  closed = false;
  #failures = new Map<DeviceOp, { error: Error; remaining: number }>();

  constructor(options: MemoryBlockDeviceOptions) {
    this.blockSize = options.blockSize ?? 512;
    this.size = options.size;
    this.readOnly = options.readOnly ?? false;
    this.thin = options.thin ?? false;
    if (this.size % this.blockSize !== 0) throw new Error('size must be a multiple of blockSize');
    this.data = Buffer.alloc(this.size, options.fill ?? 0);
    this.mapped = new Uint8Array(this.size / this.blockSize).fill(this.thin ? 0 : 1);
  }

  /** The next `times` calls of `op` reject with `error` (an EIO-like error by default). */
  failNext(op: DeviceOp, error: Error = Object.assign(new Error('I/O error'), { code: 'EIO' }), times = 1): void {
    this.#failures.set(op, { error, remaining: times });
  }

  callsOf(op: DeviceOp): DeviceCall[] {
    return this.calls.filter((c) => c.op === op);
  }

  #enter(call: DeviceCall): void {
    this.calls.push(call);
    if (this.closed) throw new Error('device closed');
    const failure = this.#failures.get(call.op);
    if (failure && failure.remaining > 0) {
      failure.remaining--;
      throw failure.error;
    }
  }

  #checkRange(offset: number, length: number): void {
    if (offset % this.blockSize !== 0 || length % this.blockSize !== 0) {
      throw new Error(`unaligned access ${offset}+${length}`);
    }
    if (offset < 0 || length < 0 || offset + length > this.size) throw new Error(`out of range ${offset}+${length}`);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.#enter({ op: 'read', offset, length });
    this.#checkRange(offset, length);
    return Buffer.from(this.data.subarray(offset, offset + length));
  }

  async write(offset: number, data: Buffer, options?: { fua?: boolean }): Promise<void> {
    const fua = options?.fua === true;
    this.#enter({ op: 'write', offset, length: data.length, fua });
    if (this.readOnly) throw new Error('write to a read-only device');
    this.#checkRange(offset, data.length);
    data.copy(this.data, offset);
    this.mapped.fill(1, offset / this.blockSize, (offset + data.length) / this.blockSize);
    if (fua) this.fuaWrites++;
  }

  async flush(): Promise<void> {
    this.#enter({ op: 'flush' });
    this.flushes++;
  }

  async discard(offset: number, length: number): Promise<void> {
    this.#enter({ op: 'discard', offset, length });
    if (this.readOnly) throw new Error('discard on a read-only device');
    this.#checkRange(offset, length);
    this.data.fill(0, offset, offset + length);
    if (this.thin) this.mapped.fill(0, offset / this.blockSize, (offset + length) / this.blockSize);
  }

  async extents(offset: number, length: number): Promise<BlockExtent[]> {
    this.#enter({ op: 'extents', offset, length });
    this.#checkRange(offset, length);
    const out: BlockExtent[] = [];
    const first = offset / this.blockSize;
    const end = (offset + length) / this.blockSize;
    for (let b = first; b < end; b++) {
      const mapped = this.mapped[b] === 1;
      const last = out[out.length - 1];
      if (last && last.mapped === mapped) last.length += this.blockSize;
      else out.push({ offset: b * this.blockSize, length: this.blockSize, mapped });
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
