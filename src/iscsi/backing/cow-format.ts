import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { BackingError } from './errors.js';
import { readFully } from './file-io.js';

/**
 * On-disk format of a copy-on-write overlay, version 1. See docs/cow-overlay-format.md for the
 * reasoning; this module only encodes, decodes and validates.
 *
 *   [0, 4096)                 header (below), written once at creation, never rewritten
 *   [4096, 4096 + mapLength)  allocation map: 2 bits per cluster, cluster i in byte i>>2 at bit 2*(i&3)
 *                             0 = read from the golden image, 1 = in the overlay, 2 = zeroes, 3 = invalid
 *   [dataOffset, …)           data area, direct-mapped: device byte x lives at dataOffset + x
 *                             (sparse: only clusters in state 1 are ever written)
 *
 * Header (little-endian):
 *     0   8  magic "HBCOWOVL"
 *     8   4  version = 1
 *    12   4  header size = 4096
 *    16   4  log2(cluster size)
 *    20   4  flags = 0 (a set bit this version does not know makes open refuse)
 *    24   8  virtual size (bytes, multiple of 512)
 *    32   8  map offset (= 4096)
 *    40   8  map length (bytes, multiple of 4096)
 *    48   8  data offset (multiple of 1 MiB)
 *    56   8  golden image size (bytes)
 *    64   8  golden image mtime (ns since the epoch)
 *    72  32  golden image fingerprint (sha256 of size + sampled content, see goldenIdentity)
 *   104  16  overlay uuid (random, names this disk in logs)
 *   120   8  creation time (ms since the epoch)
 *   128   2  golden path length n, then n bytes of UTF-8: where the golden image was (informational)
 *  4064  32  sha256 of bytes [0, 4064)
 */

export const MAGIC = Buffer.from('HBCOWOVL', 'latin1');
export const VERSION = 1;
export const HEADER_SIZE = 4096;
export const DEFAULT_CLUSTER_SIZE = 4096;
const MIN_CLUSTER_BITS = 12; // 4 KiB: below a file system block, punched holes would free nothing
const MAX_CLUSTER_BITS = 20; // 1 MiB
const DATA_ALIGN = 1 << 20;
const PAGE = 4096;
const CHECKSUM_AT = HEADER_SIZE - 32;
const MAX_PATH_BYTES = CHECKSUM_AT - 130;
/** Keeps the in-memory map under 1 GiB (2^32 clusters) and every offset a safe integer. */
const MAX_CLUSTERS = 2 ** 32;

export interface CowLayout {
  clusterSize: number;
  clusterCount: number;
  virtualSize: number;
  mapOffset: number;
  mapLength: number;
  dataOffset: number;
  /** File size: the data area holds whole clusters, so the last, partial one can be written whole. */
  fileSize: number;
}

export interface GoldenIdentity {
  size: number;
  mtimeNs: bigint;
  fingerprint: Buffer;
}

export interface CowHeader {
  version: number;
  layout: CowLayout;
  golden: GoldenIdentity;
  goldenPath: string;
  uuid: string;
  createdAt: Date;
}

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

export function layoutFor(virtualSize: number, clusterSize: number): CowLayout {
  const bits = Math.log2(clusterSize);
  if (!Number.isInteger(bits) || bits < MIN_CLUSTER_BITS || bits > MAX_CLUSTER_BITS) {
    throw new BackingError('OUT_OF_RANGE', `cluster size ${clusterSize} is not a power of two from 4 KiB to 1 MiB`);
  }
  if (!Number.isSafeInteger(virtualSize) || virtualSize <= 0 || virtualSize % 512 !== 0) {
    throw new BackingError('OUT_OF_RANGE', `virtual size ${virtualSize} is not a positive multiple of 512`);
  }
  const clusterCount = Math.ceil(virtualSize / clusterSize);
  if (clusterCount > MAX_CLUSTERS) throw new BackingError('OUT_OF_RANGE', `virtual size ${virtualSize} needs more than 2^32 clusters`);
  const mapOffset = HEADER_SIZE;
  const mapLength = roundUp(Math.ceil(clusterCount / 4), PAGE);
  const dataOffset = roundUp(mapOffset + mapLength, DATA_ALIGN);
  return { clusterSize, clusterCount, virtualSize, mapOffset, mapLength, dataOffset, fileSize: dataOffset + clusterCount * clusterSize };
}

export function encodeHeader(h: CowHeader): Buffer {
  const buf = Buffer.alloc(HEADER_SIZE);
  const { layout, golden } = h;
  MAGIC.copy(buf, 0);
  buf.writeUInt32LE(h.version, 8);
  buf.writeUInt32LE(HEADER_SIZE, 12);
  buf.writeUInt32LE(Math.log2(layout.clusterSize), 16);
  buf.writeUInt32LE(0, 20);
  buf.writeBigUInt64LE(BigInt(layout.virtualSize), 24);
  buf.writeBigUInt64LE(BigInt(layout.mapOffset), 32);
  buf.writeBigUInt64LE(BigInt(layout.mapLength), 40);
  buf.writeBigUInt64LE(BigInt(layout.dataOffset), 48);
  buf.writeBigUInt64LE(BigInt(golden.size), 56);
  buf.writeBigUInt64LE(golden.mtimeNs, 64);
  golden.fingerprint.copy(buf, 72, 0, 32);
  Buffer.from(h.uuid.replaceAll('-', ''), 'hex').copy(buf, 104, 0, 16);
  buf.writeBigUInt64LE(BigInt(h.createdAt.getTime()), 120);
  const path = Buffer.from(h.goldenPath, 'utf8');
  if (path.length > MAX_PATH_BYTES) throw new BackingError('OUT_OF_RANGE', `golden path is longer than ${MAX_PATH_BYTES} bytes`);
  buf.writeUInt16LE(path.length, 128);
  path.copy(buf, 130);
  createHash('sha256').update(buf.subarray(0, CHECKSUM_AT)).digest().copy(buf, CHECKSUM_AT);
  return buf;
}

