import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { makeCallerCheck } from './boot/caller-check.js';
import { BootService } from './boot/service.js';
import { DEFAULT_TEMPLATES_DIR, TemplateSet } from './boot/render.js';
import { resolveApiToken } from './config/api-token.js';
import type { Config } from './config/schema.js';
import { createDhcpService } from './dhcp/service.js';
import type { DhcpServer } from './dhcp/server.js';
import { buildApp, type App } from './http/app.js';
import type { TftpServer } from './tftp/server.js';
import { FileStore } from './tftp/files.js';
import { createTftpService, netbootRoot } from './tftp/service.js';
import { Inventory } from './inventory/index.js';
import { createLogger } from './log.js';
import { createMetrics } from './metrics.js';
import { StorageService } from './storage/service.js';
import type { ServiceNotifier } from './systemd/notify.js';
import { VERSION } from './version.js';

export interface Daemon {
  app: App;
  inventory: Inventory;
  /** http://address:port the HTTP server listens on. */
  url: string;
  apiTokenFile?: string;
  dhcp?: DhcpServer;
  tftp?: TftpServer;
  storage: StorageService;
  /**
   * SIGHUP: boot templates, the architecture table (dhcp.bootFiles), boot policy, K3s settings and the
   * log level take effect at once; sessions, leases and listeners are untouched. Other changes are
   * named in the log and wait for a restart.
   */
  reload(next?: Config): void;
  stop(): Promise<void>;
}

const PRUNE_INTERVAL_MS = 60 * 60 * 1000;

/**
 * The composition root: builds every service from the config, starts them, and stops them in order.
 * Nothing below this reads the environment or the config file.
 */
