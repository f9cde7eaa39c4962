import { describe, expect, it } from 'vitest';
import { DEFAULT_BOOT_FILES } from '../../src/dhcp/arch.js';
import type { BootChoiceConfig, BootFileOverrides } from '../../src/dhcp/boot-choice.js';
import { MessageType, Opt, PxeOpt } from '../../src/dhcp/options.js';
import { BROADCAST_FLAG, type DhcpPacket } from '../../src/dhcp/packet.js';
import { handleProxy } from '../../src/dhcp/proxy.js';
import type { RequestContext } from '../../src/dhcp/types.js';
import {
  answered,
  CLIENTS,
  context,
  discover,
  encapsulated,
  ignored,
  inform,
  MAC,
  message,
  optIp,
  optText,
  request,
  SERVER_IP,
  typeOf,
  uuidOption,
  UUID,
} from './builders.js';

/** As the service builds it: the bootstrap URL is on the address of the interface the request came in on. */
const bootFor = (ctx: RequestContext): BootChoiceConfig => {
  const base = `http://${ctx.serverIp}:8080`;
  return { table: { ...DEFAULT_BOOT_FILES }, bootstrapUrl: `${base}/boot.ipxe`, httpBase: base };
};

function proxy(req: DhcpPacket, ctx: RequestContext = context(), overrides: Record<string, BootFileOverrides> = {}) {
  const asked: string[] = [];
  const outcome = handleProxy(req, ctx, bootFor, (mac) => {
    asked.push(mac);
    return overrides[mac] ?? {};
  });
  return { outcome, asked };
}

/** Options a proxy must never send: it gives no address and no network configuration. */
const ADDRESS_OPTIONS = [Opt.SUBNET_MASK, Opt.ROUTER, Opt.DNS_SERVERS, Opt.LEASE_TIME, Opt.RENEWAL_TIME, Opt.REBINDING_TIME, Opt.BROADCAST_ADDRESS];

const PXE_4011 = (address = '10.0.0.57', port = 68) => context({ port: 'pxe', source: { address, port } });

