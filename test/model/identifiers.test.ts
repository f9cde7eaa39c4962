import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/model/errors.js';
import {
  formatPortal,
  isMac,
  normalizeHostname,
  normalizeIqn,
  normalizeMac,
  parsePortal,
  printable,
  validateChapSecret,
  validateChapUser,
  validateLabels,
  validateName,
} from '../../src/model/identifiers.js';
import { isIpxeSafeValue } from '../../src/model/ipxe-text.js';
import { thrown } from '../support/thrown.js';
import { prng } from '../support/prng.js';

const validationError = (fn: () => unknown) => thrown(fn, ValidationError);

describe('normalizeMac', () => {
  it.each([
    ['52:54:00:aa:bb:cc', '52:54:00:aa:bb:cc'],
    ['52:54:00:AA:BB:CC', '52:54:00:aa:bb:cc'],
    ['52-54-00-AA-BB-CC', '52:54:00:aa:bb:cc'],
    ['525400aabbcc', '52:54:00:aa:bb:cc'],
    ['5254.00AA.BBCC', '52:54:00:aa:bb:cc'],
    ['  52:54:00:aa:bb:cc\n', '52:54:00:aa:bb:cc'],
  ])('accepts %j as %s', (input, expected) => {
    expect(normalizeMac(input)).toBe(expected);
  });

  it.each([
    ['', 'empty'],
    ['52:54:00:aa:bb', 'five octets'],
    ['52:54:00:aa:bb:cc:dd', 'seven octets'],
    ['52:54:00-aa:bb:cc', 'mixed separators'],
    ['52:54:00:aa:bb:cg', 'non-hex digit'],
    ['52:54:0:aa:bb:cc', 'short octet'],
    ['5254.00aa.bbc', 'short dotted group'],
    ['52 54 00 aa bb cc', 'spaces as separators'],
    ['52:54:00:aa:bb:cc;reboot', 'trailing command'],
    ['52:54:00:aa:bb:cc\nchain http://evil/', 'embedded newline'],
  ])('refuses %j (%s) naming the field', (input) => {
    const err = validationError(() => normalizeMac(input));
    expect(err.field).toBe('mac');
    expect(err.message).toMatch(/^mac: .*is not a MAC address/);
  });

  it('refuses the all-zero and broadcast addresses', () => {
    expect(validationError(() => normalizeMac('00:00:00:00:00:00')).message).toContain('cannot identify a machine');
    expect(validationError(() => normalizeMac('FF-FF-FF-FF-FF-FF')).message).toContain('ff:ff:ff:ff:ff:ff cannot identify');
  });

  it('names a caller-chosen field and keeps control characters out of the message', () => {
    const err = validationError(() => normalizeMac('aa\nbb', 'hosts.3.mac'));
    expect(err.field).toBe('hosts.3.mac');
    expect(err.message).toContain('aa\\x0abb');
    expect(err.message).not.toContain('\n');
  });

  it('isMac agrees with normalizeMac', () => {
    expect(isMac('52-54-00-aa-bb-cc')).toBe(true);
    expect(isMac('52-54-00-aa-bb')).toBe(false);
    expect(isMac('ff:ff:ff:ff:ff:ff')).toBe(false);
  });
});

describe('normalizeHostname', () => {
  it('lower-cases and trims', () => {
    expect(normalizeHostname('  Worker-1.LAB.example ')).toBe('worker-1.lab.example');
  });

  it('accepts labels of exactly 63 characters and names up to 253 characters', () => {
    const label63 = `a${'b'.repeat(61)}c`;
    expect(normalizeHostname(label63)).toBe(label63);
    const name253 = [label63, label63, label63, 'd'.repeat(61)].join('.');
    expect(name253).toHaveLength(253);
    expect(normalizeHostname(name253)).toBe(name253);
  });

  it.each([
    ['-worker', 'leading hyphen'],
    ['worker-', 'trailing hyphen'],
    ['work_er', 'underscore'],
    ['a..b', 'empty label'],
    ['worker.', 'trailing dot'],
    ['wörker', 'non-ASCII'],
    ['worker 1', 'space'],
    ['worker;reboot', 'semicolon'],
    ['x'.repeat(64), 'label longer than 63'],
  ])('refuses %j (%s)', (input) => {
    const err = validationError(() => normalizeHostname(input));
    expect(err.field).toBe('hostname');
    expect(err.message).toContain('is not an RFC 1123 host name');
  });

  it('refuses empty and over-long names with their own message', () => {
    expect(validationError(() => normalizeHostname('   ')).message).toBe('hostname: must not be empty');
    const long = Array.from({ length: 5 }, () => 'a'.repeat(60)).join('.');
    expect(validationError(() => normalizeHostname(long)).message).toBe('hostname: longer than 253 characters');
  });
});

