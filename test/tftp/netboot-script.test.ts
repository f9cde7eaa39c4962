import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** scripts/netboot.sh, run into a scratch directory: what it puts there and what it leaves alone. */

const SCRIPT = join(import.meta.dirname, '../../scripts/netboot.sh');
let dir: string;

function netboot(...args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('bash', [SCRIPT, ...args], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number(err.code ?? 1) : 0, output: stdout + stderr });
    });
  });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hb-netboot-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('scripts/netboot.sh', () => {
  it("copies the BIOS and x86-64 UEFI builds from Debian's ipxe package", async () => {
    const r = await netboot(dir);
    expect(r.code, r.output).toBe(0);
    for (const name of ['undionly.kpxe', 'snponly.efi', 'ipxe.efi']) {
      expect(readFileSync(join(dir, name)).equals(readFileSync(`/usr/lib/ipxe/${name}`)), name).toBe(true);
    }
    expect(readdirSync(dir).filter((n) => n.includes('.tmp.'))).toEqual([]);
  });

  it('is idempotent, and keeps a custom build unless --force', async () => {
    expect((await netboot(dir)).output).toContain(`${dir}/snponly.efi is up to date`);

    writeFileSync(join(dir, 'snponly.efi'), 'my own iPXE build');
    const kept = await netboot(dir);
    expect(kept.code).toBe(0);
    expect(kept.output).toContain(`keeping ${dir}/snponly.efi`);
    expect(readFileSync(join(dir, 'snponly.efi'), 'utf8')).toBe('my own iPXE build');

    expect((await netboot('--force', dir)).code).toBe(0);
    expect(readFileSync(join(dir, 'snponly.efi')).equals(readFileSync('/usr/lib/ipxe/snponly.efi'))).toBe(true);
  });
});
