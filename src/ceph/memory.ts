import koffi from 'koffi';

/**
 * Memory librbd may read or fill after the call that handed it over has returned (aio). A Node
 * Buffer is no such memory: koffi documents its pointer as valid only during the call, and a Buffer
 * can be freed as soon as JavaScript drops it. So aio goes through blocks from koffi.alloc (malloc),
 * which never move, copied from the caller's Buffer before a write and into a fresh Buffer after a
 * read (a memcpy, small next to the network round trip).
 *
 * Blocks come in power-of-two sizes from 4 KiB and are kept for reuse up to IDLE_LIMIT bytes in
 * all, so a busy LUN does not malloc/free (and fault in) megabytes per command.
 */

export interface StableBlock {
  /** The pointer handed to librbd. */
  readonly ptr: unknown;
  /** A Buffer over the same memory (valid until the block is given back). */
  readonly buf: Buffer;
}

const MIN_BLOCK = 4096;
const IDLE_LIMIT = 64 * 1024 * 1024;

function sizeClass(length: number): number {
  let size = MIN_BLOCK;
  while (size < length) size *= 2;
  return size;
}

export class StableMemory {
  private readonly idle = new Map<number, StableBlock[]>();
  private idleBytes = 0;

  /** A block of at least `length` bytes (its contents are whatever it last held). */
  take(length: number): StableBlock {
    const size = sizeClass(length);
    const reused = this.idle.get(size)?.pop();
    if (reused) {
      this.idleBytes -= size;
      return reused;
    }
    const ptr = koffi.alloc('uint8_t', size);
    return { ptr, buf: Buffer.from(koffi.view(ptr, size)) };
  }

  /** Returns a block once librbd is done with it. */
  give(block: StableBlock): void {
    const size = block.buf.length;
    if (this.idleBytes + size > IDLE_LIMIT) {
      koffi.free(block.ptr);
      return;
    }
    let list = this.idle.get(size);
    if (!list) this.idle.set(size, (list = []));
    list.push(block);
    this.idleBytes += size;
  }

  /** Bytes held for reuse (tests). */
  get held(): number {
    return this.idleBytes;
  }
}

/** One pool for the process: every image's aio shares it. */
export const stableMemory = new StableMemory();
