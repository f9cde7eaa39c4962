import { ValidationError } from './errors.js';
import { printable } from './identifiers.js';

/**
 * What may appear on an iPXE script line. iPXE expands ${...} settings, treats # as a comment, \ as an
 * escape, ; | & as command separators and operators, and splits words on whitespace — so a value taken
 * from user input (a host name, a label, a CHAP user) that contains any of these could add commands
 * to the script. HTML escaping does nothing against that; refusing the characters does.
 */
const UNSAFE_VALUE = /[\s$#\\;|&\x00-\x1f\x7f"'`]/;
/** Kernel arguments are several words, so spaces (not tabs or newlines) are allowed between them. */
const UNSAFE_ARGS = /[\t\r\n\v\f$#\\;|&\x00-\x1f\x7f"'`]/;

export function isIpxeSafeValue(value: string): boolean {
  return !UNSAFE_VALUE.test(value);
}

export function assertIpxeValue(value: string, field: string): string {
  if (UNSAFE_VALUE.test(value)) {
    throw new ValidationError(
      `${field}: "${printable(value)}" contains a character that is unsafe in an iPXE script (whitespace, newline, $ # \\ ; | & or quotes)`,
      field,
    );
  }
  return value;
}

export function assertIpxeArgs(value: string, field: string): string {
  if (UNSAFE_ARGS.test(value)) {
    throw new ValidationError(
      `${field}: "${printable(value)}" contains a character that is unsafe in an iPXE script (newline, tab, $ # \\ ; | & or quotes)`,
      field,
    );
  }
  return value.trim().replace(/ {2,}/g, ' ');
}

/**
 * A path inside the booted disk's EFI system partition, for `sanboot --filename`. Written with '/';
 * segments are plain file-name characters only.
 */
const EFI_PATH = /^(\/[A-Za-z0-9._-]+)+$/;
export function normalizeEfiPath(value: string, field = 'efiFilename'): string {
  const s = value.trim().replace(/\\/g, '/');
  const withSlash = s.startsWith('/') ? s : `/${s}`;
  if (!EFI_PATH.test(withSlash) || withSlash.split('/').some((seg) => seg === '..' || seg === '.')) {
    throw new ValidationError(`${field}: "${printable(value)}" is not a plain path such as /EFI/BOOT/BOOTX64.EFI`, field);
  }
  return withSlash;
}
