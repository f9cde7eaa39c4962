import { execFileSync } from 'node:child_process';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Host, Inventory } from '../inventory/index.js';
import { intToIp } from './addresses.js';
import { archName, DEFAULT_BOOT_FILES } from './arch.js';
import type { BootChoiceConfig, BootFileOverrides } from './boot-choice.js';
import { FullDhcp, type KnownHost } from './full.js';
import { clientArchitectures, isIpxe, MESSAGE_TYPE_NAMES, MessageType, messageType, pxeClientKind, requestedIp } from './options.js';
import { clientMac, type DhcpPacket } from './packet.js';
import { handleProxy } from './proxy.js';
import { DhcpServer, type DhcpInterface } from './server.js';
import type { DhcpOutcome, RequestContext } from './types.js';

export class DhcpConfigError extends Error {}

const FLUSH_MS = 25;

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
  const table = { ...DEFAULT_BOOT_FILES, ...dhcp.bootFiles };
  const bootFor = (ctx: RequestContext): BootChoiceConfig => {
    const base = (config.http.publicUrl ?? `http://${ctx.serverIp}:${deps.httpPort}`).replace(/\/+$/, '');
    return { table, bootstrapUrl: `${base}/boot.ipxe`, httpBase: base };
  };
  const overridesOf = (host: Host | undefined): BootFileOverrides => {
    if (!host) return {};
    const profile = host.profile ? inventory.profiles.find(host.profile) : undefined;
    return { host: host.bootFile, profile: profile?.bootFile };
  };
  const overridesFor = (mac: string): BootFileOverrides => overridesOf(inventory.hosts.find(mac));

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
          const h = inventory.hosts.find(mac);
          return h && { hostname: h.hostname, ip: h.ip, overrides: overridesOf(h) };
        },
        reservedFor: (ip) => inventory.hosts.reservationOwner(ip),
        reservations: () => inventory.hosts.reservations(),
      },
      bootFor,
    );
    handle = (req, ctx) => full.handle(req, ctx);
  }

  // Timeline writes are queued and committed together every FLUSH_MS: a burst of DHCP traffic (a
  // rack powering on) costs one transaction, not one per packet, and no reply waits for a disk
  // flush. Nothing in the queue was promised to a client; the lease itself is written before its ACK.
  let queue: (() => void)[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    try {
      inventory.transaction(() => batch.forEach((write) => write()));
    } catch (err) {
      logger.error({ err }, 'could not record DHCP events');
    }
  };
  const messages = new Counter({
    name: 'hiveboot_dhcp_messages_total',
    help: 'DHCP messages received, by type and outcome (reply, ignored, malformed)',
    labelNames: ['type', 'outcome'] as const,
    registers: [deps.registry],
  });

  return new DhcpServer({
    interfaces,
    ports: { server: dhcp.ports.server, pxe: dhcp.ports.pxe === 0 ? null : dhcp.ports.pxe, client: dhcp.ports.client },
    handle,
    logger,
    onStop: flush,
    onMalformed: () => messages.inc({ type: 'unknown', outcome: 'malformed' }),
    onOutcome: (outcome, req, ctx) => {
      const type = MESSAGE_TYPE_NAMES[messageType(req) ?? 0] ?? 'unknown';
      messages.inc({ type, outcome: 'ignore' in outcome ? 'ignored' : 'reply' });
      record(outcome, req, ctx);
    },
  });

  function record(outcome: DhcpOutcome, req: DhcpPacket, ctx: RequestContext): void {
    if (!timer) timer = setTimeout(flush, FLUSH_MS);
    queue.push(() => recordNow(outcome, req, ctx));
  }

  function recordNow(outcome: DhcpOutcome, req: DhcpPacket, ctx: RequestContext): void {
    const mac = outcome.mac ?? clientMac(req);
    if (!mac) return;
    const booting = pxeClientKind(req) !== undefined || isIpxe(req);
    const arch = clientArchitectures(req)[0];
    const type = MESSAGE_TYPE_NAMES[messageType(req) ?? 0] ?? 'unknown';
    const sourceIp = ctx.source.address === '0.0.0.0' ? null : ctx.source.address;
    let known = inventory.hosts.find(mac) !== undefined;
    if (!known && booting && config.boot.discovery) {
      const facts = arch !== undefined ? { arch: String(arch) } : {};
      known = inventory.hosts.discover(mac, facts, { stage: 'dhcp', sourceIp }, { maxDiscovered: config.boot.maxDiscovered }) !== undefined;
    }
    // A machine that is not registered, not booting from the network and not given an address by
    // us (a laptop beside a proxy) is not ours to track.
    if (!known && !booting && !('reply' in outcome)) return;
    // Where the machine can be reached: its new lease, the address it asks from, or the source of
    // its port-4011 request. Later HTTP requests from that address are put on its timeline.
    if ('reply' in outcome && outcome.reply.yiaddr !== '0.0.0.0' && messageType(outcome.reply) === MessageType.ACK) {
      inventory.hosts.touch(mac, outcome.reply.yiaddr);
    } else if (known && req.ciaddr !== '0.0.0.0') {
      inventory.hosts.touch(mac, req.ciaddr);
    } else if (known && messageType(req) === MessageType.REQUEST && requestedIp(req)) {
      // proxy mode: the client's broadcast REQUEST to the real server names the address it takes.
      inventory.hosts.touch(mac, requestedIp(req)!);
    } else if (known && ctx.port === 'pxe' && sourceIp) {
      inventory.hosts.touch(mac, sourceIp);
    }
    const event = outcome.event;
    if (!event) return;
    inventory.events.record({
      mac,
      stage: 'dhcp',
      sourceIp,
      message: `${type} (${dhcp.mode}${booting ? `, ${isIpxe(req) ? 'iPXE' : archName(arch ?? 0)}` : ''}): ${event.message}`,
      reason: event.reason,
    });
  }
}
