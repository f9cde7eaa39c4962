// Hosts' RBD disks as the provisioners see them (clone a golden snapshot, delete a clone), over the
// librbd binding in src/ceph. The cluster is connected on first use, not at start-up: a cluster that
// is down when the daemon starts must not keep DHCP, TFTP and the hosts on file disks from serving,
// and a later call tries again.

import { acquireCluster, type CephSettings, type ClusterLease } from '../ceph/cluster.js';
import { RbdFeature } from '../ceph/pool.js';
import type { RbdImages } from './ceph-iscsi/rbd.js';
import type { Config } from '../config/schema.js';

/**
 * Clones carry layering and exclusive-lock (the Ceph iSCSI gateways refuse images without it, and it
 * is what keeps two writers off one disk), plus object-map and fast-diff so that allocation status
 * (GET LBA STATUS) and deletion stay cheap on big, mostly empty disks.
 */
const CLONE_FEATURES = RbdFeature.layering | RbdFeature.exclusiveLock | RbdFeature.objectMap | RbdFeature.fastDiff;

export class CephRbdImages implements RbdImages {
  private lease: Promise<ClusterLease> | undefined;

  constructor(readonly settings: CephSettings) {}

  async ensureClone(opts: { pool: string; parent: string; snapshot: string; child: string }): Promise<void> {
    const pool = await (await this.cluster()).pool(opts.pool);
    await pool.ensureClone({ image: opts.parent, snapshot: opts.snapshot }, opts.child, { features: CLONE_FEATURES });
  }

  async remove(pool: string, image: string): Promise<void> {
    await (await (await this.cluster()).pool(pool)).removeImage(image, { missingOk: true });
  }

  /** Lets go of the connection (daemon stop). */
  async close(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    if (lease) await (await lease.catch(() => undefined))?.release();
  }

  private async cluster() {
    if (!this.lease) {
      const attempt = acquireCluster(this.settings);
      this.lease = attempt;
      // A failed connect is not kept: the next provisioning tries again.
      attempt.catch(() => {
        if (this.lease === attempt) this.lease = undefined;
      });
    }
    return (await this.lease).cluster;
  }
}

/** How to reach the cluster, from the config's ceph section. */
export function cephSettingsOf(config: Config): CephSettings {
  const { conf, client, keyring } = config.ceph;
  return { conf, client, ...(keyring ? { keyring } : {}) };
}
