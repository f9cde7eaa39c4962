/**
 * CHAP as iSCSI uses it (RFC 7143 §12.1.3, RFC 1994): response = H(identifier || secret || challenge),
 * with H chosen by CHAP_A, whose values are IANA "PPP Authentication Algorithms" numbers: 5 MD5,
 * 6 SHA-1, 7 SHA-256, 8 SHA3-256 (open-iscsi and libiscsi use the same numbers; tgt's "7 = SHA-1" is
 * its own bug). Pure apart from the random challenge.
 */
import { createHash, getHashes, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

export type ChapAlgorithmId = 5 | 6 | 7 | 8;

export interface ChapAlgorithm {
  id: ChapAlgorithmId;
  name: 'MD5' | 'SHA1' | 'SHA256' | 'SHA3-256';
  /** node:crypto hash name. */
  hash: string;
  digestLength: number;
}

const ALL: readonly ChapAlgorithm[] = [
  { id: 5, name: 'MD5', hash: 'md5', digestLength: 16 },
  { id: 6, name: 'SHA1', hash: 'sha1', digestLength: 20 },
  { id: 7, name: 'SHA256', hash: 'sha256', digestLength: 32 },
  { id: 8, name: 'SHA3-256', hash: 'sha3-256', digestLength: 32 },
];

const available = new Set(getHashes());

/** The algorithms this Node build can compute, by CHAP_A number. */
export const CHAP_ALGORITHMS: ReadonlyMap<ChapAlgorithmId, ChapAlgorithm> = new Map(
  ALL.filter((a) => available.has(a.hash)).map((a) => [a.id, a]),
);

/**
 * What we accept unless told otherwise: every algorithm we can compute. MD5 must stay for iPXE, which
 * offers CHAP_A=5 only; the initiator's order decides (§12.1.3: the target picks from its list).
 */
export const DEFAULT_CHAP_ALGORITHMS: readonly ChapAlgorithmId[] = [...CHAP_ALGORITHMS.keys()];

export function isChapAlgorithmId(n: number): n is ChapAlgorithmId {
  return n === 5 || n === 6 || n === 7 || n === 8;
}

/**
 * The first algorithm of the initiator's CHAP_A list that we accept (the list is in its order of
 * preference, §6.2 list negotiation). Items that are not numbers are skipped, as unknown values are.
 */
export function chooseChapAlgorithm(offered: readonly string[], accepted: readonly ChapAlgorithmId[]): ChapAlgorithm | undefined {
  for (const item of offered) {
    if (!/^[0-9]{1,3}$/.test(item)) continue;
    const id = Number(item);
    if (!isChapAlgorithmId(id) || !accepted.includes(id)) continue;
    const algorithm = CHAP_ALGORITHMS.get(id);
    if (algorithm) return algorithm;
  }
  return undefined;
}

/** RFC 1994 §4.1: H(identifier octet, secret, challenge). The secret is taken as its UTF-8 bytes. */
export function chapResponse(algorithm: ChapAlgorithm, identifier: number, secret: string, challenge: Buffer): Buffer {
  return createHash(algorithm.hash)
    .update(Buffer.of(identifier & 0xff))
    .update(Buffer.from(secret, 'utf8'))
    .update(challenge)
    .digest();
}

/**
 * Checks an initiator's CHAP_R. The comparison runs in constant time over the digest; only a wrong
 * length (which says nothing about the secret) returns early.
 */
export function verifyChapResponse(
  algorithm: ChapAlgorithm,
  identifier: number,
  secret: string,
  challenge: Buffer,
  response: Buffer,
): boolean {
  const expected = chapResponse(algorithm, identifier, secret, challenge);
  if (response.length !== expected.length) return false;
  return timingSafeEqual(expected, response);
}

export interface ChapChallenge {
  /** CHAP_I: one octet, fresh for each challenge. */
  identifier: number;
  /** CHAP_C. */
  challenge: Buffer;
}

/**
 * A fresh challenge from the CSPRNG. 32 bytes by default: at least as long as any digest we use, which
 * RFC 7143 §12.1.3 asks for, and well within every initiator's limit (open-iscsi 1024, libiscsi 1024).
 */
export function newChapChallenge(length = 32): ChapChallenge {
  return { identifier: randomInt(0, 256), challenge: randomBytes(length) };
}
