/**
 * Logical block provisioning (SBC-4): UNMAP, WRITE SAME(10/16) and GET LBA STATUS.
 *
 * Only thin units deallocate: they report LBPME=1 and LBPRZ=1 (BlockDevice.discard() promises zeroes
 * on later reads), so a deallocated block is indistinguishable from a block of zeroes.
 *
 * WRITE SAME with UNMAP=1 deallocates whatever the Data-Out block holds. SBC-3 reads that way, and it is
 * what Linux's LIO (sbc_execute_write_same_unmap) and tgtd do, so libiscsi's conformance suite expects
 * it (WriteSame10.UnmapUntilEnd sends 0xFF with UNMAP=1 and reads back zeroes). SBC-4 would let a target
 * write a non-zero block instead; no initiator we serve relies on that: Linux, Windows and ESXi send
 * UNMAP=1 only with a zeroed block, so both readings give them the same medium.
 */
import { ndob } from '../catalog.js';
import { u16, u32, u64, putU64 } from '../cdb.js';
import { discardMedium, extentsOf, writeMedium } from '../medium.js';
import {
  Asc,
  good,
  illegalRequest,
  invalidFieldInCdb,
  invalidFieldInParameterList,
  lbaOutOfRange,
} from '../sense.js';
import { ScsiStatus } from '../types.js';
import type { Implementation, Unit } from '../unit.js';

const UNMAP_BIT = 0x08;

/** WRITE SAME writes in runs of this size: large I/Os, bounded memory (one buffer per command). */
export const WRITE_SAME_CHUNK_BYTES = 1024 * 1024;

/** GET LBA STATUS looks at most this far ahead per command; the initiator asks again from where we stop. */
const LBA_STATUS_SPAN_BYTES = 1024 * 1024 * 1024;

export const writeSame: Implementation = {
  check: (unit, cdb) => {
    // SBC-4 WRITE SAME: UNMAP=1 needs LBPWS (LBPWS10 for the 10-byte form), which only thin units report.
    if ((cdb[1]! & UNMAP_BIT) !== 0 && !unit.device.thin) throw invalidFieldInCdb(1, 3);
  },
  run: async (unit, { cdb, data, range }) => {
    const bs = unit.blockSize;
    let block: Buffer;
    if (ndob(cdb)) block = Buffer.alloc(bs);
    else if (data.length === bs) block = data;
    // The Data-Out is exactly one block (SBC-4 WRITE SAME); anything else is a malformed command.
    else throw illegalRequest(Asc.ParameterListLengthError);
    if (range.blocks === 0) return good();

    const zero = block.equals(Buffer.alloc(bs));
    const offset = range.lba * bs;
    if ((cdb[1]! & UNMAP_BIT) !== 0) {
      await discardMedium(unit.device, offset, range.blocks * bs);
      return good();
    }
    // Buffer.alloc(size, block) repeats the block natively: no per-block loop, and one buffer serves
    // every chunk of the run.
    const chunkBlocks = Math.min(range.blocks, Math.max(1, Math.floor(WRITE_SAME_CHUNK_BYTES / bs)));
    const chunk = zero ? Buffer.alloc(chunkBlocks * bs) : Buffer.alloc(chunkBlocks * bs, block);
    const fua = !unit.mode.writeCacheEnabled;
    for (let done = 0; done < range.blocks; done += chunkBlocks) {
      const n = Math.min(chunkBlocks, range.blocks - done);
      await writeMedium(unit.device, offset + done * bs, n === chunkBlocks ? chunk : chunk.subarray(0, n * bs), fua);
    }
    return good();
  },
};

interface UnmapDescriptor {
  lba: number;
  blocks: number;
}

/**
 * UNMAP parameter list (SBC-4 UNMAP): an 8-byte header, then 16-byte descriptors. Everything is checked
 * before anything is deallocated, so a refused list leaves the medium untouched.
 */
