import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The random values of a login: session ids, CSRF secrets and tokens.
 *
 * A session id is 256 random bits from the operating system's CSPRNG (OWASP Session Management Cheat Sheet,
 * "Session ID Entropy": at least 64 bits), base64url without padding (RFC 4648 section 5) so it fits a cookie
 * value unquoted. Only its SHA-256 is stored: the id is a bearer credential, and a copy of the database must
 * not be one (the same reasoning as for storing password hashes). A fast hash is enough here, unlike for
 * passwords, because 256 random bits cannot be guessed.
 */
export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

export function hashSessionId(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}

/** A cookie value this server could have issued: 43 base64url characters (256 bits). */
export function looksLikeSessionId(value: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(value);
}

export function newCsrfSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The synchronizer token of a session (OWASP Cross-Site Request Forgery Prevention Cheat Sheet, "Synchronizer
 * Token Pattern"): derived from the session's server-side secret with HMAC-SHA-256 (RFC 2104), so every form
 * of one session carries the same token, a page from another session's cannot be used, and the token changes
 * with the session id at each login stage. The secret itself never leaves the server.
 */
export function csrfTokenFor(csrfSecret: string): string {
  return createHmac('sha256', csrfSecret).update('rpm-dashboard csrf v1').digest('base64url');
}

/** Compares in constant time (a timing difference would tell an attacker how much of a guess was right). */
export function sameToken(expected: string, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
