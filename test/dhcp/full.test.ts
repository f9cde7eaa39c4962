import { describe, expect, it } from 'vitest';
import { DEFAULT_BOOT_FILES } from '../../src/dhcp/arch.js';
import type { BootChoiceConfig } from '../../src/dhcp/boot-choice.js';
import { FullDhcp, type HostDirectory, type KnownHost, type SubnetConfig } from '../../src/dhcp/full.js';
import { IpxeOpt, MessageType, Opt, PxeOpt } from '../../src/dhcp/options.js';
import { BROADCAST_FLAG, type DhcpPacket } from '../../src/dhcp/packet.js';
import type { RequestContext } from '../../src/dhcp/types.js';
import { tempInventory } from '../inventory/helpers.js';
import { thrown } from '../support/thrown.js';
import {
  answered,
  CLIENTS,
  context,
  decline,
  discover,
  encapsulated,
  ignored,
  inform,
  MAC,
  optIp,
  optIps,
  optText,
  optU32,
  release,
  request,
  SERVER_IP,
  typeOf,
  type Answered,
  type ClientMessage,
} from './builders.js';

const LAN: SubnetConfig = {
  network: '10.99.0.0/24',
  range: { start: '10.99.0.100', end: '10.99.0.109' },
  router: '10.99.0.254',
  dnsServers: ['10.99.0.53', '9.9.9.9'],
  domain: 'lab.example',
  leaseSeconds: 3600,
};
/** A second network behind a relay agent at 10.50.0.1. */
const REMOTE: SubnetConfig = {
  network: '10.50.0.0/24',
  range: { start: '10.50.0.10', end: '10.50.0.19' },
  router: '10.50.0.1',
  dnsServers: ['10.50.0.53'],
  leaseSeconds: 7200,
};

const HTTP = `http://${SERVER_IP}:8080`;
const bootFor = (ctx: RequestContext): BootChoiceConfig => {
  const base = `http://${ctx.serverIp}:8080`;
  return { table: { ...DEFAULT_BOOT_FILES }, bootstrapUrl: `${base}/boot.ipxe`, httpBase: base };
};

const OTHER = '52:54:00:00:00:02';
const THIRD = '52:54:00:00:00:03';

/** The inventory's view of registered machines, in memory. */
class FakeHosts implements HostDirectory {
  readonly hosts = new Map<string, KnownHost>();
  add(mac: string, h: Partial<KnownHost> = {}): void {
    this.hosts.set(mac, { hostname: null, ip: null, overrides: {}, ...h });
  }
  byMac(mac: string): KnownHost | undefined {
    return this.hosts.get(mac);
  }
  reservedFor(ip: string): string | undefined {
    return [...this.hosts].find(([, h]) => h.ip === ip)?.[0];
  }
  reservations(): Map<string, string> {
    return new Map([...this.hosts].filter(([, h]) => h.ip).map(([mac, h]) => [h.ip!, mac]));
  }
}

function setup(subnets: SubnetConfig[] = [LAN, REMOTE]) {
  const t = tempInventory();
  const hosts = new FakeHosts();
  const make = (inv = t.inv) => new FullDhcp(subnets, inv.leases, hosts, bootFor, t.clock.now);
  const dhcp = make();
  const handle = (req: DhcpPacket, ctx: RequestContext = context()) => dhcp.handle(req, ctx);
  /** Sends the request and expects a reply, seen as the client sees it. */
  const ask = (req: DhcpPacket, ctx?: RequestContext): Answered => answered(handle(req, ctx), req);
  /** DISCOVER, OFFER, REQUEST (selecting), ACK: the address the client ends up with. */
  const bind = (m: ClientMessage = CLIENTS.laptop): string => {
    const offer = ask(discover(m)).wire;
    expect(typeOf(offer)).toBe(MessageType.OFFER);
    const ack = ask(request({ ...m, serverId: SERVER_IP, requested: offer.yiaddr })).wire;
    expect(typeOf(ack)).toBe(MessageType.ACK);
    expect(ack.yiaddr).toBe(offer.yiaddr);
    return ack.yiaddr;
  };
  return { ...t, hosts, dhcp, make, handle, ask, bind, leases: t.inv.leases };
}

const laptop = (mac: string, extra: ClientMessage = {}): ClientMessage => ({ ...CLIENTS.laptop, clientId: undefined, mac, ...extra });

