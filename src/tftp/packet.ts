/**
 * TFTP packet codec: RRQ, WRQ, DATA, ACK, ERROR (RFC 1350) and OACK with request options (RFC 2347).
 * Pure — bytes in, typed packets out, and back. Anything that is not a well-formed packet throws a
 * TftpParseError naming the reason, so the server can count and log it; no input makes it throw
 * anything else.
 */

export const OPCODE = { rrq: 1, wrq: 2, data: 3, ack: 4, error: 5, oack: 6 } as const;

/** RFC 1350 error codes, and 8 from RFC 2347 (the client refuses the offered options). */
export const ERROR_CODE = {
  notDefined: 0,
  fileNotFound: 1,
  accessViolation: 2,
  diskFull: 3,
  illegalOperation: 4,
  unknownTransferId: 5,
  fileExists: 6,
  noSuchUser: 7,
  optionRefused: 8,
} as const;

/** RFC 2348's block size range. */
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;
/** The largest DATA packet: opcode, block number and the largest block. Nothing valid is longer. */
export const MAX_PACKET_BYTES = 4 + MAX_BLKSIZE;
/** RFC 2347: a request, options included, fits in 512 octets. */
export const MAX_REQUEST_BYTES = 512;
/**
 * An ERROR is read by clients into a 516-byte buffer (opcode, code, 512 bytes of data), so the
 * messages we send are clipped to fit it with their NUL.
 */
const MAX_ERROR_MESSAGE_BYTES = 511;

export type TransferMode = 'octet' | 'netascii' | 'mail';

/**
 * Options in the order they were sent. Names are lowercased (RFC 2347: case-insensitive); a Map, not
 * an object, so a name like "__proto__" is just a name.
 */
export type TftpOptions = Map<string, string>;

export interface RequestPacket {
  type: 'rrq' | 'wrq';
  filename: string;
  mode: TransferMode;
  options: TftpOptions;
}
export interface DataPacket {
  type: 'data';
  /** The wire block number, 0–65535 (it wraps on long transfers). */
  block: number;
  data: Buffer;
}
export interface AckPacket {
  type: 'ack';
  block: number;
}
export interface ErrorPacket {
  type: 'error';
  code: number;
  message: string;
}
export interface OackPacket {
  type: 'oack';
  options: TftpOptions;
}
export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

export class TftpParseError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'TftpParseError';
  }
}

