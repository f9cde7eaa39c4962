// Storage as the daemon and the API see it: give hosts disks (provisioning), serve them (the built-in
// target), and keep both in step with the inventory. Provisioning failures never fail the API call that
// caused them: the host stays pending and its timeline says why.

import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Host } from '../inventory/hosts.js';
import type { Inventory } from '../inventory/index.js';
import { IscsiService } from '../iscsi/service.js';
import type { Metrics } from '../metrics.js';
import { ConflictError } from '../model/errors.js';
import { formatPortal, parsePortal } from '../model/identifiers.js';
import { BuiltinProvisioner, type ReconcileResult } from './builtin.js';
import { createCephIscsiProvisioner } from './ceph-iscsi/options.js';
import type { CephIscsiProvisioner } from './ceph-iscsi/provisioner.js';
import { CephRbdImages, cephSettingsOf } from './rbd-images.js';

/** What the HTTP API needs from storage. */
export interface HostStorage {
  /** After a host was created or changed: provision / publish / withdraw as its new state asks. */
  afterChange(mac: string): Promise<void>;
  /** After a host was removed: its target goes; its disk data only when asked. */
  release(mac: string, opts: { deleteData: boolean }): Promise<void>;
  rotateChap(mac: string): Promise<Host>;
  /** Whether the host is logged in to its built-in target from this address (metadata binding). */
  loggedInFrom(mac: string, address: string): boolean;
}

const SWEEP_INTERVAL_MS = 10_000;

/** What a storage backend does for hosts: the built-in target's, or the Ceph iSCSI gateways'. */
interface Provisioner {
  reconcile(mac: string): Promise<ReconcileResult>;
  rotateChap(mac: string): Promise<Host>;
  release(mac: string, opts: { deleteData: boolean }): Promise<void>;
  /** Every host's disk brought in line (start-up); failures are per host. */
  publishAll(onError: (mac: string, err: unknown) => void): Promise<number>;
}

export class StorageService implements HostStorage {
  private iscsi?: IscsiService;
  private provisioner?: Provisioner;
  private gateways?: CephIscsiProvisioner;
  private rbd?: CephRbdImages;
  private sweepTimer?: NodeJS.Timeout;