describe('an unknown machine gets an address from the dynamic range', () => {
  it('DISCOVER → OFFER of the range start with lease times and the network configuration', () => {
    const { ask, leases, clock } = setup();
    const { wire, outcome } = ask(discover(CLIENTS.laptop));
    expect(typeOf(wire)).toBe(MessageType.OFFER);
    expect(wire.yiaddr).toBe('10.99.0.100');
    expect(optIp(wire, Opt.SERVER_ID)).toBe(SERVER_IP);
    expect(optU32(wire, Opt.LEASE_TIME)).toBe(3600);
    expect(optU32(wire, Opt.RENEWAL_TIME)).toBe(1800);
    expect(optU32(wire, Opt.REBINDING_TIME)).toBe(3150);
    expect(optIp(wire, Opt.SUBNET_MASK)).toBe('255.255.255.0');
    expect(optIp(wire, Opt.ROUTER)).toBe('10.99.0.254');
    expect(optIps(wire, Opt.DNS_SERVERS)).toEqual(['10.99.0.53', '9.9.9.9']);
    expect(optText(wire, Opt.DOMAIN_NAME)).toBe('lab.example');
    expect(optIp(wire, Opt.BROADCAST_ADDRESS)).toBe('10.99.0.255');
    // Not booting from the network: no boot file, no next-server, no PXE options.
    expect(wire.file).toBe('');
    expect(wire.siaddr).toBe('0.0.0.0');
    for (const code of [Opt.BOOTFILE_NAME, Opt.VENDOR_CLASS, Opt.VENDOR_SPECIFIC, Opt.IPXE, Opt.HOSTNAME]) expect(wire.options.has(code), `option ${code}`).toBe(false);
    // Broadcast by the listener: the client has no address yet.
    expect(outcome.to).toBeUndefined();
    expect(outcome.event.message).toBe('offer 10.99.0.100 on boot0');
    expect(outcome.event.reason).toContain('dynamic range 10.99.0.100-10.99.0.109');

    // The offer is held for the client in the lease table.
    expect(leases.get('10.99.0.100')).toMatchObject({
      mac: MAC,
      state: 'offered',
      clientId: '01525400123456',
      expiresAt: new Date(clock.current.getTime() + 60_000).toISOString(),
    });
  });

  it('REQUEST (selecting, our 54 and its 50) → ACK and the lease is bound for the lease time', () => {
    const { ask, leases, clock } = setup();
    ask(discover(CLIENTS.laptop));
    clock.advance(1_000);
    const { wire, outcome } = ask(request({ ...CLIENTS.laptop, serverId: SERVER_IP, requested: '10.99.0.100' }));
    expect(typeOf(wire)).toBe(MessageType.ACK);
    expect(wire.yiaddr).toBe('10.99.0.100');
    expect(optU32(wire, Opt.LEASE_TIME)).toBe(3600);
    expect(optIp(wire, Opt.SUBNET_MASK)).toBe('255.255.255.0');
    expect(optIp(wire, Opt.ROUTER)).toBe('10.99.0.254');
    expect(outcome.event.reason).toContain('selecting');
    expect(leases.get('10.99.0.100')).toMatchObject({
      mac: MAC,
      state: 'bound',
      expiresAt: new Date(clock.current.getTime() + 3_600_000).toISOString(),
    });
  });

  it('the next machine gets the next address; a machine asking again gets its own back', () => {
    const { ask, bind } = setup();
    expect(bind()).toBe('10.99.0.100');
    expect(ask(discover(laptop(OTHER))).wire.yiaddr).toBe('10.99.0.101');
    const again = ask(discover(CLIENTS.laptop));
    expect(again.wire.yiaddr).toBe('10.99.0.100');
    expect(again.outcome.event.reason).toContain('its previous lease');
  });

  it('a DISCOVER naming a free address in the range (option 50) is offered that address', () => {
    const { ask } = setup();
    const { wire, outcome } = ask(discover(laptop(MAC, { requested: '10.99.0.105' })));
    expect(wire.yiaddr).toBe('10.99.0.105');
    expect(outcome.event.reason).toContain('the address it asked for');
    // Outside the range: it gets one from the range instead.
    expect(ask(discover(laptop(OTHER, { requested: '10.99.0.5' }))).wire.yiaddr).toBe('10.99.0.100');
  });

  it('an offer not taken within its hold goes to the next machine', () => {
    const { ask, clock } = setup();
    expect(ask(discover(CLIENTS.laptop)).wire.yiaddr).toBe('10.99.0.100');
    expect(ask(discover(laptop(OTHER))).wire.yiaddr).toBe('10.99.0.101');
    // While held, nobody else gets it even by asking; after the hold, a machine asking for it does.
    expect(ask(discover(laptop(THIRD, { requested: '10.99.0.100' }))).wire.yiaddr).toBe('10.99.0.102');
    clock.advance(61_000);
    expect(ask(discover(laptop('52:54:00:00:00:04', { requested: '10.99.0.100' }))).wire.yiaddr).toBe('10.99.0.100');
  });

  it('hands out addresses in turn: the scan resumes after the last address given, then wraps', () => {
    const { ask, handle } = setup([{ ...LAN, range: { start: '10.99.0.100', end: '10.99.0.102' } }]);
    expect(ask(discover(laptop(OTHER))).wire.yiaddr).toBe('10.99.0.100');
    expect(ask(discover(laptop(THIRD))).wire.yiaddr).toBe('10.99.0.101');
    expect(ask(discover(laptop('52:54:00:00:00:04'))).wire.yiaddr).toBe('10.99.0.102');
    // Full now: the next machine gets nothing until an offer lapses.
    expect(ignored(handle(discover(laptop('52:54:00:00:00:05'))))).toMatch(/dynamic range 10\.99\.0\.100-10\.99\.0\.102 is full/);
  });

  it('the lease times follow the subnet: 58 is half the lease, 59 seven eighths', () => {
    const { ask } = setup([{ ...LAN, leaseSeconds: 86_401 }]);
    const { wire } = ask(discover(CLIENTS.laptop));
    expect(optU32(wire, Opt.LEASE_TIME)).toBe(86_401);
    expect(optU32(wire, Opt.RENEWAL_TIME)).toBe(43_200);
    expect(optU32(wire, Opt.REBINDING_TIME)).toBe(75_600);
  });

  it('a subnet without router, DNS or domain sends none of those options', () => {
    const { ask } = setup([{ network: '10.99.0.0/24', range: LAN.range, dnsServers: [], leaseSeconds: 600 }]);
    const { wire } = ask(discover(CLIENTS.laptop));
    expect(wire.yiaddr).toBe('10.99.0.100');
    for (const code of [Opt.ROUTER, Opt.DNS_SERVERS, Opt.DOMAIN_NAME]) expect(wire.options.has(code), `option ${code}`).toBe(false);
    expect(optIp(wire, Opt.SUBNET_MASK)).toBe('255.255.255.0');
  });
});

