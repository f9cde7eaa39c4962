import { describe, expect, it } from 'vitest';
import {
  buildText,
  describeTextError,
  formatBoolean,
  formatHex,
  MAX_LARGE_VALUE_LENGTH,
  MAX_TEXT_SEGMENT,
  parseBinary,
  parseBoolean,
  parseList,
  parseNumber,
  parseText,
  printable,
  splitText,
  TextAssembler,
  valueLimit,
} from '../../src/iscsi/text.js';

const raw = (s: string) => Buffer.from(s, 'utf8');

describe('parseText', () => {
  it('reads NUL-terminated pairs in order', () => {
    const result = parseText(raw('InitiatorName=iqn.x:y\0SessionType=Normal\0AuthMethod=CHAP,None\0'));
    expect(result).toEqual({
      ok: true,
      pairs: [
        { key: 'InitiatorName', value: 'iqn.x:y' },
        { key: 'SessionType', value: 'Normal' },
        { key: 'AuthMethod', value: 'CHAP,None' },
      ],
    });
  });

  it('keeps everything after the first "=" in the value', () => {
    expect(parseText(raw('X-com.example.Expr=a=b\0'))).toEqual({ ok: true, pairs: [{ key: 'X-com.example.Expr', value: 'a=b' }] });
  });

  it('accepts an empty segment and skips stray NULs', () => {
    expect(parseText(Buffer.alloc(0))).toEqual({ ok: true, pairs: [] });
    expect(parseText(raw('\0A=1\0\0\0B=2\0\0'))).toEqual({ ok: true, pairs: [{ key: 'A', value: '1' }, { key: 'B', value: '2' }] });
  });

  it('accepts an empty value and UTF-8 values', () => {
    expect(parseText(raw('InitiatorAlias=\0'))).toEqual({ ok: true, pairs: [{ key: 'InitiatorAlias', value: '' }] });
    expect(parseText(raw('InitiatorAlias=nœud-7\0'))).toEqual({ ok: true, pairs: [{ key: 'InitiatorAlias', value: 'nœud-7' }] });
  });

  it.each([
    ['a pair without its NUL', 'A=1\0B=2', 'unterminated'],
    ['an item without "="', 'Lonely\0', 'no-separator'],
    ['an empty key', '=value\0', 'bad-key'],
    ['a key with a space', 'Bad Key=1\0', 'bad-key'],
    ['a 64-byte key', `${'K'.repeat(64)}=1\0`, 'key-too-long'],
    ['a 256-byte value', `TargetAlias=${'v'.repeat(256)}\0`, 'value-too-long'],
    ['a duplicate key', 'A=1\0B=2\0A=3\0', 'duplicate-key'],
  ])('refuses %s', (_name, input, kind) => {
    const result = parseText(raw(input));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.kind).toBe(kind);
      expect(describeTextError(result.error)).not.toMatch(/v{10}/);
    }
  });

  it('accepts a 63-byte key and a 255-byte value', () => {
    const key = `X-${'k'.repeat(61)}`;
    expect(parseText(raw(`${key}=${'v'.repeat(255)}\0`)).ok).toBe(true);
  });

  it('allows CHAP_C and CHAP_R up to 1024 bytes in hex', () => {
    expect(valueLimit('CHAP_C')).toBe(MAX_LARGE_VALUE_LENGTH);
    expect(parseText(raw(`CHAP_C=0x${'ab'.repeat(1024)}\0`)).ok).toBe(true);
    expect(parseText(raw(`CHAP_R=0x${'ab'.repeat(1025)}\0`)).ok).toBe(false);
    expect(parseText(raw(`CHAP_N=0x${'ab'.repeat(200)}\0`)).ok).toBe(false);
  });

  it('refuses invalid UTF-8', () => {
    const result = parseText(Buffer.concat([raw('InitiatorAlias='), Buffer.from([0xc3, 0x28]), Buffer.from([0])]));
    expect(result).toEqual({ ok: false, error: { kind: 'bad-encoding', key: 'InitiatorAlias' } });
  });

  it('lets a Text handler read repeated TargetAddress keys (SendTargets answers)', () => {
    const answer = raw('TargetName=iqn.a\0TargetAddress=10.0.0.1:3260,1\0TargetAddress=[fd00::1]:3260,1\0');
    expect(parseText(answer).ok).toBe(false);
    const result = parseText(answer, { repeatable: (key) => key === 'TargetName' || key === 'TargetAddress' });
    expect(result.ok && result.pairs.map((p) => p.value)).toEqual(['iqn.a', '10.0.0.1:3260,1', '[fd00::1]:3260,1']);
  });

  it('caps the segment length', () => {
    expect(parseText(Buffer.alloc(MAX_TEXT_SEGMENT + 1, 0)).ok).toBe(false);
    expect(parseText(raw('A=1\0'), { maxLength: 3 })).toEqual({ ok: false, error: { kind: 'too-long' } });
  });
});

