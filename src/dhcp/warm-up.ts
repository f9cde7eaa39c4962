import { FullDhcp, type LeaseBook, type SubnetConfig } from './full.js';
import { handleProxy } from './proxy.js';
import { encodePacket, decodePacket, BOOTREQUEST, type DhcpPacket } from './packet.js';
import { MessageType, Opt, u16 } from './options.js';
import { DEFAULT_BOOT_FILES } from './arch.js';
import type { BootChoiceConfig } from './boot-choice.js';
import type { RequestContext } from './types.js';

/**
 * Runs the packet path — decode, the mode's decision, encode — over made-up PXE exchanges a few
 * thousand times while the daemon starts, on scratch state that nothing else sees. V8 compiles and
 * optimises a function only after it has run many times: without this, the first few hundred
 * machines after a restart (a rack powering on after an outage) wait about twice as long for their
 * offer as the ones after them. The real inventory and leases are never touched, and nothing is sent.
 * Returns how many replies were made: a warm-up whose made-up requests were refused warms nothing.
 */
export function warmUpDhcp(mode: 'proxy' | 'full', rounds = 3000): number {
  let replies = 0;
  const ctx: RequestContext = { iface: 'warm-up', serverIp: '192.0.2.1', serverNetmask: '255.255.255.0', port: 'dhcp', source: { address: '0.0.0.0', port: 68 } };
  const boot: BootChoiceConfig = { table: DEFAULT_BOOT_FILES, bootstrapUrl: 'http://192.0.2.1:8080/boot.ipxe', httpBase: 'http://192.0.2.1:8080' };
  const subnet: SubnetConfig = { network: '192.0.2.0/24', range: { start: '192.0.2.10', end: '192.0.2.250' }, router: '192.0.2.1', dnsServers: [], leaseSeconds: 3600 };
  const full = new FullDhcp([subnet], new ScratchLeases(), { byMac: () => undefined, reservedFor: () => undefined, reservations: () => new Map() }, () => boot);
  for (let i = 0; i < rounds; i++) {
    const discover = decodePacket(encodePacket(pxeRequest(i, MessageType.DISCOVER, i % 3)));
    if (mode === 'proxy') {
      const offer = handleProxy(discover, ctx, () => boot, () => ({}));
      if ('reply' in offer) replies += encodePacket(offer.reply).length > 0 ? 1 : 0;
      continue;
    }
    const offer = full.handle(discover, ctx);
    if (!('reply' in offer)) continue;
    replies += encodePacket(offer.reply).length > 0 ? 1 : 0;
    const request = pxeRequest(i, MessageType.REQUEST, i % 3);
    request.options.set(Opt.REQUESTED_IP, Buffer.from(offer.reply.yiaddr.split('.').map(Number)));
    request.options.set(Opt.SERVER_ID, Buffer.from([192, 0, 2, 1]));
    const ack = full.handle(decodePacket(encodePacket(request)), ctx);
    if ('reply' in ack) replies += encodePacket(ack.reply).length > 0 ? 1 : 0;
  }
  return replies;
}

/** A PXE ROM's request: BIOS (kind 0), x86-64 UEFI (1), or iPXE already running (2). */
function pxeRequest(n: number, type: number, kind: number): DhcpPacket {
  const options = new Map<number, Buffer>([
    [Opt.MESSAGE_TYPE, Buffer.from([type])],
    [Opt.PARAMETER_REQUEST_LIST, Buffer.from([1, 3, 6, 12, 15, 43, 60, 66, 67, 97, 128, 175])],
    [Opt.MAX_MESSAGE_SIZE, u16(1472)],
    [Opt.VENDOR_CLASS, Buffer.from(kind === 1 ? 'PXEClient:Arch:00007:UNDI:003016' : 'PXEClient:Arch:00000:UNDI:002001')],
    [Opt.CLIENT_ARCH, u16(kind === 1 ? 7 : 0)],
    [Opt.CLIENT_NDI, Buffer.from([1, 2, 1])],
    [Opt.CLIENT_UUID, Buffer.concat([Buffer.from([0]), Buffer.alloc(16, n & 0xff)])],
  ]);
  if (kind === 2) {
    options.set(Opt.USER_CLASS, Buffer.from('iPXE'));
    options.set(Opt.IPXE, Buffer.from([19, 1, 1, 24, 1, 1]));
  }
  // Locally administered MACs, a different one each round (as a rack of new machines would be).
  const chaddr = Buffer.from([0x02, 0x00, 0x5e, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
  return {
    op: BOOTREQUEST, htype: 1, hlen: 6, hops: 0, xid: n, secs: 0, flags: 0x8000,
    ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0',
    chaddr, sname: '', file: '', options,
  };
}

/** Leases in a Map, for the warm-up only: the same answers the inventory's LeaseStore gives. */
class ScratchLeases implements LeaseBook {
  private readonly byIp = new Map<string, { ip: string; mac: string; state: string; expiresAt: string }>();

  get(ip: string) {
    return this.byIp.get(ip);
  }

  forMac(mac: string) {
    for (const l of this.byIp.values()) if (l.mac === mac) return l;
    return undefined;
  }

  occupancy() {
    return new Map([...this.byIp].map(([ip, l]) => [ip, { mac: l.mac, state: l.state }]));
  }

  put(ip: string, mac: string, _clientId: string | null, state: 'offered' | 'bound' | 'declined', seconds: number) {
    // Only the last few are kept: the warm-up wants the code paths, not a growing table.
    if (this.byIp.size > 64) this.byIp.clear();
    for (const [other, l] of this.byIp) if (l.mac === mac && other !== ip) this.byIp.delete(other);
    this.byIp.set(ip, { ip, mac, state, expiresAt: new Date(Date.now() + seconds * 1000).toISOString() });
  }

  release(ip: string, mac: string) {
    return this.byIp.get(ip)?.mac === mac && this.byIp.delete(ip);
  }
}
