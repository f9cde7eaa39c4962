import { copyFileSync, existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { NetLab } from './netns.js';

export interface GuestOptions {
  ns: string;
  tap: string;
  mac: string;
  firmware: 'bios' | 'uefi';
  /** UEFI: remove the NIC's iPXE option ROM so the firmware's own PXE (EDK2) boots. */
  noNicRom?: boolean;
  /** Where OVMF's writable variable store copy goes. */
  workDir: string;
  memoryMiB?: number;
  /** Write the guest's serial console (ttyS0) to this file; without it the console is discarded. */
  serialLog?: string;
  /**
   * A QMP monitor on this unix socket (QEMU listens, does not wait for a client): qmp() and
   * powerDown() talk to it. Unix sockets on the file system reach across network namespaces.
   */
  monitorSocket?: string;
}

const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/**
 * TCG (software emulation) unless HIVEBOOT_TEST_ACCEL=kvm. On this project's machines /dev/kvm is a
 * nested "PVM" KVM that stops iPXE's real-mode code with "KVM internal error ... emulation failure",
 * so KVM cannot be the default for firmware tests; protocol stages are fast under TCG anyway.
 */
export function accel(): string {
  return process.env.HIVEBOOT_TEST_ACCEL === 'kvm' && existsSync('/dev/kvm') ? 'kvm' : 'tcg';
}

/**
 * A QEMU guest that network-boots from `tap` (which must already be on the lab bridge). It runs with
 * no display and no disk: the tests read what it did from hiveboot's timeline, not from its screen.
 */
export function startGuest(lab: NetLab, o: GuestOptions): ChildProcess {
  const args = [
    '-machine', `q35,accel=${accel()}`,
    '-m', String(o.memoryMiB ?? 256),
    '-display', 'none',
    '-nodefaults',
    '-no-reboot',
    '-serial', o.serialLog ? `file:${o.serialLog}` : 'none',
    '-netdev', `tap,id=n0,ifname=${o.tap},script=no,downscript=no`,
    '-device', `virtio-net-pci,netdev=n0,mac=${o.mac}${o.noNicRom ? ',romfile=' : ''}`,
  ];
  if (o.firmware === 'uefi') {
    const vars = join(o.workDir, `vars-${o.mac.replace(/:/g, '')}.fd`);
    copyFileSync(OVMF_VARS, vars);
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`);
  } else {
    args.push('-boot', 'order=n');
  }
  if (o.monitorSocket) args.push('-qmp', `unix:${o.monitorSocket},server=on,wait=off`);
  return lab.spawn(o.ns, 'qemu-system-x86_64', args);
}

/**
 * Runs QMP commands on a guest's monitor socket (startGuest's monitorSocket), in order, on one
 * connection: reads the greeting, negotiates capabilities, then sends each command and returns its
 * "return" values. Events arriving in between are skipped; an "error" answer throws. Retries the
 * connection for a few seconds (QEMU creates the socket shortly after it starts).
 */
export async function qmp(socket: string, commands: { execute: string; arguments?: Record<string, unknown> }[], timeoutMs = 15_000): Promise<unknown[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await qmpSession(socket, commands, Math.max(1000, deadline - Date.now()));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function qmpSession(socket: string, commands: { execute: string; arguments?: Record<string, unknown> }[], timeoutMs: number): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    const results: unknown[] = [];
    let buffered = '';
    let greeted = false;
    let next = -1; // -1: qmp_capabilities in flight; i: commands[i] in flight
    const timer = setTimeout(() => finish(new Error(`QMP ${socket}: no answer within ${timeoutMs} ms`)), timeoutMs);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      conn.destroy();
      if (err) reject(err);
      else resolve(results);
    };
    const send = (cmd: object) => conn.write(`${JSON.stringify(cmd)}\n`);
    conn.on('error', (err) => finish(err));
    conn.on('close', () => finish(new Error(`QMP ${socket}: connection closed before all answers arrived`)));
    conn.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { QMP?: unknown; event?: string; return?: unknown; error?: { class: string; desc: string } };
        if (msg.event) continue;
        if (!greeted) {
          if (!msg.QMP) return finish(new Error(`QMP ${socket}: unexpected greeting ${line}`));
          greeted = true;
          send({ execute: 'qmp_capabilities' });
          continue;
        }
        if (msg.error) return finish(new Error(`QMP ${socket}: ${next < 0 ? 'qmp_capabilities' : commands[next]!.execute}: ${msg.error.class}: ${msg.error.desc}`));
        if (next >= 0) results.push(msg.return);
        next++;
        if (next >= commands.length) return finish();
        send(commands[next]!);
      }
    });
  });
}

/** Presses the guest's ACPI power button (QMP system_powerdown); the guest shuts itself down. */
export async function powerDown(socket: string): Promise<void> {
  await qmp(socket, [{ execute: 'system_powerdown' }]);
}