describe('buildText', () => {
  it('writes each pair with its NUL, and round-trips through parseText', () => {
    const pairs = [
      { key: 'SendTargets', value: 'All' },
      { key: 'TargetAlias', value: 'nœud' },
    ];
    const data = buildText(pairs);
    expect(data.equals(raw('SendTargets=All\0TargetAlias=nœud\0'))).toBe(true);
    expect(parseText(data)).toEqual({ ok: true, pairs });
  });

  it('throws on our own mistakes without echoing the value', () => {
    expect(() => buildText([{ key: 'Bad=Key', value: 'x' }])).toThrow(TypeError);
    expect(() => buildText([{ key: '', value: 'x' }])).toThrow(TypeError);
    expect(() => buildText([{ key: 'CHAP_N', value: 'sec\0ret' }])).toThrow(/CHAP_N/);
    expect(() => buildText([{ key: 'CHAP_N', value: 'sec\0ret' }])).not.toThrow(/sec/);
  });
});

describe('value formats', () => {
  it('lists', () => {
    expect(parseList('CRC32C,None')).toEqual(['CRC32C', 'None']);
    expect(parseList('None')).toEqual(['None']);
    expect(parseList('CRC32C,,None')).toBeNull();
    expect(parseList('')).toBeNull();
  });

  it('booleans', () => {
    expect(parseBoolean('Yes')).toBe(true);
    expect(parseBoolean('No')).toBe(false);
    expect(parseBoolean('yes')).toBeNull();
    expect(formatBoolean(true)).toBe('Yes');
  });

  it.each([
    ['0', 0],
    ['8192', 8192],
    ['16777215', 16777215],
    ['0x2000', 8192],
    ['0X2000', 8192],
    ['0x0', 0],
    ['0b', null],
    ['0bIAA=', 8192],
    ['007', null],
    ['-1', null],
    ['1e3', null],
    [' 1', null],
    ['', null],
    ['0x', null],
    ['12345678901234567', null],
    ['0xffffffffffffffff', null],
  ])('number %j → %j', (input, expected) => {
    expect(parseNumber(input)).toBe(expected);
  });

  it('binary values: hex (odd length implies a leading zero) and base64', () => {
    expect(parseBinary('0xdeadBEEF', 16)).toEqual(Buffer.from('deadbeef', 'hex'));
    expect(parseBinary('0xabc', 16)).toEqual(Buffer.from('0abc', 'hex'));
    expect(parseBinary('0b3q2+7w==', 16)).toEqual(Buffer.from('deadbeef', 'hex'));
    expect(parseBinary('0B3q2+7w==', 16)).toEqual(Buffer.from('deadbeef', 'hex'));
    expect(parseBinary('0x00112233', 3)).toBeNull();
    expect(parseBinary('0b3q2+7w=', 16)).toBeNull();
    expect(parseBinary('0b3q2-7w==', 16)).toBeNull();
    expect(parseBinary('deadbeef', 16)).toBeNull();
    expect(parseBinary('1234', 16)).toBeNull();
    expect(parseBinary('0x', 16)).toBeNull();
    expect(formatHex(Buffer.from([0, 0xab]))).toBe('0x00ab');
  });
});

describe('printable', () => {
  it('neutralises control characters and caps the length of peer text for logs', () => {
    expect(printable('iqn.x:y')).toBe('iqn.x:y');
    expect(printable('a\nb\r\u001b[31mc\u2028')).toBe('a?b??[31mc?');
    expect(printable('x'.repeat(100), 10)).toBe(`${'x'.repeat(10)}…`);
  });
});

describe('continuation (C bit)', () => {
  it('reassembles a segment split inside a pair', () => {
    const whole = raw('InitiatorName=iqn.2024-01.org.hiveboot:node7\0TargetName=iqn.t\0');
    const assembler = new TextAssembler();
    expect(assembler.push(whole.subarray(0, 10), true)).toBeNull();
    expect(assembler.pending).toBe(true);
    expect(assembler.push(whole.subarray(10, 30), true)).toBeNull();
    const done = assembler.push(whole.subarray(30), false);
    expect(Buffer.isBuffer(done) && done.equals(whole)).toBe(true);
    expect(assembler.pending).toBe(false);
  });

  it('gives up past its cap', () => {
    const assembler = new TextAssembler(16);
    expect(assembler.push(Buffer.alloc(10), true)).toBeNull();
    expect(assembler.push(Buffer.alloc(10), true)).toBe('too-long');
    expect(assembler.pending).toBe(false);
  });

  it('splits long answers into PDU-sized pieces', () => {
    const data = Buffer.alloc(20, 1);
    expect(splitText(data, 8).map((b) => b.length)).toEqual([8, 8, 4]);
    expect(splitText(data, 20)).toHaveLength(1);
    expect(splitText(Buffer.alloc(0), 8)).toEqual([Buffer.alloc(0)]);
    expect(Buffer.concat(splitText(data, 7)).equals(data)).toBe(true);
  });
});
