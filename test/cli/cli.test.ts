import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ipxeStructureProblems } from '../boot/ipxe-structure.js';

/**
 * The real `hiveboot` command (bin/hiveboot.js over dist/) against a real `hiveboot serve` child
 * process on 127.0.0.1: what a user at a shell sees, exit codes included.
 */

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BIN = join(ROOT, 'bin', 'hiveboot.js');
const MAC = '52:54:00:aa:bb:cc';
const CHAP_USER = 'worker1-initiator';
const CHAP_SECRET = 'CliS3cretChap1';
const MUTUAL_SECRET = 'CliMutualS3c2';
const TARGET_IQN = 'iqn.2003-01.org.linux-iscsi.gw:worker-1';

/** The environment without any HIVEBOOT_* the developer may have set. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HIVEBOOT_')) env[k] = v;
  return { ...env, ...extra };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  if (!addr || typeof addr !== 'object') throw new Error('no port');
  return addr.port;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `hiveboot <args>` to completion. */
function hiveboot(args: string[], opts: { env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cleanEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** A failure as the CLI promises it: non-zero, nothing on stdout, exactly one "hiveboot: " line on stderr. */
function expectFailure(run: Run, message: RegExp): void {
  expect(run.code, run.stderr).not.toBe(0);
  expect(run.code).not.toBeNull();
  expect(run.stdout).toBe('');
  const lines = run.stderr.split('\n').filter((l) => l !== '');
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]!.startsWith('hiveboot: '), lines[0]).toBe(true);
  expect(lines[0]).toMatch(message);
  expect(run.stderr.endsWith('\n')).toBe(true);
}

function expectSuccess(run: Run): void {
  expect(run.code, `stderr: ${run.stderr}\nstdout: ${run.stdout}`).toBe(0);
  expect(run.stderr).toBe('');
}

interface Serve {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `hiveboot serve` as a child process. */
function serve(args: string[], env: Record<string, string> = {}): Serve {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  // 'close', not 'exit': by then everything the daemon wrote to its pipes has been read.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Waits until /healthz answers 200; fails early (with the daemon's stderr) if it exits. */
async function waitHealthy(s: Serve, url: string, timeoutMs = 15_000): Promise<void> {
  let exited = false;
  void s.exited.then(() => (exited = true));
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`hiveboot serve exited early: ${s.stderr()}${s.stdout()}`);
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > end) throw new Error(`hiveboot serve did not answer ${url}/healthz: ${s.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts serve on a port that was free a moment ago. Another process may take the port between the
 * check and the daemon's bind (the kernel hands out the same ephemeral ports): then try another.
 */
async function serveOnFreePort(start: (port: number) => Serve): Promise<{ s: Serve; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const s = start(port);
    try {
      await waitHealthy(s, `http://127.0.0.1:${port}`);
      return { s, port };
    } catch (err) {
      if (attempt < 3 && s.stderr().includes('EADDRINUSE')) continue;
      await stopServe(s);
      throw err;
    }
  }
}

/** Polls `read` until it gives a value or the time is up (then returns undefined). */
async function eventually<T>(read: () => T | undefined, timeoutMs = 5000): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined || Date.now() > end) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stopServe(s: Serve | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 5000);
  await s.exited;
  clearTimeout(timer);
}

function logLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

