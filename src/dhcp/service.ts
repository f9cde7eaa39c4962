import { execFileSync } from 'node:child_process';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { HostBrief, Inventory } from '../inventory/index.js';
import { intToIp } from './addresses.js';
import { archName, DEFAULT_BOOT_FILES } from './arch.js';
import type { BootChoiceConfig, BootFileOverrides } from './boot-choice.js';
import { FullDhcp, type KnownHost } from './full.js';
import { clientArchitectures, isIpxe, MESSAGE_TYPE_NAMES, MessageType, messageType, pxeClientKind, requestedIp } from './options.js';
import { clientMac, type DhcpPacket } from './packet.js';
import { handleProxy } from './proxy.js';
import { DhcpServer, type DhcpInterface } from './server.js';
import { warmUpDhcp } from './warm-up.js';
import { WriteBehind } from './write-behind.js';
import type { DhcpOutcome, RequestContext } from './types.js';

export class DhcpConfigError extends Error {}

/**
 * DHCP bookkeeping waits for 25 ms without requests, at most 250 ms, at most 1024 writes; then it is
 * committed 128 writes per transaction. 250 ms stays well inside the time a PXE client takes from
 * its ACK to its first TFTP or HTTP request, which are put on its timeline by the address DHCP saw.
 */
const WRITE_BEHIND = { quietMs: 25, maxDelayMs: 250, maxQueued: 1024, chunk: 128 } as const;

/**
 * The IPv4 address and netmask of each configured interface, or a clear error naming the field.
 * Read with iproute2 rather than os.networkInterfaces(), which leaves out interfaces without carrier
 * — and a boot network's bridge often has none until the first machine is plugged in.
 */
export function resolveInterfaces(names: string[], lookup: (name: string) => { local: string; prefixlen: number }[] | undefined = ipv4Addresses): DhcpInterface[] {
  return names.map((name) => {
    const addrs = lookup(name);
    if (!addrs) throw new DhcpConfigError(`dhcp.interfaces: no interface named "${name}"`);
    const v4 = addrs[0];
    if (!v4) throw new DhcpConfigError(`dhcp.interfaces: ${name} has no IPv4 address`);
    return { name, address: v4.local, netmask: intToIp(v4.prefixlen === 0 ? 0 : (0xffffffff << (32 - v4.prefixlen)) >>> 0) };
  });
}

