import { describe, expect, it } from 'vitest';
import { negotiate } from '../../src/tftp/options.js';

const LIMITS = { maxBlksize: 8192, maxWindowsize: 16 };
const ask = (...pairs: [string, string][]) => negotiate(new Map(pairs), 74213, LIMITS);

describe('negotiate', () => {
  it('without options: RFC 1350 defaults and no OACK, so DATA 1 answers the request', () => {
    expect(ask()).toEqual({ blksize: 512, windowsize: 1, timeoutMs: null, oack: new Map() });
  });

  it('grants blksize, windowsize and timeout as asked, and answers tsize with the real size, in the order asked', () => {
    const n = ask(['tsize', '0'], ['blksize', '1468'], ['windowsize', '4'], ['timeout', '3']);
    expect(n.blksize).toBe(1468);
    expect(n.windowsize).toBe(4);
    expect(n.timeoutMs).toBe(3000);
    expect([...n.oack]).toEqual([
      ['tsize', '74213'],
      ['blksize', '1468'],
      ['windowsize', '4'],
      ['timeout', '3'],
    ]);
  });

  it('answers tsize whatever value a reader sends (atftp sends "enable")', () => {
    expect(ask(['tsize', 'enable']).oack.get('tsize')).toBe('74213');
  });

  it('answers more than we allow with our limit (RFC 2348 lets the server lower it)', () => {
    const n = ask(['blksize', '65464'], ['windowsize', '1000']);
    expect(n.blksize).toBe(8192);
    expect(n.windowsize).toBe(16);
    expect(n.oack).toEqual(
      new Map([
        ['blksize', '8192'],
        ['windowsize', '16'],
      ]),
    );
    expect(negotiate(new Map([['blksize', '99999']]), 1, { maxBlksize: 65464, maxWindowsize: 1 }).blksize).toBe(65464);
  });

  it.each([
    ['blksize', '7'],
    ['blksize', '0'],
    ['blksize', '-512'],
    ['blksize', '1e3'],
    ['blksize', ' 512'],
    ['blksize', ''],
    ['windowsize', '0'],
    ['timeout', '0'],
    ['timeout', '256'],
    ['timeout', '1.5'],
    ['multicast', ''],
    ['utimeout', '5000'],
  ])('declines %s=%j: left out of the OACK, the default stays', (name, value) => {
    const n = ask([name, value]);
    expect(n.oack.size).toBe(0);
    expect(n.blksize).toBe(512);
    expect(n.windowsize).toBe(1);
    expect(n.timeoutMs).toBeNull();
  });

  it('keeps the accepted options when others are declined', () => {
    expect([...ask(['multicast', ''], ['blksize', '1432'], ['blksize2', '9']).oack]).toEqual([['blksize', '1432']]);
  });
});
