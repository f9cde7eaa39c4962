import type { CephSettings } from '../../ceph/cluster.js';
import type { BlockDevice } from './block-device.js';
import { openCowOverlay } from './cow.js';
import { FileBacking } from './file.js';
import { RbdBacking } from './rbd.js';

/**
 * What a LUN is stored in, as the config and the provisioners describe it. Adding a kind (`rbd`)
 * means adding its spec to this union and its opener to OPENERS; the compiler points at both.
 */
export type BackingSpec =
  /** A raw sparse file; created with `size` if it does not exist. */
  | { kind: 'file'; path: string; size?: number; readOnly?: boolean }
  /**
   * A copy-on-write overlay (made beforehand with createCowOverlay) over a read-only golden image.
   * `ordered: false` trades old-or-new after a power loss for faster first writes (see cow.ts).
   */
  | { kind: 'cow'; golden: string; overlay: string; readOnly?: boolean; ordered?: boolean }
  /**
   * An RBD image (pool/image, or a snapshot of it, read-only) through librbd; `cluster` says how to
   * connect (one connection per distinct settings, shared by every LUN). Opened for writing, the
   * image's exclusive lock is held: a second writer is refused (IN_USE).
   */
  | { kind: 'rbd'; cluster: CephSettings; pool: string; image: string; snapshot?: string; readOnly?: boolean };

export type BackingKind = BackingSpec['kind'];

type Opener<K extends BackingKind> = (spec: Extract<BackingSpec, { kind: K }>) => Promise<BlockDevice>;

const OPENERS: { [K in BackingKind]: Opener<K> } = {
  file: (spec) => FileBacking.open({ path: spec.path, size: spec.size, readOnly: spec.readOnly }),
  cow: (spec) => openCowOverlay(spec.golden, spec.overlay, { readOnly: spec.readOnly, ordered: spec.ordered }),
  rbd: (spec) => RbdBacking.open(spec),
};

export function openBacking(spec: BackingSpec): Promise<BlockDevice> {
  const opener = OPENERS[spec.kind] as Opener<typeof spec.kind>;
  return opener(spec);
}

export type { BlockDevice, BlockExtent } from './block-device.js';
export { BackingError, type BackingErrorCode } from './errors.js';
export { FileBacking } from './file.js';
export { CowBacking, createCowOverlay, deleteCowOverlay, openCowOverlay, readCowOverlayInfo, type CowOverlayInfo, type CreateCowOptions } from './cow.js';
export { RbdBacking, type RbdBackingOptions } from './rbd.js';
