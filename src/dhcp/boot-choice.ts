import { archName, HTTP_BOOT_ARCHES } from './arch.js';
import { clientArchitectures, isIpxe, pxeClientKind } from './options.js';
import type { DhcpPacket } from './packet.js';

export interface BootFileOverrides {
  /** The host's own boot file, then its profile's: both win over the architecture table. */
  host?: string | null;
  profile?: string | null;
}

export interface BootChoice {
  /** What goes in the file field / option 67: a TFTP file name or a URL. */
  file: string;
  /** Option 60 to echo: HTTP boot clients only accept a reply that says HTTPClient. */
  vendorClass: 'PXEClient' | 'HTTPClient';
  arch: number | undefined;
  reason: string;
}

export interface BootChoiceConfig {
  /** Architecture (as a decimal string) → file or URL; "{http}" is replaced by httpBase. */
  table: Record<string, string>;
  /** Where iPXE fetches its first script: http://<us>:<port>/boot.ipxe */
  bootstrapUrl: string;
  httpBase: string;
}

/**
 * What a network-booting client should load next. A client that is already iPXE gets the bootstrap
 * script's URL (the loop-break: otherwise iPXE would download iPXE again forever); PXE firmware gets
 * the iPXE build for its architecture; UEFI HTTP boot gets a URL. Undefined when the client is not
 * booting from the network at all, or its architecture has no entry.
 */
export function chooseBoot(req: DhcpPacket, cfg: BootChoiceConfig, overrides: BootFileOverrides = {}): BootChoice | { none: string } {
  const kind = pxeClientKind(req);
  const arch = clientArchitectures(req)[0];
  if (isIpxe(req)) {
    return { file: cfg.bootstrapUrl, vendorClass: 'PXEClient', arch, reason: 'client is iPXE: bootstrap script over HTTP' };
  }
  if (!kind) return { none: 'not a PXE client (no PXEClient/HTTPClient vendor class, not iPXE)' };
  // PXE ROMs that predate RFC 4578 send no option 93: they are BIOS.
  const effectiveArch = arch ?? 0;
  const httpBoot = kind === 'HTTPClient' || HTTP_BOOT_ARCHES.has(effectiveArch);
  const override = overrides.host ?? overrides.profile ?? undefined;
  const source = overrides.host ? 'the host' : overrides.profile ? 'its profile' : undefined;
  const raw = override ?? cfg.table[String(effectiveArch)];
  if (!raw) return { none: `no boot file for ${archName(effectiveArch)} (dhcp.bootFiles)` };
  const file = raw.replace('{http}', cfg.httpBase);
  if (httpBoot && !/^https?:\/\//.test(file)) {
    return { none: `${archName(effectiveArch)} boots over HTTP but its boot file "${file}" is not a URL` };
  }
  return {
    file,
    vendorClass: httpBoot ? 'HTTPClient' : 'PXEClient',
    arch: effectiveArch,
    reason: `${archName(effectiveArch)} ${httpBoot ? 'HTTP boot' : 'PXE'} firmware: ${file}${source ? ` (set by ${source})` : ''}`,
  };
}
