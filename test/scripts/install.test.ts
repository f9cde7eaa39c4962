// scripts/hiveboot.service checked by systemd's own tools the way a user would check it (the unit as
// install.sh writes it: this node and this checkout in ExecStart), its promises read back from the
// file, and scripts/install.sh's command line. Installing for real happens in a Debian guest
// (install-vm.test.ts): on this machine the script would install a service.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const UNIT = join(ROOT, 'scripts', 'hiveboot.service');
const INSTALL = join(ROOT, 'scripts', 'install.sh');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** The unit's [Service] settings: key → every value it is given, in order. */
function serviceSettings(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('[')) section = line;
    else if (section === '[Service]') {
      const eq = line.indexOf('=');
      const key = line.slice(0, eq);
      settings.set(key, [...(settings.get(key) ?? []), line.slice(eq + 1)]);
    }
  }
  return settings;
}

/** The unit as install.sh writes it for this node and this checkout. */
function installedUnit(): string {
  return readFileSync(UNIT, 'utf8').replace(/^ExecStart=\/usr\/bin\/node \/opt\/hiveboot\//m, `ExecStart=${process.execPath} ${ROOT}/`);
}

describe('scripts/hiveboot.service', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hb-unit-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const verify = (text: string) => {
    const file = join(dir, 'hiveboot.service');
    writeFileSync(file, text);
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
  };

  it.skipIf(!has('systemd-analyze'))('passes systemd-analyze verify without a word, and the check does catch mistakes', () => {
    expect(verify(installedUnit())).toEqual({ status: 0, output: '' });
    // The controls: a missing binary fails, an unknown key is reported (with status 0: hence the output check).
    expect(verify(installedUnit().replace(process.execPath, '/nonexistent/node')).status).not.toBe(0);
    expect(verify(installedUnit().replace('ProtectClock=yes', 'ProtectClok=yes')).output).toMatch(/Unknown key 'ProtectClok'/);
  });

  it.skipIf(!has('systemd-analyze'))("rates well in systemd-analyze security (exposure printed)", () => {
    const file = join(dir, 'hiveboot.service');
    writeFileSync(file, installedUnit());
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', file], { encoding: 'utf8' });
    const m = /Overall exposure level for hiveboot\.service: ([\d.]+) (\w+)/.exec(r.stdout);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    console.log(`systemd-analyze security: exposure ${m![1]} ${m![2]}`);
    expect(Number(m![1])).toBeLessThanOrEqual(2.5);
  });

  it('says what the issue asks: notify with a watchdog, not root, two capabilities, a read-only system', () => {
    const s = serviceSettings(readFileSync(UNIT, 'utf8'));
    const one = (key: string) => {
      expect(s.get(key), key).toHaveLength(1);
      return s.get(key)![0]!;
    };
    expect(one('Type')).toBe('notify');
    expect(one('NotifyAccess')).toBe('main');
    expect(one('ExecStart')).toBe('/usr/bin/node /opt/hiveboot/bin/hiveboot.js serve');
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(one('WatchdogSec')).toMatch(/^\d+s$/);
    expect(one('Restart')).toBe('on-failure');
    expect(one('TimeoutStopSec')).toMatch(/^\d+s$/);
    expect(one('User')).toBe('hiveboot');
    expect(one('AmbientCapabilities')).toBe('CAP_NET_BIND_SERVICE CAP_NET_RAW');
    expect(one('CapabilityBoundingSet')).toBe('CAP_NET_BIND_SERVICE CAP_NET_RAW');
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('StateDirectory')).toBe('hiveboot');
    expect(one('StateDirectoryMode')).toBe('0700');
    expect(one('ConfigurationDirectory')).toBe('hiveboot');
    expect(one('LimitNOFILE')).toMatch(/^\d+$/);
    expect(one('Environment')).toMatch(/^UV_THREADPOOL_SIZE=\d+$/);
    // sd_notify needs AF_UNIX, the interface list AF_NETLINK; V8's JIT needs W+X memory.
    expect(one('RestrictAddressFamilies').split(' ').sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
    expect(s.has('MemoryDenyWriteExecute')).toBe(false);
    expect(s.has('PrivateUsers')).toBe(false);
  });
});

describe('scripts/install.sh', () => {
  const run = (...args: string[]) => spawnSync('bash', [INSTALL, ...args], { encoding: 'utf8' });

  it.skipIf(!has('shellcheck'))('is clean under shellcheck', () => {
    const r = spawnSync('shellcheck', ['-x', INSTALL], { encoding: 'utf8', cwd: join(ROOT, 'scripts') });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('prints its usage, and refuses wrong arguments before touching anything (exit 2)', () => {
    const help = run('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: scripts\/install\.sh /);
    for (const [args, message] of [
      [['--bogus'], /unknown argument --bogus/],
      [['--purge'], /--purge goes with --uninstall/],
      [['--uninstall', '--start'], /are for installing/],
      [['--prefix'], /--prefix needs a value/],
      [['--node', ''], /--node needs a value/],
    ] as const) {
      const r = run(...args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });

  it('will not install into or remove a system directory', () => {
    for (const prefix of ['/', '/usr', '/etc/hiveboot', '/opt', '/home/me/hb', 'relative/dir', '/opt/hive boot']) {
      const r = run('--uninstall', '--prefix', prefix);
      expect(r.status, `${prefix}: ${r.stdout}${r.stderr}`).toBe(1);
      expect(r.stderr).toMatch(/--prefix/);
    }
  });
});
