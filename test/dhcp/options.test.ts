import { describe, expect, it } from 'vitest';
import {
  clientArchitectures,
  clientId,
  clientNdi,
  clientUuid,
  decodeEncapsulated,
  encodeEncapsulated,
  ip,
  ipOption,
  ips,
  ipxeOptions,
  IpxeOpt,
  isIpxe,
  maxMessageSize,
  MESSAGE_TYPE_NAMES,
  messageType,
  MessageType,
  Opt,
  parameterRequestList,
  pxeClientKind,
  PxeOpt,
  requestedIp,
  serverIdentifier,
  text,
  u16,
  u32,
  u8,
  userClasses,
  vendorClass,
} from '../../src/dhcp/options.js';
import { BOOTREQUEST, decodePacket, encodePacket, replyTo, type DhcpPacket } from '../../src/dhcp/packet.js';
import { golden, GOLDEN_NAMES, goldenPacket, MAC, SERVER_IP, UUID, type GoldenName } from './golden.js';

/** A request carrying just these options (for the readers' edge cases). */
function withOptions(options: [number, number[] | string][]): DhcpPacket {
  const p = replyTo(goldenPacket('udhcpc-discover'));
  p.op = BOOTREQUEST;
  for (const [code, v] of options) p.options.set(code, typeof v === 'string' ? Buffer.from(v, 'latin1') : Buffer.from(v));
  return p;
}

const EXPECTED_TYPE: Record<GoldenName, number> = {
  'udhcpc-discover': MessageType.DISCOVER,
  'udhcpc-request': MessageType.REQUEST,
  'udhcpc-request-renew': MessageType.REQUEST,
  'udhcpc-release': MessageType.RELEASE,
  'udhcpc-userclass-discover': MessageType.DISCOVER,
  'dnsmasq-offer-udhcpc': MessageType.OFFER,
  'dnsmasq-ack-udhcpc': MessageType.ACK,
  'ipxe-bios-discover': MessageType.DISCOVER,
  'ipxe-bios-request': MessageType.REQUEST,
  'dnsmasq-offer-ipxe': MessageType.OFFER,
  'dnsmasq-ack-ipxe': MessageType.ACK,
  'ovmf-pxe-discover': MessageType.DISCOVER,
  'ovmf-pxe-request': MessageType.REQUEST,
  'dnsmasq-offer-ovmf': MessageType.OFFER,
};

