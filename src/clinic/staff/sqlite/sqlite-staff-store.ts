import type { SqliteDatabase } from '../../../store/encrypted-database.js';
import { type Clock, systemClock } from '../../../util/clock.js';
import { ClinicStoreError } from '../../storage/errors.js';
import { clinicErrorFrom, openClinicDatabase } from '../../storage/sqlite/database.js';
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
import { migrateStaff } from './migrations.js';

export interface SqliteStaffStoreOptions {
  /** The clinic's database file (the one SqliteClinicStore opens); made, with its key check, if missing. */
  readonly path: string;
  /** The clinic database's raw 256-bit key (from a KeyProvider, src/store/keys.ts). */
  readonly key: Uint8Array;
  /** Stamps the migration record only: every other time is given by the caller. Default the system clock. */
  readonly clock?: Clock;
  /** How long a write waits for another connection (the intake's) to finish its write, ms. Default 5 s. */
  readonly busyTimeoutMs?: number;
  /** The page cache, KiB. Default 2 MiB (staff tables are small). */
  readonly cacheKib?: number;
}

/**
 * The StaffStore (src/clinic/staff/staff-store.ts has the contract) in the clinic's encrypted SQLite file.
 *
 * It opens its own connection to the same file as SqliteClinicStore, through the same opener
 * (src/clinic/storage/sqlite/database.ts: same cipher, key check, WAL, synchronous FULL, foreign keys on), so
 * the staff, their sessions and the care teams are encrypted at rest like the readings. The two connections
 * coexist through WAL (https://www.sqlite.org/wal.html: readers do not block the writer, nor the writer
 * readers); writes from either wait for the other's (busy timeout), and every write here is one statement or
 * one IMMEDIATE transaction, so none holds the lock for long or upgrades a read lock mid-transaction.
 *
 * better-sqlite3 is synchronous: each method does its work on the caller's turn of the event loop, so calls in
 * one process never interleave; across processes, `useTotpStep` is still one conditional UPDATE, and SQLite's
 * write lock makes it a compare-and-set.
 */
export class SqliteStaffStore implements StaffStore {
  private closed = false;
  private readonly s: ReturnType<typeof prepare>;

  private constructor(private readonly db: SqliteDatabase) {
    this.s = prepare(db);
  }

  static async open(options: SqliteStaffStoreOptions): Promise<SqliteStaffStore> {
    const db = openClinicDatabase(options.path, options.key, {
      cacheKib: options.cacheKib ?? 2_048,
      busyTimeoutMs: options.busyTimeoutMs ?? 5_000,
    });
    try {
      migrateStaff(db, (options.clock ?? systemClock).now());
      return new SqliteStaffStore(db);
    } catch (error) {
      db.close();
      throw staffErrorFrom(error, `opening the staff tables in ${options.path}`);
    }
  }

  /** Runs `work` now (synchronously) and settles the promise with its result or its typed error. */
  private async run<T>(what: string, work: () => T): Promise<T> {
    if (this.closed)
      throw new ClinicStoreError('CLINIC_STORE_CLOSED', `${what}: the clinic database is closed`);
    try {
      return work();
    } catch (error) {
      throw staffErrorFrom(error, what);
    }
  }