describe('validateName', () => {
  it('accepts simple names and trims', () => {
    expect(validateName(' debian-12.k3s_v1 ')).toBe('debian-12.k3s_v1');
  });
  it.each(['', 'Default', '-x', '.hidden', 'a/b', 'a b', 'x'.repeat(64)])('refuses %j', (input) => {
    expect(validationError(() => validateName(input, 'profile')).field).toBe('profile');
  });
});

describe('normalizeIqn', () => {
  it.each([
    ['iqn.2003-01.org.linux-iscsi.gw:Worker-1', 'iqn.2003-01.org.linux-iscsi.gw:worker-1'],
    ['IQN.2026-01.io.hiveboot', 'iqn.2026-01.io.hiveboot'],
    ['iqn.2026-12.io.hiveboot:node.a_b-c:1', 'iqn.2026-12.io.hiveboot:node.a_b-c:1'],
    ['eui.0123456789ABCDEF', 'eui.0123456789abcdef'],
  ])('accepts %j as %s', (input, expected) => {
    expect(normalizeIqn(input)).toBe(expected);
  });

  it.each([
    ['iqn.2026-13.io.hiveboot', 'month 13'],
    ['iqn.2026-00.io.hiveboot', 'month 00'],
    ['iqn.26-01.io.hiveboot', 'two-digit year'],
    ['iqn.2026-01.-io.hiveboot', 'domain label starting with hyphen'],
    ['iqn.2026-01.io.hiveboot:a b', 'space'],
    ['iqn.2026-01.io.hiveboot:a;reboot', 'semicolon'],
    ['eui.0123', 'short EUI'],
    ['naa.6001405abcdef', 'NAA names'],
    [`iqn.2026-01.io.hiveboot:${'a'.repeat(200)}`, 'longer than 223'],
  ])('refuses %j (%s)', (input) => {
    const err = validationError(() => normalizeIqn(input, 'disk.targetIqn'));
    expect(err.field).toBe('disk.targetIqn');
    expect(err.message).toContain('is not an iSCSI name');
  });
});

describe('parsePortal / formatPortal', () => {
  it.each([
    ['192.0.2.10', { host: '192.0.2.10', port: 3260 }, '192.0.2.10:3260'],
    ['192.0.2.10:3261', { host: '192.0.2.10', port: 3261 }, '192.0.2.10:3261'],
    ['Gw1.Example.com', { host: 'gw1.example.com', port: 3260 }, 'gw1.example.com:3260'],
    ['gw1:65535', { host: 'gw1', port: 65535 }, 'gw1:65535'],
    ['[2001:db8::1]:3260', { host: '2001:db8::1', port: 3260 }, '[2001:db8::1]:3260'],
    ['[2001:DB8::1]', { host: '2001:db8::1', port: 3260 }, '[2001:db8::1]:3260'],
    ['[::ffff:192.0.2.1]:860', { host: '::ffff:192.0.2.1', port: 860 }, '[::ffff:192.0.2.1]:860'],
  ])('parses %j', (input, portal, formatted) => {
    expect(parsePortal(input)).toEqual(portal);
    expect(formatPortal(parsePortal(input))).toBe(formatted);
    // The formatted form is itself a valid portal that means the same thing.
    expect(parsePortal(formatted)).toEqual(portal);
  });

  it.each([
    ['2001:db8::1', 'write IPv6 portals as [address]:port'],
    ['[2001:db8::zz]:3260', 'write IPv6 portals as [address]:port'],
    ['[192.0.2.1]:3260', 'has an invalid IPv6 address'],
    ['192.0.2.10:0', 'must be 1-65535'],
    ['192.0.2.10:65536', 'must be 1-65535'],
    ['192.0.2.10:', 'must be 1-65535'],
    ['gw:1e3', 'must be 1-65535'],
    ['gw:0x0cbc', 'must be 1-65535'],
    ['gw:3260.0', 'must be 1-65535'],
    ['bad_host:3260', 'is not an RFC 1123 host name'],
    [':3260', 'must not be empty'],
    ['gw :3260', 'must not contain whitespace'],
    ['gw\n:3260', 'must not contain whitespace'],
    ['192.0.2.10\t:3260', 'must not contain whitespace'],
    ['gw: 3260', 'must not contain whitespace'],
  ])('refuses %j: %s', (input, message) => {
    const err = validationError(() => parsePortal(input, 'disk.portals.0'));
    expect(err.field).toBe('disk.portals.0');
    expect(err.message).toContain(message);
  });

  it('never returns a portal that is unsafe on an iPXE line', () => {
    for (const input of ['192.0.2.10', '[2001:db8::1]:3260', 'gw.example.com:3260']) {
      expect(isIpxeSafeValue(formatPortal(parsePortal(input)))).toBe(true);
    }
  });
});