const MODES: ReadonlySet<string> = new Set(['octet', 'netascii', 'mail']);
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decode(buf: Buffer): TftpPacket {
  if (buf.length < 2) throw new TftpParseError(`${buf.length}-byte packet is shorter than an opcode`);
  if (buf.length > MAX_PACKET_BYTES) {
    throw new TftpParseError(`${buf.length}-byte packet is larger than any TFTP packet (${MAX_PACKET_BYTES})`);
  }
  const op = buf.readUInt16BE(0);
  switch (op) {
    case OPCODE.rrq:
    case OPCODE.wrq:
      return decodeRequest(buf, op === OPCODE.rrq ? 'rrq' : 'wrq');
    case OPCODE.data:
      if (buf.length < 4) throw new TftpParseError('DATA packet without a block number');
      return { type: 'data', block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case OPCODE.ack:
      if (buf.length !== 4) throw new TftpParseError(`ACK packet of ${buf.length} bytes (an ACK is 4)`);
      return { type: 'ack', block: buf.readUInt16BE(2) };
    case OPCODE.error:
      return decodeError(buf);
    case OPCODE.oack: {
      const options = decodeOptions(nulTerminated(buf, 2, 'OACK'), 0, 'OACK');
      if (options.size === 0) throw new TftpParseError('OACK without options');
      return { type: 'oack', options };
    }
    default:
      throw new TftpParseError(`unknown opcode ${op}`);
  }
}

function decodeRequest(buf: Buffer, type: 'rrq' | 'wrq'): RequestPacket {
  const what = type.toUpperCase();
  if (buf.length > MAX_REQUEST_BYTES) {
    throw new TftpParseError(`${what} of ${buf.length} bytes exceeds the ${MAX_REQUEST_BYTES} a request may have`);
  }
  const fields = nulTerminated(buf, 2, what);
  const [rawName, rawMode] = fields;
  if (rawName === undefined || rawMode === undefined) throw new TftpParseError(`${what} without a file name and a mode`);
  const filename = text(rawName, 'file name');
  if (filename === '') throw new TftpParseError(`${what} with an empty file name`);
  const mode = text(rawMode, 'mode').toLowerCase();
  if (!MODES.has(mode)) throw new TftpParseError(`unknown transfer mode ${quote(mode)}`);
  return { type, filename, mode: mode as TransferMode, options: decodeOptions(fields, 2, what) };
}

function decodeError(buf: Buffer): ErrorPacket {
  if (buf.length < 5) throw new TftpParseError('ERROR packet without a code and a message');
  const end = buf.indexOf(0, 4);
  if (end === -1) throw new TftpParseError('ERROR message is not NUL-terminated');
  if (!isPadding(buf, end + 1)) throw new TftpParseError('bytes after the ERROR message');
  // The message is only ever logged, so a stray non-UTF-8 byte is replaced rather than refused.
  return { type: 'error', code: buf.readUInt16BE(2), message: buf.toString('utf8', 4, end) };
}

/**
 * Splits everything from `start` into NUL-terminated fields. NUL bytes after the last field are
 * padding some clients add; they are dropped here, so "name\0value\0\0\0" is one option.
 */
function nulTerminated(buf: Buffer, start: number, what: string): Buffer[] {
  if (buf.length === start) return [];
  // `last` ends up on the last field's own NUL; found once from the end, so this stays linear.
  let last = buf.length;
  while (last > start && buf[last - 1] === 0) last--;
  if (last === buf.length) throw new TftpParseError(`${what} does not end with a NUL terminator`);
  const fields: Buffer[] = [];
  for (let pos = start; pos <= last; ) {
    const nul = buf.indexOf(0, pos);
    fields.push(buf.subarray(pos, nul));
    pos = nul + 1;
  }
  return fields;
}

function decodeOptions(fields: Buffer[], from: number, what: string): TftpOptions {
  const options: TftpOptions = new Map();
  for (let i = from; i < fields.length; i += 2) {
    const rawName = fields[i] as Buffer;
    const rawValue = fields[i + 1];
    const name = text(rawName, 'option name').toLowerCase();
    if (name === '') throw new TftpParseError(`${what} with an empty option name`);
    if (rawValue === undefined) throw new TftpParseError(`${what} option ${quote(name)} has no value`);
    if (options.has(name)) throw new TftpParseError(`${what} option ${quote(name)} given twice`);
    options.set(name, text(rawValue, `option ${quote(name)}`));
  }
  return options;
}

function isPadding(buf: Buffer, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

function text(raw: Buffer, what: string): string {
  try {
    return utf8.decode(raw);
  } catch {
    throw new TftpParseError(`${what} is not valid UTF-8`);
  }
}

/** A peer's string inside a reason: escaped and short, so a log line stays one readable line. */
function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

export function encode(packet: TftpPacket): Buffer {
  switch (packet.type) {
    case 'rrq':
    case 'wrq':
      return withOpcode(OPCODE[packet.type], strings([packet.filename, packet.mode, ...flatten(packet.options)]));
    case 'data': {
      if (packet.data.length > MAX_BLKSIZE) throw new RangeError(`DATA block of ${packet.data.length} bytes exceeds ${MAX_BLKSIZE}`);
      const buf = Buffer.allocUnsafe(4 + packet.data.length);
      buf.writeUInt16BE(OPCODE.data, 0);
      buf.writeUInt16BE(blockNumber(packet.block), 2);
      packet.data.copy(buf, 4);
      return buf;
    }
    case 'ack': {
      const buf = Buffer.allocUnsafe(4);
      buf.writeUInt16BE(OPCODE.ack, 0);
      buf.writeUInt16BE(blockNumber(packet.block), 2);
      return buf;
    }
    case 'error': {
      if (!Number.isInteger(packet.code) || packet.code < 0 || packet.code > 0xffff) throw new RangeError(`bad error code ${packet.code}`);
      let message: Buffer = Buffer.from(packet.message.replaceAll('\0', ' '), 'utf8');
      if (message.length > MAX_ERROR_MESSAGE_BYTES) message = clipUtf8(message, MAX_ERROR_MESSAGE_BYTES);
      const buf = Buffer.alloc(5 + message.length);
      buf.writeUInt16BE(OPCODE.error, 0);
      buf.writeUInt16BE(packet.code, 2);
      message.copy(buf, 4);
      return buf;
    }
    case 'oack':
      if (packet.options.size === 0) throw new RangeError('an OACK needs at least one option');
      return withOpcode(OPCODE.oack, strings(flatten(packet.options)));
  }
}

function blockNumber(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`block number ${n} is not 0–65535`);
  return n;
}

function flatten(options: TftpOptions): string[] {
  return [...options].flat();
}

function strings(fields: string[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    if (f.includes('\0')) throw new RangeError(`a TFTP string cannot contain NUL: ${quote(f)}`);
    parts.push(Buffer.from(f, 'utf8'), Buffer.alloc(1));
  }
  return Buffer.concat(parts);
}

function withOpcode(op: number, body: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(2 + body.length);
  buf.writeUInt16BE(op, 0);
  body.copy(buf, 2);
  return buf;
}

/** Cuts at most `max` bytes without splitting a UTF-8 sequence. */
function clipUtf8(buf: Buffer, max: number): Buffer {
  let end = max;
  while (end > 0 && ((buf[end] as number) & 0xc0) === 0x80) end--;
  return buf.subarray(0, end);
}
