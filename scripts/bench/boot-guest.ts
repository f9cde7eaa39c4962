// The boot benchmark's QEMU guest: SeaBIOS + the virtio NIC's iPXE option ROM, no disk, network boot
// from a tap on the lab bridge, as the e2e tests run it (test/support/qemu.ts), but with the serial
// console (ttyS0) on QEMU's stdout so that every chunk is timestamped when it arrives, and with the
// power-on instant recorded just before QEMU is spawned.
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { NetLab } from '../../test/support/netns.js';

/** Milliseconds on the monotonic clock (performance.now()) since the Unix epoch at process start. */
export const now = () => performance.timeOrigin + performance.now();

export interface BenchGuestOptions {
  ns: string;
  tap: string;
  mac: string;
  memoryMiB: number;
  /** The serial console is also copied here, and QEMU's own messages to `<consoleLog>.qemu`. */
  consoleLog: string;
  /** SeaBIOS mirrors the VGA text (iPXE's messages) to COM1: more to read, slightly more to print. */
  sercon?: boolean;
  /** Where the sercon fw_cfg file goes. */
  workDir: string;
}

/** TCG unless HIVEBOOT_TEST_ACCEL=kvm (as the tests: the nested KVM here stops iPXE's real-mode code). */
function accel(): string {
  return process.env.HIVEBOOT_TEST_ACCEL === 'kvm' && existsSync('/dev/kvm') ? 'kvm' : 'tcg';
}

export class BenchGuest {
  /** Power-on: just before QEMU was spawned (ms, `now()` clock). */
  readonly poweredOn: number;
  readonly process: ChildProcess;
  /** Everything the console printed (latin1), and when each chunk of it arrived. */
  private text = '';
  private readonly chunks: { end: number; at: number }[] = [];
  exit: { code: number | null; signal: NodeJS.Signals | null; at: number } | undefined;
  private readonly log: WriteStream;
  private readonly qemuLog: WriteStream;
  private readonly closed: Promise<void>;

  constructor(lab: NetLab, readonly o: BenchGuestOptions) {
    const args = [
      '-machine', `q35,accel=${accel()}`,
      '-m', String(o.memoryMiB),
      '-smp', '1',
      '-display', 'none',
      '-nodefaults',
      '-no-reboot',
      '-chardev', 'stdio,id=s0,signal=off',
      '-serial', 'chardev:s0',
      '-netdev', `tap,id=n0,ifname=${o.tap},script=no,downscript=no`,
      '-device', `virtio-net-pci,netdev=n0,mac=${o.mac}`,
      '-boot', 'order=n',
    ];
    if (o.sercon) {
      const file = join(o.workDir, 'sercon.bin');
      writeFileSync(file, Buffer.from([0xf8, 0x03])); // COM1 at 0x3f8, little endian
      args.push('-fw_cfg', `name=etc/sercon-port,file=${file}`);
    }
    this.log = createWriteStream(o.consoleLog);
    this.qemuLog = createWriteStream(`${o.consoleLog}.qemu`);
    this.poweredOn = now();
    this.process = lab.spawn(o.ns, 'qemu-system-x86_64', args);
    this.process.stdout!.on('data', (chunk: Buffer) => {
      const at = now();
      this.text += chunk.toString('latin1');
      this.chunks.push({ end: this.text.length, at });
      this.log.write(chunk);
    });
    this.process.stderr!.on('data', (chunk: Buffer) => this.qemuLog.write(chunk));
    this.closed = new Promise((resolve) =>
      this.process.once('close', (code, signal) => {
        this.exit = { code, signal, at: now() };
        this.log.end();
        this.qemuLog.end();
        resolve();
      }),
    );
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /**
   * When the console had first printed a match of `re` (ms after power-on): the arrival of the chunk
   * that completed the match. Undefined if it never printed one.
   */
  firstMatch(re: RegExp): number | undefined {
    const m = new RegExp(re.source, re.flags.replace('g', '')).exec(this.text);
    if (!m) return undefined;
    const end = m.index + m[0].length;
    const chunk = this.chunks.find((c) => c.end >= end);
    return chunk ? chunk.at - this.poweredOn : undefined;
  }

  /** The last `n` lines of the console, escape sequences removed (for error messages). */
  tail(n = 15): string {
    // eslint-disable-next-line no-control-regex
    const plain = this.text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
    return plain.split('\n').slice(-n).join('\n');
  }

  /** Powers the guest off (SIGTERM to QEMU; SIGKILL after 5 s). */
  async stop(): Promise<void> {
    if (this.exit) return;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 5000);
    await this.closed;
    clearTimeout(timer);
  }
}
