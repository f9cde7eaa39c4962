/**
 * iSCSI text segments (RFC 7143 §6): the key=value pairs carried by Login and Text PDUs. Pure: bytes in,
 * ordered pairs out, and back, plus the value formats keys use (lists, Yes/No, numbers, binary items)
 * and the C-bit plumbing shared by Login and Text exchanges (reassembly of a segment sent over several
 * PDUs, and splitting of our own long answers).
 *
 * Nothing here throws on peer input: parse errors are values. The builders throw only on our own
 * programming errors, and their messages name the key, never a value.
 */

/** §6.1: a key name is at most 63 bytes. */
export const MAX_KEY_LENGTH = 63;
/** §6.1: a value is at most 255 bytes unless its key says otherwise. */
export const MAX_VALUE_LENGTH = 255;
/**
 * §12.1.3: CHAP_C and CHAP_R are large-binary values; initiators and targets (open-iscsi, tgt) cap
 * them at 1024 bytes, i.e. "0x" and 2048 hex digits.
 */
export const MAX_LARGE_BINARY_BYTES = 1024;
export const MAX_LARGE_VALUE_LENGTH = 2 + 2 * MAX_LARGE_BINARY_BYTES;
/**
 * §6.1: everyone must accept 8192 bytes of key=value text in one negotiation step, and 64 KiB when an
 * authentication method uses long items. We take the larger as the cap of a reassembled segment.
 */
export const MAX_TEXT_SEGMENT = 65536;
/**
 * Until MaxRecvDataSegmentLength is in force (after login), each side assumes the default 8192 bytes
 * (§13.12), so a Login PDU's data segment is at most this long in either direction.
 */
export const LOGIN_PDU_DATA_LIMIT = 8192;

/** §6.2: the constant answers to a key. */
export const NOT_UNDERSTOOD = 'NotUnderstood';
export const IRRELEVANT = 'Irrelevant';
export const REJECT = 'Reject';
export type ConstantAnswer = typeof NOT_UNDERSTOOD | typeof IRRELEVANT | typeof REJECT;

export interface TextPair {
  key: string;
  value: string;
}

export type TextParseError =
  | { kind: 'unterminated' }
  | { kind: 'no-separator' }
  | { kind: 'bad-key' }
  | { kind: 'key-too-long' }
  | { kind: 'bad-encoding'; key: string }
  | { kind: 'value-too-long'; key: string }
  | { kind: 'duplicate-key'; key: string }
  | { kind: 'too-long' };

export type TextParseResult = { ok: true; pairs: TextPair[] } | { ok: false; error: TextParseError };

export interface TextParseOptions {
  /** Longest value accepted for a key, in bytes. Default: valueLimit(). */
  maxValueLength?: (key: string) => number;
  /** Keys that may appear more than once (TargetName/TargetAddress in a SendTargets answer). */
  repeatable?: (key: string) => boolean;
  /** Cap on the whole segment. Default MAX_TEXT_SEGMENT. */
  maxLength?: number;
}

