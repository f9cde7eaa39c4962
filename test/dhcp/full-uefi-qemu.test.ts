import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetLab, waitForOutput } from '../support/netns.js';
import { startGuest } from '../support/qemu.js';

/**
 * Full-DHCP mode with UEFI firmware: OVMF with the NIC's iPXE ROM removed, so EDK2's own PXE client
 * (option 93 = 7) asks hiveboot for an address and a boot file, downloads snponly.efi from
 * hiveboot's TFTP, and the iPXE it starts asks again (now as iPXE) and fetches /boot.ipxe.
 * Asserted from the host's timeline in hiveboot's database.
 */
const SERVE = join(import.meta.dirname, '../support/serve.ts');
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
    lab.ip(srv, 'link', 'add', 'br0', 'type', 'bridge');
    lab.ip(srv, 'addr', 'add', '10.81.0.1/24', 'dev', 'br0');
    lab.ip(srv, 'link', 'set', 'br0', 'up');
    lab.ip(srv, 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
    lab.ip(srv, 'link', 'set', 'tap0', 'master', 'br0');
    lab.ip(srv, 'link', 'set', 'tap0', 'up');
    dbPath = join(dir, 'state', 'hiveboot.db');
    const config = join(dir, 'hiveboot.yaml');
    writeFileSync(
      config,
      `stateDir: ${join(dir, 'state')}
http: { listen: 0.0.0.0, port: 18482 }
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
    );
    const daemon = lab.spawn(srv, process.execPath, ['--import', 'tsx', SERVE, config]);
    await waitForOutput(daemon, (t) => t.includes('hiveboot is up'));
  }, 60_000);

  afterAll(async () => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const events = () => {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      return db.prepare('SELECT stage, message, reason FROM events WHERE mac = ? ORDER BY id').all(GUEST_MAC) as {
        stage: string;
        message: string;
        reason: string;
      }[];
    } finally {
      db.close();
    }
  };

  it('EDK2 PXE gets an address and snponly.efi, downloads it by TFTP, and its iPXE fetches /boot.ipxe', async () => {
    expect(existsSync(join(NETBOOT, 'snponly.efi')), 'netboot/snponly.efi (scripts/netboot.sh)').toBe(true);
    startGuest(lab, { ns: srv, tap: 'tap0', mac: GUEST_MAC, firmware: 'uefi', noNicRom: true, workDir: dir, memoryMiB: 512 });
    const deadline = Date.now() + 150_000;
    let ev = events();
    while (Date.now() < deadline && !ev.some((e) => e.message === 'script: bootstrap /boot.ipxe')) {
      await new Promise((r) => setTimeout(r, 1000));
      ev = events();
    }
    const text = ev.map((e) => `${e.stage}: ${e.message} — ${e.reason}`).join('\n');
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
