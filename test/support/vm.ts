// Linux guests for tests: the golden image built by scripts/build-image.sh, booted by QEMU with its
// own kernel and initramfs (direct kernel boot), driven by a script handed over through fw_cfg, and
// watched through its serial console.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');

/**
 * Where tests keep the golden image: outside the clone, so a fresh clone (CI) reuses it. The build
 * script's own content key decides whether it is up to date; its caches live in /var/cache/hiveboot-image.
 */
export const TEST_IMAGE = process.env.HIVEBOOT_TEST_IMAGE ?? '/var/cache/hiveboot-test/debian-k3s.raw';

export interface GoldenImage {
  path: string;
  key: string;
  kernelVersion: string;
  rootUuid: string;
  /** Byte offset of the root file system in the image. */
  rootOffset: number;
}

export function readBuildInfo(path: string): GoldenImage {
  const info = Object.fromEntries(
    readFileSync(`${path}.build-info`, 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return { path, key: info.key!, kernelVersion: info.kernel!, rootUuid: info.root_uuid!, rootOffset: Number(info.root_offset) };
}

/**
 * Builds the golden image with scripts/build-image.sh unless it is up to date (then the script returns
 * in well under a second). The script's output goes to `logFile`; its last lines are in the error.
 */
export async function ensureGoldenImage(logFile: string, path = TEST_IMAGE): Promise<{ image: GoldenImage; seconds: number }> {
  const started = performance.now();
  const log = createWriteStream(logFile);
  const child = spawn('bash', [join(REPO, 'scripts', 'build-image.sh'), path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (b: Buffer) => {
    log.write(b);
    tail = (tail + b.toString()).slice(-3000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  await new Promise((resolve) => log.end(resolve));
  if (code !== 0) throw new Error(`scripts/build-image.sh exited ${code}:\n${tail}`);
  return { image: readBuildInfo(path), seconds: (performance.now() - started) / 1000 };
}

/** The image's kernel and initramfs, read with debugfs straight from the root file system (no mount). */
export async function extractBoot(image: GoldenImage, dir: string): Promise<{ kernel: string; initrd: string }> {
  const fs = `${image.path}?offset=${image.rootOffset}`;
  const kernel = join(dir, 'vmlinuz');
  const initrd = join(dir, 'initrd.img');
  for (const [from, to] of [[`/boot/vmlinuz-${image.kernelVersion}`, kernel], [`/boot/initrd.img-${image.kernelVersion}`, initrd]] as const) {
    await run('debugfs', ['-R', `dump ${from} ${to}`, fs]);
    if (!existsSync(to)) throw new Error(`debugfs could not read ${from} from ${image.path}`);
  }
  return { kernel, initrd };
}

export interface ConsoleLine {
  text: string;
  /** performance.now() when the line arrived. */
  at: number;
}

export interface LinuxGuestOptions {
  kernel: string;
  initrd: string;
  cmdline: string;
  /** Disks, attached as virtio with snapshot=on: the guest's writes never reach the file. */
  disks: string[];
  /** The -netdev value (its id must be n0). */
  netdev: string;
  /** fw_cfg entries: name (opt/...) → host file. */
  fwCfg?: Record<string, string>;
  memoryMiB?: number;
  cpus?: number;
  /** Where the serial console is copied as it arrives. */
  consoleLog: string;
}

/**
 * TCG unless HIVEBOOT_TEST_ACCEL=kvm: on this project's machines /dev/kvm is nested "PVM" KVM, which
 * stops in the kernel's real-mode setup (bzImage) and with emulation failures (cmpxchg16b, xrstor)
 * when the kernel is entered through PVH, so software emulation is the default here too.
 */
export function guestAccel(): 'kvm' | 'tcg' {
  return process.env.HIVEBOOT_TEST_ACCEL === 'kvm' && existsSync('/dev/kvm') ? 'kvm' : 'tcg';
}

/** A QEMU guest whose serial console (ttyS0) is read line by line with arrival times. */
export class LinuxGuest {
  readonly lines: ConsoleLine[] = [];
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
  private partial = '';
  private waiters: (() => void)[] = [];
  private exitCode: number | null | undefined;

  constructor(o: LinuxGuestOptions) {
    const accel = guestAccel();
    const args = [
      '-machine', `q35,accel=${accel}`,
      '-cpu', accel === 'kvm' ? 'host' : 'max',
      '-smp', String(o.cpus ?? 2),
      '-m', String(o.memoryMiB ?? 1024),
      '-nodefaults', '-display', 'none', '-no-reboot',
      '-kernel', o.kernel, '-initrd', o.initrd, '-append', o.cmdline,
      '-netdev', o.netdev, '-device', 'virtio-net-pci,netdev=n0',
      '-chardev', 'stdio,id=s0,signal=off', '-serial', 'chardev:s0',
    ];
    for (const disk of o.disks) args.push('-drive', `file=${disk},format=raw,if=virtio,snapshot=on`);
    for (const [name, file] of Object.entries(o.fwCfg ?? {})) args.push('-fw_cfg', `name=${name},file=${file}`);
    const log = createWriteStream(o.consoleLog);
    this.process = spawn('qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.process.stdout!.on('data', (chunk: Buffer) => {
      log.write(chunk);
      this.take(chunk.toString('latin1'));
    });
    this.process.stderr!.on('data', (chunk: Buffer) => log.write(chunk));
    this.exited = new Promise((resolve) =>
      this.process.on('exit', (code) => {
        this.exitCode = code;
        if (this.partial) this.push(this.partial);
        this.partial = '';
        this.wake();
        log.end();
        resolve(code);
      }),
    );
  }

  private take(text: string): void {
    const parts = (this.partial + text).split(/\r?\n/);
    this.partial = parts.pop()!;
    for (const p of parts) this.push(p);
    this.wake();
  }

  private push(text: string): void {
    this.lines.push({ text: text.replace(/\r/g, ''), at: performance.now() });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** The first line from index `from` on that matches, waiting for it; throws on timeout or exit. */
  async waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<ConsoleLine & { index: number }> {
    const deadline = performance.now() + timeoutMs;
    let i = from;
    for (;;) {
      for (; i < this.lines.length; i++) {
        if (pattern.test(this.lines[i]!.text)) return { ...this.lines[i]!, index: i };
      }
      if (this.exitCode !== undefined) throw new Error(`guest exited (${this.exitCode}) before printing ${pattern}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`guest did not print ${pattern} within ${timeoutMs / 1000} s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Lines strictly between two marker lines (e.g. a dump the guest framed). */
  between(begin: RegExp, end: RegExp): string[] {
    const b = this.lines.findIndex((l) => begin.test(l.text));
    if (b < 0) return [];
    const e = this.lines.findIndex((l, i) => i > b && end.test(l.text));
    return this.lines.slice(b + 1, e < 0 ? undefined : e).map((l) => l.text);
  }

  async kill(): Promise<void> {
    if (this.exitCode === undefined) this.process.kill('SIGKILL');
    await this.exited;
  }
}
