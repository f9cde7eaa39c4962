import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultTokenFile, readTokenFile, resolveApiToken } from '../../src/config/api-token.js';
import { validateConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hiveboot-token-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function configWith(raw: Record<string, unknown>): Config {
  return validateConfig(raw, 'test');
}

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('resolveApiToken', () => {
  it('creates a random token in <stateDir>/api-token, readable only by its owner', () => {
    const stateDir = join(dir, 'state');
    const config = configWith({ stateDir });
    const first = resolveApiToken(config);
    const file = join(stateDir, 'api-token');
    expect(first.created).toBe(true);
    expect(first.file).toBe(file);
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 random bytes, base64url
    expect(readFileSync(file, 'utf8')).toBe(`${first.token}\n`);
    expect(mode(file)).toBe(0o600);
    // The state directory it had to create is private too.
    expect(mode(stateDir) & 0o077).toBe(0);
  });

  it('returns the same token on the next start without rewriting the file', () => {
    const config = configWith({ stateDir: dir });
    const first = resolveApiToken(config);
    const mtime = statSync(join(dir, 'api-token')).mtimeMs;
    const second = resolveApiToken(config);
    expect(second).toEqual({ token: first.token, file: join(dir, 'api-token'), created: false });
    expect(statSync(join(dir, 'api-token')).mtimeMs).toBe(mtime);
  });

  it('makes a different token for a different state directory', () => {
    const a = resolveApiToken(configWith({ stateDir: join(dir, 'a') }));
    const b = resolveApiToken(configWith({ stateDir: join(dir, 'b') }));
    expect(a.token).not.toBe(b.token);
  });

  it('tightens a world-readable token file to 0600 and keeps using its token', () => {
    const file = join(dir, 'api-token');
    writeFileSync(file, '  hand-written-token-0123456789  \n');
    chmodSync(file, 0o644);
    const result = resolveApiToken(configWith({ stateDir: dir }));
    expect(result).toEqual({ token: 'hand-written-token-0123456789', file, created: false });
    expect(mode(file)).toBe(0o600);
  });

  it('explains an empty token file instead of failing with a bare EEXIST, and never overwrites it', () => {
    const file = join(dir, 'api-token');
    writeFileSync(file, '', { mode: 0o600 });
    expect(() => resolveApiToken(configWith({ stateDir: dir }))).toThrow(
      `${file} exists but holds no token: write a token into it, or delete it to have a new one made`,
    );
    expect(readFileSync(file, 'utf8')).toBe('');
    // Following the advice works.
    rmSync(file);
    expect(resolveApiToken(configWith({ stateDir: dir })).created).toBe(true);
  });

  it('uses api.tokenFile when configured', () => {
    const file = join(dir, 'secrets', 'token');
    const config = configWith({ stateDir: join(dir, 'state'), api: { tokenFile: file } });
    expect(defaultTokenFile(config)).toBe(file);
    const result = resolveApiToken(config);
    expect(result.file).toBe(file);
    expect(readFileSync(file, 'utf8').trim()).toBe(result.token);
    expect(existsSync(join(dir, 'state', 'api-token'))).toBe(false);
  });

  it('prefers a configured api.token and writes no file', () => {
    writeFileSync(join(dir, 'api-token'), 'token-from-the-file-000000\n', { mode: 0o600 });
    const config = configWith({ stateDir: join(dir, 'fresh'), api: { token: 'configured-token-0123456789' } });
    expect(resolveApiToken(config)).toEqual({ token: 'configured-token-0123456789', created: false });
    expect(existsSync(join(dir, 'fresh'))).toBe(false);

    const withFile = configWith({ stateDir: dir, api: { token: 'configured-token-0123456789' } });
    expect(resolveApiToken(withFile).token).toBe('configured-token-0123456789');
  });
});

describe('readTokenFile', () => {
  it('returns undefined for a missing or empty file', () => {
    expect(readTokenFile(join(dir, 'missing'))).toBeUndefined();
    writeFileSync(join(dir, 'empty'), '\n', { mode: 0o600 });
    expect(readTokenFile(join(dir, 'empty'))).toBeUndefined();
  });

  it('tightens group-readable files too', () => {
    const file = join(dir, 'tok');
    writeFileSync(file, 'abc\n');
    chmodSync(file, 0o640);
    expect(readTokenFile(file)).toBe('abc');
    expect(mode(file)).toBe(0o600);
  });
});