function parseUnmapList(unit: Unit, params: Buffer): UnmapDescriptor[] {
  // SBC-4 UNMAP: a list shorter than its header is PARAMETER LIST LENGTH ERROR.
  if (params.length < 8) throw illegalRequest(Asc.ParameterListLengthError);
  // A trailing partial descriptor is ignored (SBC-4 UNMAP); so is whatever lies past the list.
  const descriptorBytes = Math.min(u16(params, 2), params.length - 8);
  const count = Math.floor(descriptorBytes / 16);
  if (count > unit.limits.maxUnmapDescriptors) throw invalidFieldInParameterList(2);
  const out: UnmapDescriptor[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const at = 8 + 16 * i;
    const lba = u64(params, at);
    const blocks = u32(params, at + 8);
    if (lba > unit.blocks || lba + blocks > unit.blocks) throw lbaOutOfRange();
    total += blocks;
    if (total > unit.limits.maxUnmapBlocks) throw invalidFieldInParameterList(at + 8);
    if (blocks > 0) out.push({ lba, blocks });
  }
  return out;
}

export const unmap: Implementation = {
  run: async (unit, { cdb, data }) => {
    const listLength = u16(cdb, 7);
    // SBC-4 UNMAP: a PARAMETER LIST LENGTH of 0 is not an error; nothing is deallocated.
    if (listLength === 0) return good();
    const descriptors = parseUnmapList(unit, data.subarray(0, listLength));
    const bs = unit.blockSize;
    for (const d of descriptors) await discardMedium(unit.device, d.lba * bs, d.blocks * bs);
    return good();
  },
};

interface LbaStatus {
  lba: number;
  blocks: number;
  mapped: boolean;
}

/**
 * Backend extents (bytes) → LBA status runs (blocks) starting exactly at `start` (libiscsi and SBC-4
 * GET LBA STATUS want the first descriptor at the requested LBA), contiguous, with neighbours of equal status
 * merged. A stretch the backend did not describe is reported mapped: claiming "deallocated" wrongly
 * would let a backup tool skip real data, claiming "mapped" only costs it a read.
 */
export function lbaStatusRuns(
  unit: Unit,
  start: number,
  end: number,
  extents: ReadonlyArray<{ offset: number; length: number; mapped: boolean }>,
): LbaStatus[] {
  const bs = unit.blockSize;
  const runs: LbaStatus[] = [];
  const push = (lba: number, blocks: number, mapped: boolean) => {
    if (blocks <= 0) return;
    const last = runs[runs.length - 1];
    if (last && last.mapped === mapped && last.lba + last.blocks === lba) last.blocks += blocks;
    else runs.push({ lba, blocks, mapped });
  };
  let at = start;
  for (const e of [...extents].sort((a, b) => a.offset - b.offset)) {
    // A block partly mapped is mapped: round mapped extents outwards and holes inwards.
    const from = e.mapped ? Math.floor(e.offset / bs) : Math.ceil(e.offset / bs);
    const to = Math.min(end, e.mapped ? Math.ceil((e.offset + e.length) / bs) : Math.floor((e.offset + e.length) / bs));
    if (to <= at) continue;
    if (from > at) push(at, Math.min(from, end) - at, true);
    const begin = Math.max(from, at);
    push(begin, to - begin, e.mapped);
    at = to;
    if (at >= end) break;
  }
  if (runs.length === 0) push(start, end - start, true);
  return runs;
}

export const getLbaStatus: Implementation = {
  run: async (unit, { cdb }) => {
    const lba = u64(cdb, 2);
    const allocation = u32(cdb, 10);
    // SBC-4 GET LBA STATUS: the starting LBA must address a block of the medium.
    if (lba >= unit.blocks) throw lbaOutOfRange();
    const bs = unit.blockSize;
    const end = Math.min(unit.blocks, lba + Math.max(1, Math.floor(LBA_STATUS_SPAN_BYTES / bs)));
    const extents = await extentsOf(unit.device, lba * bs, (end - lba) * bs);
    const runs = lbaStatusRuns(unit, lba, end, extents);
    // As many descriptors as the allocation length has room for (at least one, so the response says
    // how long it would be), each 16 bytes after the 8-byte header.
    const room = Math.max(1, Math.floor((Math.max(allocation, 8) - 8) / 16));
    const shown = runs.slice(0, room);
    const out = Buffer.alloc(8 + 16 * shown.length);
    out.writeUInt32BE(out.length - 4, 0); // PARAMETER DATA LENGTH: the bytes after this field
    shown.forEach((r, i) => {
      const at = 8 + 16 * i;
      putU64(out, at, r.lba);
      out.writeUInt32BE(r.blocks, at + 8);
      out[at + 12] = r.mapped ? 0x00 : 0x01; // PROVISIONING STATUS: mapped / deallocated
    });
    return { status: ScsiStatus.Good, dataIn: out.subarray(0, Math.min(out.length, allocation)) };
  },
};
