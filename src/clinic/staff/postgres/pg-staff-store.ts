import pg from 'pg';
import { type Clock, systemClock } from '../../../util/clock.js';
import { ClinicStoreError } from '../../storage/errors.js';
import { pgErrorFrom } from '../../storage/postgres/errors.js';
import { StaffStoreError } from '../errors.js';
import { SESSION_COLUMNS, type SessionRow, sessionOf, USER_COLUMNS, type UserRow, userOf } from '../rows.js';
import {
  checkActor,
  checkIdHash,
  checkMrn,
  checkNewSession,
  checkNewUser,
  checkPasswordHash,
  checkStep,
  checkTime,
  checkTotpSecret,
  checkUserId,
  isValidUsername,
} from '../rules.js';
import type { NewStaffUser, StaffSession, StaffStore, StaffUser } from '../staff-store.js';
import { migrateStaff } from './migrate.js';

export interface PgStaffStoreOptions {
  /**
   * A pool the caller owns (and ends after close()), e.g. the one PgClinicStore uses, or connection options
   * for a pool the store makes and ends.
   */
  readonly pool?: pg.Pool;
  readonly connection?: pg.PoolConfig;
  /** Stamps the migration record only: every other time is given by the caller. Default the system clock. */
  readonly clock?: Clock;
  /** Failures nobody awaits (an idle pooled connection that broke). Default: ignored. */
  readonly onError?: (error: ClinicStoreError) => void;
}

/** SQLSTATEs (PostgreSQL docs, Appendix A) the staff rules map to their own codes. */
const UNIQUE_VIOLATION = '23505';
const FOREIGN_KEY_VIOLATION = '23503';

/**
 * The StaffStore (src/clinic/staff/staff-store.ts has the contract) in the clinic's PostgreSQL database, for
 * clinics where several dashboard processes serve one clinic: sessions, lockout counters and the last TOTP
 * step are in the database, so every process sees the same ones.
 *
 * Every method is one statement, so none needs a transaction of its own. The compare-and-set of
 * `useTotpStep` is one UPDATE whose WHERE compares the stored step: under READ COMMITTED, a second UPDATE of
 * the same row waits for the first to commit and then re-checks its WHERE against the new row version
 * (PostgreSQL docs, "Transaction Isolation", 13.2.1 Read Committed), so of any number of concurrent calls with
 * one step, in any number of processes, exactly one updates a row. Failure counts are `failed_logins + 1` in
 * the same way, never a read and a write.
 */
export class PgStaffStore implements StaffStore {
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #onError: (error: ClinicStoreError) => void;
  #closed = false;

  private constructor(pool: pg.Pool, ownsPool: boolean, options: PgStaffStoreOptions) {
    this.#pool = pool;
    this.#ownsPool = ownsPool;
    this.#onError = options.onError ?? (() => undefined);
  }

  /** Connects, brings the staff tables up to date (or refuses newer ones), and returns the store. */
  static async open(options: PgStaffStoreOptions): Promise<PgStaffStore> {
    if ((options.pool === undefined) === (options.connection === undefined)) {
      throw new ClinicStoreError(
        'CLINIC_STORE_IO',
        'PgStaffStore.open needs exactly one of `pool` and `connection`',
      );
    }
    const ownsPool = options.pool === undefined;
    const pool = options.pool ?? new pg.Pool(options.connection);
    const store = new PgStaffStore(pool, ownsPool, options);
    // Without a listener, an idle client's error would be thrown as an uncaught 'error' event (node-postgres
    // docs, Pool, "error" event). The pool discards that client by itself.
    pool.on('error', store.#poolError);
    try {
      const client = await pool.connect();
      try {
        await migrateStaff(client, (options.clock ?? systemClock).now());
      } finally {
        client.release();
      }
    } catch (error) {
      pool.off('error', store.#poolError);
      if (ownsPool) await pool.end().catch(() => undefined);
      if (error instanceof StaffStoreError) throw error;
      throw pgErrorFrom(error, 'opening the staff tables');
    }
    return store;
  }

  readonly #poolError = (error: Error) => this.#onError(pgErrorFrom(error, 'an idle database connection'));

  async addUser(user: NewStaffUser): Promise<StaffUser> {
    checkNewUser(user);
    const result = await this.#query<UserRow>(
      'adding a user',
      `INSERT INTO staff_users (username, role, password_hash, password_changed_at, created_at, created_by)
       VALUES ($1, $2, $3, $4, $4, $5) RETURNING ${USER_COLUMNS}`,
      [user.username, user.role, user.passwordHash, user.at, user.createdBy],
      {
        [UNIQUE_VIOLATION]: (cause) =>
          new StaffStoreError('STAFF_USER_EXISTS', `the username ${user.username} is taken`, { cause }),
      },
    );
    return userOf(result.rows[0] as UserRow);
  }

  async userByName(username: string): Promise<StaffUser | undefined> {
    // A name that cannot exist (a login form's junk) is simply not found.
    if (typeof username !== 'string' || !isValidUsername(username)) return undefined;
    const { rows } = await this.#query<UserRow>(
      'reading a user',
      `SELECT ${USER_COLUMNS} FROM staff_users WHERE username = $1`,
      [username],
    );
    return rows[0] === undefined ? undefined : userOf(rows[0]);
  }

