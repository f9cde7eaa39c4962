import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileError, FileStore, type FileErrorKind } from '../../src/tftp/files.js';

/**
 * What the TFTP root will and will not hand out. Layout built per run:
 *   <tmp>/root/            the TFTP root
 *     undionly.kpxe, sub/snponly.efi, big.bin (above the cache limit), %2e%2e%2fx (a literal name)
 *     inside-link -> undionly.kpxe, subdir-link -> sub, etc-link -> /etc, passwd-link -> /etc/passwd,
 *     secret-link -> ../secret, dangling -> nowhere, fifo, sock, emptydir/
 *   <tmp>/secret            outside the root
 */

let dir: string;
let root: string;
let store: FileStore;
let sock: Server;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hb-tftp-files-'));
  root = join(dir, 'root');
  mkdirSync(join(root, 'sub'), { recursive: true });
  mkdirSync(join(root, 'emptydir'));
  writeFileSync(join(dir, 'secret'), 'outside the root\n');
  writeFileSync(join(root, 'undionly.kpxe'), 'bios build');
  writeFileSync(join(root, 'sub', 'snponly.efi'), 'efi build');
  writeFileSync(join(root, 'big.bin'), Buffer.alloc(300_000, 0xab));
  writeFileSync(join(root, '%2e%2e%2fx'), 'a literal name');
  symlinkSync('undionly.kpxe', join(root, 'inside-link'));
  symlinkSync('sub', join(root, 'subdir-link'));
  symlinkSync('/etc', join(root, 'etc-link'));
  symlinkSync('/etc/passwd', join(root, 'passwd-link'));
  symlinkSync('../secret', join(root, 'secret-link'));
  symlinkSync('nowhere', join(root, 'dangling'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  sock = createServer();
  await new Promise<void>((resolve) => sock.listen(join(root, 'sock'), resolve));
  store = new FileStore({ root, cacheFileMaxBytes: 100_000 });
});

afterAll(async () => {
  await new Promise((resolve) => sock.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

async function contents(name: string): Promise<string> {
  const f = await store.open(name);
  try {
    return (await f.read(0, f.size)).toString();
  } finally {
    await f.close();
  }
}

async function refusal(name: string): Promise<FileError> {
  const err = await store.open(name).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${name} was served`).toBeInstanceOf(FileError);
  return err as FileError;
}

describe('names inside the root', () => {
  it('serves a file, a nested one, and a leading "/" as the root (tftpd-hpa -s)', async () => {
    expect(await contents('undionly.kpxe')).toBe('bios build');
    expect(await contents('sub/snponly.efi')).toBe('efi build');
    expect(await contents('/sub/snponly.efi')).toBe('efi build');
    expect(await contents('//sub/./snponly.efi')).toBe('efi build');
  });

  it('follows a symlink that stays inside the root, to a file or through a directory', async () => {
    expect(await contents('inside-link')).toBe('bios build');
    expect(await contents('subdir-link/snponly.efi')).toBe('efi build');
  });

  it('treats URL-encoded and backslashed names as literal names', async () => {
    expect(await contents('%2e%2e%2fx')).toBe('a literal name');
    expect((await refusal('%2e%2e%2fetc%2fpasswd')).kind).toBe('not-found');
    expect((await refusal('..\\..\\etc\\passwd')).kind).toBe('not-found');
  });
});

describe('names that would leave the root or are not files', () => {
  it.each<[string, FileErrorKind, string]>([
    ['../etc/passwd', 'refused', '".." is not allowed'],
    ['a/../../x', 'refused', '".." is not allowed'],
    ['sub/../undionly.kpxe', 'refused', '".." is not allowed'],
    ['..', 'refused', '".." is not allowed'],
    ['/', 'refused', 'names the TFTP root'],
    ['/etc/passwd', 'not-found', 'no such file'],
    ['etc-link/passwd', 'refused', 'resolves outside the TFTP root'],
    ['passwd-link', 'refused', 'resolves outside the TFTP root'],
    ['secret-link', 'refused', 'resolves outside the TFTP root'],
    ['dangling', 'not-found', 'no such file'],
    ['missing.efi', 'not-found', 'no such file'],
    ['undionly.kpxe/x', 'not-found', 'no such file'],
    ['emptydir', 'refused', 'not a regular file (a directory)'],
    ['sub', 'refused', 'not a regular file (a directory)'],
    ['fifo', 'refused', 'not a regular file (a FIFO)'],
    ['sock', 'refused', 'not a regular file (a socket)'],
  ])('%s: %s (%s)', async (name, kind, message) => {
    const err = await refusal(name);
    expect(err.kind).toBe(kind);
    expect(err.message).toContain(message);
    // What the client is told never shows where a link points.
    expect(err.message).not.toContain(dir);
    expect(err.message).not.toMatch(/\/etc\/passwd.*\/etc\/passwd/);
  });

  it('reports a missing root as unreadable, not as a missing file', async () => {
    const err = await new FileStore({ root: join(dir, 'no-such-root') }).open('x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileError);
    expect((err as FileError).kind).toBe('unreadable');
  });
});

describe('memory cache and big files', () => {
  it('serves a small file from memory and notices when it changes in place (size or time)', async () => {
    const path = join(root, 'cached.efi');
    writeFileSync(path, 'version 1');
    const first = await store.open('cached.efi');
    expect(first.fromMemory).toBe(true);
    const hits = store.stats.hits;
    expect(await contents('cached.efi')).toBe('version 1');
    expect(store.stats.hits).toBe(hits + 1);

    // Same size, new content: the modification time tells it apart.
    writeFileSync(path, 'version 2');
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    expect(await contents('cached.efi')).toBe('version 2');

    writeFileSync(path, 'version three');
    expect(await contents('cached.efi')).toBe('version three');
  });

  it('serves a file replaced by rename (a custom build dropped in) at once', async () => {
    writeFileSync(join(root, 'swap.efi'), 'old build');
    expect(await contents('swap.efi')).toBe('old build');
    writeFileSync(join(root, '.swap.tmp'), 'new build');
    renameSync(join(root, '.swap.tmp'), join(root, 'swap.efi'));
    expect(await contents('swap.efi')).toBe('new build');
  });

  it('reads a file above the cache limit from disk at any offset', async () => {
    const f = await store.open('big.bin');
    expect(f.fromMemory).toBe(false);
    expect(f.size).toBe(300_000);
    expect(await f.read(299_000, 1000)).toEqual(Buffer.alloc(1000, 0xab));
    expect(await f.read(0, 512)).toEqual(Buffer.alloc(512, 0xab));
    expect((await f.read(299_999, 1)).length).toBe(1);
    await f.close();
  });

  it('keeps the cache within its memory budget, dropping the least recently used file', async () => {
    const small = new FileStore({ root, cacheFileMaxBytes: 100, cacheMaxBytes: 20 });
    writeFileSync(join(root, 'c1'), '0123456789');
    writeFileSync(join(root, 'c2'), 'abcdefghij');
    writeFileSync(join(root, 'c3'), 'ABCDEFGHIJ');
    const opened = async (name: string) => {
      const before = small.stats.hits;
      await (await small.open(name)).close();
      return small.stats.hits > before ? 'hit' : 'miss';
    };
    // Room for two 10-byte files: the third pushes out the one used longest ago.
    expect([await opened('c1'), await opened('c2'), await opened('c1'), await opened('c3')]).toEqual(['miss', 'miss', 'hit', 'miss']);
    expect([await opened('c1'), await opened('c3'), await opened('c2')]).toEqual(['hit', 'hit', 'miss']);
  });
});
