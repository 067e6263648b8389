import { StaffStoreError } from './errors.js';
import type { NewStaffUser, StaffRole, StaffSession } from './staff-store.js';

/**
 * The checks both engines make before they write, so a bad value is refused with the same code whichever
 * database holds the staff, and never reaches SQL. Messages name the field, never a password or a secret.
 */

const USERNAME = /^[a-z0-9._-]{3,64}$/;
const ROLES: ReadonlySet<string> = new Set<StaffRole>(['admin', 'clinician']);
/**
 * A PHC string of argon2id (https://github.com/P-H-C/phc-string-format), as passwords.ts makes them; the
 * parameters in any order (node-argon2 writes m, p, t).
 */
const ARGON2ID_PHC = /^\$argon2id\$v=\d+\$[mtp]=\d+(,[mtp]=\d+){2}\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;
/** The session's id hash: SHA-256, lower-case hex. */
const ID_HASH = /^[0-9a-f]{64}$/;

export function isValidUsername(username: string): boolean {
  return USERNAME.test(username);
}

export function checkUsername(username: string): void {
  if (typeof username !== 'string' || !USERNAME.test(username)) {
    throw new StaffStoreError(
      'STAFF_USERNAME_INVALID',
      'a username is 3 to 64 characters: lower-case letters, digits, dot, underscore or hyphen',
    );
  }
}

export function checkNewUser(user: NewStaffUser): void {
  checkUsername(user.username);
  if (!ROLES.has(user.role)) throw invalid('role must be admin or clinician');
  checkPasswordHash(user.passwordHash);
  checkActor(user.createdBy, 'createdBy');
  checkTime(user.at, 'at');
}

export function checkPasswordHash(hash: string): void {
  // A plaintext password stored by mistake would be a breach waiting for a backup to leak.
  if (typeof hash !== 'string' || !ARGON2ID_PHC.test(hash)) {
    throw invalid('passwordHash must be an argon2id PHC string ($argon2id$v=19$m=...)');
  }
}

export function checkTime(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw invalid(`${name} must be epoch milliseconds`);
}

export function checkUserId(userId: number): void {
  if (!Number.isSafeInteger(userId) || userId < 1) {
    throw new StaffStoreError('STAFF_USER_UNKNOWN', 'a user id is a whole number from 1');
  }
}

/** RFC 6238 section 4: T = floor((unix time - T0) / X), a non-negative integer. */
export function checkStep(step: number): void {
  if (!Number.isSafeInteger(step) || step < 0) throw invalid('a TOTP step is a whole number, 0 or more');
}

export function checkTotpSecret(secret: string): void {
  // Base32 (RFC 4648 section 6) without padding, at least 128 bits (RFC 4226 section 4, R6) and bounded.
  if (typeof secret !== 'string' || !/^[A-Z2-7]{26,128}$/.test(secret)) {
    throw invalid('a TOTP secret is 26 to 128 base32 characters (at least 128 bits)');
  }
}

/** An MRN as the care team keys it: 1 to 64 printable ASCII characters, no spaces. */
export function isValidMrn(mrn: string): boolean {
  return typeof mrn === 'string' && /^[\x21-\x7e]{1,64}$/.test(mrn);
}

export function checkMrn(mrn: string): void {
  if (!isValidMrn(mrn)) {
    throw invalid('an MRN is 1 to 64 printable characters without spaces');
  }
}

export function checkActor(by: string, name: string): void {
  if (typeof by !== 'string' || by.length === 0 || by.length > 128 || /[\p{Cc}]/u.test(by)) {
    throw invalid(`${name} must be 1 to 128 printable characters`);
  }
}

export function checkIdHash(idHash: string): void {
  if (typeof idHash !== 'string' || !ID_HASH.test(idHash)) {
    throw invalid('a session id hash is SHA-256 in lower-case hex');
  }
}

export function checkNewSession(session: Omit<StaffSession, 'revokedAt'>): void {
  checkIdHash(session.idHash);
  checkUserId(session.userId);
  if (session.stage !== 'password' && session.stage !== 'complete') {
    throw invalid("a session's stage is password or complete");
  }
  checkTime(session.createdAt, 'createdAt');
  checkTime(session.lastSeenAt, 'lastSeenAt');
  checkTime(session.expiresAt, 'expiresAt');
  if (session.expiresAt <= session.createdAt) throw invalid('expiresAt must be after createdAt');
  if (
    typeof session.csrfSecret !== 'string' ||
    session.csrfSecret.length < 16 ||
    session.csrfSecret.length > 256
  ) {
    throw invalid('csrfSecret must be 16 to 256 characters');
  }
}

function invalid(message: string): StaffStoreError {
  return new StaffStoreError('STAFF_FIELD_INVALID', message);
}