describe('CHAP credentials', () => {
  it('accepts users of 8-64 and secrets of 12-16 characters from the gateway alphabet', () => {
    expect(validateChapUser('abcdefgh')).toBe('abcdefgh');
    expect(validateChapUser('u'.repeat(64))).toBe('u'.repeat(64));
    expect(validateChapUser('iqn.2026-01.io:w_1@x/y+z')).toBe('iqn.2026-01.io:w_1@x/y+z');
    expect(validateChapSecret('Secret-12345')).toBe('Secret-12345');
    expect(validateChapSecret('s'.repeat(16))).toBe('s'.repeat(16));
  });

  it.each(['abcdefg', 'u'.repeat(65), 'abc defgh', 'abcdefgh;', 'abcdéfgh'])('refuses user %j', (input) => {
    const err = validationError(() => validateChapUser(input, 'disk.chapUser'));
    expect(err.field).toBe('disk.chapUser');
    expect(err.message).toContain('8-64 characters');
  });

  it.each(['s'.repeat(11), 's'.repeat(17), 'secret secret', 'secret$secret'])('refuses secret %j without echoing it', (input) => {
    const err = validationError(() => validateChapSecret(input, 'disk.chapSecret'));
    expect(err.field).toBe('disk.chapSecret');
    expect(err.message).toContain('12-16 characters');
    expect(err.message).not.toContain(input);
  });
});

describe('validateLabels', () => {
  it('accepts Kubernetes-style keys and values, including empty values and prefixes', () => {
    const labels = { 'node-role.kubernetes.io/worker': '', zone: 'rack-1', 'hiveboot.io/Arch_x': 'x86_64' };
    expect(validateLabels(labels)).toEqual(labels);
  });

  it('names the offending key in the field', () => {
    expect(validationError(() => validateLabels({ 'bad key': 'x' })).field).toBe('labels.bad key');
    expect(validationError(() => validateLabels({ '-zone': 'x' })).field).toBe('labels.-zone');
    expect(validationError(() => validateLabels({ 'Example.com/zone': 'x' })).field).toBe('labels.Example.com/zone');
  });

  it.each(['two words', 'semi;colon', '$(reboot)', 'v'.repeat(64), '-leading'])('refuses value %j', (value) => {
    const err = validationError(() => validateLabels({ zone: value }, 'k3sLabels'));
    expect(err.field).toBe('k3sLabels.zone');
  });

  it('refuses non-string values', () => {
    expect(validationError(() => validateLabels({ zone: 1 as unknown as string })).field).toBe('labels.zone');
  });
});

describe('printable', () => {
  it('escapes control characters and shortens long input', () => {
    expect(printable('a\r\nb\x7f')).toBe('a\\x0d\\x0ab\\x7f');
    expect(printable('x'.repeat(100))).toBe(`${'x'.repeat(80)}…`);
  });
});


/** Random strings biased towards the shapes the normalisers accept, with hostile characters mixed in. */
function fuzzStrings(seed: number, count: number, alphabet: string, shapes: ((pick: (s: string) => string) => string)[]): string[] {
  const rand = prng(seed);
  const chars = [...alphabet];
  const pick = (s: string): string => {
    const a = [...s];
    return a[Math.floor(rand() * a.length)]!;
  };
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = rand();
    if (r < 0.6) {
      let s = shapes[Math.floor(rand() * shapes.length)]!(pick);
      // Mutate: replace, insert or delete a character now and then.
      const mutations = Math.floor(rand() * 3);
      for (let m = 0; m < mutations; m++) {
        const at = Math.floor(rand() * (s.length + 1));
        const kind = rand();
        const c = chars[Math.floor(rand() * chars.length)]!;
        if (kind < 0.4) s = s.slice(0, at) + c + s.slice(at + 1);
        else if (kind < 0.7) s = s.slice(0, at) + c + s.slice(at);
        else s = s.slice(0, at) + s.slice(at + 1);
      }
      out.push(s);
    } else {
      const len = Math.floor(rand() * 24);
      let s = '';
      for (let j = 0; j < len; j++) s += chars[Math.floor(rand() * chars.length)]!;
      out.push(s);
    }
  }
  return out;
}

const HOSTILE = ' \t\r\n\v\f$#\\;|&"\'`\x00\x1f\x7f\u00a0\u2028\ufeffé\u212a\u0130{}()[]<>/=?*~!%^+,';

