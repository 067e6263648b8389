import { randomInt } from 'node:crypto';
import argon2 from 'argon2';
import { StaffStoreError } from './errors.js';

/**
 * Staff passwords: hashed with argon2id, verified, and rehashed when the parameters here change.
 *
 * Parameters: the OWASP Password Storage Cheat Sheet, "Argon2id": "a minimum configuration of 19 MiB of memory,
 * an iteration count of 2, and 1 degree of parallelism"
 * (https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#argon2id). Argon2id is
 * the variant RFC 9106 section 4 recommends; its PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) carries
 * its own parameters and a random 16-byte salt, so a hash made under older parameters still verifies, and
 * `needsRehash` tells the login to store a new one once the password is known to be right.
 */
export const PASSWORD_HASH_PARAMETERS = {
  type: argon2.argon2id,
  /** KiB: 19 MiB. */
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

/**
 * Longer passwords are refused before hashing: argon2 hashes any length, but an attacker could post megabytes
 * per login attempt. 1,024 bytes is far above any passphrase (NIST SP 800-63B section 5.1.1.2 asks verifiers to
 * accept at least 64 characters).
 */
export const MAX_PASSWORD_BYTES = 1_024;

export async function hashPassword(password: string): Promise<string> {
  if (typeof password !== 'string' || password.length === 0) {
    throw new StaffStoreError('STAFF_PASSWORD_INVALID', 'a password cannot be empty');
  }
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
    throw new StaffStoreError('STAFF_PASSWORD_INVALID', `a password is at most ${MAX_PASSWORD_BYTES} bytes`);
  }
  return argon2.hash(password.normalize('NFC'), PASSWORD_HASH_PARAMETERS);
}

/**
 * True when `password` matches `hash`. False, never an exception, for a wrong, empty or over-long password and
 * for a stored hash that is not one argon2 can read: a login must answer "wrong password", never crash.
 * Passwords are compared as Unicode NFC (NIST SP 800-63B section 5.1.1.2), so the same passphrase typed on two
 * keyboards that compose accents differently is the same.
 */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  if (typeof password !== 'string' || password.length === 0) return false;
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return false;
  if (typeof hash !== 'string' || !hash.startsWith('$argon2id$')) return false;
  try {
    return await argon2.verify(hash, password.normalize('NFC'));
  } catch {
    return false; // a malformed PHC string
  }
}

/** True when `hash` was made with other parameters (or another variant) than PASSWORD_HASH_PARAMETERS. */
export function needsRehash(hash: string): boolean {
  if (typeof hash !== 'string' || !hash.startsWith('$argon2id$')) return true;
  try {
    return argon2.needsRehash(hash, {
      memoryCost: PASSWORD_HASH_PARAMETERS.memoryCost,
      timeCost: PASSWORD_HASH_PARAMETERS.timeCost,
      parallelism: PASSWORD_HASH_PARAMETERS.parallelism,
    });
  } catch {
    return true;
  }
}

/** Letters and digits only, so a password read aloud or copied from a terminal has no ambiguous punctuation. */
export const INITIAL_PASSWORD_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const INITIAL_PASSWORD_LENGTH = 20;

/**
 * A random initial password: 20 characters drawn uniformly from 62 (crypto.randomInt rejects out-of-range
 * draws, so there is no modulo bias; Node.js docs, crypto.randomInt), i.e. 20 x log2(62) = 119.1 bits of
 * entropy, beyond any online or offline guessing.
 */
export function randomInitialPassword(): string {
  let password = '';
  for (let i = 0; i < INITIAL_PASSWORD_LENGTH; i++) {
    password += INITIAL_PASSWORD_ALPHABET[randomInt(INITIAL_PASSWORD_ALPHABET.length)];
  }
  return password;
}
