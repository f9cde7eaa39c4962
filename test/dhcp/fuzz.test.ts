/**
 * Fuzzes the DHCP codec with packets mutated from the golden captures: every input either decodes
 * (and then every typed reader answers, a reply built from it encodes and decodes again, and the packet
 * itself round-trips) or is refused with DhcpParseError. Any other exception is a crash: on a DHCP
 * port, one stray packet must never take the server down.
 *
 * Deterministic: a failure names its iteration and mutation; rerun with the same SEED to reproduce.
 */
import { describe, expect, it } from 'vitest';
import {
  clientArchitectures,
  clientId,
  clientNdi,
  clientUuid,
  decodeEncapsulated,
  encodeEncapsulated,
  ip,
  ipOption,
  ipxeOptions,
  isIpxe,
  maxMessageSize,
  MESSAGE_TYPE_NAMES,
  messageType,
  MessageType,
  Opt,
  parameterRequestList,
  pxeClientKind,
  requestedIp,
  serverIdentifier,
  text,
  u8,
  userClasses,
  vendorClass,
} from '../../src/dhcp/options.js';
import { clientMac, decodePacket, DhcpParseError, encodePacket, replyTo, type DhcpPacket } from '../../src/dhcp/packet.js';
import { prng } from '../support/prng.js';
import { golden, GOLDEN_NAMES } from './golden.js';

const SEED = 0x0d1c_9a7e;
const ITERATIONS = 100_000;

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;
const randomBytes = (r: Rand, n: number) => Buffer.from(Array.from({ length: n }, () => int(r, 256)));

/** Codes that the codec or the readers treat specially, so the soup hits them often. */
const INTERESTING = [0, 0, 255, 52, 52, 53, 54, 55, 57, 60, 61, 77, 93, 94, 97, 43, 175, 50, 12, 67] as const;

/** Offsets of the length byte of each option in the options area (stops at END or a bad length). */
function optionLengthOffsets(b: Buffer): number[] {
  const out: number[] = [];
  let i = 240;
  while (i + 1 < b.length && b[i] !== 255) {
    if (b[i] === 0) {
      i++;
      continue;
    }
    out.push(i + 1);
    i += 2 + b[i + 1]!;
  }
  return out;
}

/** A run of random options: code, length (sometimes wrong), value; with or without END. */
function soup(r: Rand, maxBytes: number): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  const count = int(r, 24);
  for (let k = 0; k < count && size < maxBytes; k++) {
    const code = r() < 0.5 ? pick(r, INTERESTING) : int(r, 256);
    if (code === 0 || code === 255) {
      parts.push(Buffer.from([code]));
      size++;
      continue;
    }
    const len = code === 52 && r() < 0.7 ? 1 : r() < 0.9 ? int(r, 24) : int(r, 256);
    const value = code === 52 ? Buffer.from([int(r, 5)]) : randomBytes(r, Math.min(len, 300));
    const part = Buffer.concat([Buffer.from([code, len]), value.subarray(0, r() < 0.95 ? len : int(r, len + 1))]);
    parts.push(part);
    size += part.length;
  }
  if (r() < 0.7) parts.push(Buffer.from([255]));
  return Buffer.concat(parts).subarray(0, maxBytes);
}

/** The seed's fixed header (236 bytes, zero-filled if the seed is shorter) and a valid cookie. */
function headerOf(seed: Buffer): Buffer {
  const b = Buffer.alloc(240);
  seed.copy(b, 0, 0, Math.min(seed.length, 236));
  b.writeUInt32BE(0x63825363, 236);
  return b;
}

