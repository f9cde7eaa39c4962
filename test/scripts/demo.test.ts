// The README's first command is the main job: scripts/demo.sh installs what is missing (done by the
// test command already), then runs scripts/demo.ts, which must boot a real VM from hiveboot and leave
// nothing behind. This runs scripts/demo.ts exactly as demo.sh does, without a terminal (so it stops
// once the VM is up), and checks what a user would see.
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NetLab } from '../support/netns.js';

const REPO = join(import.meta.dirname, '..', '..');

describe.skipIf(!NetLab.available())('scripts/demo.ts (README: the main job)', () => {
  it('boots demo-1 from hiveboot, shows its live timeline, and cleans up its lab', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'scripts', 'demo.ts')], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, out.slice(-4000)).toBe(0);

    expect(out).toMatch(/registered 52:54:00:de:30:01 as demo-1: ready/);
    expect(out).toMatch(/console: HIVEBOOT-READY host=demo-1 node=demo-1/);
    expect(out).toMatch(/== demo-1 is up: Debian from its own iSCSI disk, \d+ s after power-on/);
    // The live timeline (hiveboot host events --follow) shows every stage, in order.
    const lines = out.split('\n');
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    const stages = [
      /^\S+Z\s+dhcp\s+.*proxy offer on br0/,
      /^\S+Z\s+script\s+\S+\s+script: boot/,
      /^\S+Z\s+iscsi-login\s+\S+\s+iSCSI login from \S+ — CHAP authenticated/,
      /^\S+Z\s+os-up\s/,
      /^\S+Z\s+config-fetched\s/,
      /^\S+Z\s+config-applied\s+\S+\s+hostname demo-1, K3s drop-in \S+ \(server https:\/\/10\.93\.0\.10:6443, node-name demo-1, join token\)/,
    ].map(at);
    expect(stages.every((i) => i >= 0), out).toBe(true);
    expect(stages, out).toEqual([...stages].sort((a, b) => a - b));
    // The K3s token went to the host in its drop-in, never to the log or the screen.
    const token = execFileSync('cat', [join(REPO, '.tmp', 'demo', 'k3s-token')], { encoding: 'utf8' }).trim();
    expect(out).not.toContain(token);
    expect(execFileSync('cat', [join(REPO, '.tmp', 'demo', 'hiveboot.log')], { encoding: 'utf8' })).not.toContain(token);

    // Nothing left behind: the lab's namespaces are gone (their names are printed at the start).
    const tag = /namespace (hb[0-9a-f]{6})-srv/.exec(out)?.[1];
    expect(tag, out).toBeDefined();
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(tag!);
  }, 20 * 60_000);

  it('Ctrl-C while the VM boots stops the VM, hiveboot and the router and deletes the lab namespaces', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'scripts', 'demo.ts')], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the VM was not powered on within 5 min:\n${out}`)), 5 * 60_000);
      const take = (b: Buffer) => {
        out += b.toString();
        if (/timeline, live/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', take);
      child.stderr.on('data', take);
    });
    const tag = /namespace (hb[0-9a-f]{6})-srv/.exec(out)![1]!;
    // What the demo started, found by the lab's namespaces (QEMU, hiveboot, dnsmasq run inside them).
    const inLab = () =>
      execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l.startsWith(tag))
        .flatMap((l) => execFileSync('ip', ['netns', 'pids', l.split(' ')[0]!], { encoding: 'utf8' }).split('\n').filter(Boolean));
    expect(inLab().length).toBeGreaterThanOrEqual(3);
    const pids = inLab();
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(out).toContain('stopping: VM, hiveboot, router; deleting the lab namespaces');
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(tag);
    const alive = pids.filter((pid) => {
      try {
        process.kill(Number(pid), 0);
        return true;
      } catch {
        return false;
      }
    });
    expect(alive).toEqual([]);
  }, 10 * 60_000);
});