let work: string;
beforeAll(() => {
  // bin/hiveboot.js runs dist/: compile the current sources first.
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' });
  work = mkdtempSync(join(tmpdir(), 'hiveboot-cli-'));
}, 60_000);
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('hiveboot against a running daemon', () => {
  let daemon: Serve | undefined;
  let url: string;
  let config: string;
  let stateDir: string;
  let secretFile: string;
  const cfg = () => ['--config', config];

  beforeAll(async () => {
    stateDir = join(work, 'state');
    config = join(work, 'hiveboot.yaml');
    secretFile = join(work, 'chap-secret');
    writeFileSync(secretFile, `${CHAP_SECRET}\n`, { mode: 0o600 });
    const started = await serveOnFreePort((port) => {
      writeFileSync(
        config,
        [`stateDir: ${stateDir}`, 'http:', '  listen: 127.0.0.1', `  port: ${port}`, 'tftp:', '  listen: 127.0.0.1', '  port: 0', 'iscsi:', '  listen: 127.0.0.1', '  port: 0', 'boot:', '  defaultProfile: debian-k3s', 'log:', '  level: debug', ''].join('\n'),
      );
      return serve(cfg());
    });
    daemon = started.s;
    url = `http://127.0.0.1:${started.port}`;
  }, 30_000);
  afterAll(async () => stopServe(daemon));

  it('hiveboot serve with a config file answers /healthz and makes a token file', async () => {
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', database: true });
    const up = await eventually(() => logLines(daemon!.stdout()).find((l) => l.msg === 'hiveboot is up'));
    expect(up).toMatchObject({ url, service: 'hiveboot' });
    expect(statSync(join(stateDir, 'api-token')).mode & 0o777).toBe(0o600);
  });

  it('registers a host with its disk; its boot script is valid and is its own', async () => {
    const profile = await hiveboot([...cfg(), 'profile', 'add', 'debian-k3s', '--description', 'Debian 12 + K3s agent']);
    expectSuccess(profile);
    expect(profile.stdout).toBe('created profile debian-k3s (template sanboot)\n');

    const add = await hiveboot([
      ...cfg(), 'host', 'add', '--mac', MAC, '--hostname', 'w1', '--profile', 'debian-k3s',
      '--portal', '192.0.2.10:3260', '--target-iqn', TARGET_IQN, '--chap-user', CHAP_USER, '--chap-secret-file', secretFile,
      '--mutual-user', 'target-answers', '--mutual-secret-file', '-',
    ], { input: `${MUTUAL_SECRET}\n` });
    expectSuccess(add);
    expect(add.stdout).toBe(`registered ${MAC} as w1: ready\n`);

    const res = await fetch(`${url}/boot/${MAC}.ipxe`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const script = await res.text();
    expect(ipxeStructureProblems(script)).toEqual([]);
    const lines = script.split('\n');
    expect(lines[0]).toBe('#!ipxe');
    expect(lines).toContain('set initiator-iqn iqn.2026-01.io.hiveboot:w1');
    expect(lines).toContain(`set username ${CHAP_USER}`);
    expect(lines).toContain(`set password ${CHAP_SECRET}`);
    expect(lines).toContain('set reverse-username target-answers');
    expect(lines).toContain(`set reverse-password ${MUTUAL_SECRET}`);
    expect(lines).toContain(`sanboot iscsi:192.0.2.10::3260:0:${TARGET_IQN} || goto failed`);
  });

  it('shows a host as JSON without its secrets, and lists hosts as a table', async () => {
    const [show, table, text] = await Promise.all([
      hiveboot([...cfg(), '-o', 'json', 'host', 'show', '52-54-00-AA-BB-CC']),
      hiveboot([...cfg(), 'host', 'list']),
      hiveboot([...cfg(), 'host', 'show', MAC]),
    ]);
    expectSuccess(show);
    const h = JSON.parse(show.stdout) as Record<string, any>;
    expect(h).toMatchObject({ mac: MAC, hostname: 'w1', profile: 'debian-k3s', state: 'ready' });
    expect(h.disk).toMatchObject({ chapUser: CHAP_USER, hasChapSecret: true, hasMutualSecret: true });
    expect(show.stdout).not.toContain(CHAP_SECRET);
    expect(show.stdout).not.toContain(MUTUAL_SECRET);

    expectSuccess(table);
    const [header, ...rows] = table.stdout.trimEnd().split('\n');
    expect(header!.split(/\s{2,}/)).toEqual(['MAC', 'HOSTNAME', 'STATE', 'PROFILE', 'LAST IP', 'LAST SEEN']);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.split(/\s{2,}/).slice(0, 5)).toEqual([MAC, 'w1', 'ready', 'debian-k3s', '127.0.0.1']);

    expectSuccess(text);
    expect(text.stdout).toMatch(/^disk\.hasChapSecret: +true$/m);
    expect(text.stdout).not.toContain(CHAP_SECRET);
  });

  it('an unknown machine gets the discovery script, is listed as discovered, and approve brings it to pending then ready', async () => {
    const mac = '52:54:00:00:00:42';
    const script = await (await fetch(`${url}/boot/${mac}.ipxe?buildarch=x86_64&platform=pcbios`)).text();
    expect(script.startsWith('#!ipxe\n')).toBe(true);
    expect(script).toContain('params --name discover');
    expect(script).toContain(`${url}/v1/discover##params=discover`);

    const list = await hiveboot([...cfg(), 'host', 'list', '-o', 'json']);
    expectSuccess(list);
    const hosts = JSON.parse(list.stdout) as Record<string, any>[];
    expect(hosts.find((x) => x.mac === mac)).toMatchObject({ state: 'discovered', hostname: null, facts: { buildarch: 'x86_64', platform: 'pcbios' } });

    const discovered = JSON.parse((await hiveboot([...cfg(), '-o', 'json', 'host', 'list', '--state', 'discovered'])).stdout) as { mac: string }[];
    expect(discovered.map((x) => x.mac)).toEqual([mac]);

    const approve = await hiveboot([...cfg(), 'host', 'approve', mac]);
    expectSuccess(approve);
    expect(approve.stdout).toBe(`approved ${mac} as node-000042 (profile debian-k3s): pending\n`);
    const wait = await (await fetch(`${url}/boot/${mac}.ipxe`)).text();
    expect(wait).toContain(`echo hiveboot: ${mac} is pending: pending, waiting for a disk`);

    const update = await hiveboot([...cfg(), 'host', 'update', mac, '--portal', '192.0.2.11', '--target-iqn', 'iqn.2003-01.org.linux-iscsi.gw:node-42']);
    expectSuccess(update);
    expect(update.stdout).toBe(`updated ${mac} (node-000042): ready\n`);
    const boot = await (await fetch(`${url}/boot/${mac}.ipxe`)).text();
    expect(boot).toContain('sanboot iscsi:192.0.2.11::3260:0:iqn.2003-01.org.linux-iscsi.gw:node-42');
  });

  it('host events prints the timeline oldest first, and -o json gives the same as JSON', async () => {
    const mac = '52:54:00:00:00:42';
    const table = await hiveboot([...cfg(), 'host', 'events', mac]);
    expectSuccess(table);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]!.split(/\s{2,}/)).toEqual(['TIME', 'STAGE', 'FROM', 'WHAT', 'WHY']);
    const at = (text: string) => lines.findIndex((l) => l.includes(text));
    const order = ['discovered', 'script: discover', 'approved as node-000042 with profile debian-k3s: discovered → pending', 'script: wait', 'updated disk; state pending → ready', 'script: boot'];
    for (const text of order) expect(at(text), `${text} in\n${table.stdout}`).toBeGreaterThan(0);
    expect(order.map(at)).toEqual([...order.map(at)].sort((a, b) => a - b));
    expect(lines.find((l) => l.includes('script: discover'))).toContain('127.0.0.1');

    const json = await hiveboot([...cfg(), '-o', 'json', 'host', 'events', mac, '--limit', '3']);
    expectSuccess(json);
    const events = JSON.parse(json.stdout) as { id: number; message: string }[];
    expect(events).toHaveLength(3);
    // The three newest, printed oldest first.
    expect(events.map((e) => e.id)).toEqual([...events.map((e) => e.id)].sort((a, b) => a - b));
    expect(events[events.length - 1]!.message).toBe('script: boot');
  });

  it('host events --follow prints events as they happen and --until stops at the stage asked for', async () => {
    const mac = '52:54:00:00:0f:01';
    const follow = hiveboot([...cfg(), 'host', 'events', mac, '--follow', '--until', 'script', '--interval', '100']);
    // The follower is polling a machine with no events yet; the machine then asks for its boot script.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await fetch(`${url}/boot/${mac}.ipxe`)).status).toBe(200);
    const run = await follow;
    expectSuccess(run);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines, run.stdout).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\S+\s+discover\s+127\.0\.0\.1\s+discovered — /);
    expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\dT\S+\s+script\s+127\.0\.0\.1\s+script: discover/);

    expectFailure(await hiveboot([...cfg(), 'host', 'events', mac, '--until', 'os-up']), /--until: needs --follow/);
    expectSuccess(await hiveboot([...cfg(), 'host', 'rm', mac]));
  }, 20_000);

  it('every -o json output parses', async () => {
    const commands = [['profile', 'list'], ['profile', 'show', 'debian-k3s'], ['image', 'list'], ['host', 'list'], ['host', 'show', MAC]];
    const runs = await Promise.all(commands.map((args) => hiveboot([...cfg(), '-o', 'json', ...args])));
    runs.forEach((run, i) => {
      expectSuccess(run);
      expect(() => JSON.parse(run.stdout), `${commands[i]!.join(' ')}: ${run.stdout}`).not.toThrow();
    });
    expect(JSON.parse(runs[0]!.stdout)).toMatchObject([{ name: 'debian-k3s', template: 'sanboot', description: 'Debian 12 + K3s agent' }]);
    expect(JSON.parse(runs[2]!.stdout)).toEqual([]);
  });

  it('fails with one "hiveboot: " line and a non-zero exit', async () => {
    const [badMac, dupMac, dupName, unknown, inUse, unreachable, closed, wrongToken, badOutput] = await Promise.all([
      hiveboot([...cfg(), 'host', 'add', '--mac', 'zz']),
      hiveboot([...cfg(), 'host', 'add', '--mac', '52-54-00-AA-BB-CC', '--hostname', 'other']),
      hiveboot([...cfg(), 'host', 'add', '--mac', '52:54:00:00:00:77', '--hostname', 'w1']),
      hiveboot([...cfg(), 'host', 'show', '52:54:00:00:00:99']),
      hiveboot([...cfg(), 'profile', 'rm', 'debian-k3s']),
      hiveboot(['--url', 'http://127.0.0.1:1', '--token', 'x', 'host', 'list']),
      freePort().then((p) => hiveboot(['--url', `http://127.0.0.1:${p}`, '--token', 'x', 'host', 'list'])),
      hiveboot([...cfg(), '--token', 'wrong-token-value', 'host', 'list']),
      hiveboot([...cfg(), '-o', 'yaml', 'host', 'list']),
    ]);
    expectFailure(badMac, /^hiveboot: mac: "zz" is not a MAC address/);
    expectFailure(dupMac, /^hiveboot: mac: 52:54:00:aa:bb:cc is already registered$/);
    expectFailure(dupName, /^hiveboot: hostname: "w1" is already used by 52:54:00:aa:bb:cc$/);
    expectFailure(unknown, /host 52:54:00:00:00:99 is not registered/);
    expectFailure(inUse, /profile "debian-k3s" is used by 2 host\(s\)/);
    expectFailure(unreachable, /^hiveboot: cannot reach hiveboot at http:\/\/127\.0\.0\.1:1 .*is the daemon running\?/);
    expectFailure(closed, /cannot reach hiveboot at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    expectFailure(wrongToken, /^hiveboot: authorization: invalid bearer token \(check --token, HIVEBOOT_TOKEN or the token file\)$/);
    expectFailure(badOutput, /^hiveboot: -o: unknown output format "yaml"/);
    expect(badOutput.code).toBe(2);
    // Usage errors from the argument parser read the same way, with exit code 2.
    const [unknownCommand, missingOption] = await Promise.all([
      hiveboot([...cfg(), 'host', 'frob']),
      hiveboot([...cfg(), 'host', 'add', '--hostname', 'w5']),
    ]);
    expectFailure(unknownCommand, /^hiveboot: unknown command 'frob'/);
    expectFailure(missingOption, /^hiveboot: required option '--mac <mac>' not specified$/);
    expect([unknownCommand.code, missingOption.code]).toEqual([2, 2]);
    // Nothing was registered by the failed commands.
    const token = readFileSync(join(stateDir, 'api-token'), 'utf8').trim();
    const { items } = (await (await fetch(`${url}/v1/hosts`, { headers: { authorization: `Bearer ${token}` } })).json()) as { items: { mac: string }[] };
    expect(items.map((h) => h.mac).sort()).toEqual(['52:54:00:00:00:42', MAC]);
  });

  it('refuses a CHAP secret on the command line shape it cannot use, without echoing it', async () => {
    const shortSecret = join(work, 'short-secret');
    writeFileSync(shortSecret, 'tooShort99\n');
    const run = await hiveboot([
      ...cfg(), 'host', 'add', '--mac', '52:54:00:00:00:78', '--portal', '192.0.2.10', '--target-iqn', TARGET_IQN,
      '--chap-user', CHAP_USER, '--chap-secret-file', shortSecret,
    ]);
    expectFailure(run, /^hiveboot: disk\.chapSecret: must be 12-16 characters/);
    expect(run.stderr).not.toContain('tooShort99');
  });

  it('takes the daemon URL and token from HIVEBOOT_URL and HIVEBOOT_TOKEN, flags first', async () => {
    const token = readFileSync(join(stateDir, 'api-token'), 'utf8').trim();
    const [env, wrong, flagWins, fromFile] = await Promise.all([
      // Both given: the config file is not even read.
      hiveboot(['-o', 'json', 'host', 'list'], { env: { HIVEBOOT_URL: url, HIVEBOOT_TOKEN: token, HIVEBOOT_CONFIG: join(work, 'does-not-exist.yaml') } }),
      hiveboot(['host', 'list'], { env: { HIVEBOOT_URL: url, HIVEBOOT_TOKEN: 'wrong-token-value' } }),
      hiveboot(['--url', url, '-o', 'json', 'host', 'list'], { env: { HIVEBOOT_URL: 'http://127.0.0.1:1', HIVEBOOT_TOKEN: token } }),
      hiveboot(['-o', 'json', 'host', 'show', MAC], { env: { HIVEBOOT_URL: url, HIVEBOOT_TOKEN_FILE: join(stateDir, 'api-token') } }),
    ]);
    expectSuccess(env);
    expect((JSON.parse(env.stdout) as unknown[]).length).toBe(2);
    expectFailure(wrong, /invalid bearer token/);
    expectSuccess(flagWins);
    expectSuccess(fromFile);
    expect(JSON.parse(fromFile.stdout)).toMatchObject({ mac: MAC });
  });

  it('SIGTERM stops serve with exit code 0 and "hiveboot stopped"; no secret was ever logged', async () => {
    const token = readFileSync(join(stateDir, 'api-token'), 'utf8').trim();
    daemon!.child.kill('SIGTERM');
    const exit = await daemon!.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    const lines = logLines(daemon!.stdout());
    expect(lines.at(-1)).toMatchObject({ msg: 'hiveboot stopped' });
    expect(lines.some((l) => l.msg === 'stopping' && l.signal === 'SIGTERM')).toBe(true);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    // The log recorded the requests, but never a secret.
    const all = daemon!.stdout() + daemon!.stderr();
    expect(lines.filter((l) => l.msg === 'incoming request').length).toBeGreaterThan(10);
    for (const secret of [CHAP_SECRET, MUTUAL_SECRET, 'tooShort99', token, 'wrong-token-value']) {
      expect(all, `daemon output contains ${secret}`).not.toContain(secret);
    }
  });
});