describe('proxy OFFER to PXE firmware on port 67', () => {
  it('a BIOS PXE ROM gets boot information and no address', () => {
    const req = discover(CLIENTS.biosRom);
    const { outcome, asked } = proxy(req);
    const { wire, outcome: o } = answered(outcome, req);

    expect(typeOf(wire)).toBe(MessageType.OFFER);
    expect(wire.yiaddr).toBe('0.0.0.0');
    expect(wire.ciaddr).toBe('0.0.0.0');
    for (const code of ADDRESS_OPTIONS) expect(wire.options.has(code), `option ${code}`).toBe(false);
    // The iPXE pitfall: a file without next-server is ignored, so siaddr is always ours.
    expect(wire.siaddr).toBe(SERVER_IP);
    expect(wire.file).toBe('undionly.kpxe');
    expect(optText(wire, Opt.BOOTFILE_NAME)).toBe('undionly.kpxe');
    expect(optIp(wire, Opt.SERVER_ID)).toBe(SERVER_IP);
    expect(optText(wire, Opt.VENDOR_CLASS)).toBe('PXEClient');
    expect(encapsulated(wire, Opt.VENDOR_SPECIFIC)).toEqual({ [PxeOpt.DISCOVERY_CONTROL]: [8] });
    expect(wire.options.get(Opt.CLIENT_UUID)).toEqual(uuidOption(UUID));

    // Broadcast by the listener (no destination chosen here): the client has no address yet.
    expect(o.to).toBeUndefined();
    expect(o.mac).toBe(MAC);
    expect(asked).toEqual([MAC]);
    expect(o.event.message).toContain('proxy offer on boot0');
    expect(o.event.message).toContain('undionly.kpxe');
    expect(o.event.reason).toContain('x86 BIOS');
    expect(o.event.facts).toEqual({ arch: '0' });
  });

  it('x64 UEFI firmware gets snponly.efi; no option 97 is made up when none was sent', () => {
    const req = discover({ ...CLIENTS.uefiRom, uuid: undefined });
    const { wire } = answered(proxy(req).outcome, req);
    expect(typeOf(wire)).toBe(MessageType.OFFER);
    expect(wire.file).toBe('snponly.efi');
    expect(wire.siaddr).toBe(SERVER_IP);
    expect(wire.options.has(Opt.CLIENT_UUID)).toBe(false);
    expect(optText(wire, Opt.VENDOR_CLASS)).toBe('PXEClient');
  });

  it('a malformed option 97 is not echoed back', () => {
    const req = discover({ ...CLIENTS.uefiRom, uuid: undefined, extra: [[Opt.CLIENT_UUID, Buffer.from([0, 1, 2, 3])]] });
    const { wire } = answered(proxy(req).outcome, req);
    expect(wire.options.has(Opt.CLIENT_UUID)).toBe(false);
  });

  it('UEFI HTTP boot gets a URL with vendor class HTTPClient and no PXE vendor options', () => {
    const req = discover(CLIENTS.httpBoot);
    const { wire } = answered(proxy(req).outcome, req);
    expect(typeOf(wire)).toBe(MessageType.OFFER);
    expect(wire.file).toBe(`http://${SERVER_IP}:8080/netboot/snponly.efi`);
    expect(optText(wire, Opt.BOOTFILE_NAME)).toBe(wire.file);
    expect(optText(wire, Opt.VENDOR_CLASS)).toBe('HTTPClient');
    expect(wire.options.has(Opt.VENDOR_SPECIFIC)).toBe(false);
    expect(wire.yiaddr).toBe('0.0.0.0');
  });

  it('iPXE gets the bootstrap URL on the address of the interface it asked on, with next-server set', () => {
    const ctx = context({ iface: 'boot1', serverIp: '10.42.0.1' });
    const req = discover(CLIENTS.ipxe);
    const { wire, outcome } = answered(proxy(req, ctx).outcome, req);
    expect(wire.file).toBe('http://10.42.0.1:8080/boot.ipxe');
    expect(wire.siaddr).toBe('10.42.0.1');
    expect(optIp(wire, Opt.SERVER_ID)).toBe('10.42.0.1');
    expect(wire.yiaddr).toBe('0.0.0.0');
    expect(outcome.event.message).toContain('on boot1');
  });

  it('a per-host boot file reaches the machine', () => {
    const req = discover(CLIENTS.uefiRom);
    const { wire, outcome } = answered(proxy(req, context(), { [MAC]: { host: 'ipxe.efi', profile: 'other.efi' } }).outcome, req);
    expect(wire.file).toBe('ipxe.efi');
    expect(outcome.event.reason).toContain('set by the host');
  });

  it('keeps the relay address and the broadcast flag of a relayed request', () => {
    const req = discover({ ...CLIENTS.biosRom, giaddr: '10.50.0.1', flags: BROADCAST_FLAG });
    const { wire } = answered(proxy(req).outcome, req);
    expect(wire.giaddr).toBe('10.50.0.1');
    expect(wire.flags & BROADCAST_FLAG).toBe(BROADCAST_FLAG);
    expect(wire.yiaddr).toBe('0.0.0.0');
  });
});

describe('proxy on port 4011 (PXE boot server requests)', () => {
  it('a REQUEST gets an ACK sent straight back to its source address and port', () => {
    const req = request({ ...CLIENTS.uefiRom, ciaddr: '10.0.0.57' });
    const { wire, outcome } = answered(proxy(req, PXE_4011('10.0.0.57', 4011)).outcome, req);
    expect(typeOf(wire)).toBe(MessageType.ACK);
    expect(outcome.to).toEqual({ address: '10.0.0.57', port: 4011 });
    expect(wire.yiaddr).toBe('0.0.0.0');
    expect(wire.siaddr).toBe(SERVER_IP);
    expect(wire.file).toBe('snponly.efi');
    expect(optText(wire, Opt.VENDOR_CLASS)).toBe('PXEClient');
    expect(encapsulated(wire, Opt.VENDOR_SPECIFIC)).toEqual({ [PxeOpt.DISCOVERY_CONTROL]: [8] });
    expect(wire.options.get(Opt.CLIENT_UUID)).toEqual(uuidOption(UUID));
    for (const code of ADDRESS_OPTIONS) expect(wire.options.has(code), `option ${code}`).toBe(false);
    expect(outcome.event.message).toContain('proxy ack on boot0:4011');
  });

  it("iPXE's proxy REQUEST gets the bootstrap URL back at its source", () => {
    const req = request({ ...CLIENTS.ipxe, ciaddr: '10.0.0.58' });
    const { wire, outcome } = answered(proxy(req, PXE_4011('10.0.0.58', 68)).outcome, req);
    expect(typeOf(wire)).toBe(MessageType.ACK);
    expect(wire.file).toBe(`http://${SERVER_IP}:8080/boot.ipxe`);
    expect(outcome.to).toEqual({ address: '10.0.0.58', port: 68 });
  });

  it('an INFORM is answered with an ACK too', () => {
    const req = inform({ ...CLIENTS.uefiRom, ciaddr: '10.0.0.57' });
    const { wire } = answered(proxy(req, PXE_4011()).outcome, req);
    expect(typeOf(wire)).toBe(MessageType.ACK);
    expect(wire.file).toBe('snponly.efi');
  });

  it('a DISCOVER on 4011 is ignored', () => {
    expect(ignored(proxy(discover(CLIENTS.uefiRom), PXE_4011()).outcome)).toContain('4011');
  });

  it('a laptop on 4011 is ignored', () => {
    expect(ignored(proxy(request({ ...CLIENTS.laptop, ciaddr: '10.0.0.9' }), PXE_4011()).outcome)).toContain('not a PXE client');
  });
});

