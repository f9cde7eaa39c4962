// The `builtin` provisioner: a host whose profile names an image gets a copy-on-write overlay over
// that image, a target named <prefix>:<hostname>, an ACL for its initiator IQN and its own random CHAP
// credentials — all made at registration, ahead of the boot, so DHCP and boot answers never wait.
// Policy only: the overlay format belongs to iscsi/backing, the target to iscsi/.

import { mkdirSync } from 'node:fs';
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Host } from '../inventory/hosts.js';
import { ConflictError } from '../model/errors.js';
import type { Inventory } from '../inventory/index.js';
import type { CephSettings } from '../ceph/cluster.js';
import { createCowOverlay, type BackingSpec } from '../iscsi/backing/index.js';
import { parseRbdSnapshot, rbdDiskName, type RbdImages } from './ceph-iscsi/rbd.js';
import { newChapPair, newChapSecret } from './credentials.js';

export const BUILTIN_SOURCE = 'builtin';

export interface BuiltinOptions {
  /** Where overlays live (0700). */
  dir: string;
  /**
   * For profiles whose image is an RBD snapshot (location rbd:pool/image@snapshot): how hosts' clones
   * are made and how the target reaches the cluster. Without it such hosts wait, with a reason.
   */
  rbd?: { images: RbdImages; cluster: CephSettings };
  targetIqnPrefix: string;
  initiatorIqnPrefix: string;
  /** Portals announced to hosts, "ip:port". */
  portals: string[];
  mutualChap: boolean;
}

/** What the iSCSI target must serve for one host. */
export interface PublishedTarget {
  mac: string;
  targetName: string;
  initiatorIqn: string;
  /** What the host's LUN is stored in. */
  backing: BackingSpec;
  /**
   * Names the host's disk for good (its overlay's path, its RBD image): the LUN's identifier, which
   * Linux names /dev/disk/by-id after, is made from it, and a new one means a new disk.
   */
  diskId: string;
  chap: { user: string; secret: string; mutual?: { user: string; secret: string } };
  portals: string[];
}

/** The target side the provisioner drives (the built-in iSCSI service implements it). */
export interface TargetPublisher {
  publish(target: PublishedTarget): Promise<void>;
  withdraw(mac: string, reason: string): Promise<void>;
}

export type ReconcileResult = 'provisioned' | 'published' | 'withdrawn' | 'not-ours' | 'waiting';

/** Where a host's disk lives: an overlay file over a golden file, or an RBD clone of a golden snapshot. */
type HostDisk = { kind: 'cow'; golden: string; overlay: string } | { kind: 'rbd'; pool: string; image: string };

export class BuiltinProvisioner {
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Each published host's disk, for release(): by then the host and its profile are gone. */
  private readonly disks = new Map<string, HostDisk>();

  constructor(
    private readonly inventory: Inventory,
    private readonly targets: TargetPublisher,
    private readonly opts: BuiltinOptions,
  ) {
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  }

  overlayPath(mac: string): string {
    return join(this.opts.dir, `${mac.replace(/:/g, '')}.overlay`);
  }

  /** Runs one host's changes one at a time (two API calls for one host must not race). */
  private serialize<T>(mac: string, work: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(mac) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.queues.set(mac, settled);
    void settled.then(() => {
      if (this.queues.get(mac) === settled) this.queues.delete(mac);
    });
    return next;
  }

  /**
   * Brings one host's disk and target in line with the inventory: provisions a missing disk, (re)publishes
   * the target of a bootable host, withdraws the target of a removed or disabled host.
   */
  reconcile(mac: string): Promise<ReconcileResult> {
    return this.serialize(mac, () => this.reconcileNow(mac));
  }

  private async reconcileNow(mac: string): Promise<ReconcileResult> {
    const host = this.inventory.hosts.find(mac);
    if (!host || host.state === 'disabled' || host.state === 'discovered') {
      await this.targets.withdraw(mac, host ? `host is ${host.state}` : 'host removed');
      return 'withdrawn';
    }
    if (host.disk && host.disk.source !== BUILTIN_SOURCE) return 'not-ours';
    const golden = this.goldenOf(host);
    if (!golden || !host.hostname) return 'waiting';
    let current = host;
    let result: ReconcileResult = 'published';
    const disk = await this.ensureDisk(mac, golden);
    if (!current.disk) {
      const chap = newChapPair();
      const mutual = this.opts.mutualChap ? newChapPair() : undefined;
      current = this.inventory.hosts.attachDisk(
        mac,
        {
          portals: this.opts.portals,
          targetIqn: `${this.opts.targetIqnPrefix}:${host.hostname}`,
          lun: 0,
          chapUser: chap.user,
          chapSecret: chap.secret,
          ...(mutual ? { mutualUser: mutual.user, mutualSecret: mutual.secret } : {}),
        },
        BUILTIN_SOURCE,
        { stage: 'storage' },
      );
      result = 'provisioned';
    }
    await this.targets.publish(this.describe(current, disk));
    return result;
  }