describe('REQUEST handling', () => {
  it("a REQUEST carrying another server's identifier is ignored and our offer released", () => {
    const { ask, handle, leases } = setup();
    ask(discover(CLIENTS.laptop));
    const outcome = handle(request({ ...CLIENTS.laptop, serverId: '10.99.0.254', requested: '10.99.0.180' }));
    expect(ignored(outcome)).toBe('client chose server 10.99.0.254');
    expect(leases.get('10.99.0.100')?.state).toBe('released');
    expect(leases.unavailable().has('10.99.0.100')).toBe(false);
    // Free at once: the next machine asking for it gets it.
    expect(ask(discover(laptop(OTHER, { requested: '10.99.0.100' }))).wire.yiaddr).toBe('10.99.0.100');
  });

  it("another server's identifier does not release a lease the client has bound with us", () => {
    const { bind, handle, leases } = setup();
    bind();
    ignored(handle(request({ ...CLIENTS.laptop, serverId: '10.99.0.254', requested: '10.99.0.180' })));
    expect(leases.get('10.99.0.100')?.state).toBe('bound');
  });

  it('INIT-REBOOT with an address from another network → NAK, broadcast, with the reason in option 56', () => {
    const { ask, leases } = setup();
    const { wire, outcome } = ask(request({ ...CLIENTS.laptop, requested: '192.168.1.50' }));
    expect(typeOf(wire)).toBe(MessageType.NAK);
    expect(wire.flags & BROADCAST_FLAG).toBe(BROADCAST_FLAG);
    expect(optText(wire, Opt.MESSAGE)).toBe('192.168.1.50 is not on this network (10.99.0.0/24)');
    expect(optIp(wire, Opt.SERVER_ID)).toBe(SERVER_IP);
    expect(wire.yiaddr).toBe('0.0.0.0');
    expect(wire.siaddr).toBe('0.0.0.0');
    expect(wire.file).toBe('');
    for (const code of [Opt.LEASE_TIME, Opt.SUBNET_MASK, Opt.ROUTER, Opt.BOOTFILE_NAME]) expect(wire.options.has(code), `option ${code}`).toBe(false);
    expect(outcome.event.reason).toContain('not on this network');
    expect(leases.list()).toEqual([]);
  });

  it('INIT-REBOOT of its own bound address → ACK', () => {
    const { bind, ask } = setup();
    bind();
    const { wire, outcome } = ask(request({ ...CLIENTS.laptop, requested: '10.99.0.100' }));
    expect(typeOf(wire)).toBe(MessageType.ACK);
    expect(wire.yiaddr).toBe('10.99.0.100');
    expect(outcome.event.reason).toContain('init-reboot');
  });

  it('renewing (ciaddr, no 50 or 54) → ACK of the same address with the lease extended', () => {
    const { bind, ask, leases, clock } = setup();
    bind();
    clock.advance(1_800_000);
    const req = request({ ...CLIENTS.laptop, ciaddr: '10.99.0.100' });
    const { wire, outcome } = ask(req);
    expect(typeOf(wire)).toBe(MessageType.ACK);
    expect(wire.yiaddr).toBe('10.99.0.100');
    expect(optU32(wire, Opt.LEASE_TIME)).toBe(3600);
    expect(outcome.event.reason).toContain('renewing');
    // Unicast to ciaddr is the listener's job (RFC 2131 4.1); the handler picks no special destination.
    expect(outcome.to).toBeUndefined();
    expect(leases.get('10.99.0.100')).toMatchObject({ state: 'bound', expiresAt: new Date(clock.current.getTime() + 3_600_000).toISOString() });
  });

  it('an address leased to another MAC → NAK, and that lease is untouched', () => {
    const { bind, ask, leases } = setup();
    bind();
    const { wire } = ask(request(laptop(OTHER, { requested: '10.99.0.100' })));
    expect(typeOf(wire)).toBe(MessageType.NAK);
    expect(optText(wire, Opt.MESSAGE)).toBe(`10.99.0.100 is leased to ${MAC}`);
    expect(leases.get('10.99.0.100')).toMatchObject({ mac: MAC, state: 'bound' });
    // Renewing someone else's address is refused just the same.
    expect(typeOf(ask(request(laptop(OTHER, { ciaddr: '10.99.0.100' }))).wire)).toBe(MessageType.NAK);
  });

  it('an address offered to another MAC → NAK', () => {
    const { ask } = setup();
    ask(discover(CLIENTS.laptop));
    const { wire } = ask(request(laptop(OTHER, { serverId: SERVER_IP, requested: '10.99.0.100' })));
    expect(typeOf(wire)).toBe(MessageType.NAK);
  });

  it('an address in the subnet but outside the range, and a request naming no address → NAK', () => {
    const { ask } = setup();
    expect(optText(ask(request(laptop(MAC, { requested: '10.99.0.5' }))).wire, Opt.MESSAGE)).toBe('10.99.0.5 is outside the dynamic range');
    expect(optText(ask(request(laptop(MAC, { serverId: SERVER_IP }))).wire, Opt.MESSAGE)).toBe('request names no address');
  });

  it('a relayed NAK keeps giaddr (the relay broadcasts it on)', () => {
    const { ask } = setup();
    const { wire } = ask(request({ ...CLIENTS.laptop, giaddr: '10.50.0.1', requested: '10.99.0.100' }));
    expect(typeOf(wire)).toBe(MessageType.NAK);
    expect(wire.giaddr).toBe('10.50.0.1');
    expect(optText(wire, Opt.MESSAGE)).toContain('not on this network (10.50.0.0/24)');
  });
});

