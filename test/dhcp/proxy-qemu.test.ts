import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetLab, waitForOutput } from '../support/netns.js';
import { startGuest } from '../support/qemu.js';
import { describeTimeline, waitForTimeline } from '../support/timeline.js';

/**
 * proxyDHCP beside a "home router": a DHCP-only dnsmasq in its own namespace hands out addresses,
 * hiveboot in proxy mode adds only the boot information, and a real QEMU guest (SeaBIOS and the iPXE
 * ROM of its NIC) must end up fetching /boot.ipxe and its own script from hiveboot. Asserted from
 * hiveboot's timeline, as a user would check it.
 */
const GUEST_MAC = '52:54:00:79:00:01';
const UEFI_MAC = '52:54:00:79:00:07';
const NETBOOT = join(import.meta.dirname, '../../netboot');

describe.skipIf(!NetLab.available())('proxyDHCP beside a router, real iPXE firmware (QEMU)', () => {
  const lab = new NetLab();
  let dir: string;
  let srv: string;
  let rtr: string;
  let dbPath: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hb-dhcp-proxy-'));
    srv = lab.ns('srv');
    rtr = lab.ns('rtr');
    lab.bridge(srv, 'br0', '10.79.0.1/24');
    lab.ip(srv, '-6', 'addr', 'add', 'fd79::1/64', 'dev', 'br0', 'nodad');
    lab.link({ ns: srv, ifname: 'rtrport' }, { ns: rtr, ifname: 'rtr0', cidr: '10.79.0.254/24' });
    lab.ip(rtr, '-6', 'addr', 'add', 'fd79::fe/64', 'dev', 'rtr0', 'nodad');
    lab.ip(srv, 'link', 'set', 'rtrport', 'master', 'br0');
    lab.tap(srv, 'tap0', 'br0');
    lab.tap(srv, 'tap1', 'br0');

    // The router: addresses only, no PXE options. It also sends IPv6 router advertisements, without
    // which iPXE spends 13 s waiting for one before it even starts DHCP.
    const router = lab.spawn(rtr, '/usr/sbin/dnsmasq', [
      '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--group=root',
      '--interface=rtr0', '--bind-interfaces', '--log-dhcp', '--no-ping',
      `--pid-file=${join(dir, 'dnsmasq.pid')}`, `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
      '--dhcp-range=10.79.0.150,10.79.0.199,255.255.255.0,1h',
      '--enable-ra', '--dhcp-range=fd79::,ra-only',
    ]);
    await waitForOutput(router, (t) => /DHCP, IP range/.test(t));

    ({ dbPath } = await lab.hiveboot(
      srv,
      dir,
      `http: { listen: 0.0.0.0, port: 18481 }
log: { level: debug }
boot: { retrySeconds: 2 }
dhcp: { mode: proxy, interfaces: [br0] }
tftp: { root: ${NETBOOT} }
`,
    ));
  }, 60_000);

  afterAll(async () => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a BIOS guest with the iPXE ROM gets the bootstrap URL from hiveboot and fetches /boot.ipxe and its own script', async () => {
    startGuest(lab, { ns: srv, tap: 'tap0', mac: GUEST_MAC, firmware: 'bios', workDir: dir });
    const ev = await waitForTimeline(dbPath, GUEST_MAC, (e) => e.some((x) => x.stage === 'script' && /^script: (wait|discover)/.test(x.message)), 90_000);
    const text = describeTimeline(ev);
    // Proxy offer on port 67 with the bootstrap URL (the ROM is iPXE: loop-break), never an address.
    expect(text).toMatch(/dhcp: discover \(proxy, iPXE\): proxy offer on br0: http:\/\/10\.79\.0\.1:18481\/boot\.ipxe/);
    // The machine became a discovered host from its DHCP request.
    expect(ev.some((e) => e.stage === 'dhcp' && e.message.startsWith('discovered'))).toBe(true);
    // It fetched the bootstrap script from its router-given address, then its own script.
    const bootstrap = ev.find((e) => e.message === 'script: bootstrap /boot.ipxe');
    expect(bootstrap, text).toBeDefined();
    expect(bootstrap!.sourceIp).toMatch(/^10\.79\.0\.(1[5-9]\d)$/);
    expect(text).toMatch(/script: script: (wait|discover)/);
  }, 120_000);

  it('a UEFI guest (OVMF, EDK2 PXE without the NIC ROM) gets snponly.efi by proxyDHCP + TFTP from hiveboot, and its iPXE fetches /boot.ipxe', async () => {
    startGuest(lab, { ns: srv, tap: 'tap1', mac: UEFI_MAC, firmware: 'uefi', noNicRom: true, workDir: dir, memoryMiB: 512 });
    const ev = await waitForTimeline(dbPath, UEFI_MAC, (e) => e.some((x) => x.message === 'script: bootstrap /boot.ipxe'), 150_000);
    const text = describeTimeline(ev);
    // EDK2's DISCOVER (arch 7) gets a proxy offer naming snponly.efi, never an address.
    expect(text).toMatch(/dhcp: discover \(proxy, x64 UEFI\): proxy offer on br0: snponly\.efi/);
    expect(text).toMatch(/tftp: sent snponly\.efi \(\d+ KiB/);
    // The iPXE inside snponly.efi is told the bootstrap URL (loop-break) and fetches it.
    expect(text).toMatch(/dhcp: discover \(proxy, iPXE\): proxy offer on br0: http:\/\/10\.79\.0\.1:18481\/boot\.ipxe/);
    expect(text).toContain('script: script: bootstrap /boot.ipxe');
  }, 180_000);
});
