import { isIP } from 'node:net';
import { ValidationError } from './errors.js';

/**
 * Parsing and normalising the identifiers every part of hiveboot shares: MAC addresses, host names,
 * iSCSI names and portals. Pure functions; each throws a ValidationError naming the field.
 */

const MAC_SEPARATED = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i;
const MAC_BARE = /^[0-9a-f]{12}$/i;
const MAC_DOTTED = /^([0-9a-f]{4})\.([0-9a-f]{4})\.([0-9a-f]{4})$/i;

/** Accepts aa:bb:cc:dd:ee:ff, aa-bb-..., aabbccddeeff and aabb.ccdd.eeff; returns lower-case colon form. */
export function normalizeMac(input: string, field = 'mac'): string {
  const s = String(input).trim();
  let hex: string | undefined;
  const sep = MAC_SEPARATED.exec(s);
  if (sep) hex = [sep[1], sep[3], sep[4], sep[5], sep[6], sep[7]].join('');
  else if (MAC_BARE.test(s)) hex = s;
  else {
    const dotted = MAC_DOTTED.exec(s);
    if (dotted) hex = dotted.slice(1).join('');
  }
  if (!hex) {
    throw new ValidationError(`${field}: "${printable(s)}" is not a MAC address (expected e.g. 52:54:00:aa:bb:cc)`, field);
  }
  hex = hex.toLowerCase();
  const mac = hex.match(/../g)!.join(':');
  if (mac === '00:00:00:00:00:00' || mac === 'ff:ff:ff:ff:ff:ff') {
    throw new ValidationError(`${field}: ${mac} cannot identify a machine`, field);
  }
  return mac;
}

export function isMac(input: string): boolean {
  try {
    normalizeMac(input);
    return true;
  } catch {
    return false;
  }
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * RFC 1123 host name, lower-cased. Kubernetes node names must be lower-case RFC 1123 subdomains, and
 * the K3s node-name is derived from the host name, so upper case is folded rather than refused.
 */
export function normalizeHostname(input: string, field = 'hostname'): string {
  const s = String(input).trim().toLowerCase();
  if (s.length === 0) throw new ValidationError(`${field}: must not be empty`, field);
  if (s.length > 253) throw new ValidationError(`${field}: longer than 253 characters`, field);
  for (const label of s.split('.')) {
    if (!LABEL.test(label)) {
      throw new ValidationError(
        `${field}: "${printable(s)}" is not an RFC 1123 host name (letters, digits and inner hyphens, labels of 1-63 characters separated by dots)`,
        field,
      );
    }
  }
  return s;
}

/** A simple name for profiles, images and templates: safe in file names, URLs and iPXE lines. */
const NAME = /^[a-z0-9]([a-z0-9._-]{0,62})$/;
export function validateName(input: string, field = 'name'): string {
  const s = String(input).trim();
  if (!NAME.test(s)) {
    throw new ValidationError(
      `${field}: "${printable(s)}" must be 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`,
      field,
    );
  }
  return s;
}

/**
 * iSCSI qualified names (RFC 7143 section 4.2.7): iqn.yyyy-mm.reversed.domain[:anything] or eui.<16 hex>.
 * Lower-cased, since iSCSI names compare case-insensitively and LIO stores them lower-case.
 */
const IQN = /^iqn\.\d{4}-(0[1-9]|1[0-2])\.[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[a-z0-9.:_-]+)?$/;
const EUI = /^eui\.[0-9a-f]{16}$/;
export function normalizeIqn(input: string, field = 'iqn'): string {
  const s = String(input).trim().toLowerCase();
  if (s.length > 223 || !(IQN.test(s) || EUI.test(s))) {
    throw new ValidationError(
      `${field}: "${printable(s)}" is not an iSCSI name (expected iqn.yyyy-mm.reversed.domain[:identifier])`,
      field,
    );
  }
  return s;
}

export interface Portal {
  host: string;
  port: number;
}

/** "192.0.2.10", "192.0.2.10:3260", "[2001:db8::1]:3260" or a DNS name, port 3260 by default. */
export function parsePortal(input: string, field = 'portal'): Portal {
  const s = String(input).trim();
  // Whitespace inside ("gw\n:3260") would otherwise survive into the host and onto the iPXE line.
  if (/\s/.test(s)) throw new ValidationError(`${field}: "${printable(s)}" must not contain whitespace`, field);
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([0-9a-f:.]+)\](?::(\d+))?$/i.exec(s);
  if (v6) {
    host = v6[1]!;
    portText = v6[2];
    if (isIP(host) !== 6) throw new ValidationError(`${field}: "${printable(s)}" has an invalid IPv6 address`, field);
  } else {
    const parts = s.split(':');
    if (parts.length > 2) {
      throw new ValidationError(`${field}: "${printable(s)}": write IPv6 portals as [address]:port`, field);
    }
    host = parts[0]!;
    portText = parts[1];
    if (isIP(host) === 0) normalizeHostname(host, field);
  }
  // Decimal digits only: Number() would also take "1e3", "0x0cbc" and "3260.0".
  const port = portText === undefined ? 3260 : /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ValidationError(`${field}: port of "${printable(s)}" must be 1-65535`, field);
  }
  return { host: host.toLowerCase(), port };
}