describe('reservations for registered hosts', () => {
  const RESERVED = '52:54:00:42:00:01';

  it('a registered host gets its reserved address and its hostname (option 12, short form)', () => {
    const { ask, hosts, leases } = setup();
    hosts.add(RESERVED, { hostname: 'worker-7.lab.example', ip: '10.99.0.42' });
    const offer = ask(discover({ ...CLIENTS.biosRom, mac: RESERVED }));
    expect(typeOf(offer.wire)).toBe(MessageType.OFFER);
    expect(offer.wire.yiaddr).toBe('10.99.0.42');
    expect(optText(offer.wire, Opt.HOSTNAME)).toBe('worker-7');
    expect(offer.outcome.event.reason).toContain('reserved address of worker-7.lab.example');

    const ack = ask(request({ ...CLIENTS.biosRom, mac: RESERVED, serverId: SERVER_IP, requested: '10.99.0.42' }));
    expect(typeOf(ack.wire)).toBe(MessageType.ACK);
    expect(ack.wire.yiaddr).toBe('10.99.0.42');
    expect(optText(ack.wire, Opt.HOSTNAME)).toBe('worker-7');
    expect(leases.get('10.99.0.42')).toMatchObject({ mac: RESERVED, state: 'bound' });
  });

  it('a registered host asking for another address is refused and pointed at its own', () => {
    const { ask, hosts } = setup();
    hosts.add(RESERVED, { hostname: 'worker-7', ip: '10.99.0.42' });
    const { wire } = ask(request({ ...CLIENTS.biosRom, mac: RESERVED, requested: '10.99.0.100' }));
    expect(typeOf(wire)).toBe(MessageType.NAK);
    expect(optText(wire, Opt.MESSAGE)).toBe(`${RESERVED} has the reserved address 10.99.0.42`);
  });

  it('nobody else gets a reserved address, even one inside the dynamic range', () => {
    const { ask, hosts } = setup([{ ...LAN, range: { start: '10.99.0.100', end: '10.99.0.101' } }]);
    hosts.add(RESERVED, { hostname: 'worker-7', ip: '10.99.0.100' });
    // Skipped by the range, even when asked for by option 50...
    const first = ask(discover(laptop(MAC, { requested: '10.99.0.100' })));
    expect(first.wire.yiaddr).toBe('10.99.0.101');
    // ...refused when requested...
    const nak = ask(request(laptop(OTHER, { requested: '10.99.0.100' }))).wire;
    expect(typeOf(nak)).toBe(MessageType.NAK);
    expect(optText(nak, Opt.MESSAGE)).toBe('10.99.0.100 is reserved for another host');
    // ...while its owner still gets it.
    expect(ask(discover({ ...CLIENTS.biosRom, mac: RESERVED })).wire.yiaddr).toBe('10.99.0.100');
  });

  it('the range skips a reserved address while the host is offline', () => {
    const { ask, handle, hosts } = setup([{ ...LAN, range: { start: '10.99.0.100', end: '10.99.0.101' } }]);
    hosts.add(RESERVED, { ip: '10.99.0.100' });
    expect(ask(discover(laptop(MAC))).wire.yiaddr).toBe('10.99.0.101');
    const why = ignored(handle(discover(laptop(OTHER))));
    expect(why).toBe('dynamic range 10.99.0.100-10.99.0.101 is full');
  });

  it('a registered host without a reservation and no range on the network gets nothing, with the reason', () => {
    const { handle, hosts } = setup([{ ...LAN, range: undefined }]);
    hosts.add(RESERVED, { hostname: 'worker-7' });
    expect(ignored(handle(discover({ ...CLIENTS.biosRom, mac: RESERVED })))).toBe(
      'registered host without a reserved address and no dynamic range on 10.99.0.0/24',
    );
    expect(ignored(handle(discover(CLIENTS.laptop)))).toBe('unknown machine and no dynamic range on 10.99.0.0/24');
  });

  it('a reservation on another network is not offered here', () => {
    const { handle, hosts } = setup();
    hosts.add(RESERVED, { ip: '10.50.0.42' });
    expect(ignored(handle(discover({ ...CLIENTS.biosRom, mac: RESERVED })))).toBe('reserved address 10.50.0.42 is not on 10.99.0.0/24');
  });
});

