import { describe, expect, it } from 'vitest';
import { DEFAULT_BOOT_FILES } from '../../src/dhcp/arch.js';
import { chooseBoot, type BootChoice, type BootChoiceConfig, type BootFileOverrides } from '../../src/dhcp/boot-choice.js';
import type { DhcpPacket } from '../../src/dhcp/packet.js';
import { CLIENTS, discover, HTTP_UEFI, PXE_BIOS, PXE_UEFI, request } from './builders.js';

const HTTP = 'http://10.99.0.2:8080';
const cfg: BootChoiceConfig = { table: { ...DEFAULT_BOOT_FILES }, bootstrapUrl: `${HTTP}/boot.ipxe`, httpBase: HTTP };

function boots(req: DhcpPacket, overrides?: BootFileOverrides, config: BootChoiceConfig = cfg): BootChoice {
  const c = chooseBoot(req, config, overrides);
  if ('none' in c) return expect.fail(`expected a boot file, got none: ${c.none}`);
  return c;
}

function none(req: DhcpPacket, overrides?: BootFileOverrides, config: BootChoiceConfig = cfg): string {
  const c = chooseBoot(req, config, overrides);
  if (!('none' in c)) return expect.fail(`expected no boot file, got ${c.file}`);
  return c.none;
}

describe('PXE firmware gets the iPXE build for its architecture', () => {
  it('BIOS (arch 0) loads undionly.kpxe over TFTP', () => {
    const c = boots(discover(CLIENTS.biosRom));
    expect(c).toMatchObject({ file: 'undionly.kpxe', vendorClass: 'PXEClient', arch: 0 });
    expect(c.reason).toContain('x86 BIOS');
    expect(c.reason).toContain('undionly.kpxe');
  });

  it('an old PXE ROM that sends no option 93 is treated as BIOS', () => {
    expect(boots(discover(CLIENTS.oldBiosRom))).toMatchObject({ file: 'undionly.kpxe', vendorClass: 'PXEClient', arch: 0 });
  });

  it.each([7, 9])('x64 UEFI (arch %i) loads snponly.efi, not ipxe.efi', (arch) => {
    const c = boots(discover({ ...CLIENTS.uefiRom, arch }));
    expect(c).toMatchObject({ file: 'snponly.efi', vendorClass: 'PXEClient', arch });
    expect(c.reason).toContain('x64 UEFI');
  });

  it('ARM64 UEFI (arch 11) loads the arm64 EFI build', () => {
    const c = boots(discover({ vendorClass: 'PXEClient:Arch:00011:UNDI:003016', arch: 11 }));
    expect(c).toMatchObject({ file: 'snponly-arm64.efi', vendorClass: 'PXEClient', arch: 11 });
    expect(c.reason).toContain('ARM 64 UEFI');
  });

  it('uses the first architecture when the client lists several', () => {
    expect(boots(discover({ vendorClass: PXE_UEFI, arch: [7, 0] })).file).toBe('snponly.efi');
    expect(boots(discover({ vendorClass: PXE_BIOS, arch: [0, 7] })).file).toBe('undionly.kpxe');
  });

  it('decides the same for a REQUEST as for a DISCOVER', () => {
    expect(boots(request(CLIENTS.uefiRom)).file).toBe('snponly.efi');
  });
});

describe('UEFI HTTP boot gets a URL and must be told HTTPClient', () => {
  it.each([
    [16, 'snponly.efi'],
    [19, 'snponly-arm64.efi'],
  ])('arch %i gets an http URL on our base, with vendor class HTTPClient', (arch, name) => {
    const c = boots(discover({ ...CLIENTS.httpBoot, vendorClass: `HTTPClient:Arch:000${arch}:UNDI:003001`, arch }));
    expect(c.file).toBe(`${HTTP}/netboot/${name}`);
    expect(c.file).not.toContain('{http}');
    expect(c.vendorClass).toBe('HTTPClient');
    expect(c.arch).toBe(arch);
    expect(c.reason).toContain('HTTP boot');
  });

  it('a URL override for an HTTP boot client has {http} replaced too', () => {
    const c = boots(discover(CLIENTS.httpBoot), { host: '{http}/netboot/custom.efi' });
    expect(c).toMatchObject({ file: `${HTTP}/netboot/custom.efi`, vendorClass: 'HTTPClient' });
  });

  it('an HTTP boot client whose configured file is not a URL gets nothing, with the reason', () => {
    const why = none(discover(CLIENTS.httpBoot), { host: 'snponly.efi' });
    expect(why).toContain('not a URL');
    expect(why).toContain('snponly.efi');
  });
});

