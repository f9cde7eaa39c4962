import { describe, expect, it } from 'vitest';
import { decode, encode, ERROR_CODE, MAX_PACKET_BYTES, TftpParseError, type TftpPacket } from '../../src/tftp/packet.js';
import { prng } from '../support/prng.js';
import { thrown } from '../support/thrown.js';

/** Builds a packet by hand from its opcode and parts (strings get their NUL), as RFC 1350 draws them. */
function wire(op: number, ...parts: (string | number[] | Buffer)[]): Buffer {
  const out: Buffer[] = [Buffer.from([op >> 8, op & 0xff])];
  for (const p of parts) out.push(typeof p === 'string' ? Buffer.from(`${p}\0`, 'utf8') : Buffer.from(p));
  return Buffer.concat(out);
}

const parseError = (buf: Buffer) => thrown(() => decode(buf), TftpParseError);

describe('decode', () => {
  it('reads a read request with options, names lowercased and in the order sent', () => {
    const p = decode(wire(1, 'undionly.kpxe', 'OCTET', 'BlkSize', '1468', 'tsize', '0', 'windowsize', '4'));
    expect(p).toEqual({
      type: 'rrq',
      filename: 'undionly.kpxe',
      mode: 'octet',
      options: new Map([
        ['blksize', '1468'],
        ['tsize', '0'],
        ['windowsize', '4'],
      ]),
    });
    expect([...(p as { options: Map<string, string> }).options.keys()]).toEqual(['blksize', 'tsize', 'windowsize']);
  });

  it('reads a write request, DATA, ACK, ERROR and OACK', () => {
    expect(decode(wire(2, 'up.bin', 'netascii'))).toEqual({ type: 'wrq', filename: 'up.bin', mode: 'netascii', options: new Map() });
    expect(decode(wire(3, [0xff, 0xfe], Buffer.from('abc')))).toEqual({ type: 'data', block: 65534, data: Buffer.from('abc') });
    expect(decode(wire(3, [0, 7]))).toEqual({ type: 'data', block: 7, data: Buffer.alloc(0) });
    expect(decode(wire(4, [0x01, 0x00]))).toEqual({ type: 'ack', block: 256 });
    expect(decode(wire(5, [0, 1], 'File not found'))).toEqual({ type: 'error', code: 1, message: 'File not found' });
    expect(decode(wire(6, 'tsize', '74213', 'blksize', '1432'))).toEqual({
      type: 'oack',
      options: new Map([
        ['tsize', '74213'],
        ['blksize', '1432'],
      ]),
    });
  });

  it('takes NUL padding after the last field, which some clients send', () => {
    const p = decode(Buffer.concat([wire(1, 'a.efi', 'octet', 'blksize', '512'), Buffer.alloc(3)]));
    expect(p).toMatchObject({ type: 'rrq', filename: 'a.efi', options: new Map([['blksize', '512']]) });
    expect(decode(Buffer.concat([wire(5, [0, 0], 'x'), Buffer.alloc(2)]))).toEqual({ type: 'error', code: 0, message: 'x' });
  });

  it('keeps a name like __proto__ as a plain option', () => {
    const p = decode(wire(1, 'f', 'octet', '__proto__', '1'));
    expect(p.type === 'rrq' && p.options.get('__proto__')).toBe('1');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each([
    ['an empty datagram', Buffer.alloc(0), 'shorter than an opcode'],
    ['a lone byte', Buffer.from([0]), 'shorter than an opcode'],
    ['an unknown opcode', wire(9, 'x', 'octet'), 'unknown opcode 9'],
    ['opcode 0', wire(0, 'x', 'octet'), 'unknown opcode 0'],
    ['a request without NUL terminators', Buffer.concat([wire(1), Buffer.from('file')]), 'NUL'],
    ['a mode without its NUL', Buffer.concat([wire(1, 'file'), Buffer.from('octet')]), 'NUL'],
    ['a request with no mode', wire(1, 'file'), 'without a file name and a mode'],
    ['an opcode alone', wire(1), 'without a file name and a mode'],
    ['an empty file name', wire(1, '', 'octet'), 'empty file name'],
    ['an unknown mode', wire(1, 'f', 'binary'), 'unknown transfer mode "binary"'],
    ['an option without a value', wire(1, 'f', 'octet', 'blksize'), 'option "blksize" has no value'],
    ['an odd option list', wire(1, 'f', 'octet', 'tsize', '0', 'blksize'), 'has no value'],
    ['an empty option name', wire(1, 'f', 'octet', '', '512', 'tsize', '0'), 'empty option name'],
    ['a repeated option', wire(1, 'f', 'octet', 'blksize', '512', 'BLKSIZE', '1024'), 'given twice'],
    ['a file name that is not UTF-8', wire(1, Buffer.from([0xc3, 0x28, 0]), 'octet'), 'not valid UTF-8'],
    ['a request over 512 bytes', wire(1, 'f'.repeat(600), 'octet'), 'exceeds the 512'],
    ['a DATA without a block number', wire(3, [0]), 'without a block number'],
    ['a short ACK', wire(4, [0]), 'ACK packet of 3 bytes'],
    ['a long ACK', wire(4, [0, 1, 2]), 'ACK packet of 5 bytes'],
    ['an ERROR without a message', wire(5, [0, 1]), 'without a code and a message'],
    ['an ERROR message without its NUL', wire(5, [0, 1], Buffer.from('oops')), 'not NUL-terminated'],
    ['bytes after an ERROR message', wire(5, [0, 1], 'oops', Buffer.from('junk')), 'after the ERROR message'],
    ['an OACK without options', wire(6), 'OACK without options'],
    ['a packet larger than any TFTP packet', Buffer.concat([wire(3, [0, 1]), Buffer.alloc(MAX_PACKET_BYTES)]), 'larger than any TFTP packet'],
  ])('refuses %s with a reason', (_name, buf, reason) => {
    expect(parseError(buf).message).toContain(reason);
  });

  it('accepts the largest DATA packet (blksize 65464)', () => {
    const p = decode(wire(3, [0, 1], Buffer.alloc(65464, 7)));
    expect(p.type === 'data' && p.data.length).toBe(65464);
  });
});

describe('encode', () => {
  it('writes each packet exactly as RFC 1350 and RFC 2347 draw it', () => {
    expect(encode({ type: 'rrq', filename: 'a.kpxe', mode: 'octet', options: new Map([['blksize', '1468']]) })).toEqual(
      wire(1, 'a.kpxe', 'octet', 'blksize', '1468'),
    );
    expect(encode({ type: 'data', block: 65535, data: Buffer.from('xy') })).toEqual(wire(3, [0xff, 0xff], Buffer.from('xy')));
    expect(encode({ type: 'ack', block: 0 })).toEqual(wire(4, [0, 0]));
    expect(encode({ type: 'error', code: ERROR_CODE.unknownTransferId, message: 'unknown transfer ID' })).toEqual(
      wire(5, [0, 5], 'unknown transfer ID'),
    );
    expect(encode({ type: 'oack', options: new Map([['tsize', '42']]) })).toEqual(wire(6, 'tsize', '42'));
  });

  it('round-trips every packet type', () => {
    const packets: TftpPacket[] = [
      { type: 'rrq', filename: 'dir/snponly.efi', mode: 'octet', options: new Map([['windowsize', '16']]) },
      { type: 'wrq', filename: 'x', mode: 'netascii', options: new Map() },
      { type: 'data', block: 1, data: Buffer.alloc(512, 1) },
      { type: 'ack', block: 65535 },
      { type: 'error', code: 2, message: 'Access violation' },
      { type: 'oack', options: new Map([['blksize', '8192']]) },
    ];
    for (const p of packets) expect(decode(encode(p))).toEqual(p);
  });

  it('clips an ERROR message so the packet fits the 516 bytes a client reads, without splitting a character', () => {
    const buf = encode({ type: 'error', code: 0, message: 'é'.repeat(400) });
    expect(buf.length).toBeLessThanOrEqual(516);
    const p = decode(buf);
    expect(p.type === 'error' && p.message).toBe('é'.repeat(255));
  });

  it('refuses to write what no peer could read', () => {
    expect(() => encode({ type: 'ack', block: 65536 })).toThrow(RangeError);
    expect(() => encode({ type: 'data', block: 1, data: Buffer.alloc(65465) })).toThrow(RangeError);
    expect(() => encode({ type: 'rrq', filename: 'a\0b', mode: 'octet', options: new Map() })).toThrow(RangeError);
    expect(() => encode({ type: 'oack', options: new Map() })).toThrow(RangeError);
  });
});

describe('fuzz: 100,000 mutated and random packets', () => {
  const SEED = 0x7f7b_2026;
  const ITERATIONS = 100_000;
  type Rand = () => number;
  const int = (r: Rand, n: number) => Math.floor(r() * n);
  const bytes = (r: Rand, n: number) => Buffer.from(Array.from({ length: n }, () => int(r, 256)));

  const SEEDS: Buffer[] = [
    wire(1, 'undionly.kpxe', 'octet', 'tsize', '0', 'blksize', '1432', 'windowsize', '4', 'timeout', '2'),
    wire(1, 'snponly.efi', 'octet'),
    wire(2, 'up.bin', 'netascii', 'tsize', '100'),
    wire(3, [0, 1], bytes(prng(1), 40)),
    wire(4, [0x12, 0x34]),
    wire(5, [0, 8], 'option refused'),
    wire(6, 'blksize', '1468', 'tsize', '74213'),
  ];

  function mutate(r: Rand, base: Buffer): { buf: Buffer; how: string } {
    const b = Buffer.from(base);
    switch (int(r, 8)) {
      case 0: {
        const n = 1 + int(r, 4);
        for (let k = 0; k < n; k++) {
          const i = int(r, b.length);
          b[i] = (b[i] as number) ^ (1 << int(r, 8));
        }
        return { buf: b, how: 'bit flips' };
      }
      case 1:
        return { buf: b.subarray(0, int(r, b.length + 1)), how: 'truncation' };
      case 2: {
        // NULs moved, removed or added: the separators are where a parser goes wrong.
        const i = int(r, b.length);
        b[i] = b[i] === 0 ? 0x41 : 0;
        return { buf: b, how: 'NUL moved' };
      }
      case 3: {
        const i = int(r, b.length + 1);
        return { buf: Buffer.concat([b.subarray(0, i), bytes(r, 1 + int(r, 16)), b.subarray(i)]), how: 'insertion' };
      }
      case 4:
        b.writeUInt16BE(int(r, 9), 0);
        return { buf: b, how: 'opcode swapped' };
      case 5:
        return { buf: Buffer.concat([b, Buffer.alloc(int(r, 3) === 0 ? 600 + int(r, 70_000) : int(r, 8))]), how: 'padding or huge' };
      case 6:
        return { buf: Buffer.concat([b.subarray(0, 2), bytes(r, int(r, 64))]), how: 'random body' };
      default:
        return { buf: bytes(r, int(r, 40)), how: 'random bytes' };
    }
  }

  it('decodes or refuses with TftpParseError — never anything else — and what decodes round-trips', () => {
    const r = prng(SEED);
    const tally = { decoded: 0, refused: 0 };
    for (let i = 0; i < ITERATIONS; i++) {
      const { buf, how } = mutate(r, SEEDS[int(r, SEEDS.length)] as Buffer);
      let packet: TftpPacket;
      try {
        packet = decode(buf);
      } catch (err) {
        if (!(err instanceof TftpParseError)) throw new Error(`iteration ${i} (${how}, seed ${SEED}): ${String(err)} for ${buf.toString('hex').slice(0, 200)}`);
        tally.refused++;
        continue;
      }
      tally.decoded++;
      // A decoded packet is fully understood: written back and read again, it writes the same bytes.
      const written = encode(packet);
      if (!encode(decode(written)).equals(written)) throw new Error(`iteration ${i} (${how}): round trip differs for ${written.toString('hex').slice(0, 200)}`);
    }
    expect(tally.decoded + tally.refused).toBe(ITERATIONS);
    // Both paths were exercised heavily, or the fuzz proves little.
    expect(tally.decoded).toBeGreaterThan(ITERATIONS / 10);
    expect(tally.refused).toBeGreaterThan(ITERATIONS / 10);
  });
});
