/**
 * Reading CDB fields. All multi-byte fields are big-endian (SPC-4). Callers check the CDB length
 * against the command's catalogue entry first, so these never read past the end.
 */

export const u16 = (b: Buffer, at: number): number => b.readUInt16BE(at);
export const u24 = (b: Buffer, at: number): number => (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!;
export const u32 = (b: Buffer, at: number): number => b.readUInt32BE(at);

/**
 * An 8-byte LBA as a number. Above 2^53 it loses precision, which is harmless: every such value is far
 * beyond any capacity we can serve (a 2^53-byte device), so it is out of range either way.
 */
export const u64 = (b: Buffer, at: number): number => b.readUInt32BE(at) * 0x1_0000_0000 + b.readUInt32BE(at + 4);

/** Writes a number up to 2^53 as an 8-byte big-endian field. */
export function putU64(b: Buffer, at: number, value: number): void {
  b.writeUInt32BE(Math.floor(value / 0x1_0000_0000), at);
  b.writeUInt32BE(value % 0x1_0000_0000, at + 4);
}

/** The service action of a command that has one: the low 5 bits of byte 1 (SPC-4). */
export const serviceAction = (cdb: Buffer): number => (cdb.length > 1 ? cdb[1]! & 0x1f : 0);

/** The highest set bit of a byte, for the sense bit pointer. */
export function highestBit(byte: number): number {
  return 31 - Math.clz32(byte & 0xff);
}
