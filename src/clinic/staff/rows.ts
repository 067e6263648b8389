import type { StaffRole, StaffSession, StaffUser } from './staff-store.js';

/**
 * The staff tables' rows, the same column names in both engines, and their conversion to the interface's
 * types. Integers are `number` from SQLite and `bigint` text from node-postgres (it does not guess that an
 * int8 fits a JavaScript number; epoch milliseconds and ids do), so every one goes through Number().
 */
type Int = number | string;

export const USER_COLUMNS =
  'id, username, role, disabled_at, password_hash, totp_secret, totp_confirmed_at, totp_last_step, failed_logins, locked_until, created_at, created_by';

export interface UserRow {
  readonly id: Int;
  readonly username: string;
  readonly role: string;
  readonly disabled_at: Int | null;
  readonly password_hash: string;
  readonly totp_secret: string | null;
  readonly totp_confirmed_at: Int | null;
  readonly totp_last_step: Int | null;
  readonly failed_logins: Int;
  readonly locked_until: Int | null;
  readonly created_at: Int;
  readonly created_by: string;
}

export function userOf(row: UserRow): StaffUser {
  return {
    id: Number(row.id),
    username: row.username,
    role: row.role as StaffRole,
    disabled: row.disabled_at !== null,
    passwordHash: row.password_hash,
    ...(row.totp_secret === null ? {} : { totpSecret: row.totp_secret }),
    ...(row.totp_confirmed_at === null ? {} : { totpConfirmedAt: Number(row.totp_confirmed_at) }),
    ...(row.totp_last_step === null ? {} : { totpLastStep: Number(row.totp_last_step) }),
    failedLogins: Number(row.failed_logins),
    ...(row.locked_until === null ? {} : { lockedUntil: Number(row.locked_until) }),
    createdAt: Number(row.created_at),
    createdBy: row.created_by,
  };
}

export const SESSION_COLUMNS =
  'id_hash, user_id, stage, created_at, last_seen_at, expires_at, revoked_at, csrf_secret';

export interface SessionRow {
  readonly id_hash: string;
  readonly user_id: Int;
  readonly stage: string;
  readonly created_at: Int;
  readonly last_seen_at: Int;
  readonly expires_at: Int;
  readonly revoked_at: Int | null;
  readonly csrf_secret: string;
}

export function sessionOf(row: SessionRow): StaffSession {
  return {
    idHash: row.id_hash,
    userId: Number(row.user_id),
    stage: row.stage === 'complete' ? 'complete' : 'password',
    createdAt: Number(row.created_at),
    lastSeenAt: Number(row.last_seen_at),
    expiresAt: Number(row.expires_at),
    ...(row.revoked_at === null ? {} : { revokedAt: Number(row.revoked_at) }),
    csrfSecret: row.csrf_secret,
  };
}
