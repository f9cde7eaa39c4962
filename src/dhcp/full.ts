import { broadcastOf, contains, intToIp, ipToInt, parseCidr, type Subnet } from './addresses.js';
import { chooseBoot, type BootChoiceConfig, type BootFileOverrides } from './boot-choice.js';
import {
  clientId,
  encodeEncapsulated,
  ip,
  IpxeOpt,
  ips,
  isIpxe,
  MessageType,
  messageType,
  Opt,
  PxeOpt,
  requestedIp,
  serverIdentifier,
  text,
  textConstant,
  u32,
  u8,
  u8Constant,
} from './options.js';
import { BOOTREQUEST, clientMac, replyTo, type DhcpPacket } from './packet.js';
import type { DhcpOutcome, RequestContext } from './types.js';

export interface SubnetConfig {
  network: string;
  range?: { start: string; end: string };
  router?: string;
  dnsServers: string[];
  domain?: string;
  leaseSeconds: number;
}

/** What full mode needs to know about registered machines (from the inventory). */
export interface HostDirectory {
  byMac(mac: string): KnownHost | undefined;
  /** The MAC an address is reserved for, if any. */
  reservedFor(ip: string): string | undefined;
  /** Every reservation, address → MAC (one lookup for a whole pool scan). */
  reservations(): ReadonlyMap<string, string>;
}

export interface KnownHost {
  hostname: string | null;
  /** Reserved address. */
  ip: string | null;
  overrides: BootFileOverrides;
}

/** The lease table as full mode uses it (the inventory's LeaseStore fits). */
export interface LeaseBook {
  get(ip: string): { ip: string; mac: string; state: string; expiresAt: string } | undefined;
  forMac(mac: string): { ip: string; state: string; expiresAt: string } | undefined;
  occupancy(): Map<string, { mac: string; state: string }>;
  put(ip: string, mac: string, clientId: string | null, state: 'offered' | 'bound' | 'declined', seconds: number): unknown;
  release(ip: string, mac: string): boolean;
}

interface Pool {
  cfg: SubnetConfig;
  subnet: Subnet;
  /** Option values and addresses that never change, made once rather than for every reply. */
  broadcast: string;
  fixed: { mask: Buffer; broadcast: Buffer; router?: Buffer; dns?: Buffer; domain?: Buffer; lease: Buffer; renewal: Buffer; rebinding: Buffer };
  start?: number;
  end?: number;
  /** Where the next scan for a free address begins: just after the last one handed out. */
  cursor?: number;
}

function isIpv4(addr: string): boolean {
  try {
    ipToInt(addr);
    return true;
  } catch {
    return false;
  }
}

/** Encapsulated options every reply of a kind carries (never modified once made). */
const PXE_NO_DISCOVERY = encodeEncapsulated(new Map([[PxeOpt.DISCOVERY_CONTROL, u8(8)]]));
const IPXE_NO_PXEDHCP = encodeEncapsulated(new Map([[IpxeOpt.NO_PXEDHCP, u8(1)]]));

/** How long an offered address is held for the client's REQUEST, and a declined one kept out of use. */
const OFFER_HOLD_SECONDS = 60;
const DECLINE_HOLD_SECONDS = 600;

/**
 * Full DHCP for an isolated boot network (RFC 2131): reserved addresses for registered hosts, an
 * optional dynamic range for everything else, leases kept in the inventory. No ping before an offer
 * (dnsmasq's costs 3 s per new client): declines (RFC 2131 section 4.4.1) handle real conflicts.
 */
export class FullDhcp {
  private readonly pools: Pool[];
  private isoAt = NaN;
  private iso = '';
  /** Option 54 for each of our addresses, made once. */
  private readonly serverIds = new Map<string, Buffer>();

