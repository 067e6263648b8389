import type { SqliteDatabase } from '../../../store/encrypted-database.js';
import { StaffStoreError } from '../errors.js';

/**
 * The staff tables in the clinic's SQLite file, on their own migration track (`staff_schema_version`), apart
 * from the clinic record's (`schema_version`, src/clinic/storage/sqlite/migrations.ts): the dashboard and the
 * intake are released apart, and neither must refuse the other's newer tables. A migration, once released, is
 * never edited; a change is a new one. Times are epoch milliseconds in INTEGER columns.
 */
export const STAFF_MIGRATIONS: readonly { readonly version: number; readonly sql: string }[] = [
  {
    version: 1,
    sql: `
      -- Staff are never deleted (audit entries and care teams name them), only disabled. AUTOINCREMENT: an id is
      -- never reused, so an old session or audit entry cannot come to name somebody else.
      CREATE TABLE staff_users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('admin', 'clinician')),
        disabled_at INTEGER,
        password_hash TEXT NOT NULL,           -- argon2id PHC string
        password_changed_at INTEGER NOT NULL,
        totp_secret TEXT,                      -- base32; NULL until enrolment starts
        totp_confirmed_at INTEGER,
        totp_last_step INTEGER,                -- the last RFC 6238 time step accepted
        totp_changed_at INTEGER,
        failed_logins INTEGER NOT NULL DEFAULT 0,
        last_failed_at INTEGER,
        locked_until INTEGER,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        CHECK (totp_confirmed_at IS NULL OR totp_secret IS NOT NULL)
      );
      -- Server-side sessions by the SHA-256 of their id: a copy of the database logs nobody in.
      CREATE TABLE staff_sessions (
        id_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES staff_users (id),
        stage TEXT NOT NULL CHECK (stage IN ('password', 'complete')),
        created_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER,
        csrf_secret TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX staff_sessions_live_by_user ON staff_sessions (user_id) WHERE revoked_at IS NULL;
      CREATE INDEX staff_sessions_by_end ON staff_sessions (expires_at);
      -- Which clinicians may see which patient record.
      CREATE TABLE care_team (
        mrn TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES staff_users (id),
        added_by TEXT NOT NULL,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (mrn, user_id)
      ) WITHOUT ROWID;
      CREATE INDEX care_team_by_user ON care_team (user_id, mrn);
    `,
  },
];

export const STAFF_SCHEMA_VERSION = STAFF_MIGRATIONS.at(-1)?.version ?? 0;

export function migrateStaff(db: SqliteDatabase, now: number): { from: number; to: number } {
  // One IMMEDIATE transaction reads the version and applies what is missing, so two processes opening the
  // file at once cannot both apply a migration (the second waits for the write lock, then finds it done).
  return db
    .transaction(() => {
      db.exec(
        'CREATE TABLE IF NOT EXISTS staff_schema_version (version INTEGER NOT NULL, applied_ms INTEGER NOT NULL)',
      );
      const row = db.prepare('SELECT max(version) AS version FROM staff_schema_version').get() as {
        version: number | null;
      };
      const from = row.version ?? 0;
      if (from > STAFF_SCHEMA_VERSION) {
        throw new StaffStoreError(
          'STAFF_SCHEMA_TOO_NEW',
          `the staff tables have schema version ${from}; this software knows up to ${STAFF_SCHEMA_VERSION} (was it downgraded?)`,
        );
      }
      const insert = db.prepare('INSERT INTO staff_schema_version (version, applied_ms) VALUES (?, ?)');
      for (const migration of STAFF_MIGRATIONS) {
        if (migration.version <= from) continue;
        db.exec(migration.sql);
        insert.run(migration.version, now);
      }
      return { from, to: Math.max(from, STAFF_SCHEMA_VERSION) };
    })
    .immediate();
}