  async userById(id: number): Promise<StaffUser | undefined> {
    if (!Number.isSafeInteger(id) || id < 1) return undefined;
    const { rows } = await this.#query<UserRow>(
      'reading a user',
      `SELECT ${USER_COLUMNS} FROM staff_users WHERE id = $1`,
      [id],
    );
    return rows[0] === undefined ? undefined : userOf(rows[0]);
  }

  async listUsers(): Promise<StaffUser[]> {
    const { rows } = await this.#query<UserRow>(
      'listing users',
      // COLLATE "C": byte order, as SQLite's BINARY, so both engines list in the same order.
      `SELECT ${USER_COLUMNS} FROM staff_users ORDER BY username COLLATE "C"`,
    );
    return rows.map(userOf);
  }

  async setDisabled(userId: number, disabled: boolean, at: number): Promise<void> {
    checkUserId(userId);
    checkTime(at, 'at');
    // Disabling again keeps the first time it was disabled.
    await this.#oneUser(
      'disabling a user',
      userId,
      disabled
        ? 'UPDATE staff_users SET disabled_at = coalesce(disabled_at, $2) WHERE id = $1'
        : 'UPDATE staff_users SET disabled_at = NULL WHERE id = $1',
      disabled ? [at] : [],
    );
  }

  async setPasswordHash(userId: number, passwordHash: string, at: number): Promise<void> {
    checkUserId(userId);
    checkPasswordHash(passwordHash);
    checkTime(at, 'at');
    await this.#oneUser(
      'setting a password',
      userId,
      'UPDATE staff_users SET password_hash = $2, password_changed_at = $3 WHERE id = $1',
      [passwordHash, at],
    );
  }

  async setTotpSecret(userId: number, secret: string, at: number): Promise<void> {
    checkUserId(userId);
    checkTotpSecret(secret);
    checkTime(at, 'at');
    await this.#oneUser(
      'starting TOTP enrolment',
      userId,
      `UPDATE staff_users SET totp_secret = $2, totp_confirmed_at = NULL, totp_last_step = NULL, totp_changed_at = $3
       WHERE id = $1`,
      [secret, at],
    );
  }

  async confirmTotp(userId: number, at: number): Promise<void> {
    checkUserId(userId);
    checkTime(at, 'at');
    const result = await this.#query(
      'confirming TOTP',
      'UPDATE staff_users SET totp_confirmed_at = $2 WHERE id = $1 AND totp_secret IS NOT NULL',
      [userId, at],
    );
    if (result.rowCount === 1) return;
    if ((await this.userById(userId)) === undefined) throw unknownUser(userId);
    throw new StaffStoreError('STAFF_TOTP_NOT_ENROLLED', `user ${userId} has no TOTP secret to confirm`);
  }

  async clearTotp(userId: number, at: number): Promise<void> {
    checkUserId(userId);
    checkTime(at, 'at');
    await this.#oneUser(
      'clearing TOTP',
      userId,
      `UPDATE staff_users SET totp_secret = NULL, totp_confirmed_at = NULL, totp_last_step = NULL, totp_changed_at = $2
       WHERE id = $1`,
      [at],
    );
  }

  async useTotpStep(userId: number, step: number): Promise<boolean> {
    checkUserId(userId);
    checkStep(step);
    const result = await this.#query(
      'using a TOTP step',
      `UPDATE staff_users SET totp_last_step = $2
       WHERE id = $1 AND totp_secret IS NOT NULL AND (totp_last_step IS NULL OR totp_last_step < $2)`,
      [userId, step],
    );
    return result.rowCount === 1;
  }

  async recordLoginFailure(userId: number, at: number, lockedUntil?: number): Promise<number> {
    checkUserId(userId);
    checkTime(at, 'at');
    if (lockedUntil !== undefined) checkTime(lockedUntil, 'lockedUntil');
    // The lock only ever moves later: a failure counted late (a slow request) cannot shorten a lock.
    const { rows } = await this.#query<{ failed_logins: number }>(
      'counting a failed login',
      `UPDATE staff_users SET failed_logins = failed_logins + 1, last_failed_at = $2,
         locked_until = CASE WHEN $3::bigint IS NULL THEN locked_until
                             ELSE greatest(coalesce(locked_until, 0), $3::bigint) END
       WHERE id = $1 RETURNING failed_logins`,
      [userId, at, lockedUntil ?? null],
    );
    if (rows[0] === undefined) throw unknownUser(userId);
    return rows[0].failed_logins;
  }

  async clearLoginFailures(userId: number): Promise<void> {
    checkUserId(userId);
    await this.#oneUser(
      'clearing failed logins',
      userId,
      'UPDATE staff_users SET failed_logins = 0, locked_until = NULL WHERE id = $1',
      [],
    );
  }

  async createSession(session: Omit<StaffSession, 'revokedAt'>): Promise<void> {
    checkNewSession(session);
    await this.#query(
      'creating a session',
      `INSERT INTO staff_sessions (id_hash, user_id, stage, created_at, last_seen_at, expires_at, csrf_secret)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        session.idHash,
        session.userId,
        session.stage,
        session.createdAt,
        session.lastSeenAt,
        session.expiresAt,
        session.csrfSecret,
      ],
      {
        [UNIQUE_VIOLATION]: (cause) =>
          new StaffStoreError('STAFF_SESSION_EXISTS', 'a session with this id hash exists', { cause }),
        [FOREIGN_KEY_VIOLATION]: (cause) => unknownUser(session.userId, cause),
      },
    );
  }

  async session(idHash: string): Promise<StaffSession | undefined> {
    if (typeof idHash !== 'string') return undefined;
    const { rows } = await this.#query<SessionRow>(
      'reading a session',
      `SELECT ${SESSION_COLUMNS} FROM staff_sessions WHERE id_hash = $1`,
      [idHash],
    );
    return rows[0] === undefined ? undefined : sessionOf(rows[0]);
  }

  async touchSession(idHash: string, at: number): Promise<void> {
    checkIdHash(idHash);
    checkTime(at, 'at');
    // Never moves back (two requests of one browser finish out of order).
    await this.#query(
      'touching a session',
      'UPDATE staff_sessions SET last_seen_at = greatest(last_seen_at, $2) WHERE id_hash = $1 AND revoked_at IS NULL',
      [idHash, at],
    );
  }

  async completeSession(idHash: string, at: number): Promise<void> {
    checkIdHash(idHash);
    checkTime(at, 'at');
    const result = await this.#query(
      'completing a session',
      `UPDATE staff_sessions SET stage = 'complete', last_seen_at = greatest(last_seen_at, $2)
       WHERE id_hash = $1 AND revoked_at IS NULL AND expires_at > $2`,
      [idHash, at],
    );
    if (result.rowCount === 0) throw sessionEnded();
  }

  async revokeSession(idHash: string, at: number): Promise<void> {
    checkIdHash(idHash);
    checkTime(at, 'at');
    await this.#query(
      'revoking a session',
      'UPDATE staff_sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL',
      [idHash, at],
    );
  }

  async revokeSessionsOf(userId: number, at: number): Promise<number> {
    checkUserId(userId);
    checkTime(at, 'at');
    const result = await this.#query(
      'revoking sessions',
      'UPDATE staff_sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2',
      [userId, at],
    );
    return result.rowCount ?? 0;
  }

  async pruneSessions(before: number): Promise<number> {
    checkTime(before, 'before');
    const result = await this.#query(
      'pruning sessions',
      'DELETE FROM staff_sessions WHERE expires_at < $1 OR revoked_at < $1',
      [before],
    );
    return result.rowCount ?? 0;
  }

  async addToCareTeam(mrn: string, userId: number, by: string, at: number): Promise<void> {
    checkMrn(mrn);
    checkUserId(userId);
    checkActor(by, 'by');
    checkTime(at, 'at');
    await this.#query(
      'adding to a care team',
      'INSERT INTO care_team (mrn, user_id, added_by, added_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
      [mrn, userId, by, at],
      { [FOREIGN_KEY_VIOLATION]: (cause) => unknownUser(userId, cause) },
    );
  }

  async removeFromCareTeam(mrn: string, userId: number): Promise<void> {
    checkMrn(mrn);
    checkUserId(userId);
    await this.#query('removing from a care team', 'DELETE FROM care_team WHERE mrn = $1 AND user_id = $2', [
      mrn,
      userId,
    ]);
  }

  async patientsOf(userId: number): Promise<string[]> {
    if (!Number.isSafeInteger(userId) || userId < 1) return [];
    const { rows } = await this.#query<{ mrn: string }>(
      'reading a care list',
      'SELECT mrn FROM care_team WHERE user_id = $1 ORDER BY mrn COLLATE "C"',
      [userId],
    );
    return rows.map((r) => r.mrn);
  }

  async careTeamOf(mrn: string): Promise<StaffUser[]> {
    if (typeof mrn !== 'string') return [];
    const { rows } = await this.#query<UserRow>(
      'reading a care team',
      `SELECT ${USER_COLUMNS.split(', ')
        .map((c) => `u.${c}`)
        .join(', ')}
       FROM care_team c JOIN staff_users u ON u.id = c.user_id WHERE c.mrn = $1 ORDER BY u.username COLLATE "C"`,
      [mrn],
    );
    return rows.map(userOf);
  }

  /** Stops using the database; a pool the caller gave stays theirs to end. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#pool.off('error', this.#poolError);
    if (this.#ownsPool) await this.#pool.end();
  }

  /** An UPDATE of one user (`$1` is the id); none changed means the user does not exist. */
  async #oneUser(what: string, userId: number, text: string, values: readonly unknown[]): Promise<void> {
    const result = await this.#query(what, text, [userId, ...values]);
    if (result.rowCount === 0) throw unknownUser(userId);
  }

  async #query<R extends object>(
    what: string,
    text: string,
    values: readonly unknown[] = [],
    constraints: Readonly<Record<string, (cause: unknown) => StaffStoreError>> = {},
  ): Promise<pg.QueryResult<R & pg.QueryResultRow>> {
    if (this.#closed) {
      throw new ClinicStoreError(
        'CLINIC_STORE_CLOSED',
        `${what}: the clinic database was used after close()`,
      );
    }
    try {
      return await this.#pool.query<R & pg.QueryResultRow>(text, [...values]);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const mapped = typeof code === 'string' ? constraints[code] : undefined;
      if (mapped !== undefined) throw mapped(error);
      throw pgErrorFrom(error, what);
    }
  }
}

function unknownUser(userId: number, cause?: unknown): StaffStoreError {
  return new StaffStoreError('STAFF_USER_UNKNOWN', `no user has id ${userId}`, { cause });
}

function sessionEnded(): StaffStoreError {
  return new StaffStoreError('STAFF_SESSION_ENDED', 'the session is unknown, revoked or past its end');
}
