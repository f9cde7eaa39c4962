import type { BlockDevice } from './block-device.js';
import { openCowOverlay } from './cow.js';
import { FileBacking } from './file.js';

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
  | { kind: 'cow'; golden: string; overlay: string; readOnly?: boolean; ordered?: boolean };

export type BackingKind = BackingSpec['kind'];

type Opener<K extends BackingKind> = (spec: Extract<BackingSpec, { kind: K }>) => Promise<BlockDevice>;

const OPENERS: { [K in BackingKind]: Opener<K> } = {
  file: (spec) => FileBacking.open({ path: spec.path, size: spec.size, readOnly: spec.readOnly }),
  cow: (spec) => openCowOverlay(spec.golden, spec.overlay, { readOnly: spec.readOnly, ordered: spec.ordered }),
};

export function openBacking(spec: BackingSpec): Promise<BlockDevice> {
  const opener = OPENERS[spec.kind] as Opener<typeof spec.kind>;
  return opener(spec);
}

export type { BlockDevice, BlockExtent } from './block-device.js';
export { BackingError, type BackingErrorCode } from './errors.js';
export { FileBacking } from './file.js';
export { CowBacking, createCowOverlay, deleteCowOverlay, openCowOverlay, readCowOverlayInfo, type CowOverlayInfo, type CreateCowOptions } from './cow.js';
