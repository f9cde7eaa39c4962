import { randomBytes } from 'node:crypto';
import { chmodSync, fsyncSync, closeSync, linkSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from './schema.js';

export function defaultTokenFile(config: Config): string {
  return config.api.tokenFile ?? join(config.stateDir, 'api-token');
}

/**
 * The REST API's bearer token: from the config, else from the token file, else a new random token
 * written to that file 0600. The token is written and synced to a temporary file first, then linked
 * into place: the token file never exists half-written, and link() fails if another start won the
 * race, so two starts never end up with different tokens.
 */
export function resolveApiToken(config: Config): { token: string; file?: string; created: boolean } {
  if (config.api.token) return { token: config.api.token, created: false };
  const file = defaultTokenFile(config);
  const existing = readTokenFile(file);
  if (existing) return { token: existing, file, created: false };
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${token}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const raced = readTokenFile(file);
    if (raced) return { token: raced, file, created: false };
    // An empty file (an interrupted first start, a full disk, or `touch`) would otherwise fail every start with a bare EEXIST.
    throw new Error(`${file} exists but holds no token: write a token into it, or delete it to have a new one made`);
  } finally {
    unlinkSync(tmp);
  }
  return { token, file, created: true };
}

export function readTokenFile(file: string): string | undefined {
  try {
    const mode = statSync(file).mode & 0o777;
    // A token others can read is not a secret any more: tighten it rather than refuse to start.
    if (mode & 0o077) chmodSync(file, 0o600);
    const token = readFileSync(file, 'utf8').trim();
    return token.length > 0 ? token : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