describe('hiveboot serve configuration', () => {
  it('refuses an invalid config file, naming the file and the field', async () => {
    const cases: [string, RegExp][] = [
      ['http:\n  port: 99999\n', /http\.port: must be <= 65535/],
      ['http:\n  prot: 8080\n', /http\.prot: unknown setting/],
      ['log:\n  level: loud\n', /log\.level/],
      ['http: [unclosed\n', /invalid YAML/],
      ['- a\n- b\n', /must be a mapping of sections/],
    ];
    const runs = await Promise.all(
      cases.map(([text], i) => {
        const file = join(work, `bad-${i}.yaml`);
        writeFileSync(file, text);
        return hiveboot(['serve', '--config', file]).then((run) => ({ run, file }));
      }),
    );
    runs.forEach(({ run, file }, i) => {
      expectFailure(run, cases[i]![1]);
      expect(run.stderr.startsWith(`hiveboot: ${file}: `), run.stderr).toBe(true);
    });
    const missing = await hiveboot(['serve', '--config', join(work, 'missing.yaml')]);
    expectFailure(missing, /missing\.yaml: cannot read/);
  });

  it('refuses an environment override that is not a number, naming the variable', async () => {
    const run = await hiveboot(['serve', '--config', join(ROOT, 'scripts', 'hiveboot.sample.yaml')], {
      env: { HIVEBOOT_HTTP_PORT: 'eighty', HIVEBOOT_STATE_DIR: join(work, 'never'), HIVEBOOT_HTTP_LISTEN: '127.0.0.1' },
    });
    expectFailure(run, /^hiveboot: environment: HIVEBOOT_HTTP_PORT: "eighty" is not a number$/);
  });

  it('runs the sample config with HIVEBOOT_* overrides, and exits 0 on SIGTERM', async () => {
    const stateDir = join(work, 'sample-state');
    const { s, port } = await serveOnFreePort((p) =>
      serve(['--config', join(ROOT, 'scripts', 'hiveboot.sample.yaml')], {
        HIVEBOOT_STATE_DIR: stateDir,
        HIVEBOOT_HTTP_LISTEN: '127.0.0.1',
        HIVEBOOT_HTTP_PORT: String(p),
        HIVEBOOT_TFTP_LISTEN: '127.0.0.1',
        HIVEBOOT_TFTP_PORT: '0',
      }),
    );
    try {
      // The log is written asynchronously (pino, sync: false): its line may come after /healthz.
      const up = await eventually(() => logLines(s.stdout()).find((l) => l.msg === 'hiveboot is up'));
      // The file says 0.0.0.0:8080 and /var/lib/hiveboot; the environment won.
      expect(up).toMatchObject({ url: `http://127.0.0.1:${port}` });
      expect(statSync(join(stateDir, 'hiveboot.db')).isFile()).toBe(true);
      expect(statSync(join(stateDir, 'api-token')).mode & 0o777).toBe(0o600);

      // A client can use the same overrides.
      const token = readFileSync(join(stateDir, 'api-token'), 'utf8').trim();
      const list = await hiveboot(['-o', 'json', 'host', 'list'], { env: { HIVEBOOT_URL: `http://127.0.0.1:${port}`, HIVEBOOT_TOKEN: token } });
      expectSuccess(list);
      expect(JSON.parse(list.stdout)).toEqual([]);

      s.child.kill('SIGTERM');
      expect(await s.exited).toEqual({ code: 0, signal: null });
      expect(logLines(s.stdout()).at(-1)).toMatchObject({ msg: 'hiveboot stopped' });
      expect(s.stderr()).toBe('');
    } finally {
      await stopServe(s);
    }
  });
});
