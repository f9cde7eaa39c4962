import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, validateConfig } from '../../src/config/load.js';
import { thrown } from '../support/thrown.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hiveboot-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(text: string, name = 'hiveboot.yaml'): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const configError = (fn: () => unknown) => thrown(fn, ConfigError);

const DEFAULTS = {
  stateDir: '/var/lib/hiveboot',
  http: { listen: '0.0.0.0', port: 8080, bodyLimitBytes: 1024 * 1024 },
  api: {},
  boot: {
    discovery: true,
    maxDiscovered: 1000,
    autoEnroll: false,
    defaultProfile: 'default',
    retrySeconds: 10,
    initiatorIqnPrefix: 'iqn.2026-01.io.hiveboot',
    bindScripts: true,
  },
  inventory: { eventRetentionDays: 90 },
  // DHCP is not served until interfaces are named: a fresh install never answers on a real network.
  dhcp: { mode: 'proxy', interfaces: [], bootFiles: {}, subnets: [], ports: { server: 67, pxe: 4011, client: 68 } },
  tftp: { enabled: true, listen: '0.0.0.0', port: 69, maxTransfers: 64, timeoutMs: 1000, retries: 5 },
  // The built-in target serves hosts' disks by default: one machine runs the whole path with no Ceph.
  iscsi: {
    enabled: true,
    listen: '0.0.0.0',
    port: 3260,
    portals: [],
    targetIqnPrefix: 'iqn.2026-01.io.hiveboot',
    discoveryNeedsChap: true,
    nopIntervalSeconds: 10,
    nopTimeoutSeconds: 30,
  },
  storage: { backend: 'builtin', mutualChap: false },
  ceph: { conf: '/etc/ceph/ceph.conf', client: 'client.hiveboot', pool: 'hiveboot' },
  k3s: {},
  log: { level: 'info' },
};

describe('loadConfig defaults', () => {
  it('gives a complete working config when the file does not exist', () => {
    const loaded = loadConfig({ path: join(dir, 'missing.yaml'), env: {} });
    expect(loaded.file).toBeUndefined();
    expect(loaded.config).toEqual(DEFAULTS);
  });

  it.each([
    ['an empty file', ''],
    ['a file of comments', '# nothing configured yet\n'],
    ['an empty mapping', '{}\n'],
  ])('gives the defaults for %s and reports the file it read', (_name, text) => {
    const path = writeConfig(text);
    const loaded = loadConfig({ path, env: {} });
    expect(loaded.file).toBe(path);
    expect(loaded.config).toEqual(DEFAULTS);
  });

  it('fills every other default when the file only sets the HTTP listen address and port', () => {
    const path = writeConfig('http:\n  listen: 192.0.2.1\n  port: 8081\n');
    const { config } = loadConfig({ path, env: {} });
    expect(config.http).toEqual({ listen: '192.0.2.1', port: 8081, bodyLimitBytes: 1024 * 1024 });
    expect(config.boot).toEqual(DEFAULTS.boot);
    expect(config.stateDir).toBe('/var/lib/hiveboot');
    expect(config.log.level).toBe('info');
  });

  it('keeps optional settings that are given', () => {
    const path = writeConfig(
      [
        'stateDir: /srv/hiveboot',
        'http:',
        '  publicUrl: http://192.0.2.1:8080',
        'api:',
        '  tokenFile: /etc/hiveboot/token',
        'boot:',
        '  autoEnroll: true',
        '  defaultProfile: workers',
        'inventory:',
        '  path: /srv/hiveboot/inv.db',
        'log:',
        '  level: debug',
        '',
      ].join('\n'),
    );
    const { config } = loadConfig({ path, env: {} });
    expect(config.stateDir).toBe('/srv/hiveboot');
    expect(config.http.publicUrl).toBe('http://192.0.2.1:8080');
    expect(config.api.tokenFile).toBe('/etc/hiveboot/token');
    expect(config.boot.autoEnroll).toBe(true);
    expect(config.boot.defaultProfile).toBe('workers');
    expect(config.boot.discovery).toBe(true);
    expect(config.inventory.path).toBe('/srv/hiveboot/inv.db');
    expect(config.log.level).toBe('debug');
  });

  it('does not modify what it is given when validating', () => {
    const raw = { http: { port: 9000 } };
    const config = validateConfig(raw);
    expect(config.http.listen).toBe('0.0.0.0');
    expect(raw).toEqual({ http: { port: 9000 } });
  });
});

