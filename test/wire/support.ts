import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { expect } from 'vitest';
import { WireError, type WireErrorCode } from '../../src/wire/errors.js';

export function hex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** The bytes of an ASCII text, for hand-written CBOR next to its head bytes. */
export function ascii(text: string): string {
  return Buffer.from(text, 'ascii').toString('hex');
}

export interface TestSigner {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly kid: Uint8Array;
}

export function newSigner(label: string): TestSigner {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, publicKey, kid: new Uint8Array(createHash('sha256').update(label).digest()) };
}

/** A resolver that knows exactly these signers. */
export function resolverFor(...signers: TestSigner[]): (kid: Uint8Array) => KeyObject | undefined {
  return (kid) => signers.find((s) => Buffer.from(s.kid).equals(Buffer.from(kid)))?.publicKey;
}

/** Runs `fn` and returns the WireError it throws; fails the test on success or on any other exception. */
export function wireError(fn: () => unknown): WireError {
  try {
    fn();
  } catch (error) {
    if (error instanceof WireError) return error;
    throw new Error(`expected a WireError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected a WireError, but nothing was thrown');
}

export function expectWireError(fn: () => unknown, code: WireErrorCode): WireError {
  const error = wireError(fn);
  expect(error.code, error.message).toBe(code);
  return error;
}

/** A small deterministic PRNG (xorshift32), so fuzz failures reproduce. */
export function prng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000;
  };
}
