import { copyFileSync, existsSync } from 'node:fs';
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
  return lab.spawn(o.ns, 'qemu-system-x86_64', args);
}