  constructor(
    subnets: SubnetConfig[],
    private readonly leases: LeaseBook,
    private readonly hosts: HostDirectory,
    private readonly bootFor: (ctx: RequestContext) => BootChoiceConfig,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.pools = subnets.map((cfg) => {
      const subnet = parseCidr(cfg.network);
      // Checked here, not when the first reply is built: a typo would otherwise fail every request.
      for (const [field, addr] of [['router', cfg.router], ...cfg.dnsServers.map((d) => ['dnsServers', d])] as const) {
        if (addr !== undefined && !isIpv4(addr)) throw new RangeError(`dhcp.subnets: ${field} "${addr}" of ${cfg.network} is not an IPv4 address`);
      }
      const lease = cfg.leaseSeconds;
      const pool: Pool = {
        cfg,
        subnet,
        broadcast: broadcastOf(subnet),
        fixed: {
          mask: ip(intToIp(subnet.mask)),
          broadcast: ip(broadcastOf(subnet)),
          router: cfg.router !== undefined ? ip(cfg.router) : undefined,
          dns: cfg.dnsServers.length > 0 ? ips(cfg.dnsServers) : undefined,
          domain: cfg.domain ? text(cfg.domain) : undefined,
          lease: u32(lease),
          renewal: u32(Math.floor(lease / 2)),
          rebinding: u32(Math.floor((lease * 7) / 8)),
        },
      };
      if (cfg.range) {
        pool.start = ipToInt(cfg.range.start);
        pool.end = ipToInt(cfg.range.end);
        if (!contains(subnet, cfg.range.start) || !contains(subnet, cfg.range.end) || pool.start > pool.end) {
          throw new RangeError(`dhcp.subnets: range ${cfg.range.start}-${cfg.range.end} is not inside ${cfg.network}`);
        }
      }
      return pool;
    });
  }

  handle(req: DhcpPacket, ctx: RequestContext): DhcpOutcome {
    if (req.op !== BOOTREQUEST) return { ignore: 'not a request' };
    if (ctx.port === 'pxe') return { ignore: 'full mode does not answer on port 4011' };
    const mac = clientMac(req);
    if (!mac) return { ignore: 'not an Ethernet client' };
    // A relayed request belongs to the relay's subnet; a direct one to the interface it arrived on.
    const pool = this.pools.find((p) => contains(p.subnet, req.giaddr !== '0.0.0.0' ? req.giaddr : ctx.serverIp));
    if (!pool) return { ignore: `no dhcp.subnets entry for ${req.giaddr !== '0.0.0.0' ? `relay ${req.giaddr}` : ctx.serverIp}`, mac };
    const host = this.hosts.byMac(mac);
    const cid = clientId(req)?.toString('hex') ?? null;
    const type = messageType(req);
    switch (type) {
      case MessageType.DISCOVER:
        return this.discover(req, ctx, pool, mac, host, cid);
      case MessageType.REQUEST:
        return this.request(req, ctx, pool, mac, host, cid);
      case MessageType.DECLINE: {
        const addr = requestedIp(req);
        if (!addr || serverIdentifier(req) !== ctx.serverIp) return { ignore: 'decline not for us', mac };
        this.leases.put(addr, mac, cid, 'declined', DECLINE_HOLD_SECONDS);
        return { ignore: 'declined', mac, event: { message: `decline of ${addr}`, reason: 'the client found the address in use; kept out of the pool for 10 minutes' } };
      }
      case MessageType.RELEASE: {
        const released = req.ciaddr !== '0.0.0.0' && this.leases.release(req.ciaddr, mac);
        return { ignore: 'released', mac, event: { message: `release of ${req.ciaddr}`, reason: released ? 'the lease ends now' : 'no such lease' } };
      }
      case MessageType.INFORM:
        return this.reply(req, ctx, pool, mac, host, MessageType.ACK, undefined, 'inform: configuration only');
      default:
        return { ignore: `message type ${type ?? 'missing'}`, mac };
    }
  }

  private discover(req: DhcpPacket, ctx: RequestContext, pool: Pool, mac: string, host: KnownHost | undefined, cid: string | null): DhcpOutcome {
    const pick = this.pickAddress(pool, ctx, mac, host, requestedIp(req));
    if ('none' in pick) return { ignore: pick.none, mac, event: { message: 'no offer', reason: pick.none } };
    this.leases.put(pick.ip, mac, cid, 'offered', OFFER_HOLD_SECONDS);
    return this.reply(req, ctx, pool, mac, host, MessageType.OFFER, pick.ip, pick.reason);
  }

  private request(req: DhcpPacket, ctx: RequestContext, pool: Pool, mac: string, host: KnownHost | undefined, cid: string | null): DhcpOutcome {
    const sid = serverIdentifier(req);
    const wanted = requestedIp(req) ?? (req.ciaddr !== '0.0.0.0' ? req.ciaddr : undefined);
    if (sid !== undefined && sid !== ctx.serverIp) {
      // SELECTING with another server's identifier: the client took another offer; free ours.
      const offered = this.leases.forMac(mac);
      if (offered && offered.state === 'offered') this.leases.release(offered.ip, mac);
      return { ignore: `client chose server ${sid}`, mac };
    }
    if (!wanted) return this.nak(req, ctx, mac, 'request names no address');
    if (!contains(pool.subnet, wanted)) return this.nak(req, ctx, mac, `${wanted} is not on this network (${pool.cfg.network})`);
    const verdict = this.mayHave(pool, ctx, mac, host, wanted);
    if (verdict !== true) return this.nak(req, ctx, mac, verdict);
    this.leases.put(wanted, mac, cid, 'bound', pool.cfg.leaseSeconds);
    const how = sid ? 'selecting' : req.ciaddr !== '0.0.0.0' ? 'renewing' : 'init-reboot';
    return this.reply(req, ctx, pool, mac, host, MessageType.ACK, wanted, `${how}: lease ${pool.cfg.leaseSeconds} s`);
  }