  /**
   * The host's own disk, made if missing: an overlay over a golden file, or (golden rbd:…) a clone of
   * the golden snapshot — made with librbd in well under a second, whatever the image's size.
   */
  private async ensureDisk(mac: string, golden: string): Promise<HostDisk> {
    let disk: HostDisk;
    if (golden.startsWith('rbd:')) {
      const snap = parseRbdSnapshot(golden, golden);
      if (!this.opts.rbd) throw new Error(`the profile's image ${golden} is in RBD, but hiveboot was started without Ceph (the ceph section of the config)`);
      disk = { kind: 'rbd', pool: snap.pool, image: rbdDiskName(mac) };
      await this.opts.rbd.images.ensureClone({ pool: snap.pool, parent: snap.image, snapshot: snap.snapshot, child: disk.image });
    } else {
      disk = { kind: 'cow', golden, overlay: this.overlayPath(mac) };
      if (!(await exists(disk.overlay))) await createCowOverlay(golden, disk.overlay);
    }
    this.disks.set(mac, disk);
    return disk;
  }

  /** A new CHAP secret (and mutual secret, if any) for the host; its target takes it at once. */
  rotateChap(mac: string): Promise<Host> {
    return this.serialize(mac, async () => {
      const host = this.inventory.hosts.get(mac);
      const disk = host.disk;
      if (!disk || disk.source !== BUILTIN_SOURCE || !disk.chapUser) {
        throw new RotationError(`host ${mac} has no disk provisioned by hiveboot: its credentials are managed elsewhere`);
      }
      const updated = this.inventory.hosts.attachDisk(
        mac,
        {
          portals: disk.portals,
          targetIqn: disk.targetIqn,
          lun: disk.lun,
          chapUser: disk.chapUser,
          chapSecret: newChapSecret(),
          ...(disk.mutualUser ? { mutualUser: disk.mutualUser, mutualSecret: newChapSecret() } : {}),
        },
        BUILTIN_SOURCE,
        { stage: 'storage' },
      );
      const stored = this.disks.get(mac);
      if (stored) await this.targets.publish(this.describe(updated, stored));
      return updated;
    });
  }

  /** After a host is removed: its target goes; its overlay only when asked. */
  release(mac: string, opts: { deleteData: boolean }): Promise<void> {
    return this.serialize(mac, async () => {
      await this.targets.withdraw(mac, 'host removed');
      const disk = this.disks.get(mac);
      this.disks.delete(mac);
      if (!opts.deleteData) return;
      if (disk?.kind === 'rbd') await this.opts.rbd?.images.remove(disk.pool, disk.image);
      else await rm(this.overlayPath(mac), { force: true });
    });
  }

  /** Publishes every provisioned host (daemon start). Failures are per host: the rest still boot. */
  async publishAll(onError: (mac: string, err: unknown) => void): Promise<number> {
    let published = 0;
    for (const host of this.inventory.hosts.list()) {
      if (host.disk?.source !== BUILTIN_SOURCE && host.disk) continue;
      try {
        const r = await this.reconcile(host.mac);
        if (r === 'published' || r === 'provisioned') published++;
      } catch (err) {
        onError(host.mac, err);
      }
    }
    return published;
  }

  private goldenOf(host: Host): string | undefined {
    if (!host.profile) return undefined;
    const profile = this.inventory.profiles.find(host.profile);
    if (!profile?.image) return undefined;
    return this.inventory.images.find(profile.image)?.location;
  }

  private describe(host: Host, disk: HostDisk): PublishedTarget {
    const hostDisk = host.disk!;
    return {
      mac: host.mac,
      targetName: hostDisk.targetIqn,
      initiatorIqn: host.initiatorIqn ?? `${this.opts.initiatorIqnPrefix}:${host.hostname}`,
      backing:
        disk.kind === 'rbd' ? { kind: 'rbd', cluster: this.opts.rbd!.cluster, pool: disk.pool, image: disk.image } : { kind: 'cow', golden: disk.golden, overlay: disk.overlay },
      diskId: disk.kind === 'rbd' ? `rbd:${disk.pool}/${disk.image}` : disk.overlay,
      chap: {
        user: hostDisk.chapUser!,
        secret: hostDisk.chapSecret!,
        ...(hostDisk.mutualUser && hostDisk.mutualSecret ? { mutual: { user: hostDisk.mutualUser, secret: hostDisk.mutualSecret } } : {}),
      },
      portals: hostDisk.portals,
    };
  }
}

/** The host's credentials are not ours to rotate (HTTP 409). */
export class RotationError extends ConflictError {
  constructor(message: string) {
    super(message, 'disk');
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