/** The value limit of a key: CHAP_C and CHAP_R are large-binary (§12.1.3), everything else 255 (§6.1). */
export function valueLimit(key: string): number {
  return key === 'CHAP_C' || key === 'CHAP_R' ? MAX_LARGE_VALUE_LENGTH : MAX_VALUE_LENGTH;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A key is printable ASCII without '=' (§6.1 standard-label, X- and X# extension names). A key that is
 * well formed but outside the standard grammar (lowercase start, say) is still parsed, so the caller
 * can answer NotUnderstood rather than fail the whole exchange.
 */
const KEY_PATTERN = /^[\x21-\x3c\x3e-\x7e]+$/;

/**
 * Parses a complete text segment. Every pair ends with a NUL (§6.1); empty strings between NULs (zero
 * padding some stacks leave behind) are skipped. A key seen twice is an error unless repeatable (§6.2:
 * a key is negotiated or declared once).
 */
export function parseText(data: Buffer, options: TextParseOptions = {}): TextParseResult {
  const maxLength = options.maxLength ?? MAX_TEXT_SEGMENT;
  if (data.length > maxLength) return { ok: false, error: { kind: 'too-long' } };
  const limitOf = options.maxValueLength ?? valueLimit;
  const pairs: TextPair[] = [];
  const seen = new Set<string>();
  let start = 0;
  while (start < data.length) {
    const end = data.indexOf(0, start);
    if (end < 0) return { ok: false, error: { kind: 'unterminated' } };
    if (end === start) {
      start = end + 1;
      continue;
    }
    const eq = data.indexOf(0x3d, start);
    if (eq < 0 || eq > end) return { ok: false, error: { kind: 'no-separator' } };
    if (eq - start > MAX_KEY_LENGTH) return { ok: false, error: { kind: 'key-too-long' } };
    const key = data.toString('latin1', start, eq);
    if (!KEY_PATTERN.test(key)) return { ok: false, error: { kind: 'bad-key' } };
    if (end - eq - 1 > limitOf(key)) return { ok: false, error: { kind: 'value-too-long', key } };
    let value: string;
    try {
      value = utf8.decode(data.subarray(eq + 1, end));
    } catch {
      return { ok: false, error: { kind: 'bad-encoding', key } };
    }
    if (seen.has(key) && !options.repeatable?.(key)) return { ok: false, error: { kind: 'duplicate-key', key } };
    seen.add(key);
    pairs.push({ key, value });
    start = end + 1;
  }
  return { ok: true, pairs };
}

/**
 * A peer-supplied value made safe for a log line or an event: control characters replaced, length
 * capped. Values may hold any byte but NUL, newlines included.
 */
export function printable(value: string, max = 80): string {
  const clean = value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/** A short description of a parse error for logs and events (keys only, never values). */
export function describeTextError(error: TextParseError): string {
  switch (error.kind) {
    case 'unterminated':
      return 'text segment does not end with NUL';
    case 'no-separator':
      return 'text item without "="';
    case 'bad-key':
      return 'malformed key name';
    case 'key-too-long':
      return `key name longer than ${MAX_KEY_LENGTH} bytes`;
    case 'bad-encoding':
      return `value of ${error.key} is not UTF-8`;
    case 'value-too-long':
      return `value of ${error.key} is too long`;
    case 'duplicate-key':
      return `key ${error.key} sent twice`;
    case 'too-long':
      return 'text segment too long';
  }
}

/** Builds a text segment: each pair as key=value followed by NUL (§6.1). Throws on our own bad input. */
export function buildText(pairs: readonly TextPair[]): Buffer {
  const parts: Buffer[] = [];
  for (const { key, value } of pairs) {
    if (key.length === 0 || key.length > MAX_KEY_LENGTH || !KEY_PATTERN.test(key)) {
      throw new TypeError('invalid iSCSI text key');
    }
    if (value.includes('\0')) throw new TypeError(`value of ${key} contains NUL`);
    parts.push(Buffer.from(`${key}=${value}\0`, 'utf8'));
  }
  return Buffer.concat(parts);
}

/** §6.1 list-of-values: comma-separated, no empty item. null when malformed. */
export function parseList(value: string): string[] | null {
  const items = value.split(',');
  return items.every((item) => item.length > 0) ? items : null;
}

/** §6.1 boolean-value. */
export function parseBoolean(value: string): boolean | null {
  if (value === 'Yes') return true;
  if (value === 'No') return false;
  return null;
}

export function formatBoolean(value: boolean): 'Yes' | 'No' {
  return value ? 'Yes' : 'No';
}

const DECIMAL = /^(?:0|[1-9][0-9]{0,15})$/;
const HEX = /^0[xX]([0-9a-fA-F]+)$/;
const BASE64 = /^0[bB]((?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)$/;

/**
 * §6.1 numerical-value: decimal-constant (no leading zero), hex-constant (0x) or base64-constant (0b).
 * null when malformed or above Number.MAX_SAFE_INTEGER (no key we handle goes near that).
 */
export function parseNumber(value: string): number | null {
  if (DECIMAL.test(value)) {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : null;
  }
  const bytes = parseBinary(value, 8);
  if (bytes === null || bytes.length === 0) return null;
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : null;
}

/**
 * §6.1 binary-value as used by large-binary items (CHAP_C, CHAP_R): 0x hex (an odd digit count implies
 * a leading zero nibble) or 0b base64 with padding. null when malformed, empty or over maxBytes.
 */
export function parseBinary(value: string, maxBytes: number): Buffer | null {
  const hex = HEX.exec(value);
  if (hex) {
    const digits = hex[1]!;
    if ((digits.length + 1) >> 1 > maxBytes) return null;
    return Buffer.from(digits.length % 2 === 1 ? `0${digits}` : digits, 'hex');
  }
  const b64 = BASE64.exec(value);
  if (b64) {
    const body = b64[1]!;
    if (body.length === 0) return null;
    const bytes = Buffer.from(body, 'base64');
    return bytes.length <= maxBytes ? bytes : null;
  }
  return null;
}

/** The hex-constant form every initiator parses (libiscsi accepts only this one for CHAP items). */
export function formatHex(bytes: Buffer): string {
  return `0x${bytes.toString('hex')}`;
}

/**
 * Reassembles a text segment sent over several PDUs with the C (continue) bit (§6.2: a key=value pair
 * may span PDU boundaries). Used by Login and Text handlers alike.
 */
export class TextAssembler {
  private parts: Buffer[] = [];
  private length = 0;

  constructor(private readonly maxLength = MAX_TEXT_SEGMENT) {}

  /** True while a continued segment is waiting for its last PDU. */
  get pending(): boolean {
    return this.parts.length > 0;
  }

  /**
   * Adds one PDU's data. Returns the whole segment when `more` is false, null while more is expected,
   * or 'too-long' once the segment exceeds the cap (the assembler is then reset).
   */
  push(data: Buffer, more: boolean): Buffer | null | 'too-long' {
    this.length += data.length;
    if (this.length > this.maxLength) {
      this.reset();
      return 'too-long';
    }
    this.parts.push(data);
    if (more) return null;
    const whole = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.reset();
    return whole;
  }

  reset(): void {
    this.parts = [];
    this.length = 0;
  }
}

/**
 * Splits our answer into PDU-sized pieces; every piece but the last goes out with C=1 and the peer
 * fetches the next with an empty request (§6.2). Always at least one piece (possibly empty).
 */
export function splitText(data: Buffer, maxPerPdu: number): Buffer[] {
  if (maxPerPdu < 1) throw new RangeError('maxPerPdu must be positive');
  if (data.length <= maxPerPdu) return [data];
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += maxPerPdu) {
    pieces.push(data.subarray(offset, Math.min(offset + maxPerPdu, data.length)));
  }
  return pieces;
}