  /** true if `ip` may be bound to this client now, else the reason it may not. */
  private mayHave(pool: Pool, ctx: RequestContext, mac: string, host: KnownHost | undefined, ip: string): true | string {
    if (host?.ip) return host.ip === ip ? true : `${mac} has the reserved address ${host.ip}`;
    const lease = this.leases.get(ip);
    const live = lease && lease.expiresAt > this.isoNow() && lease.state !== 'released';
    // A declined address is in use by a machine we do not know: nobody may have it, the decliner included.
    if (live && lease.state === 'declined') return `${ip} was declined (another machine uses it)`;
    if (live && lease.mac !== mac) return `${ip} is leased to ${lease.mac}`;
    if (this.reservedByOther(ip, mac)) return `${ip} is reserved for another host`;
    const infrastructure = this.infrastructure(pool, ctx, ip);
    if (infrastructure) return `${ip} is ${infrastructure}`;
    if (live && lease.mac === mac) return true;
    if (!this.inRange(pool, ip)) return `${ip} is outside the dynamic range`;
    return true;
  }

  private pickAddress(
    pool: Pool,
    ctx: RequestContext,
    mac: string,
    host: KnownHost | undefined,
    requested: string | undefined,
  ): { ip: string; reason: string } | { none: string } {
    // Leases are looked up in memory one candidate at a time, and the scan resumes where the last one
    // ended, so a DISCOVER costs the same with 5 or 50,000 leases.
    const at = this.isoNow();
    const holderOf = (ip: string) => {
      const l = this.leases.get(ip);
      return l && l.state !== 'released' && l.expiresAt > at ? l : undefined;
    };
    if (host?.ip) {
      if (!contains(pool.subnet, host.ip)) return { none: `reserved address ${host.ip} is not on ${pool.cfg.network}` };
      const holder = holderOf(host.ip);
      if (holder && holder.mac !== mac) {
        return { none: `reserved address ${host.ip} is still ${holder.state === 'declined' ? 'declined' : `leased to ${holder.mac}`}` };
      }
      return { ip: host.ip, reason: `reserved address of ${host.hostname ?? mac}` };
    }
    const reserved = this.hosts.reservations();
    const previous = this.leases.forMac(mac);
    const free = (ip: string) => {
      if (!this.inRange(pool, ip) || this.infrastructure(pool, ctx, ip)) return false;
      const holder = holderOf(ip);
      // A declined row keeps the decliner's MAC but is nobody's: another machine uses that address.
      if (holder && (holder.mac !== mac || holder.state === 'declined')) return false;
      const owner = reserved.get(ip);
      return owner === undefined || owner === mac;
    };
    if (previous && free(previous.ip)) return { ip: previous.ip, reason: 'its previous lease' };
    if (requested && free(requested)) return { ip: requested, reason: 'the address it asked for' };
    if (pool.start === undefined || pool.end === undefined) {
      return { none: `${host ? 'registered host without a reserved address' : 'unknown machine'} and no dynamic range on ${pool.cfg.network}` };
    }
    const size = pool.end - pool.start + 1;
    const from = pool.cursor ?? pool.start;
    for (let i = 0; i < size; i++) {
      const n = pool.start + ((from - pool.start + i) % size);
      const candidate = intToIp(n);
      if (free(candidate)) {
        pool.cursor = n === pool.end ? pool.start : n + 1;
        return { ip: candidate, reason: `dynamic range ${pool.cfg.range!.start}-${pool.cfg.range!.end}` };
      }
    }
    return { none: `dynamic range ${pool.cfg.range!.start}-${pool.cfg.range!.end} is full` };
  }

  /**
   * The time as leases write it (ISO 8601), formatted once per millisecond: toISOString() costs
   * about a microsecond, and a burst answers many requests within one.
   */
  private isoNow(): string {
    const ms = this.now().getTime();
    if (ms !== this.isoAt) {
      this.isoAt = ms;
      this.iso = new Date(ms).toISOString();
    }
    return this.iso;
  }

