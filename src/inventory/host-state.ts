import { ConflictError } from '../model/errors.js';
import type { HostState } from '../model/schemas.js';

export interface Completeness {
  hostname: string | null;
  profile: string | null;
  hasDisk: boolean;
}

/** What is still missing before a host can boot its disk, in words for events and errors. */
export function missingForBoot(c: Completeness): string[] {
  const missing: string[] = [];
  if (!c.hostname) missing.push('a hostname');
  if (!c.profile) missing.push('a profile');
  if (!c.hasDisk) missing.push('a disk');
  return missing;
}

/**
 * The host state machine. `ready` means "can boot its disk now", so it is only reachable with a
 * host name, a profile and a disk; a pending host becomes ready by itself when the last of those
 * arrives (a disk entered by hand, or filled by provisioning) and falls back to pending if one goes.
 * discovered and disabled change only when asked (approve, update).
 */
export function nextState(current: HostState | undefined, c: Completeness, requested?: HostState): HostState {
  const missing = missingForBoot(c);
  if (requested === 'ready' && missing.length > 0) {
    throw new ConflictError(`state: cannot be ready without ${missing.join(', ')}`, 'state');
  }
  if (requested) return requested;
  if (current === 'discovered' || current === 'disabled') return current;
  return missing.length === 0 ? 'ready' : 'pending';
}
