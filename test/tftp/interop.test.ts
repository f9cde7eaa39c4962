import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pseudoRandomBytes, sha256, startTftp, type TestTftp } from './helpers.js';

/**
 * The server against the clients people actually use — curl, atftp and tftp-hpa (Debian packages
 * installed by scripts/install-deps.sh) — on 127.0.0.1: every download is checked byte for byte, and
 * every refusal by what the user sees (exit code, the message printed) and what is left on disk.
 */

const IPXE_BUILD = '/usr/lib/ipxe/undionly.kpxe';

let dir: string;
let root: string;
let out: string;
let t: TestTftp;
const FILE = pseudoRandomBytes(300_017, 7);
let undionly: Buffer;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], timeoutMs = 20_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: out, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const fetched = (name: string) => readFileSync(join(out, name));
let outN = 0;
const outName = () => `out-${++outN}.bin`;

beforeAll(async () => {
  expect(existsSync(IPXE_BUILD), `${IPXE_BUILD} is missing: scripts/install-deps.sh installs the ipxe package`).toBe(true);
  dir = mkdtempSync(join(tmpdir(), 'hb-tftp-interop-'));
  root = join(dir, 'netboot');
  out = join(dir, 'out');
  mkdirSync(root);
  mkdirSync(out);
  writeFileSync(join(root, 'file.bin'), FILE);
  copyFileSync(IPXE_BUILD, join(root, 'undionly.kpxe'));
  undionly = readFileSync(IPXE_BUILD);
  symlinkSync('undionly.kpxe', join(root, 'inside-link'));
  symlinkSync('/etc', join(root, 'etc-link'));
  t = await startTftp(root, { maxWindowsize: 16 });
});

