import { describe, expect, it } from 'vitest';
import {
  CHAP_ALGORITHMS,
  chapResponse,
  chooseChapAlgorithm,
  DEFAULT_CHAP_ALGORITHMS,
  newChapChallenge,
  verifyChapResponse,
} from '../../../src/iscsi/login/chap.js';
import { referenceChap } from './fixtures.js';

describe('CHAP', () => {
  it('has MD5, SHA-1 and SHA-256 on every Node build', () => {
    expect([5, 6, 7].every((id) => CHAP_ALGORITHMS.has(id as 5 | 6 | 7))).toBe(true);
    expect(DEFAULT_CHAP_ALGORITHMS).toContain(5);
  });

  it.each([5, 6, 7, 8] as const)('algorithm %i matches the RFC 1994 reference', (id) => {
    const algorithm = CHAP_ALGORITHMS.get(id);
    if (!algorithm) return;
    const challenge = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    const r = chapResponse(algorithm, 0x42, 'Tr0ub4dor&3-n7', challenge);
    expect(r.equals(referenceChap(id, 0x42, 'Tr0ub4dor&3-n7', challenge))).toBe(true);
    expect(r.length).toBe(algorithm.digestLength);
    expect(verifyChapResponse(algorithm, 0x42, 'Tr0ub4dor&3-n7', challenge, r)).toBe(true);
    expect(verifyChapResponse(algorithm, 0x43, 'Tr0ub4dor&3-n7', challenge, r)).toBe(false);
    expect(verifyChapResponse(algorithm, 0x42, 'Tr0ub4dor&3-n8', challenge, r)).toBe(false);
    expect(verifyChapResponse(algorithm, 0x42, 'Tr0ub4dor&3-n7', challenge, r.subarray(1))).toBe(false);
    expect(verifyChapResponse(algorithm, 0x42, 'Tr0ub4dor&3-n7', challenge, Buffer.alloc(0))).toBe(false);
  });

  it('fixed vectors (computed with Python hashlib)', () => {
    const challenge = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    expect(chapResponse(CHAP_ALGORITHMS.get(5)!, 1, 'secret', challenge).toString('hex')).toBe('740e86463bda3a4d7017d6e0fba0699d');
    expect(chapResponse(CHAP_ALGORITHMS.get(7)!, 1, 'secret', challenge).toString('hex')).toBe(
      '28b96c916cf784528bbfaa6ad7e012cab293437604aae8d66a3295b319132cef',
    );
  });

  it('picks by the initiator\'s order among what we accept', () => {
    expect(chooseChapAlgorithm(['7', '6', '5'], [5, 7])?.id).toBe(7);
    expect(chooseChapAlgorithm(['5', '7'], [5, 7])?.id).toBe(5);
    expect(chooseChapAlgorithm(['8', '7'], [5, 7])?.id).toBe(7);
    expect(chooseChapAlgorithm(['x', '05', '5'], [5])?.id).toBe(5);
    expect(chooseChapAlgorithm(['6'], [5, 7])).toBeUndefined();
    expect(chooseChapAlgorithm([], [5])).toBeUndefined();
  });

  it('fresh challenges: random identifier and bytes', () => {
    const seen = new Set<string>();
    const ids = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const c = newChapChallenge();
      expect(c.challenge.length).toBe(32);
      expect(c.identifier).toBeGreaterThanOrEqual(0);
      expect(c.identifier).toBeLessThanOrEqual(255);
      seen.add(c.challenge.toString('hex'));
      ids.add(c.identifier);
    }
    expect(seen.size).toBe(200);
    expect(ids.size).toBeGreaterThan(50);
    expect(newChapChallenge(16).challenge.length).toBe(16);
  });
});