describe('the dynamic range', () => {
  it('when exhausted, no offer, with the reason on the event', () => {
    const { ask, handle } = setup([{ ...LAN, range: { start: '10.99.0.100', end: '10.99.0.101' } }]);
    ask(discover(laptop(MAC)));
    ask(discover(laptop(OTHER)));
    const outcome = handle(discover(laptop(THIRD)));
    expect(ignored(outcome)).toBe('dynamic range 10.99.0.100-10.99.0.101 is full');
    expect(outcome.mac).toBe(THIRD);
    expect('ignore' in outcome && outcome.event).toEqual({ message: 'no offer', reason: 'dynamic range 10.99.0.100-10.99.0.101 is full' });
  });

  it('never hands out our own address, the router, or the network and broadcast addresses', () => {
    // A range covering the whole /28, as a hurried configuration would write it.
    const { ask, handle } = setup([{ ...LAN, network: '10.99.0.0/28', router: '10.99.0.1', range: { start: '10.99.0.0', end: '10.99.0.15' } }]);
    const seen: string[] = [];
    for (let i = 0; i < 12; i++) seen.push(ask(discover(laptop(`52:54:00:00:01:${i.toString(16).padStart(2, '0')}`))).wire.yiaddr);
    expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => `10.99.0.${i + 3}`));
    for (const reserved of ['10.99.0.0', '10.99.0.1', SERVER_IP, '10.99.0.15']) expect(seen).not.toContain(reserved);
    expect(ignored(handle(discover(laptop('52:54:00:00:02:00'))))).toContain('is full');
    // Nor can a client claim them with a REQUEST.
    const nak = ask(request(laptop('52:54:00:00:02:01', { requested: SERVER_IP }))).wire;
    expect(typeOf(nak)).toBe(MessageType.NAK);
    expect(optText(nak, Opt.MESSAGE)).toBe(`${SERVER_IP} is our own address`);
  });

  it('DECLINE: the address is skipped for the next client, and for the decliner too', () => {
    const { ask, bind, handle, leases, clock } = setup();
    expect(bind()).toBe('10.99.0.100');
    const outcome = handle(decline({ ...CLIENTS.laptop, serverId: SERVER_IP, requested: '10.99.0.100' }));
    expect(ignored(outcome)).toBe('declined');
    expect('ignore' in outcome && outcome.event?.message).toBe('decline of 10.99.0.100');
    expect(leases.get('10.99.0.100')?.state).toBe('declined');

    expect(ask(discover(laptop(OTHER))).wire.yiaddr).toBe('10.99.0.101');
    // The decliner found the address in use: offering it again would loop forever.
    expect(ask(discover(CLIENTS.laptop)).wire.yiaddr).toBe('10.99.0.102');
    const nak = ask(request({ ...CLIENTS.laptop, requested: '10.99.0.100' })).wire;
    expect(typeOf(nak)).toBe(MessageType.NAK);
    expect(optText(nak, Opt.MESSAGE)).toContain('declined');

    // After the hold (10 minutes) the address is back in the pool.
    clock.advance(601_000);
    expect(ask(discover(laptop(THIRD, { requested: '10.99.0.100' }))).wire.yiaddr).toBe('10.99.0.100');
  });

  it('a DECLINE addressed to another server is ignored', () => {
    const { bind, handle, leases } = setup();
    bind();
    expect(ignored(handle(decline({ ...CLIENTS.laptop, serverId: '10.99.0.254', requested: '10.99.0.100' })))).toBe('decline not for us');
    expect(ignored(handle(decline({ ...CLIENTS.laptop, serverId: SERVER_IP })))).toBe('decline not for us');
    expect(leases.get('10.99.0.100')?.state).toBe('bound');
  });

  it('RELEASE: the address is free again at once', () => {
    const { bind, ask, handle, leases } = setup();
    bind();
    const outcome = handle(release({ ...CLIENTS.laptop, ciaddr: '10.99.0.100', serverId: SERVER_IP }));
    expect(ignored(outcome)).toBe('released');
    expect('ignore' in outcome && outcome.event).toEqual({ message: 'release of 10.99.0.100', reason: 'the lease ends now' });
    expect(leases.get('10.99.0.100')?.state).toBe('released');
    expect(ask(discover(laptop(OTHER, { requested: '10.99.0.100' }))).wire.yiaddr).toBe('10.99.0.100');
  });

  it("a RELEASE of someone else's address changes nothing", () => {
    const { bind, handle, leases } = setup();
    bind();
    const outcome = handle(release(laptop(OTHER, { ciaddr: '10.99.0.100', serverId: SERVER_IP })));
    expect('ignore' in outcome && outcome.event?.reason).toBe('no such lease');
    expect(leases.get('10.99.0.100')).toMatchObject({ mac: MAC, state: 'bound' });
  });

  it('a restart forgets nothing: a new server on the same database keeps the lease', () => {
    const t = setup();
    t.bind();
    t.inv.close();
    const again = t.make(t.reopen());
    const renew = request({ ...CLIENTS.laptop, ciaddr: '10.99.0.100' });
    const ack = answered(again.handle(renew, context()), renew).wire;
    expect(typeOf(ack)).toBe(MessageType.ACK);
    expect(ack.yiaddr).toBe('10.99.0.100');
    const other = discover(laptop(OTHER));
    expect(answered(again.handle(other, context()), other).wire.yiaddr).toBe('10.99.0.101');
  });
});

