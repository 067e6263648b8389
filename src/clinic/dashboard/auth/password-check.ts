import { randomBytes } from 'node:crypto';
import argon2 from 'argon2';

/**
 * Checks a password against a stored argon2id PHC string (RFC 9106; the parameters are read from the string
 * itself, so a hash made with other parameters still verifies). A malformed stored hash is a failed check,
 * never an exception a login page would show.
 */
export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(passwordHash, password);
  } catch {
    return false;
  }
}

let dummy: Promise<string> | undefined;

/**
 * A check that costs what a real one costs, for a username that does not exist: answering at once would tell
 * an attacker which usernames do (OWASP Authentication Cheat Sheet, "Authentication Responses"). The hash is
 * made once per process with the library's argon2id defaults, the parameters real hashes are made with.
 */
export async function verifyAgainstNothing(password: string): Promise<false> {
  dummy ??= argon2.hash(randomBytes(32), { type: argon2.argon2id });
  await verifyPassword(await dummy, password);
  return false;
}