function ipv4Addresses(name: string): { local: string; prefixlen: number }[] | undefined {
  let out: string;
  try {
    out = execFileSync('ip', ['-j', '-4', 'addr', 'show', 'dev', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return undefined;
  }
  const links = JSON.parse(out || '[]') as { addr_info?: { family: string; local: string; prefixlen: number }[] }[];
  if (links.length === 0) return undefined;
  return (links[0]!.addr_info ?? []).filter((a) => a.family === 'inet');
}

export interface DhcpServiceDeps {
  config: Config;
  inventory: Inventory;
  logger: Logger;
  registry: Registry;
  /** HTTP port, for the bootstrap URL when http.publicUrl is not set. */
  httpPort: number;
  /** The architecture table's overrides as the config says now (a reload may change it); default: config.dhcp.bootFiles. */
  bootFiles?: () => Record<string, string> | undefined;
}

/**
 * Builds the DHCP server for the configured mode and connects it to the inventory: the mode's
 * handler decides, this records every exchange on the machine's timeline, turns unknown PXE clients
 * into discovered hosts (when discovery is on) and counts messages for /metrics.
 */
export function createDhcpService(deps: DhcpServiceDeps): DhcpServer | undefined {
  const { config, inventory, logger } = deps;
  const dhcp = config.dhcp;
  if (dhcp.mode === 'off') return undefined;
  if (dhcp.interfaces.length === 0) {
    logger.warn({ mode: dhcp.mode }, 'dhcp.interfaces is empty: not serving DHCP (name the boot network interfaces to enable it)');
    return undefined;
  }
  const interfaces = resolveInterfaces(dhcp.interfaces);
  // The hosts and leases DHCP answers from are read into memory now, not by the first request:
  // the first machine to power on should not wait for two table scans.
  inventory.hosts.reservations();
  inventory.leases.get('0.0.0.0');
  // The architecture table: rebuilt only when the config's overrides are another object (a reload).
  let overrides = deps.bootFiles?.() ?? dhcp.bootFiles;
  let table: Record<string, string> = { ...DEFAULT_BOOT_FILES, ...overrides };
  const currentTable = () => {
    const now = deps.bootFiles?.() ?? dhcp.bootFiles;
    if (now !== overrides) {
      overrides = now;
      table = { ...DEFAULT_BOOT_FILES, ...now };
    }
    return table;
  };
  // One per interface address, made on first use: the URLs do not change while the daemon runs.
  const bootConfigs = new Map<string, BootChoiceConfig>();
  const bootFor = (ctx: RequestContext): BootChoiceConfig => {
    let cfg = bootConfigs.get(ctx.serverIp);
    if (!cfg) {
      const base = (config.http.publicUrl ?? `http://${ctx.serverIp}:${deps.httpPort}`).replace(/\/+$/, '');
      bootConfigs.set(
        ctx.serverIp,
        (cfg = {
          get table() {
            return currentTable();
          },
          bootstrapUrl: `${base}/boot.ipxe`,
          httpBase: base,
        }),
      );
    }
    return cfg;
  };
  // Hosts are looked up in the inventory's in-memory index: a packet costs no query, except for the
  // profile of a host that has one.
  const overridesOf = (host: HostBrief | undefined): BootFileOverrides => {
    if (!host) return {};
    const profile = host.profile ? inventory.profiles.find(host.profile) : undefined;
    return { host: host.bootFile, profile: profile?.bootFile };
  };
  const overridesFor = (mac: string): BootFileOverrides => overridesOf(inventory.hosts.brief(mac));

  let handle: (req: DhcpPacket, ctx: RequestContext) => DhcpOutcome;
  if (dhcp.mode === 'proxy') {
    handle = (req, ctx) => handleProxy(req, ctx, bootFor, overridesFor);
  } else {
    if (dhcp.subnets.length === 0) throw new DhcpConfigError('dhcp.subnets: full mode needs at least one subnet');
    const full = new FullDhcp(
      dhcp.subnets,
      inventory.leases,
      {
        byMac: (mac): KnownHost | undefined => {
          const h = inventory.hosts.brief(mac);
          return h && { hostname: h.hostname, ip: h.ip, overrides: overridesOf(h) };
        },
        reservedFor: (ip) => inventory.hosts.reservationOwner(ip),
        reservations: () => inventory.hosts.reservations(),
      },
      bootFor,
    );
    handle = (req, ctx) => full.handle(req, ctx);
  }

  const warmStarted = performance.now();
  warmUpDhcp(dhcp.mode);
  logger.debug({ ms: Math.round(performance.now() - warmStarted) }, 'dhcp: packet path warmed up');

  // Timeline writes (and discovered hosts) are queued and committed in the quiet after a burst, a
  // chunk per transaction: a rack powering on costs a few transactions, not one per packet, and no
  // reply waits for a disk flush or for another machine's bookkeeping. Nothing in the queue was
  // promised to a client; the lease itself is written before its ACK.
  const writes = new WriteBehind({
    commit: (batch) => inventory.transaction(() => batch.forEach((write) => write())),
    onError: (err) => logger.error({ err }, 'could not record DHCP events'),
    ...WRITE_BEHIND,
  });
  // Counted in a plain map and handed to prom-client when /metrics is read: its inc() hashes the
  // labels on every call, for every packet.
  const tally = new Map<string, { type: string; outcome: string; n: number }>();
  const count = (type: string, outcome: string) => {
    const key = `${type} ${outcome}`;
    const t = tally.get(key);
    if (t) t.n++;
    else tally.set(key, { type, outcome, n: 1 });
  };
  new Counter({
    name: 'hiveboot_dhcp_messages_total',
    help: 'DHCP messages received, by type and outcome (reply, ignored, malformed)',
    labelNames: ['type', 'outcome'] as const,
    registers: [deps.registry],
    collect() {
      this.reset();
      for (const { type, outcome, n } of tally.values()) this.inc({ type, outcome }, n);
    },
  });

  return new DhcpServer({
    interfaces,
    ports: { server: dhcp.ports.server, pxe: dhcp.ports.pxe === 0 ? null : dhcp.ports.pxe, client: dhcp.ports.client },
    handle,
    logger,
    onStop: () => writes.flushNow(),
    onMalformed: () => count('unknown', 'malformed'),
    onOutcome: (outcome, req, ctx) => {
      const type = MESSAGE_TYPE_NAMES[messageType(req) ?? 0] ?? 'unknown';
      count(type, 'ignore' in outcome ? 'ignored' : 'reply');
      const seen = sighting(type, outcome, req, ctx);
      if (seen) writes.push(() => record(seen));
    },
  });

  /**
   * What the timeline needs from one exchange, taken from the packets at once: the queue then holds
   * a few strings per packet rather than the decoded request and reply, which would otherwise live
   * until the flush and be copied by every garbage collection on the way.
   */
  function sighting(type: string, outcome: DhcpOutcome, req: DhcpPacket, ctx: RequestContext): Sighting | undefined {
    const mac = outcome.mac ?? clientMac(req);
    if (!mac) return undefined;
    const ipxe = isIpxe(req);
    const replied = 'reply' in outcome;
    const sourceIp = ctx.source.address === '0.0.0.0' ? null : ctx.source.address;
    return {
      mac,
      type,
      booting: pxeClientKind(req) !== undefined || ipxe,
      ipxe,
      arch: clientArchitectures(req)[0],
      sourceIp,
      replied,
      ack: replied && outcome.reply.yiaddr !== '0.0.0.0' && messageType(outcome.reply) === MessageType.ACK ? outcome.reply.yiaddr : undefined,
      ciaddr: req.ciaddr !== '0.0.0.0' ? req.ciaddr : undefined,
      requested: messageType(req) === MessageType.REQUEST ? requestedIp(req) : undefined,
      pxeSource: ctx.port === 'pxe' && sourceIp ? sourceIp : undefined,
      event: outcome.event && { message: outcome.event.message, reason: outcome.event.reason },
    };
  }

  function record(s: Sighting): void {
    const { mac, booting, arch, sourceIp } = s;
    let known = inventory.hosts.brief(mac) !== undefined;
    if (!known && booting && config.boot.discovery) {
      const facts = arch !== undefined ? { arch: String(arch) } : {};
      known = inventory.hosts.discover(mac, facts, { stage: 'dhcp', sourceIp }, { maxDiscovered: config.boot.maxDiscovered }) !== undefined;
    }
    // A machine that is not registered, not booting from the network and not given an address by
    // us (a laptop beside a proxy) is not ours to track.
    if (!known && !booting && !s.replied) return;
    // Where the machine can be reached: its new lease, the address it asks from, or the source of
    // its port-4011 request. Later HTTP requests from that address are put on its timeline.
    if (s.ack) {
      inventory.hosts.touch(mac, s.ack);
    } else if (known && s.ciaddr) {
      inventory.hosts.touch(mac, s.ciaddr);
    } else if (known && s.requested) {
      // proxy mode: the client's broadcast REQUEST to the real server names the address it takes.
      inventory.hosts.touch(mac, s.requested);
    } else if (known && s.pxeSource) {
      inventory.hosts.touch(mac, s.pxeSource);
    }
    if (!s.event) return;
    inventory.events.record({
      mac,
      stage: 'dhcp',
      sourceIp,
      message: `${s.type} (${dhcp.mode}${booting ? `, ${s.ipxe ? 'iPXE' : archName(arch ?? 0)}` : ''}): ${s.event.message}`,
      reason: s.event.reason,
    });
  }
}

/** One DHCP exchange as the timeline records it (see sighting()). */
interface Sighting {
  mac: string;
  /** Message type name of the request. */
  type: string;
  /** PXE firmware, UEFI HTTP boot or iPXE. */
  booting: boolean;
  ipxe: boolean;
  arch: number | undefined;
  sourceIp: string | null;
  replied: boolean;
  /** The address an ACK gave it. */
  ack: string | undefined;
  ciaddr: string | undefined;
  /** Option 50 of a REQUEST. */
  requested: string | undefined;
  /** Where a port-4011 request came from. */
  pxeSource: string | undefined;
  event: { message: string; reason: string } | undefined;
}
