/**
 * Which boot file a PXE client gets, by its architecture (option 93, RFC 4578 and IANA's "Processor
 * Architecture Types" registry). Data, not code: the config can replace any entry.
 */
export interface ArchEntry {
  /** Short name for events and logs. */
  name: string;
  /** A file in the TFTP root, or an http(s) URL for UEFI HTTP boot clients. */
  file: string;
}

export const ARCH_NAMES: Record<number, string> = {
  0: 'x86 BIOS',
  6: 'x86 UEFI (32-bit)',
  7: 'x64 UEFI',
  9: 'x64 UEFI',
  10: 'ARM 32 UEFI',
  11: 'ARM 64 UEFI',
  15: 'x86 UEFI HTTP',
  16: 'x64 UEFI HTTP',
  18: 'ARM 32 UEFI HTTP',
  19: 'ARM 64 UEFI HTTP',
};

/**
 * Defaults. UEFI gets snponly.efi, not ipxe.efi: snponly drives the NIC through the firmware's own
 * SNP driver, while ipxe.efi's native drivers hang on many thin-client Realtek/Broadcom NICs.
 * HTTP boot clients (16, 19) get a URL; "{http}" is replaced by hiveboot's HTTP base URL.
 */
export const DEFAULT_BOOT_FILES: Record<string, string> = {
  '0': 'undionly.kpxe',
  '6': 'snponly-i386.efi',
  '7': 'snponly.efi',
  '9': 'snponly.efi',
  '11': 'snponly-arm64.efi',
  '16': '{http}/netboot/snponly.efi',
  '19': '{http}/netboot/snponly-arm64.efi',
};

/** RFC 4578 architecture types that are UEFI HTTP boot clients. */
export const HTTP_BOOT_ARCHES = new Set([15, 16, 18, 19]);

export function archName(arch: number | undefined): string {
  if (arch === undefined) return 'unknown arch';
  return ARCH_NAMES[arch] ?? `arch ${arch}`;
}