describe('normaliser fuzzing (seeded)', () => {
  const hex = '0123456789abcdefABCDEF';
  const macShapes: ((pick: (s: string) => string) => string)[] = [
    (p) => Array.from({ length: 6 }, () => p(hex) + p(hex)).join(':'),
    (p) => Array.from({ length: 6 }, () => p(hex) + p(hex)).join('-'),
    (p) => Array.from({ length: 12 }, () => p(hex)).join(''),
    (p) => Array.from({ length: 3 }, () => p(hex) + p(hex) + p(hex) + p(hex)).join('.'),
    (p) => ` ${Array.from({ length: 6 }, () => p(hex) + p(hex)).join(':')}\n`,
  ];

  it('normalizeMac either refuses with a ValidationError or returns a canonical, round-tripping, iPXE-safe MAC', () => {
    let accepted = 0;
    let refused = 0;
    for (const input of fuzzStrings(0x5eed1, 4000, hex + ':-.' + HOSTILE, macShapes)) {
      let out: string;
      try {
        out = normalizeMac(input);
      } catch (err) {
        expect(err, JSON.stringify(input)).toBeInstanceOf(ValidationError);
        expect((err as ValidationError).field).toBe('mac');
        expect((err as Error).message).not.toMatch(/[\r\n]/);
        refused++;
        continue;
      }
      accepted++;
      expect(out, JSON.stringify(input)).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      expect(normalizeMac(out)).toBe(out);
      expect(isIpxeSafeValue(out)).toBe(true);
      // Same hex digits as the input, in the same order.
      expect(out.replace(/:/g, '')).toBe(input.replace(/[^0-9a-f]/gi, '').toLowerCase());
    }
    // Both branches must really have been exercised.
    expect(accepted).toBeGreaterThan(500);
    expect(refused).toBeGreaterThan(500);
  });

  const alnum = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const label = (p: (s: string) => string): string => p(alnum) + p(alnum + '-') + p(alnum + '-') + p(alnum);
  const hostShapes: ((pick: (s: string) => string) => string)[] = [
    (p) => label(p),
    (p) => `${label(p)}.${label(p)}`,
    (p) => `${label(p)}-${label(p)}.${label(p)}.${label(p)}`,
    (p) => ` ${label(p)} `,
    (p) => `${label(p)}${p('-')}`,
  ];

  it('normalizeHostname either refuses with a ValidationError or returns a lower-case, round-tripping, iPXE-safe name', () => {
    let accepted = 0;
    let refused = 0;
    for (const input of fuzzStrings(0xb007, 4000, alnum + '-.' + HOSTILE, hostShapes)) {
      let out: string;
      try {
        out = normalizeHostname(input);
      } catch (err) {
        expect(err, JSON.stringify(input)).toBeInstanceOf(ValidationError);
        expect((err as ValidationError).field).toBe('hostname');
        expect((err as Error).message).not.toMatch(/[\r\n]/);
        refused++;
        continue;
      }
      accepted++;
      expect(normalizeHostname(out), JSON.stringify(input)).toBe(out);
      expect(isIpxeSafeValue(out), JSON.stringify(input)).toBe(true);
      expect(out, JSON.stringify(input)).toMatch(/^[a-z0-9.-]{1,253}$/);
      expect(out.startsWith('-') || out.endsWith('-') || out.includes('..')).toBe(false);
    }
    expect(accepted).toBeGreaterThan(500);
    expect(refused).toBeGreaterThan(500);
  });

  it('parsePortal output always formats to an iPXE-safe portal that parses back to itself', () => {
    const portalShapes: ((pick: (s: string) => string) => string)[] = [
      (p) => `192.0.2.${p('0123456789')}${p('0123456789')}:${p('123456789')}${p('0123456789')}${p('0123456789')}`,
      (p) => `[2001:db8::${p(hex)}${p(hex)}]:${p('123456789')}${p('0123456789')}`,
      (p) => `${label(p)}.example:${p('123456789')}${p('0123456789')}`,
      (p) => `${label(p)}`,
    ];
    let accepted = 0;
    for (const input of fuzzStrings(0x3260, 3000, '0123456789abcdef:.[]' + HOSTILE, portalShapes)) {
      let out: string;
      try {
        out = formatPortal(parsePortal(input));
      } catch (err) {
        expect(err, JSON.stringify(input)).toBeInstanceOf(ValidationError);
        continue;
      }
      accepted++;
      expect(isIpxeSafeValue(out), JSON.stringify(input)).toBe(true);
      expect(formatPortal(parsePortal(out))).toBe(out);
    }
    expect(accepted).toBeGreaterThan(300);
  });
});