export async function startDaemon(config: Config, opts: { logger?: Logger; notifier?: ServiceNotifier } = {}): Promise<Daemon> {
  const log = opts.logger ?? createLogger({ level: config.log.level });
  const notifier = opts.notifier;
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  chmodSync(config.stateDir, 0o700);

  const token = resolveApiToken(config);
  if (token.created) log.info({ file: token.file }, 'created a new API token (read it from this file)');

  const templatesDir = config.boot.templatesDir ?? DEFAULT_TEMPLATES_DIR;
  let templates = TemplateSet.fromDirectory(templatesDir);
  const inventory = Inventory.open(config.inventory.path ?? join(config.stateDir, 'hiveboot.db'));
  try {
    const metrics = createMetrics({ hostsByState: () => inventory.hosts.countByState() });
    // Settings a reload (SIGHUP) may change are read through these objects at each request.
    const bootOptions: ConstructorParameters<typeof BootService>[1] = {
      policy: {
        discovery: config.boot.discovery,
        autoEnroll: config.boot.autoEnroll,
        defaultProfile: config.boot.defaultProfile,
        initiatorIqnPrefix: config.boot.initiatorIqnPrefix,
      },
      retrySeconds: config.boot.retrySeconds,
      maxDiscovered: config.boot.maxDiscovered,
      templates: () => templates,
      ...(config.boot.bindScripts
        ? {
            verifyCaller: makeCallerCheck({
              leaseMac: (ip) => {
                const lease = inventory.leases.get(ip);
                return lease && lease.state === 'bound' && Date.parse(lease.expiresAt) > Date.now() ? lease.mac : undefined;
              },
            }),
          }
        : {}),
    };
    const boot = new BootService(inventory, bootOptions);
    const k3s = { ...config.k3s };
    let current = config;
    const storage = new StorageService(config, inventory, log, metrics);
    let ready = false;
    const app = await buildApp({
      ready: () => ready,
      storage,
      k3s,
      inventory,
      boot,
      metrics,
      apiToken: token.token,
      logger: log,
      publicUrl: config.http.publicUrl,
      defaultProfile: config.boot.defaultProfile,
      bodyLimitBytes: config.http.bodyLimitBytes,
      hasTemplate: (name) => templates.has(name),
      version: VERSION,
      netboot: new FileStore({ root: netbootRoot(config) }),
    });

    const prune = () => {
      const cutoff = new Date(Date.now() - config.inventory.eventRetentionDays * 86_400_000);
      const n = inventory.events.pruneOlderThan(cutoff);
      if (n > 0) log.info({ deleted: n }, 'pruned old events');
    };
    prune();
    const pruneTimer = setInterval(prune, PRUNE_INTERVAL_MS);
    pruneTimer.unref();

    await app.listen({ host: config.http.listen, port: config.http.port });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.http.port;
    const host = config.http.listen.includes(':') ? `[${config.http.listen}]` : config.http.listen;
    const url = `http://${host}:${port}`;
    // TFTP and DHCP start after HTTP: what they hand out points at it.
    let dhcp: DhcpServer | undefined;
    let tftp: TftpServer | undefined;
    try {
      // The target comes up before DHCP: a host told to boot must find its disk served.
      await storage.start();
      tftp = createTftpService({ config, inventory, logger: log, registry: metrics.registry });
      await tftp?.start();
      dhcp = createDhcpService({ config, inventory, logger: log, registry: metrics.registry, httpPort: port, bootFiles: () => current.dhcp.bootFiles });
      await dhcp?.start();
    } catch (err) {
      await tftp?.stop();
      await storage.stop();
      await app.close();
      throw err;
    }
    const listeners = {
      dhcp: dhcp ? config.dhcp.mode : 'off',
      tftp: tftp ? `${config.tftp.listen}:${tftp.port}` : 'off',
      iscsi: storage.portalAddress ? `${storage.portalAddress.address}:${storage.portalAddress.port}` : 'off',
    };
    log.info({ url, version: VERSION, templates: templates.names(), ...listeners }, 'hiveboot is up');
    ready = true;
    // systemd (Type=notify): start-up is complete only now, with every listener up.
    const serving = `serving ${url}, tftp ${listeners.tftp}, dhcp ${listeners.dhcp}, iscsi ${listeners.iscsi}`;
    notifier?.ready(serving);

    let stopping: Promise<void> | undefined;
    return {
      app,
      inventory,
      url,
      apiTokenFile: token.file,
      dhcp,
      tftp,
      storage,
      reload(next?: Config) {
        notifier?.reloading(next ? 'reloading the config and boot templates' : 'reloading boot templates');
        try {
          // Everything is checked before anything changes: a typo never takes boots down.
          const nextTemplates = TemplateSet.fromDirectory(next?.boot.templatesDir ?? templatesDir);
          if (next) {
            Object.assign(bootOptions.policy, {
              discovery: next.boot.discovery,
              autoEnroll: next.boot.autoEnroll,
              defaultProfile: next.boot.defaultProfile,
              initiatorIqnPrefix: next.boot.initiatorIqnPrefix,
            });
            bootOptions.retrySeconds = next.boot.retrySeconds;
            bootOptions.maxDiscovered = next.boot.maxDiscovered;
            delete k3s.serverUrl;
            delete k3s.tokenFile;
            Object.assign(k3s, next.k3s);
            log.level = next.log.level;
            const pending = needsRestart(current, next);
            if (pending.length > 0) log.warn({ fields: pending }, 'config: these changes take effect at the next restart (listeners, storage and state stay as they are)');
            current = next;
          }
          templates = nextTemplates;
          log.info({ templates: templates.names(), config: next ? 'reloaded' : 'unchanged' }, next ? 'reloaded boot templates and the config' : 'reloaded boot templates');
          notifier?.ready(serving);
        } catch (err) {
          log.error({ err: (err as Error).message }, 'reload failed; keeping the previous config and templates');
          notifier?.ready(`${serving} (last reload failed: previous config kept)`);
        }
      },
      stop() {
        stopping ??= (async () => {
          notifier?.stopping('stopping');
          clearInterval(pruneTimer);
          await dhcp?.stop();
          await tftp?.stop();
          await storage.stop();
          // close() stops accepting, waits for in-flight requests, then the database is closed last.
          await app.close();
          inventory.close();
          log.info('hiveboot stopped');
          log.flush?.();
        })();
        return stopping;
      },
    };
  } catch (err) {
    inventory.close();
    throw err;
  }
}

/** Config sections a running daemon cannot change (listeners, storage, state): what differs in them. */
function needsRestart(before: Config, after: Config): string[] {
  const fixed = (c: Config) => ({
    stateDir: c.stateDir,
    http: c.http,
    api: c.api,
    inventory: c.inventory,
    dhcp: { ...c.dhcp, bootFiles: undefined },
    tftp: c.tftp,
    iscsi: c.iscsi,
    storage: c.storage,
    ceph: c.ceph,
    cephIscsi: c.cephIscsi,
    bindScripts: c.boot.bindScripts,
    templatesDir: undefined,
  });
  const a = fixed(before) as Record<string, unknown>;
  const b = fixed(after) as Record<string, unknown>;
  return Object.keys(a).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}
