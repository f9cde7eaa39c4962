// The RBD side of the ceph-iscsi provisioner. rbd-target-api has no clone call, so a host's disk is
// cloned from its profile's golden snapshot through librbd first and only then registered with the
// gateways (create_image=false). The librbd binding lives in src/ceph/; this is all the provisioner
// needs from it.

import { ValidationError } from '../../model/errors.js';
import { printable } from '../../model/identifiers.js';

export interface RbdImages {
  /**
   * Makes `pool/child` a copy-on-write clone of `pool/parent@snapshot` (protecting the snapshot if
   * the cluster needs it). An existing `child` is left as it is: this is called on every reconcile.
   * The clone must carry the exclusive-lock feature (the gateways refuse images without it).
   */
  ensureClone(opts: { pool: string; parent: string; snapshot: string; child: string }): Promise<void>;
  /** Deletes `pool/image`; an image that does not exist is not an error. */
  remove(pool: string, image: string): Promise<void>;
}

export interface RbdSnapshot {
  pool: string;
  image: string;
  snapshot: string;
}

/** A host's own RBD image, cloned from its profile's golden snapshot (by either RBD provisioner). */
export function rbdDiskName(mac: string): string {
  return `hiveboot-${mac.replace(/:/g, '').toLowerCase()}`;
}

/** Pool and image names as rbd-target-api accepts them (LUN.valid_disk). */
const RBD_NAME = /^[A-Za-z0-9_.-]+$/;

/** An image record's location "rbd:pool/image@snapshot" (the golden a host's disk is cloned from). */
export function parseRbdSnapshot(location: string, imageName: string): RbdSnapshot {
  const m = /^rbd:([^/@]+)\/([^/@]+)@([^/@]+)$/.exec(location.trim());
  if (!m) {
    throw new ValidationError(
      `image "${imageName}": location "${printable(location)}" is not an RBD snapshot (rbd:pool/image@snapshot): the ceph-iscsi backend clones hosts' disks from one`,
      'location',
    );
  }
  const [, pool, image, snapshot] = m as unknown as [string, string, string, string];
  if (!RBD_NAME.test(pool) || !RBD_NAME.test(image)) {
    throw new ValidationError(`image "${imageName}": pool and image names may only use A-Z a-z 0-9 _ . - (the gateways refuse others)`, 'location');
  }
  return { pool, image, snapshot };
}
