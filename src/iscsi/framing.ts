// Cuts a TCP byte stream into iSCSI PDUs (RFC 7143 §11.2): BHS, AHS, optional header digest, data
// segment padded to 4 bytes, optional data digest. Lengths are checked before anything is buffered,
// so an absurd DataSegmentLength costs nothing but the connection.

import { crc32c } from '@node-rs/crc32';
import { BHS_LENGTH } from './pdu.js';

export interface Frame {
  bhs: Buffer;
  ahs: Buffer;
  data: Buffer;
  /** false when the data digest did not match (the header was fine: the PDU can be rejected). */
  dataDigestOk: boolean;
}

export class FramingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FramingError';
  }
}

export interface FramingLimits {
  headerDigest: boolean;
  dataDigest: boolean;
  /** Our MaxRecvDataSegmentLength: the largest data segment we accept. */
  maxDataSegmentLength: number;
}

const EMPTY = Buffer.alloc(0);

/** iSCSI digests are CRC32C sent least significant byte first (RFC 7143 §13.1, iSCSI CRC32C). */
export function digestOf(...parts: Buffer[]): number {
  let crc = 0;
  for (const part of parts) crc = crc32c(part, crc);
  return crc >>> 0;
}

export function padLength(n: number): number {
  return (4 - (n & 3)) & 3;
}

const PADDING = Buffer.alloc(4);

/**
 * The buffers to write for one PDU. `bhs` is a 48-byte header made by the encoders in pdu.ts; `data`
 * is sent as is (not copied) followed by its padding.
 */
export function framePdu(bhs: Buffer, data: Buffer | undefined, digests: { header: boolean; data: boolean }): Buffer[] {
  const out: Buffer[] = [];
  if (digests.header) {
    const withDigest = Buffer.allocUnsafe(BHS_LENGTH + 4);
    bhs.copy(withDigest, 0);
    withDigest.writeUInt32LE(digestOf(bhs), BHS_LENGTH);
    out.push(withDigest);
  } else {
    out.push(bhs);
  }
  if (data && data.length > 0) {
    out.push(data);
    const pad = padLength(data.length);
    const padding = PADDING.subarray(0, pad);
    if (pad) out.push(padding);
    if (digests.data) {
      const d = Buffer.allocUnsafe(4);
      d.writeUInt32LE(digestOf(data, padding), 0);
      out.push(d);
    }
  }
  return out;
}

/**
 * Where to put the data segment of a PDU that arrived in several socket chunks, asked with the PDU's
 * (digest-checked) header: a Buffer of exactly `dataLength` bytes, or undefined for a fresh one.
 */
export type DataTarget = (bhs: Buffer, dataLength: number) => Buffer | undefined;

/** Incremental reader: push() socket chunks, then next() returns whole frames until it returns undefined. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /**
   * Lets the owner receive a large data segment straight into its final place (a Data-Out into its
   * command's buffer) instead of into a gathered copy that is copied again. The bytes land there
   * before the owner sees the PDU, so it may only hand out memory that a PDU it then rejects may
   * overwrite. A segment that sits in one socket chunk is never copied (see take()).
   */
  dataTarget: DataTarget | undefined;

  constructor(public limits: FramingLimits) {}

  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Throws FramingError when the stream cannot be trusted any more (the connection must close). */
  next(): Frame | undefined {
    if (this.buffered < BHS_LENGTH) return undefined;
    const bhs = this.peek(BHS_LENGTH);
    const ahsLength = bhs[4]! * 4;
    const dataLength = bhs.readUIntBE(5, 3);
    if (dataLength > this.limits.maxDataSegmentLength) {
      throw new FramingError(`data segment of ${dataLength} bytes exceeds MaxRecvDataSegmentLength ${this.limits.maxDataSegmentLength}`);
    }
    const headerDigestLength = this.limits.headerDigest ? 4 : 0;
    const paddedData = dataLength + padLength(dataLength);
    const dataDigestLength = this.limits.dataDigest && dataLength > 0 ? 4 : 0;
    const headerLength = BHS_LENGTH + ahsLength + headerDigestLength;
    const total = headerLength + paddedData + dataDigestLength;
    if (this.buffered < total) return undefined;
    if (dataLength > 0 && this.dataTarget !== undefined && this.chunks[0]!.length < total) {
      return this.nextInParts(headerLength, ahsLength, dataLength, paddedData - dataLength + dataDigestLength);
    }

    const pdu = this.take(total);
    const header = pdu.subarray(0, BHS_LENGTH);
    const ahs = ahsLength ? pdu.subarray(BHS_LENGTH, BHS_LENGTH + ahsLength) : EMPTY;
    let offset = BHS_LENGTH + ahsLength;
    if (headerDigestLength) {
      const expected = pdu.readUInt32LE(offset);
      if (digestOf(pdu.subarray(0, offset)) !== expected) throw new FramingError('header digest mismatch');
      offset += 4;
    }
    const data = dataLength ? pdu.subarray(offset, offset + dataLength) : EMPTY;
    let dataDigestOk = true;
    if (dataDigestLength) {
      const expected = pdu.readUInt32LE(offset + paddedData);
      dataDigestOk = digestOf(pdu.subarray(offset, offset + paddedData)) === expected;
    }
    return { bhs: header, ahs, data, dataDigestOk };
  }

  /** A whole PDU spread over several chunks: header, then data (into dataTarget's buffer if it gives one), then padding and digest. */
  private nextInParts(headerLength: number, ahsLength: number, dataLength: number, trailerLength: number): Frame {
    const head = this.take(headerLength);
    const digested = BHS_LENGTH + ahsLength;
    if (headerLength > digested && digestOf(head.subarray(0, digested)) !== head.readUInt32LE(digested)) {
      throw new FramingError('header digest mismatch');
    }
    const header = head.subarray(0, BHS_LENGTH);
    const ahs = ahsLength ? head.subarray(BHS_LENGTH, digested) : EMPTY;
    const target = this.dataTarget!(header, dataLength);
    const data = target !== undefined && target.length === dataLength ? this.takeInto(target) : this.take(dataLength);
    const trailer = trailerLength ? this.take(trailerLength) : EMPTY;
    let dataDigestOk = true;
    if (this.limits.dataDigest) {
      const pad = trailerLength - 4;
      dataDigestOk = digestOf(data, trailer.subarray(0, pad)) === trailer.readUInt32LE(pad);
    }
    return { bhs: header, ahs, data, dataDigestOk };
  }

  /** The first n buffered bytes, without consuming them (copies only when they span chunks). */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    return this.gather(Buffer.allocUnsafe(n), false);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) {
      // Zero-copy: every chunk is a fresh buffer from the socket, so a view of it stays valid.
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    return this.gather(Buffer.allocUnsafe(n), true);
  }

  /** Consumes out.length bytes into `out`. */
  private takeInto(out: Buffer): Buffer {
    return this.gather(out, true);
  }

  private gather(out: Buffer, consume: boolean): Buffer {
    const n = out.length;
    let copied = 0;
    let i = 0;
    while (copied < n) {
      const chunk = this.chunks[i]!;
      const part = Math.min(chunk.length, n - copied);
      chunk.copy(out, copied, 0, part);
      copied += part;
      if (consume) {
        if (part === chunk.length) {
          this.chunks.shift();
        } else {
          this.chunks[0] = chunk.subarray(part);
          i = 0;
        }
      } else {
        i++;
      }
    }
    if (consume) this.buffered -= n;
    return out;
  }
}