describe('INFORM', () => {
  it('→ ACK with the network configuration but no address or lease time, sent to ciaddr:68', () => {
    const { ask, leases } = setup();
    const req = inform({ ...CLIENTS.laptop, ciaddr: '10.99.0.7' });
    const { wire, outcome } = ask(req);
    expect(typeOf(wire)).toBe(MessageType.ACK);
    expect(wire.yiaddr).toBe('0.0.0.0');
    for (const code of [Opt.LEASE_TIME, Opt.RENEWAL_TIME, Opt.REBINDING_TIME]) expect(wire.options.has(code), `option ${code}`).toBe(false);
    expect(optIp(wire, Opt.SUBNET_MASK)).toBe('255.255.255.0');
    expect(optIp(wire, Opt.ROUTER)).toBe('10.99.0.254');
    expect(optIps(wire, Opt.DNS_SERVERS)).toEqual(['10.99.0.53', '9.9.9.9']);
    expect(optIp(wire, Opt.SERVER_ID)).toBe(SERVER_IP);
    expect(outcome.to).toEqual({ address: '10.99.0.7', port: 68 });
    expect(leases.list()).toEqual([]);
  });
});

describe('relay agents (giaddr)', () => {
  it('giaddr inside a configured subnet selects that subnet, and the reply keeps giaddr', () => {
    const { ask, leases } = setup();
    const req = discover({ ...CLIENTS.biosRom, giaddr: '10.50.0.1' });
    const { wire, outcome } = ask(req);
    expect(typeOf(wire)).toBe(MessageType.OFFER);
    expect(wire.yiaddr).toBe('10.50.0.10');
    expect(wire.giaddr).toBe('10.50.0.1');
    expect(optIp(wire, Opt.ROUTER)).toBe('10.50.0.1');
    expect(optIps(wire, Opt.DNS_SERVERS)).toEqual(['10.50.0.53']);
    expect(optIp(wire, Opt.BROADCAST_ADDRESS)).toBe('10.50.0.255');
    expect(optU32(wire, Opt.LEASE_TIME)).toBe(7200);
    expect(wire.options.has(Opt.DOMAIN_NAME)).toBe(false);
    // Our own address stays the server identifier and next-server.
    expect(optIp(wire, Opt.SERVER_ID)).toBe(SERVER_IP);
    expect(wire.siaddr).toBe(SERVER_IP);
    expect(wire.file).toBe('undionly.kpxe');
    expect(outcome.to).toBeUndefined();
    expect(leases.get('10.50.0.10')?.state).toBe('offered');

    const ack = ask(request({ ...CLIENTS.biosRom, giaddr: '10.50.0.1', serverId: SERVER_IP, requested: '10.50.0.10' })).wire;
    expect(typeOf(ack)).toBe(MessageType.ACK);
    expect(ack.giaddr).toBe('10.50.0.1');
  });

  it('a request on an interface with no configured subnet is ignored, with the reason', () => {
    const { handle, leases } = setup();
    const outcome = handle(discover(CLIENTS.biosRom), context({ iface: 'lan1', serverIp: '172.16.0.1', serverNetmask: '255.255.0.0' }));
    expect(ignored(outcome)).toBe('no dhcp.subnets entry for 172.16.0.1');
    expect(outcome.mac).toBe(MAC);
    expect(ignored(handle(discover({ ...CLIENTS.biosRom, giaddr: '192.168.7.1' })))).toBe('no dhcp.subnets entry for relay 192.168.7.1');
    expect(leases.list()).toEqual([]);
  });
});

