import { DecodeError } from '../../src/errors.js';

/** Runs `fn` and returns the error of class `kind` it threw; fails the test if it threw nothing or another kind. */
export function thrownBy<E extends Error>(kind: abstract new (...args: never[]) => E, fn: () => unknown): E {
  try {
    fn();
  } catch (error) {
    if (error instanceof kind) return error;
    throw error;
  }
  throw new Error(`expected a ${kind.name}`);
}

/** The DecodeError `fn` throws (the usual assertion of the codec tests). */
export function decodeError(fn: () => unknown): DecodeError {
  return thrownBy(DecodeError, fn);
}