describe('HIVEBOOT_* environment overrides', () => {
  it('sets nested and top-level settings with coerced types', () => {
    const { config } = loadConfig({
      path: join(dir, 'missing.yaml'),
      env: {
        HIVEBOOT_HTTP_PORT: '9000',
        HIVEBOOT_STATE_DIR: join(dir, 'state'),
        HIVEBOOT_BOOT_AUTO_ENROLL: 'true',
        HIVEBOOT_BOOT_MAX_DISCOVERED: '5',
        HIVEBOOT_LOG_LEVEL: 'warn',
        HIVEBOOT_API_TOKEN_FILE: '/run/secrets/hiveboot-token',
      },
    });
    expect(config.http.port).toBe(9000);
    expect(config.http.listen).toBe('0.0.0.0');
    expect(config.stateDir).toBe(join(dir, 'state'));
    expect(config.boot.autoEnroll).toBe(true);
    expect(config.boot.maxDiscovered).toBe(5);
    expect(config.boot.discovery).toBe(true);
    expect(config.log.level).toBe('warn');
    expect(config.api.tokenFile).toBe('/run/secrets/hiveboot-token');
  });

  it('wins over the file and leaves the file’s other settings alone', () => {
    const path = writeConfig('http:\n  listen: 192.0.2.1\n  port: 8081\nboot:\n  autoEnroll: true\n');
    const { config } = loadConfig({ path, env: { HIVEBOOT_HTTP_PORT: '9001', HIVEBOOT_BOOT_AUTO_ENROLL: 'off' } });
    expect(config.http).toMatchObject({ listen: '192.0.2.1', port: 9001 });
    expect(config.boot.autoEnroll).toBe(false);
  });

  it.each([
    ['1', true],
    ['yes', true],
    ['ON', true],
    ['0', false],
    ['no', false],
    ['False', false],
  ])('reads boolean %j as %s', (value, expected) => {
    const { config } = loadConfig({ path: join(dir, 'missing.yaml'), env: { HIVEBOOT_BOOT_DISCOVERY: value } });
    expect(config.boot.discovery).toBe(expected);
  });

  it('ignores variables that are not settings, and does not read process.env when given an env', () => {
    const before = process.env.HIVEBOOT_HTTP_PORT;
    process.env.HIVEBOOT_HTTP_PORT = '1234';
    try {
      const { config } = loadConfig({ path: join(dir, 'missing.yaml'), env: { HIVEBOOT_NOT_A_SETTING: 'x', HTTP_PORT: '1' } });
      expect(config.http.port).toBe(8080);
    } finally {
      if (before === undefined) delete process.env.HIVEBOOT_HTTP_PORT;
      else process.env.HIVEBOOT_HTTP_PORT = before;
    }
  });

  it('names the variable when its value cannot be coerced', () => {
    const notNumber = configError(() => loadConfig({ path: join(dir, 'missing.yaml'), env: { HIVEBOOT_HTTP_PORT: 'eighty' } }));
    expect(notNumber.field).toBe('HIVEBOOT_HTTP_PORT');
    expect(notNumber.message).toContain('"eighty" is not a number');
    const empty = configError(() => loadConfig({ path: join(dir, 'missing.yaml'), env: { HIVEBOOT_HTTP_PORT: ' ' } }));
    expect(empty.field).toBe('HIVEBOOT_HTTP_PORT');
    const notBool = configError(() => loadConfig({ path: join(dir, 'missing.yaml'), env: { HIVEBOOT_BOOT_AUTO_ENROLL: 'maybe' } }));
    expect(notBool.field).toBe('HIVEBOOT_BOOT_AUTO_ENROLL');
    expect(notBool.message).toContain('is not a boolean');
  });

  it('validates overridden values like file values, naming the variable rather than the file', () => {
    const file = join(dir, 'port.yaml');
    writeFileSync(file, 'http:\n  port: 8080\n');
    const err = configError(() => loadConfig({ path: file, env: { HIVEBOOT_HTTP_PORT: '70000' } }));
    expect(err.file).toBe('environment');
    expect(err.field).toBe('HIVEBOOT_HTTP_PORT (http.port)');
    expect(err.message).toBe('environment: HIVEBOOT_HTTP_PORT (http.port): must be <= 65535');
  });
});