  async addUser(user: NewStaffUser): Promise<StaffUser> {
    checkNewUser(user);
    return this.run('adding a user', () => {
      try {
        return userOf(
          this.s.insertUser.get(
            user.username,
            user.role,
            user.passwordHash,
            user.at,
            user.at,
            user.createdBy,
          ) as UserRow,
        );
      } catch (error) {
        if ((error as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
          throw new StaffStoreError('STAFF_USER_EXISTS', `the username ${user.username} is taken`, {
            cause: error,
          });
        }
        throw error;
      }
    });
  }

  async userByName(username: string): Promise<StaffUser | undefined> {
    // A name that cannot exist (a login form's junk) is simply not found.
    if (typeof username !== 'string' || !isValidUsername(username)) return undefined;
    return this.run('reading a user', () => {
      const row = this.s.userByName.get(username) as UserRow | undefined;
      return row === undefined ? undefined : userOf(row);
    });
  }

  async userById(id: number): Promise<StaffUser | undefined> {
    if (!Number.isSafeInteger(id) || id < 1) return undefined;
    return this.run('reading a user', () => {
      const row = this.s.userById.get(id) as UserRow | undefined;
      return row === undefined ? undefined : userOf(row);
    });
  }

  async listUsers(): Promise<StaffUser[]> {
    return this.run('listing users', () => (this.s.listUsers.all() as UserRow[]).map(userOf));
  }

  async setDisabled(userId: number, disabled: boolean, at: number): Promise<void> {
    checkUserId(userId);
    checkTime(at, 'at');
    await this.run('disabling a user', () =>
      this.changed(userId, disabled ? this.s.disable.run(at, userId) : this.s.enable.run(userId)),
    );
  }

  async setPasswordHash(userId: number, passwordHash: string, at: number): Promise<void> {
    checkUserId(userId);
    checkPasswordHash(passwordHash);
    checkTime(at, 'at');
    await this.run('setting a password', () =>
      this.changed(userId, this.s.setPassword.run(passwordHash, at, userId)),
    );
  }

  async setTotpSecret(userId: number, secret: string, at: number): Promise<void> {
    checkUserId(userId);
    checkTotpSecret(secret);
    checkTime(at, 'at');
    await this.run('starting TOTP enrolment', () =>
      this.changed(userId, this.s.setTotp.run(secret, at, userId)),
    );
  }

  async confirmTotp(userId: number, at: number): Promise<void> {
    checkUserId(userId);
    checkTime(at, 'at');
    await this.run('confirming TOTP', () => {
      if (this.s.confirmTotp.run(at, userId).changes === 1) return;
      const row = this.s.userById.get(userId) as UserRow | undefined;
      if (row === undefined) throw unknownUser(userId);
      throw new StaffStoreError('STAFF_TOTP_NOT_ENROLLED', `user ${userId} has no TOTP secret to confirm`);
    });
  }

  async clearTotp(userId: number, at: number): Promise<void> {
    checkUserId(userId);
    checkTime(at, 'at');
    await this.run('clearing TOTP', () => this.changed(userId, this.s.clearTotp.run(at, userId)));
  }

  async useTotpStep(userId: number, step: number): Promise<boolean> {
    checkUserId(userId);
    checkStep(step);
    // The compare-and-set: one statement, so no other write can come between the comparison and the update.
    return this.run('using a TOTP step', () => this.s.useStep.run({ step, userId }).changes === 1);
  }

  async recordLoginFailure(userId: number, at: number, lockedUntil?: number): Promise<number> {
    checkUserId(userId);
    checkTime(at, 'at');
    if (lockedUntil !== undefined) checkTime(lockedUntil, 'lockedUntil');
    return this.run('counting a failed login', () => {
      const row = this.s.recordFailure.get({ at, lockedUntil: lockedUntil ?? null, userId }) as
        | { failed_logins: number }
        | undefined;
      if (row === undefined) throw unknownUser(userId);
      return row.failed_logins;
    });
  }

  async clearLoginFailures(userId: number): Promise<void> {
    checkUserId(userId);
    await this.run('clearing failed logins', () => this.changed(userId, this.s.clearFailures.run(userId)));
  }

  async createSession(session: Omit<StaffSession, 'revokedAt'>): Promise<void> {
    checkNewSession(session);
    await this.run('creating a session', () => {
      try {
        this.s.insertSession.run(
          session.idHash,
          session.userId,
          session.stage,
          session.createdAt,
          session.lastSeenAt,
          session.expiresAt,
          session.csrfSecret,
        );
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          throw new StaffStoreError('STAFF_SESSION_EXISTS', 'a session with this id hash exists', {
            cause: error,
          });
        }
        if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw unknownUser(session.userId);
        throw error;
      }
    });
  }

