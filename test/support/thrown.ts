import { expect } from 'vitest';

/**
 * Runs fn and returns the error it throws; fails the test if it throws nothing or another kind, or
 * (when given) the error's `field` is not the expected one.
 */
export function thrown<E extends Error>(fn: () => unknown, cls: abstract new (...args: never[]) => E, field?: string): E {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected an error').toBeInstanceOf(cls);
  if (field !== undefined) expect((caught as { field?: string }).field).toBe(field);
  return caught as E;
}