describe('typed readers on the golden packets', () => {
  it.each(GOLDEN_NAMES)('%s: message type', (name) => {
    expect(MESSAGE_TYPE_NAMES[messageType(goldenPacket(name))!]).toBe(MESSAGE_TYPE_NAMES[EXPECTED_TYPE[name]]);
  });

  describe('busybox udhcpc', () => {
    const p = goldenPacket('udhcpc-discover');
    const version = /udhcpc v(\d+\.\d+\.\d+)/.exec(golden('udhcpc-discover').client)?.[1];

    it('asks for mask, router, DNS, hostname, domain, broadcast, NTP; vendor class names its version', () => {
      expect(parameterRequestList(p)).toEqual([1, 3, 6, 12, 15, 28, 42]);
      expect(version).toBeDefined();
      expect(vendorClass(p)).toBe(`udhcp ${version}`);
      expect(pxeClientKind(p)).toBeUndefined();
      expect(isIpxe(p)).toBe(false);
      expect(userClasses(p)).toEqual([]);
      expect(clientArchitectures(p)).toEqual([]);
      expect(clientUuid(p)).toBeUndefined();
    });

    it('client id is type 1 (Ethernet) + MAC; max message size 576', () => {
      expect(clientId(p)?.toString('hex')).toBe(`01${MAC.udhcpc.replaceAll(':', '')}`);
      expect(maxMessageSize(p)).toBe(576);
    });

    it('REQUEST: requested IP = the offered address, server id = dnsmasq', () => {
      const req = goldenPacket('udhcpc-request');
      expect(requestedIp(req)).toBe(goldenPacket('dnsmasq-offer-udhcpc').yiaddr);
      expect(serverIdentifier(req)).toBe(SERVER_IP);
      expect(requestedIp(goldenPacket('udhcpc-request-renew'))).toBeUndefined();
      expect(serverIdentifier(goldenPacket('udhcpc-release'))).toBe(SERVER_IP);
    });

    it('RFC 3004 user class list "hiveboot", "rack-7"; -C: no client id; own vendor class and hostname', () => {
      const b = goldenPacket('udhcpc-userclass-discover');
      expect(userClasses(b)).toEqual(['hiveboot', 'rack-7']);
      expect(isIpxe(b)).toBe(false);
      expect(clientId(b)).toBeUndefined();
      expect(vendorClass(b)).toBe('hiveboot-capture');
      expect(b.options.get(Opt.HOSTNAME)?.toString()).toBe('capture-b');
    });
  });

  describe("QEMU's iPXE ROM (SeaBIOS)", () => {
    for (const name of ['ipxe-bios-discover', 'ipxe-bios-request'] as const) {
      const p = goldenPacket(name);
      it(`${name}: user class "iPXE" as a bare string, option 175, so isIpxe`, () => {
        expect(p.options.get(Opt.USER_CLASS)?.toString('latin1')).toBe('iPXE');
        expect(userClasses(p)).toEqual(['iPXE']);
        expect(p.options.has(Opt.IPXE)).toBe(true);
        expect(isIpxe(p)).toBe(true);
      });

      it(`${name}: PXEClient arch 0 (BIOS), UNDI 2.1, the guest's SMBIOS UUID, MAC client id, 57 = 1472`, () => {
        expect(vendorClass(p)).toBe('PXEClient:Arch:00000:UNDI:002001');
        expect(pxeClientKind(p)).toBe('PXEClient');
        expect(clientArchitectures(p)).toEqual([0]);
        expect(clientNdi(p)).toEqual({ type: 1, major: 2, minor: 1 });
        expect(clientUuid(p)).toBe(UUID.ipxe);
        expect(clientId(p)?.toString('hex')).toBe(`01${MAC.ipxe.replaceAll(':', '')}`);
        expect(maxMessageSize(p)).toBe(1472);
      });
    }

    it('asks for 43, 60, 66, 67, 175 and the PXE options 128-135', () => {
      const prl = parameterRequestList(goldenPacket('ipxe-bios-discover'));
      for (const code of [1, 3, 6, 43, 60, 66, 67, 128, 135, 175]) expect(prl, String(code)).toContain(code);
      expect(prl).toHaveLength(23);
    });

    it('option 175 carries the bus id (PCI virtio-net 1af4:1000), version 1.0.0 and the build features', () => {
      const o = ipxeOptions(goldenPacket('ipxe-bios-discover'))!;
      expect(o).toBeDefined();
      expect(o.get(177)?.toString('hex')).toBe('011af41000'); // bus type 1 = PCI, vendor, device
      expect([...o.get(235)!]).toEqual([1, 0, 0]);
      // DNS 23, HTTP 19, iSCSI 17, TFTP 21, PXE 33, bzImage 24, menu 39 -> 1; PXE extensions 16 -> 2
      for (const feature of [23, 19, 17, 21, 33, 24, 39]) expect([...o.get(feature)!], String(feature)).toEqual([1]);
      expect([...o.get(16)!]).toEqual([2]);
      expect(o.has(20)).toBe(false); // no HTTPS in Debian 12's build
    });

    it('REQUEST selects the dnsmasq offer', () => {
      const req = goldenPacket('ipxe-bios-request');
      expect(requestedIp(req)).toBe(goldenPacket('dnsmasq-offer-ipxe').yiaddr);
      expect(serverIdentifier(req)).toBe(SERVER_IP);
    });
  });

  describe("OVMF's EDK2 PXE (no iPXE ROM)", () => {
    const p = goldenPacket('ovmf-pxe-discover');

    it('PXEClient arch 7 (x86-64 UEFI), UNDI 3.0, no user class, no 175: not iPXE', () => {
      expect(vendorClass(p)).toBe('PXEClient:Arch:00007:UNDI:003000');
      expect(pxeClientKind(p)).toBe('PXEClient');
      expect(clientArchitectures(p)).toEqual([7]);
      expect(clientNdi(p)).toEqual({ type: 1, major: 3, minor: 0 });
      expect(userClasses(p)).toEqual([]);
      expect(isIpxe(p)).toBe(false);
      expect(ipxeOptions(p)).toBeUndefined();
    });

    it('the UUID is the one QEMU gave the guest (option 97 holds it in EFI GUID byte order)', () => {
      expect(p.options.get(Opt.CLIENT_UUID)?.subarray(1, 5).toString('hex')).toBe('1e3c5f8a');
      expect(clientUuid(p)).toBe(UUID.ovmf);
    });

    it('no client id (EDK2 PXE sends none); 57 = 1472 in DISCOVER, 65280 in REQUEST', () => {
      expect(clientId(p)).toBeUndefined();
      expect(maxMessageSize(p)).toBe(1472);
      expect(maxMessageSize(goldenPacket('ovmf-pxe-request'))).toBe(65280);
    });

    it('asks for 43, 60, 66, 67, 97 and 128-135', () => {
      const prl = parameterRequestList(p);
      for (const code of [43, 60, 66, 67, 97, 128, 135]) expect(prl, String(code)).toContain(code);
      expect(prl).toHaveLength(35);
    });
  });

  describe('dnsmasq replies', () => {
    it('server id, mask, router are readable as addresses', () => {
      for (const name of ['dnsmasq-offer-udhcpc', 'dnsmasq-ack-ipxe', 'dnsmasq-offer-ovmf'] as const) {
        const r = goldenPacket(name);
        expect(serverIdentifier(r), name).toBe(SERVER_IP);
        expect(ipOption(r, Opt.SUBNET_MASK), name).toBe('255.255.255.0');
        expect(ipOption(r, Opt.ROUTER), name).toBe(SERVER_IP);
        expect(r.options.get(Opt.LEASE_TIME)?.readUInt32BE(0), name).toBe(3600);
      }
    });

    it('to iPXE: boot file as option 67 and encapsulated 175 with no-pxedhcp (176) = 1', () => {
      const r = goldenPacket('dnsmasq-offer-ipxe');
      expect(r.options.get(Opt.BOOTFILE_NAME)?.toString('latin1')).toBe(`http://${SERVER_IP}/boot.ipxe\0`);
      expect(r.options.get(Opt.IPXE)?.toString('hex')).toBe('b00101ff');
      expect([...ipxeOptions(r)!]).toEqual([[IpxeOpt.NO_PXEDHCP, Buffer.from([1])]]);
      // our writer produces exactly what dnsmasq sent
      expect(encodeEncapsulated(new Map([[IpxeOpt.NO_PXEDHCP, u8(1)]]))).toEqual(r.options.get(Opt.IPXE));
    });

    it('to OVMF: boot file snponly.efi in option 67, next server in siaddr', () => {
      const r = goldenPacket('dnsmasq-offer-ovmf');
      expect(r.options.get(Opt.BOOTFILE_NAME)?.toString('latin1')).toBe('snponly.efi\0');
      expect(r.siaddr).toBe(SERVER_IP);
    });
  });
});