describe('invalid config files', () => {
  it('names the file and the dotted field of an out-of-range port', () => {
    const path = writeConfig('http:\n  port: 70000\n');
    const err = configError(() => loadConfig({ path, env: {} }));
    expect(err.file).toBe(path);
    expect(err.field).toBe('http.port');
    expect(err.message).toBe(`${path}: http.port: must be <= 65535`);
  });

  it('names a misspelt key as an unknown setting', () => {
    const path = writeConfig('http:\n  prot: 8080\n');
    const err = configError(() => loadConfig({ path, env: {} }));
    expect(err.field).toBe('http.prot');
    expect(err.message).toBe(`${path}: http.prot: unknown setting`);
  });

  it('names an unknown top-level section', () => {
    const path = writeConfig('htp:\n  port: 8080\n');
    const err = configError(() => loadConfig({ path, env: {} }));
    expect(err.field).toBe('htp');
    expect(err.message).toContain('unknown setting');
  });

  it.each([
    ['a string port', 'http:\n  port: "8080x"\n', 'http.port'],
    ['a negative retention', 'inventory:\n  eventRetentionDays: 0\n', 'inventory.eventRetentionDays'],
    ['an unknown log level', 'log:\n  level: loud\n', 'log.level'],
    ['a short API token', 'api:\n  token: short\n', 'api.token'],
    ['a public URL with a command separator', 'http:\n  publicUrl: "http://x;reboot"\n', 'http.publicUrl'],
    ['a section that is not a mapping', 'boot: 3\n', 'boot'],
    ['a non-boolean switch', 'boot:\n  autoEnroll: sometimes\n', 'boot.autoEnroll'],
  ])('names the field for %s', (_name, text, field) => {
    const path = writeConfig(text);
    const err = configError(() => loadConfig({ path, env: {} }));
    expect(err.field).toBe(field);
    expect(err.message.startsWith(`${path}: ${field}: `)).toBe(true);
  });

  it('reports invalid YAML with the file and the position', () => {
    const path = writeConfig('http:\n  port: [1, 2\n');
    const err = configError(() => loadConfig({ path, env: {} }));
    expect(err.file).toBe(path);
    expect(err.message).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid YAML: .*line \\d+`));
    expect(err.message).not.toContain('\n');
  });

  it('refuses duplicate keys instead of silently taking the last one', () => {
    const path = writeConfig('http:\n  port: 8080\n  port: 9090\n');
    expect(configError(() => loadConfig({ path, env: {} })).message).toContain('invalid YAML');
  });

  it.each([
    ['a scalar', '42\n'],
    ['a list', '- http\n- api\n'],
  ])('refuses a document that is %s', (_name, text) => {
    const path = writeConfig(text);
    expect(configError(() => loadConfig({ path, env: {} })).message).toBe(`${path}: must be a mapping of sections`);
  });
});

describe('missing or unreadable files', () => {
  it('errors for a missing file when the file is required', () => {
    const path = join(dir, 'nope.yaml');
    const err = configError(() => loadConfig({ path, required: true, env: {} }));
    expect(err.file).toBe(path);
    expect(err.message).toContain(`${path}: cannot read`);
    expect(err.message).toContain('ENOENT');
  });

  it('errors for a path that cannot be read even when the file is optional', () => {
    const err = configError(() => loadConfig({ path: dir, env: {} }));
    expect(err.message).toContain(`${dir}: cannot read`);
  });

  it('reads a required file that exists', () => {
    const path = writeConfig('http:\n  port: 8082\n');
    expect(loadConfig({ path, required: true, env: {} }).config.http.port).toBe(8082);
  });
});

describe('rules beyond the schema', () => {
  it('refuses an initiator IQN prefix that would make invalid iSCSI names, naming the field', () => {
    let err: unknown;
    try {
      validateConfig({ boot: { initiatorIqnPrefix: 'not an iqn' } }, '/etc/hiveboot/hiveboot.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/^\/etc\/hiveboot\/hiveboot\.yaml: boot\.initiatorIqnPrefix: /);
    expect(validateConfig({ boot: { initiatorIqnPrefix: 'iqn.2020-05.org.example' } }).boot.initiatorIqnPrefix).toBe('iqn.2020-05.org.example');
  });
});