  constructor(
    private readonly config: Config,
    private readonly inventory: Inventory,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {}

  /** The portal's address once started (port 0 resolved). */
  portalAddress?: { address: string; port: number };

  async start(): Promise<void> {
    const backend = this.config.storage.backend;
    if (backend === 'ceph-iscsi') return this.startGateways();
    if (backend !== 'builtin' || !this.config.iscsi.enabled) return;
    const { iscsi } = this.config;
    this.iscsi = new IscsiService(this.inventory, this.log, this.metrics, {
      listen: iscsi.listen,
      port: iscsi.port,
      discoveryNeedsChap: iscsi.discoveryNeedsChap,
      connection: { nopInterval: iscsi.nopIntervalSeconds * 1000, nopTimeout: iscsi.nopTimeoutSeconds * 1000 },
    });
    this.portalAddress = await this.iscsi.start();
    const portals = this.announcedPortals(this.portalAddress.port);
    if (portals.length === 0) {
      this.log.warn(
        'iscsi: no portal to announce (listening on a wildcard address and neither iscsi.portals nor http.publicUrl names an IP): hosts cannot be given disks until iscsi.portals is set',
      );
    }
    // Connected on first use only: a config that names no RBD image never touches Ceph.
    this.rbd = new CephRbdImages(cephSettingsOf(this.config));
    this.provisioner = new BuiltinProvisioner(this.inventory, this.iscsi, {
      dir: this.config.storage.dir ?? join(this.config.stateDir, 'disks'),
      rbd: { images: this.rbd, cluster: this.rbd.settings },
      targetIqnPrefix: iscsi.targetIqnPrefix,
      initiatorIqnPrefix: this.config.boot.initiatorIqnPrefix,
      portals,
      mutualChap: this.config.storage.mutualChap,
    });
    if (portals.length > 0) {
      const n = await this.provisioner.publishAll((mac, err) => this.failed(mac, err));
      this.log.info({ portal: this.portalAddress, targets: n }, 'iscsi target up');
      this.startSweep();
    }
  }

  /**
   * storage.backend ceph-iscsi: hosts' disks are RBD clones exported by the existing gateways. What
   * the gateways already have is brought in line in the background: the API may be slow or down,
   * and DHCP, TFTP and boot scripts must not wait for it (a host without its export yet is told to
   * wait, and its timeline says why).
   */
  private startGateways(): void {
    this.rbd = new CephRbdImages(cephSettingsOf(this.config));
    this.gateways = createCephIscsiProvisioner(this.config, this.inventory, this.rbd);
    this.provisioner = this.gateways;
    void this.gateways.publishAll((mac, err) => this.failed(mac, err)).then(
      (n) => this.log.info({ gateways: this.gateways?.portals(), targets: n }, 'ceph-iscsi: hosts\' exports checked'),
      (err: unknown) => this.log.error({ err: (err as Error).message }, 'ceph-iscsi: could not check the hosts\' exports'),
    );
    this.startSweep();
  }

  /** Hosts made outside the API (auto-enrolment at boot, the database edited by hand) are picked up here. */
  private startSweep(): void {
    this.sweepTimer = setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  /** Portals hosts are told to use: configured, else the listen address, else http.publicUrl's IP. */
  private announcedPortals(port: number): string[] {
    const configured = this.config.iscsi.portals;
    if (configured.length > 0) {
      return configured.map((p, i) => {
        const parsed = parsePortal(p.includes(':') ? p : `${p}:${port}`, `iscsi.portals.${i}`);
        return formatPortal(parsed);
      });
    }
    const listen = this.config.iscsi.listen;
    if (listen !== '0.0.0.0' && listen !== '::') return [`${listen}:${port}`];
    const publicUrl = this.config.http.publicUrl;
    if (publicUrl) {
      const host = new URL(publicUrl).hostname;
      if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return [`${host}:${port}`];
    }
    return [];
  }

  private async sweep(): Promise<void> {
    if (!this.provisioner) return;
    for (const host of this.inventory.hosts.list({ state: 'pending' })) {
      if (host.disk) continue;
      await this.afterChange(host.mac);
    }
  }

  async afterChange(mac: string): Promise<void> {
    if (!this.provisioner) return;
    try {
      const result = await this.provisioner.reconcile(mac);
      if (result === 'provisioned') this.log.info({ mac }, 'disk provisioned');
    } catch (err) {
      this.failed(mac, err);
    }
  }

  async release(mac: string, opts: { deleteData: boolean }): Promise<void> {
    if (!this.provisioner) return;
    await this.provisioner.release(mac, opts);
    if (opts.deleteData) {
      this.inventory.events.record({ mac, stage: 'storage', message: 'disk data deleted' });
    }
  }

  async rotateChap(mac: string): Promise<Host> {
    if (!this.provisioner) throw new StorageDisabledError();
    return this.provisioner.rotateChap(mac);
  }

  loggedInFrom(mac: string, address: string): boolean {
    return this.iscsi?.loggedInFrom(mac, address) ?? false;
  }

  private failed(mac: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.log.error({ mac, err: message }, 'disk provisioning failed');
    if (this.inventory.hosts.find(mac)) {
      this.inventory.events.record({ mac, stage: 'storage', message: 'disk provisioning failed', reason: message });
    }
  }

  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.iscsi?.stop();
    this.gateways?.close();
    await this.rbd?.close();
  }
}

export class StorageDisabledError extends ConflictError {
  constructor() {
    super('disk: storage.backend is none (or iscsi is disabled): hiveboot does not manage this host\'s credentials', 'disk');
  }
}
