/**
 * Golden DHCP packets captured from real clients by scripts/capture-dhcp-fixtures.sh (busybox udhcpc,
 * QEMU's SeaBIOS + iPXE ROM, OVMF's EDK2 PXE, and dnsmasq's replies to them), one JSON per packet.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodePacket, type DhcpPacket } from '../../src/dhcp/packet.js';

export interface Golden {
  name: string;
  description: string;
  /** The client (or server) that sent the packet, with versions. */
  client: string;
  server: string;
  captured: string;
  capturedBy: string;
  frame: { srcMac: string; src: string; dst: string };
  hex: string;
  /** The UDP payload, from hex. */
  bytes: Buffer;
}

const DIR = fileURLToPath(new URL('./fixtures/', import.meta.url));

export const GOLDEN_NAMES = [
  'udhcpc-discover',
  'udhcpc-request',
  'udhcpc-request-renew',
  'udhcpc-release',
  'udhcpc-userclass-discover',
  'dnsmasq-offer-udhcpc',
  'dnsmasq-ack-udhcpc',
  'ipxe-bios-discover',
  'ipxe-bios-request',
  'dnsmasq-offer-ipxe',
  'dnsmasq-ack-ipxe',
  'ovmf-pxe-discover',
  'ovmf-pxe-request',
  'dnsmasq-offer-ovmf',
] as const;
export type GoldenName = (typeof GOLDEN_NAMES)[number];

/** Client MACs the capture script gives each client. */
export const MAC = {
  udhcpc: '52:54:00:77:00:01',
  udhcpcUserClass: '52:54:00:77:00:0b',
  ipxe: '52:54:00:77:00:02',
  ovmf: '52:54:00:77:00:03',
} as const;

/** The SMBIOS UUIDs the capture script gives the QEMU guests (-uuid). */
export const UUID = {
  ipxe: '8a5f3c1e-2b4d-4e6f-9a1b-0c2d3e4f5a02',
  ovmf: '8a5f3c1e-2b4d-4e6f-9a1b-0c2d3e4f5a03',
} as const;

export const SERVER_IP = '192.0.2.1';

export function golden(name: GoldenName): Golden {
  const raw = JSON.parse(readFileSync(`${DIR}${name}.json`, 'utf8')) as Omit<Golden, 'bytes'>;
  return { ...raw, bytes: Buffer.from(raw.hex, 'hex') };
}

export function goldenPacket(name: GoldenName): DhcpPacket {
  return decodePacket(golden(name).bytes);
}

/** Every fixture file in the folder (so a new capture that adds one is not silently ignored). */
export function fixtureFiles(): string[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}