afterAll(async () => {
  await t?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const url = (path: string) => `tftp://127.0.0.1:${t.port}/${path}`;

describe('curl', () => {
  it.each([512, 1468, 8192])('downloads at blksize %i with tsize: identical bytes', async (blksize) => {
    const before = t.events.length;
    const name = outName();
    const r = await run('curl', ['-sS', '-v', '--tftp-blksize', String(blksize), '-o', name, url('file.bin')]);
    expect(r.code).toBe(0);
    expect(sha256(fetched(name))).toBe(sha256(FILE));
    // curl tells what the OACK granted.
    expect(r.stderr).toContain(`got option=(tsize) value=(${FILE.length})`);
    expect(r.stderr).toContain(`got option=(blksize) value=(${blksize})`);
    expect(await t.nextEvent(before)).toMatchObject({ outcome: 'complete', blksize, bytes: FILE.length });
  });

  it("downloads Debian's undionly.kpxe, as PXE firmware would", async () => {
    const name = outName();
    const r = await run('curl', ['-sS', '--tftp-blksize', '1432', '-o', name, url('undionly.kpxe')]);
    expect(r.code).toBe(0);
    expect(sha256(fetched(name))).toBe(sha256(undionly));
  });
});

describe('atftp', () => {
  it.each([
    [512, 1],
    [512, 4],
    [512, 16],
    [1468, 1],
    [1468, 4],
    [1468, 16],
    [8192, 1],
    [8192, 4],
    [8192, 16],
  ])('downloads at blksize %i, windowsize %i with tsize: identical bytes', async (blksize, windowsize) => {
    const before = t.events.length;
    const name = outName();
    const r = await run('atftp', [
      '--trace',
      '--option', `blksize ${blksize}`,
      '--option', 'tsize 0',
      '--option', `windowsize ${windowsize}`,
      '-g', '-r', 'file.bin', '-l', name, '127.0.0.1', String(t.port),
    ]);
    expect(r.code).toBe(0);
    expect(sha256(fetched(name))).toBe(sha256(FILE));
    const oack = r.stderr.split('\n').find((l) => l.startsWith('received OACK'));
    expect(oack).toContain(`tsize: ${FILE.length}`);
    expect(oack).toContain(`blksize: ${blksize}`);
    expect(oack).toContain(`windowsize: ${windowsize}`);
    expect(await t.nextEvent(before)).toMatchObject({ outcome: 'complete', blksize, windowsize });
  });

  it('reports a missing file and exits non-zero', async () => {
    const r = await run('atftp', ['-g', '-r', 'missing.efi', '-l', outName(), '127.0.0.1', String(t.port)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('error received from server <missing.efi: no such file>');
  });
});

describe('tftp-hpa', () => {
  it('downloads in binary mode without options (plain RFC 1350, 512-byte blocks)', async () => {
    const before = t.events.length;
    const name = outName();
    const r = await run('tftp', ['-m', 'binary', '-v', '127.0.0.1', String(t.port), '-c', 'get', 'file.bin', name]);
    expect(r.stdout).toContain(`Received ${FILE.length} bytes`);
    expect(sha256(fetched(name))).toBe(sha256(FILE));
    expect(await t.nextEvent(before)).toMatchObject({ outcome: 'complete', blksize: 512, windowsize: 1 });
  });

  it('follows a symlink that stays inside the root', async () => {
    const name = outName();
    await run('tftp', ['-m', 'binary', '127.0.0.1', String(t.port), '-c', 'get', 'inside-link', name]);
    expect(sha256(fetched(name))).toBe(sha256(undionly));
  });

  it('is told that netascii (its default mode) is not served', async () => {
    const name = outName();
    const r = await run('tftp', ['127.0.0.1', String(t.port), '-c', 'get', 'file.bin', name]);
    expect(r.stdout + r.stderr).toContain('Error code 4: only octet (binary) mode is served, not netascii');
    expect(existsSync(join(out, name)) ? fetched(name).length : 0).toBe(0);
  });
});

describe('refusals a user sees', () => {
  it('a write with tftp-hpa gets "Error code 2" and nothing is written', async () => {
    writeFileSync(join(out, 'upload.bin'), 'should never arrive');
    const r = await run('tftp', ['-m', 'binary', '127.0.0.1', String(t.port), '-c', 'put', 'upload.bin', 'upload.bin']);
    expect(r.stdout + r.stderr).toContain('Error code 2: this TFTP server is read-only: writes are refused');
    expect(readdirSync(root).sort()).toEqual(['etc-link', 'file.bin', 'inside-link', 'undionly.kpxe']);
  });

  it('an upload with curl -T fails with curl\'s access-violation exit code (69) and nothing is written', async () => {
    const r = await run('curl', ['-sS', '-v', '-T', join(out, 'upload.bin'), url('curl-upload.bin')]);
    expect(r.code).toBe(69);
    // curl 7.88 prints a stale getpeername() message last; -v carries the server's reason.
    expect(r.stderr).toContain('TFTP error: this TFTP server is read-only: writes are refused');
    expect(existsSync(join(root, 'curl-upload.bin'))).toBe(false);
  });

  it('"../../etc/passwd" with tftp-hpa gets "Error code 2" and no content', async () => {
    const name = outName();
    const r = await run('tftp', ['-m', 'binary', '127.0.0.1', String(t.port), '-c', 'get', '../../etc/passwd', name]);
    expect(r.stdout + r.stderr).toContain('Error code 2: ../../etc/passwd: ".." is not allowed in file names');
    expect(existsSync(join(out, name)) ? fetched(name).toString() : '').not.toContain('root:');
  });

  it('a symlink out of the root with tftp-hpa gets "Error code 2" and no content', async () => {
    const name = outName();
    const r = await run('tftp', ['-m', 'binary', '127.0.0.1', String(t.port), '-c', 'get', 'etc-link/passwd', name]);
    expect(r.stdout + r.stderr).toContain('Error code 2: etc-link/passwd resolves outside the TFTP root');
    expect(existsSync(join(out, name)) ? fetched(name).toString() : '').not.toContain('root:');
  });

  it.each([
    ['--path-as-is with ../..', ['--path-as-is', '../../etc/passwd'], 69, '".." is not allowed'],
    ['URL-encoded ../..', ['%2e%2e/%2e%2e/etc/passwd'], 69, '".." is not allowed'],
    ['an absolute path (read inside the root)', ['/etc/passwd'], 68, '/etc/passwd: no such file'],
  ])('curl with %s is refused (exit %i) and gets no content', async (_name, args, code, message) => {
    const name = outName();
    const path = args[args.length - 1] as string;
    const r = await run('curl', ['-sS', '-v', ...args.slice(0, -1), '-o', name, url(path)]);
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(`TFTP error: `);
    expect(r.stderr).toContain(message);
    expect(existsSync(join(out, name)) ? fetched(name).toString() : '').not.toContain('root:');
  });
});