  private inRange(pool: Pool, ip: string): boolean {
    if (pool.start === undefined || pool.end === undefined) return false;
    const n = ipToInt(ip);
    return n >= pool.start && n <= pool.end;
  }

  /** What an address in a dynamic range is if no client may have it: ours, the router's, the subnet's own. */
  private infrastructure(pool: Pool, ctx: RequestContext, ip: string): string | undefined {
    if (ip === ctx.serverIp) return 'our own address';
    if (ip === pool.cfg.router) return 'the router';
    if (pool.subnet.prefix < 31 && ipToInt(ip) === pool.subnet.network) return `the network address of ${pool.cfg.network}`;
    if (pool.subnet.prefix < 31 && ip === pool.broadcast) return `the broadcast address of ${pool.cfg.network}`;
    return undefined;
  }

  private reservedByOther(ip: string, mac: string): boolean {
    const owner = this.hosts.reservedFor(ip);
    return owner !== undefined && owner !== mac;
  }

  private reply(
    req: DhcpPacket,
    ctx: RequestContext,
    pool: Pool,
    mac: string,
    host: KnownHost | undefined,
    type: number,
    yiaddr: string | undefined,
    reason: string,
  ): DhcpOutcome {
    const reply = replyTo(req);
    const o = reply.options;
    const fixed = pool.fixed;
    o.set(Opt.MESSAGE_TYPE, u8Constant(type));
    let serverId = this.serverIds.get(ctx.serverIp);
    if (!serverId) this.serverIds.set(ctx.serverIp, (serverId = ip(ctx.serverIp)));
    o.set(Opt.SERVER_ID, serverId);
    if (yiaddr) {
      reply.yiaddr = yiaddr;
      o.set(Opt.LEASE_TIME, fixed.lease);
      o.set(Opt.RENEWAL_TIME, fixed.renewal);
      o.set(Opt.REBINDING_TIME, fixed.rebinding);
    }
    o.set(Opt.SUBNET_MASK, fixed.mask);
    o.set(Opt.BROADCAST_ADDRESS, fixed.broadcast);
    if (fixed.router) o.set(Opt.ROUTER, fixed.router);
    if (fixed.dns) o.set(Opt.DNS_SERVERS, fixed.dns);
    if (fixed.domain) o.set(Opt.DOMAIN_NAME, fixed.domain);
    if (host?.hostname) o.set(Opt.HOSTNAME, text(host.hostname.split('.')[0]!));

    let bootNote = '';
    const choice = chooseBoot(req, this.bootFor(ctx), host?.overrides ?? {});
    if (!('none' in choice)) {
      reply.siaddr = ctx.serverIp;
      reply.file = choice.file;
      o.set(Opt.BOOTFILE_NAME, textConstant(choice.file));
      if (choice.vendorClass === 'HTTPClient') o.set(Opt.VENDOR_CLASS, textConstant('HTTPClient'));
      else if (!isIpxe(req)) {
        o.set(Opt.VENDOR_CLASS, textConstant('PXEClient'));
        o.set(Opt.VENDOR_SPECIFIC, PXE_NO_DISCOVERY);
      }
      if (isIpxe(req)) {
        // no-pxedhcp: nobody else will offer boot information here, so iPXE need not wait 3 s for a proxy.
        o.set(Opt.IPXE, IPXE_NO_PXEDHCP);
      }
      bootNote = `; boot ${choice.file}`;
    }
    const name = type === MessageType.OFFER ? 'offer' : 'ack';
    return {
      reply,
      mac,
      to: type === MessageType.ACK && !yiaddr && req.ciaddr !== '0.0.0.0' ? { address: req.ciaddr, port: 68 } : undefined,
      event: {
        message: `${name}${yiaddr ? ` ${yiaddr}` : ''} on ${ctx.iface}${bootNote}`,
        reason: `${reason}${!('none' in choice) ? `; ${choice.reason}` : ''}`,
        facts: !('none' in choice) && choice.arch !== undefined ? { arch: String(choice.arch) } : {},
      },
    };
  }

  private nak(req: DhcpPacket, ctx: RequestContext, mac: string, why: string): DhcpOutcome {
    const reply = replyTo(req);
    reply.options.set(Opt.MESSAGE_TYPE, u8Constant(MessageType.NAK));
    reply.options.set(Opt.SERVER_ID, ip(ctx.serverIp));
    reply.options.set(Opt.MESSAGE, text(why.slice(0, 200)));
    // RFC 2131 section 4.3.2: a NAK without a relay is broadcast, whatever the client asked.
    reply.flags |= 0x8000;
    return { reply, mac, event: { message: `nak on ${ctx.iface}`, reason: why } };
  }
}