const MUTATORS: Record<string, (r: Rand, seed: Buffer, other: Buffer) => Buffer> = {
  bitflips(r, seed) {
    const b = Buffer.from(seed);
    for (let k = 1 + int(r, 4); k > 0; k--) {
      // half the flips land in the option area, where the parser has the most to get wrong
      const at = r() < 0.5 ? 240 + int(r, Math.max(1, b.length - 240)) : int(r, b.length);
      if (at < b.length) b[at]! ^= 1 << int(r, 8);
    }
    return b;
  },
  insert(r, seed) {
    const at = r() < 0.8 ? 240 + int(r, Math.max(1, seed.length - 239)) : int(r, seed.length + 1);
    return Buffer.concat([seed.subarray(0, at), randomBytes(r, 1 + int(r, 8)), seed.subarray(at)]);
  },
  delete(r, seed) {
    const at = r() < 0.8 ? 240 + int(r, Math.max(1, seed.length - 240)) : int(r, seed.length);
    return Buffer.concat([seed.subarray(0, at), seed.subarray(at + 1 + int(r, 8))]);
  },
  truncate(r, seed) {
    return seed.subarray(0, r() < 0.7 ? 236 + int(r, seed.length - 235) : int(r, seed.length));
  },
  optionLength(r, seed) {
    const b = Buffer.from(seed);
    const offsets = optionLengthOffsets(b);
    if (offsets.length === 0) return b;
    const at = pick(r, offsets);
    b[at] = r() < 0.3 ? int(r, 256) : r() < 0.6 ? int(r, b[at]! + 1) : (b[at]! + pick(r, [-2, -1, 1, 2, 64, 200])) & 0xff;
    return b;
  },
  soup(r, seed) {
    return Buffer.concat([headerOf(seed), soup(r, 1200)]);
  },
  overload(r, seed) {
    // option 52 first, then file and sname filled with option soup (sometimes with 52 in them)
    const b = Buffer.concat([headerOf(seed), Buffer.from([52, 1, int(r, 5)]), soup(r, 200)]);
    b.fill(0, 44, 236);
    soup(r, 128).copy(b, 108);
    soup(r, 64).copy(b, 44);
    return b;
  },
  splice(r, seed, other) {
    return Buffer.concat([seed.subarray(0, int(r, seed.length)), other.subarray(int(r, other.length))]);
  },
  header(r, seed) {
    // op, htype, hlen, cookie: the fields decodePacket checks before the options
    const b = Buffer.from(seed);
    const field = pick(r, [0, 1, 2, 236, 237, 238, 239]);
    b[field] = r() < 0.5 ? int(r, 256) : pick(r, [0, 1, 2, 3, 16, 17, 0x63, 0x82, 0x53]);
    return b;
  },
};
const MUTATOR_NAMES = Object.keys(MUTATORS);

const SERVER = '192.0.2.1';
const sortedOptions = (p: DhcpPacket) =>
  [...p.options].map(([c, v]) => [c, v.toString('hex')] as const).sort(([a], [b]) => a - b);
const comparable = (p: DhcpPacket) => ({ ...p, chaddr: p.chaddr.toString('hex'), options: sortedOptions(p) });

