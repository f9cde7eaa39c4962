import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/model/errors.js';
import { assertIpxeArgs, assertIpxeValue, isIpxeSafeValue, normalizeEfiPath } from '../../src/model/ipxe-text.js';
import { thrown } from '../support/thrown.js';

const validationError = (fn: () => unknown) => thrown(fn, ValidationError);

/** Each of these could end a word, a command or the line, or expand a setting, in an iPXE script. */
const UNSAFE_IN_VALUES = [' ', '\t', '\n', '\r', '\v', '\f', '$', '#', '\\', ';', '|', '&', '"', "'", '`', '\x00', '\x1b', '\x7f'];

describe('isIpxeSafeValue / assertIpxeValue', () => {
  it('accepts the plain values hiveboot puts on script lines', () => {
    for (const v of ['worker-1', 'iqn.2026-01.io.hiveboot:worker-1', '52:54:00:aa:bb:cc', '[2001:db8::1]:3260', 'http://192.0.2.1:8080/x', '']) {
      expect(isIpxeSafeValue(v)).toBe(true);
      expect(assertIpxeValue(v, 'hostname')).toBe(v);
    }
  });

  it.each(UNSAFE_IN_VALUES.map((c) => [JSON.stringify(c), c]))('refuses a value containing %s', (_name, c) => {
    const value = `worker${c}1`;
    expect(isIpxeSafeValue(value)).toBe(false);
    const err = validationError(() => assertIpxeValue(value, 'labels.zone'));
    expect(err.field).toBe('labels.zone');
    expect(err.message).toContain('unsafe in an iPXE script');
    // The message stays on one line even when the value would break it.
    expect(err.message).not.toMatch(/[\r\n]/);
  });

  it('refuses the classic injections', () => {
    for (const v of ['x\nshell', 'x ; chain http://evil/', '${root-path}', 'a || reboot', 'x#comment']) {
      expect(isIpxeSafeValue(v)).toBe(false);
    }
  });
});

describe('assertIpxeArgs', () => {
  it('allows spaces between kernel arguments, trimming and collapsing runs of them', () => {
    expect(assertIpxeArgs('  console=ttyS0,115200   quiet  ip=dhcp ', 'kernelArgs')).toBe('console=ttyS0,115200 quiet ip=dhcp');
    expect(assertIpxeArgs('', 'kernelArgs')).toBe('');
  });

  it.each(['\t', '\n', '\r', '\v', '\f', '$', '#', '\\', ';', '|', '&', '"', "'", '`', '\x00', '\x7f'].map((c) => [JSON.stringify(c), c]))(
    'refuses arguments containing %s',
    (_name, c) => {
      const err = validationError(() => assertIpxeArgs(`quiet${c}reboot`, 'params.extra'));
      expect(err.field).toBe('params.extra');
      expect(err.message).toContain('unsafe in an iPXE script');
      expect(err.message).not.toMatch(/[\r\n]/);
    },
  );
});

describe('normalizeEfiPath', () => {
  it.each([
    ['/EFI/BOOT/BOOTX64.EFI', '/EFI/BOOT/BOOTX64.EFI'],
    ['EFI/debian/shimx64.efi', '/EFI/debian/shimx64.efi'],
    ['\\EFI\\BOOT\\BOOTAA64.EFI', '/EFI/BOOT/BOOTAA64.EFI'],
    ['  /EFI/BOOT/grub_x64-1.efi ', '/EFI/BOOT/grub_x64-1.efi'],
  ])('normalises %j to %s', (input, expected) => {
    expect(normalizeEfiPath(input)).toBe(expected);
    // Idempotent: the stored form is accepted unchanged.
    expect(normalizeEfiPath(expected)).toBe(expected);
  });

  it.each([
    ['/EFI/../../etc/shadow', 'parent directory'],
    ['/EFI/./BOOTX64.EFI', 'current directory'],
    ['/..', 'bare parent'],
    ['/EFI//BOOTX64.EFI', 'empty segment'],
    ['/EFI/BOOT/', 'trailing slash'],
    ['/EFI/BOOT X64.EFI', 'space'],
    ['/EFI/BOOT;reboot', 'command separator'],
    ['/EFI/$bootfile', 'setting expansion'],
    ['', 'empty'],
  ])('refuses %j (%s)', (input) => {
    const err = validationError(() => normalizeEfiPath(input));
    expect(err.field).toBe('efiFilename');
    expect(err.message).toContain('is not a plain path');
  });
});