function formatUuid(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Decodes and validates a header; `where` names the file in errors. */
export function decodeHeader(buf: Buffer, where: string): CowHeader {
  const bad = (why: string): never => {
    throw new BackingError('BAD_FORMAT', `${where}: ${why}`);
  };
  if (buf.length < HEADER_SIZE || !buf.subarray(0, 8).equals(MAGIC)) bad('not a hiveboot copy-on-write overlay (bad magic)');
  const version = buf.readUInt32LE(8);
  if (version !== VERSION) bad(`overlay format version ${version}; this build reads version ${VERSION}`);
  const sum = createHash('sha256').update(buf.subarray(0, CHECKSUM_AT)).digest();
  if (!sum.equals(buf.subarray(CHECKSUM_AT, HEADER_SIZE))) bad('header checksum mismatch (the header is damaged)');
  if (buf.readUInt32LE(12) !== HEADER_SIZE) bad(`header size ${buf.readUInt32LE(12)}`);
  const flags = buf.readUInt32LE(20);
  if (flags !== 0) bad(`unknown header flags 0x${flags.toString(16)}`);
  const u64 = (at: number): number => {
    const v = buf.readBigUInt64LE(at);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) bad(`field at ${at} out of range`);
    return Number(v);
  };
  const bits = buf.readUInt32LE(16);
  if (bits < MIN_CLUSTER_BITS || bits > MAX_CLUSTER_BITS) bad(`cluster size 2^${bits}`);
  let layout: CowLayout;
  try {
    layout = layoutFor(u64(24), 2 ** bits);
  } catch (err) {
    return bad((err as Error).message);
  }
  // The layout is derived, not trusted: a header whose stored offsets disagree was not written by us.
  if (u64(32) !== layout.mapOffset || u64(40) !== layout.mapLength || u64(48) !== layout.dataOffset) bad('map or data offsets do not match the layout');
  const pathLength = buf.readUInt16LE(128);
  if (pathLength > MAX_PATH_BYTES) bad('golden path length out of range');
  return {
    version,
    layout,
    golden: { size: u64(56), mtimeNs: buf.readBigUInt64LE(64), fingerprint: Buffer.from(buf.subarray(72, 104)) },
    uuid: formatUuid(buf.subarray(104, 120)),
    createdAt: new Date(u64(120)),
    goldenPath: buf.toString('utf8', 130, 130 + pathLength),
  };
}

const EDGE = 64 * 1024;
const SAMPLES = 62;
const SAMPLE = 4096;

/**
 * Who the golden image is: size, mtime, and a fingerprint of its first and last 64 KiB (partition
 * tables, boot loader, backup GPT) plus 62 blocks of 4 KiB spread evenly over it. Hashing the whole
 * image would make a clone of 20 GiB take minutes instead of milliseconds; 64 reads that are almost
 * always in the page cache (every host shares the golden image) take well under one. mtime catches
 * an image changed in place; the fingerprint catches a different image put at the same path with
 * its timestamps preserved.
 */
export async function goldenIdentity(fh: FileHandle): Promise<GoldenIdentity> {
  const st = await fh.stat({ bigint: true });
  const size = Number(st.size);
  const spans: [number, number][] = [[0, Math.min(EDGE, size)]];
  for (let i = 1; i <= SAMPLES; i++) {
    const at = Math.floor((i * size) / (SAMPLES + 1) / SAMPLE) * SAMPLE;
    spans.push([at, Math.min(SAMPLE, size - at)]);
  }
  spans.push([Math.max(0, size - EDGE), Math.min(EDGE, size)]);
  const parts = await Promise.all(
    spans.map(async ([at, len]) => {
      const b = Buffer.allocUnsafe(Math.max(0, len));
      await readFully(fh, b, at);
      return b;
    }),
  );
  const hash = createHash('sha256');
  const sizeBytes = Buffer.alloc(8);
  sizeBytes.writeBigUInt64LE(st.size);
  hash.update(sizeBytes);
  for (const p of parts) hash.update(p);
  return { size, mtimeNs: st.mtimeNs, fingerprint: hash.digest() };
}

function nsToDate(ns: bigint): string {
  return `${new Date(Number(ns / 1_000_000n)).toISOString()} (@${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')})`;
}

/** Refuses an overlay whose golden image changed since the overlay was made, saying what changed. */
export function checkGolden(expected: GoldenIdentity, actual: GoldenIdentity, goldenPath: string, overlayPath: string): void {
  const prefix = `golden image ${goldenPath} is not the one overlay ${overlayPath} was made from`;
  if (actual.size !== expected.size) {
    throw new BackingError('GOLDEN_MISMATCH', `${prefix}: size is ${actual.size} bytes, was ${expected.size}`);
  }
  if (!actual.fingerprint.equals(expected.fingerprint)) {
    throw new BackingError('GOLDEN_MISMATCH', `${prefix}: its content differs`);
  }
  if (actual.mtimeNs !== expected.mtimeNs) {
    throw new BackingError(
      'GOLDEN_MISMATCH',
      `${prefix}: modified at ${nsToDate(actual.mtimeNs)}, was ${nsToDate(expected.mtimeNs)}. ` +
        `If it is byte-identical (copied without keeping timestamps), restore its time with ` +
        `touch -m -d @${expected.mtimeNs / 1_000_000_000n}.${(expected.mtimeNs % 1_000_000_000n).toString().padStart(9, '0')} ${goldenPath}`,
    );
  }
}