export function formatPortal(p: Portal): string {
  const host = isIP(p.host) === 6 ? `[${p.host}]` : p.host;
  return `${host}:${p.port}`;
}

/**
 * CHAP user names and secrets. Limits are the Ceph iSCSI gateway's (user 8-64, secret 12-16, from
 * [A-Za-z0-9_.@:/+-]) so that credentials move between the built-in target and the gateway unchanged.
 */
const CHAP_CHARS = /^[A-Za-z0-9_.@:/+-]+$/;
export function validateChapUser(input: string, field = 'chapUser'): string {
  const s = String(input);
  if (s.length < 8 || s.length > 64 || !CHAP_CHARS.test(s)) {
    throw new ValidationError(`${field}: must be 8-64 characters of A-Z a-z 0-9 _ . @ : / + -`, field);
  }
  return s;
}
export function validateChapSecret(input: string, field = 'chapSecret'): string {
  const s = String(input);
  // Never echo the value: it is a secret.
  if (s.length < 12 || s.length > 16 || !CHAP_CHARS.test(s)) {
    throw new ValidationError(`${field}: must be 12-16 characters of A-Z a-z 0-9 _ . @ : / + -`, field);
  }
  return s;
}

/** Label keys and values in the Kubernetes style (they become K3s node labels). */
const LABEL_KEY = /^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;
export function validateLabels(input: Record<string, string>, field = 'labels'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(input)) {
    if (!LABEL_KEY.test(k)) throw new ValidationError(`${field}: key "${printable(k)}" is not a valid label key`, `${field}.${k}`);
    if (typeof v !== 'string' || !LABEL_VALUE.test(v)) {
      throw new ValidationError(`${field}.${k}: value must be at most 63 characters of A-Z a-z 0-9 . _ -`, `${field}.${k}`);
    }
    out[k] = v;
  }
  return out;
}

/** Show user input in an error without letting it break the line. */
export function printable(s: string, max = 80): string {
  const cleaned = s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return cleaned.length > max ? `${cleaned.slice(0, max)}…` : cleaned;
}

/** A dotted-quad IPv4 address, without leading zeros (which some parsers read as octal). */
export function normalizeIpv4(input: string, field = 'ip'): string {
  const s = String(input).trim();
  if (isIP(s) !== 4) throw new ValidationError(`${field}: "${printable(s)}" is not an IPv4 address`, field);
  return s;
}

/**
 * A PXE boot file: a name in the TFTP root (letters, digits, . _ - /, no "..") or an http(s) URL for
 * UEFI HTTP boot. At most 127 bytes: it travels in the BOOTP file field.
 */
export function validateBootFile(input: string, field = 'bootFile'): string {
  const s = String(input).trim();
  const tftpName = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(s) && !s.split('/').includes('..');
  const url = /^https?:\/\/[A-Za-z0-9.:[\]_-]+(\/[A-Za-z0-9._~%\/-]*)?$/.test(s);
  if (s.length === 0 || s.length > 127 || !(tftpName || url)) {
    throw new ValidationError(`${field}: "${printable(s)}" must be a file name in the TFTP root or an http URL, at most 127 characters`, field);
  }
  return s;
}