/** Everything a handler does with a decoded request; throws on any broken promise. */
function exercise(p: DhcpPacket): void {
  const type = messageType(p);
  if (type !== undefined) void MESSAGE_TYPE_NAMES[type];
  void [serverIdentifier(p), requestedIp(p), ipOption(p, Opt.ROUTER), clientId(p), clientNdi(p), clientMac(p)];
  void [vendorClass(p), decodeEncapsulated(p.options.get(Opt.VENDOR_SPECIFIC)), ipxeOptions(p)];
  const prl = parameterRequestList(p);
  if (prl.some((c) => !Number.isInteger(c) || c < 0 || c > 255)) throw new Error(`bad parameter list ${prl}`);
  const archs = clientArchitectures(p);
  if (archs.some((a) => a < 0 || a > 0xffff)) throw new Error(`bad arch list ${archs}`);
  const classes = userClasses(p);
  if (classes.some((c) => typeof c !== 'string' || /[^\x20-\x7e]/.test(c))) throw new Error(`unprintable user class`);
  const uuid = clientUuid(p);
  if (uuid !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid)) {
    throw new Error(`bad uuid ${uuid}`);
  }
  const max = maxMessageSize(p);
  const kind = pxeClientKind(p);
  const ipxe = isIpxe(p);

  // A sanitized reply, as the proxy handler builds one: fixed options, plus echoes of bounded values.
  const reply = replyTo(p);
  reply.siaddr = SERVER;
  reply.options.set(Opt.MESSAGE_TYPE, u8(MessageType.OFFER));
  reply.options.set(Opt.SERVER_ID, ip(SERVER));
  if (kind) reply.options.set(Opt.VENDOR_CLASS, text(kind));
  const rawUuid = p.options.get(Opt.CLIENT_UUID);
  if (rawUuid && uuid) reply.options.set(Opt.CLIENT_UUID, rawUuid);
  reply.options.set(Opt.VENDOR_SPECIFIC, encodeEncapsulated(new Map([[6, u8(8)]])));
  if (ipxe) reply.options.set(Opt.IPXE, encodeEncapsulated(new Map([[176, u8(1)]])));
  reply.file = ipxe ? `http://${SERVER}/boot.ipxe` : archs[0] === 7 ? 'snponly.efi' : 'undionly.kpxe';
  const bytes = encodePacket(reply, { maxSize: max });
  if (bytes.length < 300) throw new Error(`reply of ${bytes.length} bytes`);
  const back = decodePacket(bytes);
  expect(comparable(back)).toEqual(comparable(reply));

  // The request itself round-trips, unless a name field has no NUL (then encode refuses it).
  let again: Buffer;
  try {
    again = encodePacket(p, { maxSize: 65535 });
  } catch (err) {
    if (err instanceof RangeError && /^(sname|file) /.test(err.message)) return;
    throw err;
  }
  expect(comparable(decodePacket(again))).toEqual(comparable(p));
}

describe('DHCP codec fuzz', () => {
  it(`${ITERATIONS} mutated golden packets: each decodes and is handled, or is refused with DhcpParseError`, () => {
    const seeds = GOLDEN_NAMES.map((n) => golden(n).bytes);
    const r = prng(SEED);
    const failures: string[] = [];
    const used = new Map<string, number>();
    const reasons = new Map<string, number>();
    let decoded = 0;
    let rejected = 0;

    for (let i = 0; i < ITERATIONS && failures.length < 5; i++) {
      const seed = pick(r, seeds);
      let input = seed;
      const applied: string[] = [];
      for (let k = r() < 0.25 ? 2 : 1; k > 0; k--) {
        const name = pick(r, MUTATOR_NAMES);
        applied.push(name);
        input = MUTATORS[name]!(r, input, pick(r, seeds));
      }
      for (const name of applied) used.set(name, (used.get(name) ?? 0) + 1);

      let p: DhcpPacket;
      try {
        p = decodePacket(input);
      } catch (err) {
        if (err instanceof DhcpParseError && err.reason.length > 0) {
          rejected++;
          const key = err.reason.replace(/\d+/g, 'N');
          reasons.set(key, (reasons.get(key) ?? 0) + 1);
          continue;
        }
        failures.push(`#${i} ${applied.join('+')}: decode threw ${String(err)}; input ${input.toString('hex')}`);
        continue;
      }
      decoded++;
      try {
        exercise(p);
      } catch (err) {
        failures.push(`#${i} ${applied.join('+')}: after decoding, ${String(err)}; input ${input.toString('hex')}`);
      }
    }

    expect(failures).toEqual([]);
    expect(decoded + rejected).toBe(ITERATIONS);
    // The mutations must exercise both sides and every way of refusing a packet, or the fuzz proves little.
    expect(decoded).toBeGreaterThan(ITERATIONS * 0.2);
    expect(rejected).toBeGreaterThan(ITERATIONS * 0.2);
    for (const name of MUTATOR_NAMES) expect(used.get(name) ?? 0, name).toBeGreaterThan(ITERATIONS / 20);
    const seen = [...reasons.keys()].join('\n');
    for (const reason of [
      /^truncated/m,
      /^bad op/m,
      /^bad hlen/m,
      /^bad magic cookie/m,
      /in options overruns/,
      /in file overruns/,
      /in sname overruns/,
      /has no length byte/,
      /^bad overload value/m,
      /option N must be N byte/,
      /option N inside the file field/,
      /option N inside the sname field/,
    ]) {
      expect(seen, String(reason)).toMatch(reason);
    }
  });
});