describe('readers on malformed or unusual values return undefined / empty, never throw', () => {
  it('wrong lengths', () => {
    const p = withOptions([
      [Opt.MESSAGE_TYPE, [1, 2]],
      [Opt.SERVER_ID, [192, 0, 2]],
      [Opt.MAX_MESSAGE_SIZE, [5, 192, 0]],
      [Opt.CLIENT_ID, [1]],
      [Opt.CLIENT_ARCH, [0, 7, 0]],
      [Opt.CLIENT_NDI, [1, 3]],
      [Opt.CLIENT_UUID, [0, 1, 2, 3]],
    ]);
    expect(messageType(p)).toBeUndefined();
    expect(serverIdentifier(p)).toBeUndefined();
    expect(maxMessageSize(p)).toBeUndefined();
    expect(clientId(p)).toBeUndefined();
    expect(clientArchitectures(p)).toEqual([]);
    expect(clientNdi(p)).toBeUndefined();
    expect(clientUuid(p)).toBeUndefined();
  });

  it('option 97 with a type other than 0 is not a UUID', () => {
    expect(clientUuid(withOptions([[Opt.CLIENT_UUID, [1, ...Array<number>(16).fill(0xab)]]]))).toBeUndefined();
  });

  it('several architectures (RFC 4578 allows a list); the first is the one in use', () => {
    expect(clientArchitectures(withOptions([[Opt.CLIENT_ARCH, [0, 9, 0, 7, 0, 0]]]))).toEqual([9, 7, 0]);
  });

  it('vendor class with control bytes is shown with ? in their place', () => {
    expect(vendorClass(withOptions([[Opt.VENDOR_CLASS, 'PXE\x00Client\xff']]))).toBe('PXE?Client?');
  });

  it('HTTP boot clients are HTTPClient; other vendor classes are neither', () => {
    expect(pxeClientKind(withOptions([[Opt.VENDOR_CLASS, 'HTTPClient:Arch:00016:UNDI:003001']]))).toBe('HTTPClient');
    expect(pxeClientKind(withOptions([[Opt.VENDOR_CLASS, 'MSFT 5.0']]))).toBeUndefined();
    expect(pxeClientKind(withOptions([[Opt.VENDOR_CLASS, 'xPXEClient']]))).toBeUndefined();
  });
});

