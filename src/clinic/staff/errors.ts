import { GatewayError } from '../../errors.js';

/**
 * Stable codes of the staff records (src/clinic/staff/; docs/errors.md, "Clinic staff"). These are the staff
 * rules; a failure of the database itself (wrong key, disk full, server unreachable, used after close) is the
 * clinic database's, a ClinicStoreError with its CLINIC_STORE_* code, since staff live in the same database.
 */
export type StaffStoreErrorCode =
  /** addUser: the username is taken (usernames are unique; a disabled user keeps theirs). */
  | 'STAFF_USER_EXISTS'
  /** The user id names no user. */
  | 'STAFF_USER_UNKNOWN'
  /** A username outside 3-64 characters of `a-z 0-9 . _ -`. */
  | 'STAFF_USERNAME_INVALID'
  /** Any other field is not acceptable: a role, a password hash that is not argon2id, a time, a TOTP step, an MRN. */
  | 'STAFF_FIELD_INVALID'
  /** confirmTotp for a user who has no TOTP secret (enrolment was never started, or was reset). */
  | 'STAFF_TOTP_NOT_ENROLLED'
  /** createSession with an id hash already stored (a session id must be new random bytes). */
  | 'STAFF_SESSION_EXISTS'
  /** completeSession on a session that is unknown, revoked or past its absolute end. */
  | 'STAFF_SESSION_ENDED'
  /** The staff tables were written by a newer version of this software. */
  | 'STAFF_SCHEMA_TOO_NEW'
  /** A password given to be hashed is empty or longer than the bound (passwords.ts). */
  | 'STAFF_PASSWORD_INVALID';

export class StaffStoreError extends GatewayError {
  declare readonly code: StaffStoreErrorCode;

  constructor(code: StaffStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