  async session(idHash: string): Promise<StaffSession | undefined> {
    if (typeof idHash !== 'string') return undefined;
    return this.run('reading a session', () => {
      const row = this.s.session.get(idHash) as SessionRow | undefined;
      return row === undefined ? undefined : sessionOf(row);
    });
  }

  async touchSession(idHash: string, at: number): Promise<void> {
    checkIdHash(idHash);
    checkTime(at, 'at');
    await this.run('touching a session', () => this.s.touchSession.run(at, idHash));
  }

  async completeSession(idHash: string, at: number): Promise<void> {
    checkIdHash(idHash);
    checkTime(at, 'at');
    await this.run('completing a session', () => {
      if (this.s.completeSession.run({ at, idHash }).changes === 0) throw sessionEnded();
    });
  }

  async revokeSession(idHash: string, at: number): Promise<void> {
    checkIdHash(idHash);
    checkTime(at, 'at');
    await this.run('revoking a session', () => this.s.revokeSession.run(at, idHash));
  }

  async revokeSessionsOf(userId: number, at: number): Promise<number> {
    checkUserId(userId);
    checkTime(at, 'at');
    return this.run('revoking sessions', () => this.s.revokeSessionsOf.run({ at, userId }).changes);
  }

  async pruneSessions(before: number): Promise<number> {
    checkTime(before, 'before');
    return this.run('pruning sessions', () => this.s.pruneSessions.run({ before }).changes);
  }