describe('userClasses and isIpxe', () => {
  it('RFC 3004 list with "iPXE" among other classes', () => {
    const p = withOptions([[Opt.USER_CLASS, [3, 0x61, 0x62, 0x63, 4, ...Buffer.from('iPXE')]]]);
    expect(userClasses(p)).toEqual(['abc', 'iPXE']);
    expect(isIpxe(p)).toBe(true);
  });

  it('a class list that does not parse (zero length, overrun) is one bare class', () => {
    expect(userClasses(withOptions([[Opt.USER_CLASS, [0, 0x61]]]))).toEqual(['?a']);
    expect(userClasses(withOptions([[Opt.USER_CLASS, [3, 0x61, 0x62, 0x63, 9, 0x64]]]))).toEqual(['?abc?d']);
    expect(userClasses(withOptions([[Opt.USER_CLASS, 'MSFT 5.0']]))).toEqual(['MSFT 5.0']);
  });

  it('an empty option 77 has no classes', () => {
    expect(userClasses(withOptions([[Opt.USER_CLASS, []]]))).toEqual([]);
  });

  it('option 175 alone makes a client iPXE (user class can be changed by a script); neither means not iPXE', () => {
    expect(isIpxe(withOptions([[Opt.IPXE, [177, 1, 1]]]))).toBe(true);
    expect(isIpxe(withOptions([[Opt.USER_CLASS, 'gPXE']]))).toBe(false);
    expect(isIpxe(withOptions([[Opt.USER_CLASS, 'ipxe']]))).toBe(false);
  });
});

