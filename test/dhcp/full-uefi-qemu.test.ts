import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetLab } from '../support/netns.js';
import { startGuest } from '../support/qemu.js';
import { describeTimeline, waitForTimeline } from '../support/timeline.js';

/**
 * Full-DHCP mode with UEFI firmware: OVMF with the NIC's iPXE ROM removed, so EDK2's own PXE client
 * (option 93 = 7) asks hiveboot for an address and a boot file, downloads snponly.efi from
 * hiveboot's TFTP, and the iPXE it starts asks again (now as iPXE) and fetches /boot.ipxe.
 * Asserted from the host's timeline in hiveboot's database.
 */
const NETBOOT = join(import.meta.dirname, '../../netboot');
const GUEST_MAC = '52:54:00:7a:00:07';

describe.skipIf(!NetLab.available() || !existsSync('/usr/share/OVMF/OVMF_CODE_4M.fd'))('full DHCP + TFTP with UEFI firmware (OVMF, EDK2 PXE)', () => {
  const lab = new NetLab();
  let dir: string;
  let srv: string;
  let dbPath: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hb-dhcp-uefi-'));
    srv = lab.ns('srv');
    lab.bridge(srv, 'br0', '10.81.0.1/24');
    lab.tap(srv, 'tap0', 'br0');
    ({ dbPath } = await lab.hiveboot(
      srv,
      dir,
      `http: { listen: 0.0.0.0, port: 18482 }
log: { level: debug }
boot: { retrySeconds: 2 }
tftp: { root: ${NETBOOT} }
dhcp:
  mode: full
  interfaces: [br0]
  subnets:
    - network: 10.81.0.0/24
      range: { start: 10.81.0.100, end: 10.81.0.150 }
      leaseSeconds: 600
`,
    ));
  }, 60_000);

  afterAll(async () => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('EDK2 PXE gets an address and snponly.efi, downloads it by TFTP, and its iPXE fetches /boot.ipxe', async () => {
    expect(existsSync(join(NETBOOT, 'snponly.efi')), 'netboot/snponly.efi (scripts/netboot.sh)').toBe(true);
    startGuest(lab, { ns: srv, tap: 'tap0', mac: GUEST_MAC, firmware: 'uefi', noNicRom: true, workDir: dir, memoryMiB: 512 });
    const ev = await waitForTimeline(dbPath, GUEST_MAC, (e) => e.some((x) => x.message === 'script: bootstrap /boot.ipxe'), 150_000);
    const text = describeTimeline(ev);
    // EDK2's own PXE: UEFI arch 7, offered an address and snponly.efi (not ipxe.efi).
    expect(text).toMatch(/dhcp: discover \(full, x64 UEFI\): offer 10\.81\.0\.1\d\d on br0; boot snponly\.efi/);
    expect(text).toMatch(/dhcp: request \(full, x64 UEFI\): ack 10\.81\.0\.1\d\d on br0; boot snponly\.efi/);
    // The download itself, from hiveboot's TFTP.
    expect(text).toMatch(/tftp: sent snponly\.efi \(\d+ KiB in \d+ ms/);
    // The iPXE it started asked again as iPXE and got the bootstrap URL (loop-break), then fetched it.
    expect(text).toMatch(/dhcp: discover \(full, iPXE\): offer 10\.81\.0\.1\d\d on br0; boot http:\/\/10\.81\.0\.1:18482\/boot\.ipxe/);
    expect(text).toContain('script: script: bootstrap /boot.ipxe');
  }, 180_000);
});
