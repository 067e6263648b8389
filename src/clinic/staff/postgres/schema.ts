/**
 * The staff tables on PostgreSQL, in the clinic's database, as numbered migrations on their own track
 * (`staff_schema`), apart from the clinic record's (`clinic_schema`, src/clinic/storage/postgres/schema.ts):
 * the dashboard and the intake are released apart, and neither must refuse the other's newer tables. Version n
 * is reached by applying STAFF_MIGRATIONS[0..n-1] in order; a released migration is never edited.
 *
 * Times are epoch milliseconds in `bigint` columns, the same numbers the SQLite engine stores.
 */
export const STAFF_MIGRATIONS: readonly (readonly string[])[] = [
  [
    // Never deleted, only disabled; an identity column never reuses an id, so an old session or audit entry
    // cannot come to name somebody else.
    `CREATE TABLE staff_users (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      username text NOT NULL UNIQUE,
      role text NOT NULL CHECK (role IN ('admin', 'clinician')),
      disabled_at bigint,
      password_hash text NOT NULL,
      password_changed_at bigint NOT NULL,
      totp_secret text,
      totp_confirmed_at bigint,
      totp_last_step bigint,
      totp_changed_at bigint,
      failed_logins integer NOT NULL DEFAULT 0,
      last_failed_at bigint,
      locked_until bigint,
      created_at bigint NOT NULL,
      created_by text NOT NULL,
      CHECK (totp_confirmed_at IS NULL OR totp_secret IS NOT NULL)
    )`,
    // Server-side sessions by the SHA-256 of their id: shared by every dashboard process, and a copy of the
    // database logs nobody in.
    `CREATE TABLE staff_sessions (
      id_hash text PRIMARY KEY,
      user_id bigint NOT NULL REFERENCES staff_users (id),
      stage text NOT NULL CHECK (stage IN ('password', 'complete')),
      created_at bigint NOT NULL,
      last_seen_at bigint NOT NULL,
      expires_at bigint NOT NULL,
      revoked_at bigint,
      csrf_secret text NOT NULL
    )`,
    'CREATE INDEX staff_sessions_live_by_user ON staff_sessions (user_id) WHERE revoked_at IS NULL',
    'CREATE INDEX staff_sessions_by_end ON staff_sessions (expires_at)',
    `CREATE TABLE care_team (
      mrn text NOT NULL,
      user_id bigint NOT NULL REFERENCES staff_users (id),
      added_by text NOT NULL,
      added_at bigint NOT NULL,
      PRIMARY KEY (mrn, user_id)
    )`,
    'CREATE INDEX care_team_by_user ON care_team (user_id, mrn)',
  ],
];

export const STAFF_SCHEMA_VERSION = STAFF_MIGRATIONS.length;