describe('encapsulated options (43, 175)', () => {
  it('PXE discovery control and a boot menu through a whole reply and back', () => {
    const pxe = new Map<number, Buffer>([
      [PxeOpt.DISCOVERY_CONTROL, u8(8)],
      [PxeOpt.BOOT_SERVERS, Buffer.concat([u16(0x8000), u8(1), ip(SERVER_IP)])],
      [PxeOpt.BOOT_MENU, Buffer.concat([u16(0x8000), u8(8), text('hiveboot')])],
      [PxeOpt.MENU_PROMPT, Buffer.concat([u8(0), text('PXE')])],
    ]);
    const bytes = encodeEncapsulated(pxe);
    expect([...bytes.subarray(0, 3)]).toEqual([6, 1, 8]);
    expect(bytes[bytes.length - 1]).toBe(255);

    const reply = replyTo(goldenPacket('ovmf-pxe-discover'));
    reply.options.set(Opt.MESSAGE_TYPE, u8(MessageType.OFFER));
    reply.options.set(Opt.VENDOR_CLASS, text('PXEClient'));
    reply.options.set(Opt.VENDOR_SPECIFIC, bytes);
    const back = decodeEncapsulated(decodePacket(encodePacket(reply)).options.get(Opt.VENDOR_SPECIFIC));
    expect(back).toEqual(pxe);
  });

  it('decoding skips pads, stops at END, and runs to the end without END', () => {
    expect([...decodeEncapsulated(Buffer.from([0, 6, 1, 8, 0, 255, 9, 1, 1]))!]).toEqual([[6, Buffer.from([8])]]);
    expect([...decodeEncapsulated(Buffer.from([176, 1, 1]))!]).toEqual([[176, Buffer.from([1])]]);
    expect(decodeEncapsulated(Buffer.alloc(0))?.size).toBe(0);
    expect(decodeEncapsulated(undefined)).toBeUndefined();
  });

  it('an encapsulated option that overruns, or a code without length, makes the whole option unreadable', () => {
    expect(decodeEncapsulated(Buffer.from([6, 1, 8, 9, 5, 1]))).toBeUndefined();
    expect(decodeEncapsulated(Buffer.from([6, 1, 8, 9]))).toBeUndefined();
    expect(ipxeOptions(withOptions([[Opt.IPXE, [176, 2, 1]]]))).toBeUndefined();
  });

  it('refuses a sub-option longer than 255 bytes', () => {
    expect(() => encodeEncapsulated(new Map([[9, Buffer.alloc(256)]]))).toThrow(RangeError);
  });
});

describe('writers', () => {
  it('fixed-width integers, addresses and text', () => {
    expect([...u8(0x1ff)]).toEqual([0xff]);
    expect([...u16(1472)]).toEqual([0x05, 0xc0]);
    expect([...u32(3600)]).toEqual([0, 0, 0x0e, 0x10]);
    expect([...u32(-1)]).toEqual([0xff, 0xff, 0xff, 0xff]);
    expect(() => u16(65536)).toThrow(RangeError);
    expect([...ips(['192.0.2.1', '192.0.2.2'])]).toEqual([192, 0, 2, 1, 192, 0, 2, 2]);
    expect(() => ip('192.0.2')).toThrow(RangeError);
    expect(text('PXEClient').toString('latin1')).toBe('PXEClient');
  });

  it('a lease reply built with the writers reads back through the readers', () => {
    const req = goldenPacket('udhcpc-request');
    const ack = replyTo(req);
    ack.yiaddr = requestedIp(req)!;
    ack.options.set(Opt.SERVER_ID, ip(SERVER_IP));
    ack.options.set(Opt.LEASE_TIME, u32(3600));
    ack.options.set(Opt.DNS_SERVERS, ips([SERVER_IP, '192.0.2.2']));
    ack.options.set(Opt.MESSAGE_TYPE, u8(MessageType.ACK));
    const back = decodePacket(encodePacket(ack, { maxSize: maxMessageSize(req) }));
    expect(messageType(back)).toBe(MessageType.ACK);
    expect(serverIdentifier(back)).toBe(SERVER_IP);
    expect(back.yiaddr).toBe(goldenPacket('dnsmasq-ack-udhcpc').yiaddr);
    expect(back.options.get(Opt.DNS_SERVERS)).toHaveLength(8);
    expect([...back.options.keys()][0]).toBe(Opt.MESSAGE_TYPE);
  });
});