describe('boot information in full mode', () => {
  it('a PXE ROM gets next-server, the iPXE file, option 60 PXEClient and 43 with discovery control 8', () => {
    const { ask } = setup();
    const { wire, outcome } = ask(discover(CLIENTS.biosRom));
    expect(wire.yiaddr).toBe('10.99.0.100');
    expect(wire.siaddr).toBe(SERVER_IP);
    expect(wire.file).toBe('undionly.kpxe');
    expect(optText(wire, Opt.BOOTFILE_NAME)).toBe('undionly.kpxe');
    expect(optText(wire, Opt.VENDOR_CLASS)).toBe('PXEClient');
    expect(encapsulated(wire, Opt.VENDOR_SPECIFIC)).toEqual({ [PxeOpt.DISCOVERY_CONTROL]: [8] });
    expect(wire.options.has(Opt.IPXE)).toBe(false);
    expect(outcome.event.message).toBe('offer 10.99.0.100 on boot0; boot undionly.kpxe');
    expect(outcome.event.facts).toEqual({ arch: '0' });
  });

  it('UEFI firmware gets snponly.efi', () => {
    const { ask } = setup();
    const { wire } = ask(discover(CLIENTS.uefiRom));
    expect(wire.file).toBe('snponly.efi');
    expect(optText(wire, Opt.VENDOR_CLASS)).toBe('PXEClient');
  });

  it('iPXE gets the bootstrap URL and option 175 with 176 = 1 (no-pxedhcp), no PXE vendor options', () => {
    const { ask } = setup();
    const { wire } = ask(discover(CLIENTS.ipxe));
    expect(wire.yiaddr).toBe('10.99.0.100');
    expect(wire.siaddr).toBe(SERVER_IP);
    expect(wire.file).toBe(`${HTTP}/boot.ipxe`);
    expect(optText(wire, Opt.BOOTFILE_NAME)).toBe(`${HTTP}/boot.ipxe`);
    expect(encapsulated(wire, Opt.IPXE)).toEqual({ [IpxeOpt.NO_PXEDHCP]: [1] });
    expect(wire.options.has(Opt.VENDOR_SPECIFIC)).toBe(false);
    expect(wire.options.has(Opt.VENDOR_CLASS)).toBe(false);
    const ack = ask(request({ ...CLIENTS.ipxe, serverId: SERVER_IP, requested: '10.99.0.100' })).wire;
    expect(ack.file).toBe(`${HTTP}/boot.ipxe`);
    expect(encapsulated(ack, Opt.IPXE)).toEqual({ [IpxeOpt.NO_PXEDHCP]: [1] });
  });

  it('UEFI HTTP boot gets a URL and option 60 HTTPClient', () => {
    const { ask } = setup();
    const { wire } = ask(discover(CLIENTS.httpBoot));
    expect(wire.file).toBe(`${HTTP}/netboot/snponly.efi`);
    expect(optText(wire, Opt.VENDOR_CLASS)).toBe('HTTPClient');
    expect(wire.options.has(Opt.VENDOR_SPECIFIC)).toBe(false);
  });

  it("a registered host's boot-file override reaches it", () => {
    const { ask, hosts } = setup();
    hosts.add(MAC, { overrides: { host: 'ipxe.efi' } });
    const { wire, outcome } = ask(discover(CLIENTS.uefiRom));
    expect(wire.file).toBe('ipxe.efi');
    expect(outcome.event.reason).toContain('set by the host');
  });

  it('a PXE client of an unknown architecture still gets its address, without boot information', () => {
    const { ask } = setup();
    const { wire } = ask(discover({ vendorClass: 'PXEClient:Arch:00099:UNDI:003016', arch: 99 }));
    expect(wire.yiaddr).toBe('10.99.0.100');
    expect(wire.file).toBe('');
    expect(wire.siaddr).toBe('0.0.0.0');
    expect(wire.options.has(Opt.VENDOR_SPECIFIC)).toBe(false);
  });
});