describe('iPXE gets the bootstrap script (the loop-break)', () => {
  it('user class "iPXE" gets the /boot.ipxe URL instead of another iPXE binary', () => {
    const c = boots(discover(CLIENTS.ipxe));
    expect(c.file).toBe(`${HTTP}/boot.ipxe`);
    expect(c.vendorClass).toBe('PXEClient');
    expect(c.reason).toContain('iPXE');
  });

  it('even when its architecture says UEFI (snponly.efi chained into iPXE)', () => {
    const req = discover({ vendorClass: PXE_UEFI, arch: 7, userClass: 'iPXE' });
    expect(boots(req).file).toBe(`${HTTP}/boot.ipxe`);
  });

  it('option 175 alone marks iPXE (a build with the user class removed)', () => {
    const req = discover({ vendorClass: PXE_UEFI, arch: 7, ipxe: CLIENTS.ipxe.ipxe });
    expect(boots(req).file).toBe(`${HTTP}/boot.ipxe`);
  });

  it('the RFC 3004 form of the user class is recognised too', () => {
    const req = discover({ vendorClass: PXE_BIOS, arch: 0, userClass: Buffer.from([4, ...Buffer.from('iPXE')]) });
    expect(boots(req).file).toBe(`${HTTP}/boot.ipxe`);
  });

  it('iPXE without a PXE vendor class still gets the script', () => {
    expect(boots(discover({ userClass: 'iPXE' })).file).toBe(`${HTTP}/boot.ipxe`);
  });

  it('per-host and per-profile boot files do not send iPXE round the loop again', () => {
    const c = boots(discover(CLIENTS.ipxe), { host: 'ipxe.efi', profile: 'undionly.kpxe' });
    expect(c.file).toBe(`${HTTP}/boot.ipxe`);
  });
});

describe('overrides: host, then profile, then the table', () => {
  it('the host override beats the profile override and the table', () => {
    const c = boots(discover(CLIENTS.uefiRom), { host: 'ipxe.efi', profile: 'other.efi' });
    expect(c.file).toBe('ipxe.efi');
    expect(c.reason).toContain('set by the host');
  });

  it('the profile override beats the table', () => {
    const c = boots(discover(CLIENTS.uefiRom), { host: null, profile: 'ipxe.efi' });
    expect(c.file).toBe('ipxe.efi');
    expect(c.reason).toContain('set by its profile');
  });

  it('without overrides the table decides, and the reason names no override', () => {
    const c = boots(discover(CLIENTS.uefiRom), { host: null, profile: null });
    expect(c.file).toBe('snponly.efi');
    expect(c.reason).not.toContain('set by');
  });

  it('an override gives a file even to an architecture the table lacks', () => {
    const req = discover({ vendorClass: 'PXEClient:Arch:00010:UNDI:003016', arch: 10 });
    expect(boots(req, { profile: 'ipxe-arm32.efi' })).toMatchObject({ file: 'ipxe-arm32.efi', arch: 10 });
  });
});

describe('the architecture table is data', () => {
  it('a configured entry replaces a default', () => {
    const config = { ...cfg, table: { ...DEFAULT_BOOT_FILES, '7': 'ipxe.efi' } };
    expect(boots(discover(CLIENTS.uefiRom), {}, config).file).toBe('ipxe.efi');
    // Other entries keep their defaults.
    expect(boots(discover(CLIENTS.biosRom), {}, config).file).toBe('undionly.kpxe');
    expect(boots(discover({ ...CLIENTS.uefiRom, arch: 9 }), {}, config).file).toBe('snponly.efi');
  });

  it('a configured entry can add an architecture', () => {
    const req = discover({ vendorClass: 'PXEClient:Arch:00010:UNDI:003016', arch: 10 });
    expect(none(req)).toContain('ARM 32 UEFI');
    const config = { ...cfg, table: { ...DEFAULT_BOOT_FILES, '10': 'snponly-arm32.efi' } };
    expect(boots(req, {}, config)).toMatchObject({ file: 'snponly-arm32.efi', vendorClass: 'PXEClient', arch: 10 });
  });
});

describe('clients that get nothing, each with a reason', () => {
  it('an unknown architecture', () => {
    const why = none(discover({ vendorClass: 'PXEClient:Arch:00099:UNDI:003016', arch: 99 }));
    expect(why).toContain('arch 99');
    expect(why).toContain('dhcp.bootFiles');
  });

  it('a machine that is not booting from the network', () => {
    expect(none(discover(CLIENTS.laptop))).toContain('not a PXE client');
    expect(none(discover({ ...CLIENTS.laptop, vendorClass: 'MSFT 5.0' }))).toContain('not a PXE client');
    expect(none(discover({ ...CLIENTS.laptop, vendorClass: 'udhcp 1.36.1' }))).toContain('not a PXE client');
  });

  it('an HTTPClient vendor class is a network boot even with a PXE-only arch entry, but needs a URL', () => {
    const why = none(discover({ vendorClass: HTTP_UEFI, arch: 7 }));
    expect(why).toContain('not a URL');
  });
});