  async addToCareTeam(mrn: string, userId: number, by: string, at: number): Promise<void> {
    checkMrn(mrn);
    checkUserId(userId);
    checkActor(by, 'by');
    checkTime(at, 'at');
    await this.run('adding to a care team', () => {
      try {
        this.s.addCare.run(mrn, userId, by, at);
      } catch (error) {
        if ((error as { code?: unknown }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw unknownUser(userId);
        throw error;
      }
    });
  }

  async removeFromCareTeam(mrn: string, userId: number): Promise<void> {
    checkMrn(mrn);
    checkUserId(userId);
    await this.run('removing from a care team', () => this.s.removeCare.run(mrn, userId));
  }

  async patientsOf(userId: number): Promise<string[]> {
    if (!Number.isSafeInteger(userId) || userId < 1) return [];
    return this.run('reading a care list', () => this.s.patientsOf.pluck().all(userId) as string[]);
  }

  async careTeamOf(mrn: string): Promise<StaffUser[]> {
    if (typeof mrn !== 'string') return [];
    return this.run('reading a care team', () => (this.s.careTeamOf.all(mrn) as UserRow[]).map(userOf));
  }

  /** Closes this connection; the clinic store's, if any, stays open. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      this.db.close();
    } catch (error) {
      throw clinicErrorFrom(error, 'closing the staff connection to the clinic database');
    }
  }

  /** An update that names one user changed nothing: the user does not exist. */
  private changed(userId: number, result: { changes: number }): void {
    if (result.changes === 0) throw unknownUser(userId);
  }
}

function unknownUser(userId: number): StaffStoreError {
  return new StaffStoreError('STAFF_USER_UNKNOWN', `no user has id ${userId}`);
}

function sessionEnded(): StaffStoreError {
  return new StaffStoreError('STAFF_SESSION_ENDED', 'the session is unknown, revoked or past its end');
}

function staffErrorFrom(error: unknown, what: string): StaffStoreError | ClinicStoreError {
  return error instanceof StaffStoreError ? error : clinicErrorFrom(error, what);
}

function prepare(db: SqliteDatabase) {
  return {
    insertUser: db.prepare(
      `INSERT INTO staff_users (username, role, password_hash, password_changed_at, created_at, created_by)
       VALUES (?, ?, ?, ?, ?, ?) RETURNING ${USER_COLUMNS}`,
    ),
    userByName: db.prepare(`SELECT ${USER_COLUMNS} FROM staff_users WHERE username = ?`),
    userById: db.prepare(`SELECT ${USER_COLUMNS} FROM staff_users WHERE id = ?`),
    listUsers: db.prepare(`SELECT ${USER_COLUMNS} FROM staff_users ORDER BY username`),
    // Disabling again keeps the first time it was disabled.
    disable: db.prepare('UPDATE staff_users SET disabled_at = coalesce(disabled_at, ?) WHERE id = ?'),
    enable: db.prepare('UPDATE staff_users SET disabled_at = NULL WHERE id = ?'),
    setPassword: db.prepare('UPDATE staff_users SET password_hash = ?, password_changed_at = ? WHERE id = ?'),
    setTotp: db.prepare(
      `UPDATE staff_users SET totp_secret = ?, totp_confirmed_at = NULL, totp_last_step = NULL, totp_changed_at = ?
       WHERE id = ?`,
    ),
    confirmTotp: db.prepare(
      'UPDATE staff_users SET totp_confirmed_at = ? WHERE id = ? AND totp_secret IS NOT NULL',
    ),
    clearTotp: db.prepare(
      `UPDATE staff_users SET totp_secret = NULL, totp_confirmed_at = NULL, totp_last_step = NULL, totp_changed_at = ?
       WHERE id = ?`,
    ),
    useStep: db.prepare(
      `UPDATE staff_users SET totp_last_step = @step
       WHERE id = @userId AND totp_secret IS NOT NULL AND (totp_last_step IS NULL OR totp_last_step < @step)`,
    ),
    // The lock only ever moves later: a failure counted late (a slow request) cannot shorten a lock.
    recordFailure: db.prepare(
      `UPDATE staff_users SET failed_logins = failed_logins + 1, last_failed_at = @at,
         locked_until = CASE WHEN @lockedUntil IS NULL THEN locked_until
                             ELSE max(coalesce(locked_until, 0), @lockedUntil) END
       WHERE id = @userId RETURNING failed_logins`,
    ),
    clearFailures: db.prepare('UPDATE staff_users SET failed_logins = 0, locked_until = NULL WHERE id = ?'),
    insertSession: db.prepare(
      `INSERT INTO staff_sessions (id_hash, user_id, stage, created_at, last_seen_at, expires_at, csrf_secret)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    session: db.prepare(`SELECT ${SESSION_COLUMNS} FROM staff_sessions WHERE id_hash = ?`),
    // Never moves back (two requests of one browser finish out of order).
    touchSession: db.prepare(
      'UPDATE staff_sessions SET last_seen_at = max(last_seen_at, ?) WHERE id_hash = ? AND revoked_at IS NULL',
    ),
    completeSession: db.prepare(
      `UPDATE staff_sessions SET stage = 'complete', last_seen_at = max(last_seen_at, @at)
       WHERE id_hash = @idHash AND revoked_at IS NULL AND expires_at > @at`,
    ),
    revokeSession: db.prepare(
      'UPDATE staff_sessions SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL',
    ),
    revokeSessionsOf: db.prepare(
      'UPDATE staff_sessions SET revoked_at = @at WHERE user_id = @userId AND revoked_at IS NULL AND expires_at > @at',
    ),
    pruneSessions: db.prepare(
      'DELETE FROM staff_sessions WHERE expires_at < @before OR revoked_at < @before',
    ),
    addCare: db.prepare(
      'INSERT INTO care_team (mrn, user_id, added_by, added_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
    ),
    removeCare: db.prepare('DELETE FROM care_team WHERE mrn = ? AND user_id = ?'),
    patientsOf: db.prepare('SELECT mrn FROM care_team WHERE user_id = ? ORDER BY mrn'),
    careTeamOf: db.prepare(
      `SELECT ${USER_COLUMNS.split(', ')
        .map((c) => `u.${c}`)
        .join(', ')}
       FROM care_team c JOIN staff_users u ON u.id = c.user_id WHERE c.mrn = ? ORDER BY u.username`,
    ),
  };
}
