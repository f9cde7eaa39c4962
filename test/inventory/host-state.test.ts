import { describe, expect, it } from 'vitest';
import { missingForBoot, nextState, type Completeness } from '../../src/inventory/host-state.js';
import { ConflictError } from '../../src/model/errors.js';
import type { HostState } from '../../src/model/schemas.js';

const COMPLETE: Completeness = { hostname: 'worker-1', profile: 'workers', hasDisk: true };
const NO_DISK: Completeness = { ...COMPLETE, hasDisk: false };
const NOTHING: Completeness = { hostname: null, profile: null, hasDisk: false };

describe('missingForBoot', () => {
  it('lists what is missing in words, in a fixed order', () => {
    expect(missingForBoot(COMPLETE)).toEqual([]);
    expect(missingForBoot(NO_DISK)).toEqual(['a disk']);
    expect(missingForBoot(NOTHING)).toEqual(['a hostname', 'a profile', 'a disk']);
    expect(missingForBoot({ hostname: '', profile: 'p', hasDisk: true })).toEqual(['a hostname']);
  });
});

describe('nextState', () => {
  it.each<[HostState | undefined, Completeness, HostState]>([
    [undefined, COMPLETE, 'ready'],
    [undefined, NO_DISK, 'pending'],
    [undefined, NOTHING, 'pending'],
    ['pending', COMPLETE, 'ready'],
    ['ready', NO_DISK, 'pending'],
    ['ready', COMPLETE, 'ready'],
    ['discovered', COMPLETE, 'discovered'],
    ['discovered', NOTHING, 'discovered'],
    ['disabled', COMPLETE, 'disabled'],
    ['disabled', NO_DISK, 'disabled'],
  ])('from %s with %j becomes %s', (current, c, expected) => {
    expect(nextState(current, c)).toBe(expected);
  });

  it('honours an explicitly requested state', () => {
    expect(nextState('ready', COMPLETE, 'disabled')).toBe('disabled');
    expect(nextState('disabled', COMPLETE, 'ready')).toBe('ready');
    expect(nextState('ready', NO_DISK, 'pending')).toBe('pending');
    expect(nextState('pending', NOTHING, 'discovered')).toBe('discovered');
  });

  it('refuses ready while something is missing, saying what', () => {
    let err: unknown;
    try {
      nextState('pending', { hostname: 'w', profile: null, hasDisk: false }, 'ready');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).field).toBe('state');
    expect((err as Error).message).toBe('state: cannot be ready without a profile, a disk');
  });
});