describe('what the proxy leaves to the real DHCP server', () => {
  it.each([
    ['REQUEST', MessageType.REQUEST],
    ['DECLINE', MessageType.DECLINE],
    ['RELEASE', MessageType.RELEASE],
    ['INFORM', MessageType.INFORM],
  ])('a %s from a PXE ROM on port 67 is ignored', (_, type) => {
    const req = message(type, { ...CLIENTS.biosRom, requested: '192.168.1.50', serverId: '192.168.1.1' });
    const { outcome } = proxy(req);
    expect(ignored(outcome)).toContain('only DISCOVER');
    expect(outcome.mac).toBe(MAC);
  });

  it('a laptop (no vendor class, not iPXE) is ignored, with the reason', () => {
    const { outcome } = proxy(discover(CLIENTS.laptop));
    expect(ignored(outcome)).toContain('not a PXE client');
    expect(outcome.mac).toBe(MAC);
  });

  it('a PXE client of an architecture with no boot file is ignored, with the reason', () => {
    const why = ignored(proxy(discover({ vendorClass: 'PXEClient:Arch:00099:UNDI:003016', arch: 99 })).outcome);
    expect(why).toContain('arch 99');
  });

  it('a BOOTREPLY (another server talking) is ignored', () => {
    const req = discover(CLIENTS.biosRom);
    req.op = 2;
    expect(ignored(proxy(req).outcome)).toBe('not a request');
  });

  it('a client whose hardware is not Ethernet is ignored', () => {
    const req = discover(CLIENTS.biosRom);
    req.htype = 6;
    expect(ignored(proxy(req).outcome)).toContain('not an Ethernet client');
  });

  it('a DISCOVER without option 53 is ignored', () => {
    const req = discover(CLIENTS.biosRom);
    req.options.delete(Opt.MESSAGE_TYPE);
    expect(ignored(proxy(req).outcome)).toContain('only DISCOVER');
  });
});

describe('every proxy reply encodes', () => {
  const cases: [string, DhcpPacket, RequestContext][] = [
    ['BIOS offer', discover(CLIENTS.biosRom), context()],
    ['old BIOS offer', discover(CLIENTS.oldBiosRom), context()],
    ['UEFI offer', discover(CLIENTS.uefiRom), context()],
    ['HTTP boot offer', discover(CLIENTS.httpBoot), context()],
    ['iPXE offer', discover(CLIENTS.ipxe), context()],
    ['UEFI 4011 ack', request({ ...CLIENTS.uefiRom, ciaddr: '10.0.0.57' }), PXE_4011()],
    ['iPXE 4011 ack', request({ ...CLIENTS.ipxe, ciaddr: '10.0.0.57' }), PXE_4011()],
    ['minimal 576-byte client', discover({ vendorClass: 'PXEClient', maxSize: 576 }), context()],
  ];
  it.each(cases)('%s: at least 300 bytes, decodes to the same reply', (_, req, ctx) => {
    const { outcome, wire, bytes } = answered(proxy(req, ctx).outcome, req);
    expect(bytes.length).toBeGreaterThanOrEqual(300);
    expect(bytes.length).toBeLessThanOrEqual(576 - 28);
    expect(wire.file).toBe(outcome.reply.file);
    expect(wire.siaddr).toBe(SERVER_IP);
    expect([...wire.options.keys()].sort()).toEqual([...outcome.reply.options.keys()].sort());
    // Option 53 comes first on the wire: some ROMs look only there.
    expect(bytes.subarray(240, 243)).toEqual(Buffer.from([53, 1, typeOf(wire)!]));
  });
});