describe('what full mode does not answer', () => {
  it('requests on port 4011', () => {
    const { handle } = setup();
    expect(ignored(handle(request(CLIENTS.uefiRom), context({ port: 'pxe' })))).toBe('full mode does not answer on port 4011');
  });

  it('BOOTREPLYs, non-Ethernet clients and packets without a known message type', () => {
    const { handle } = setup();
    const reply = discover(CLIENTS.laptop);
    reply.op = 2;
    expect(ignored(handle(reply))).toBe('not a request');
    const tokenRing = discover(CLIENTS.laptop);
    tokenRing.htype = 6;
    expect(ignored(handle(tokenRing))).toBe('not an Ethernet client');
    const untyped = discover(CLIENTS.laptop);
    untyped.options.delete(Opt.MESSAGE_TYPE);
    expect(ignored(handle(untyped))).toBe('message type missing');
  });
});

describe('configuration errors surface at construction', () => {
  const make = (subnet: SubnetConfig) => {
    const { inv, clock } = tempInventory();
    return () => new FullDhcp([subnet], inv.leases, new FakeHosts(), bootFor, clock.now);
  };

  it('a range outside the subnet throws', () => {
    const err = thrown(make({ ...LAN, range: { start: '10.99.0.200', end: '10.99.1.10' } }), RangeError);
    expect(err.message).toBe('dhcp.subnets: range 10.99.0.200-10.99.1.10 is not inside 10.99.0.0/24');
    thrown(make({ ...LAN, range: { start: '10.98.0.1', end: '10.99.0.10' } }), RangeError);
  });

  it('a range whose start is after its end throws', () => {
    thrown(make({ ...LAN, range: { start: '10.99.0.110', end: '10.99.0.100' } }), RangeError);
  });

  it('a malformed network, range, router or DNS server throws', () => {
    thrown(make({ ...LAN, network: '10.99.0.0' }), RangeError);
    thrown(make({ ...LAN, network: '10.99.0.0/' }), RangeError);
    thrown(make({ ...LAN, range: { start: '10.99.0.x', end: '10.99.0.9' } }), RangeError);
    expect(thrown(make({ ...LAN, router: '10.99.0.256' }), RangeError).message).toContain('router "10.99.0.256"');
    expect(thrown(make({ ...LAN, dnsServers: ['10.99.0.53', 'dns.example'] }), RangeError).message).toContain('dnsServers "dns.example"');
  });

  it('a subnet without a range is fine (reservations only)', () => {
    expect(make({ ...LAN, range: undefined })()).toBeInstanceOf(FullDhcp);
  });
});

describe('every full-mode reply encodes within the client limit', () => {
  it('offers, ACKs, NAKs and INFORM ACKs for every kind of client', () => {
    const { ask, hosts } = setup();
    hosts.add('52:54:00:42:00:09', { hostname: 'a-rather-long-hostname-for-a-worker.lab.example', ip: '10.99.0.9' });
    for (const [i, kind] of Object.entries(Object.values(CLIENTS))) {
      const mac = `52:54:00:00:10:0${i}`;
      const offer = ask(discover({ ...kind, mac }));
      ask(request({ ...kind, mac, serverId: SERVER_IP, requested: offer.wire.yiaddr }));
      ask(request({ ...kind, mac, requested: '192.168.0.1' }));
      ask(inform({ ...kind, mac, ciaddr: '10.99.0.7' }));
    }
    const reserved = ask(discover({ ...CLIENTS.ipxe, mac: '52:54:00:42:00:09', maxSize: 576 }));
    expect(reserved.bytes.length).toBeLessThanOrEqual(576 - 28);
    expect(optText(reserved.wire, Opt.HOSTNAME)).toBe('a-rather-long-hostname-for-a-worker');
  });
});
