import type { SqliteDatabase } from '../../../store/encrypted-database.js';
import { AlarmError } from '../errors.js';

/**
 * The alarm tables in the clinic's SQLite file, on their own migration track (`alarm_schema_version`), apart
 * from the clinic record's and the staff's, as src/clinic/staff/sqlite/migrations.ts explains: the parts are
 * released apart, and none must refuse another's newer tables. A released migration is never edited.
 */
export const ALARM_MIGRATIONS: readonly { readonly version: number; readonly sql: string }[] = [
  {
    version: 1,
    sql: `
      -- A patient's limits as an admin set them: the set (who, when) and its limits. No set: the defaults.
      CREATE TABLE alarm_limit_sets (
        mrn TEXT PRIMARY KEY,
        set_by TEXT NOT NULL,
        set_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE alarm_limits (
        mrn TEXT NOT NULL REFERENCES alarm_limit_sets (mrn) ON DELETE CASCADE,
        code TEXT NOT NULL,
        unit TEXT NOT NULL,
        below REAL,
        above REAL,
        for_ms INTEGER NOT NULL,
        hysteresis REAL NOT NULL,
        priority TEXT NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
        PRIMARY KEY (mrn, code)
      ) WITHOUT ROWID;
      -- Alarms are never deleted: a cleared one is the history a clinician and an audit look back on.
      CREATE TABLE alarms (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        condition_key TEXT NOT NULL,
        mrn TEXT NOT NULL,
        gateway_id TEXT NOT NULL,
        device_id TEXT,
        kind TEXT NOT NULL,
        code TEXT,
        priority TEXT NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
        state TEXT NOT NULL CHECK (state IN ('active', 'latched', 'cleared')),
        late INTEGER NOT NULL CHECK (late IN (0, 1)),
        raised_at INTEGER NOT NULL,
        measured_at INTEGER,
        condition_ended_at INTEGER,
        cleared_at INTEGER,
        acknowledged_by TEXT,
        acknowledged_at INTEGER,
        value REAL,                -- PHI: the database is encrypted; never logged
        unit TEXT,
        details TEXT NOT NULL,     -- JSON
        CHECK ((acknowledged_by IS NULL) = (acknowledged_at IS NULL))
      );
      -- At most one open alarm per condition: an ongoing condition is never told twice.
      CREATE UNIQUE INDEX alarms_open_condition ON alarms (condition_key) WHERE state <> 'cleared';
      CREATE INDEX alarms_by_patient ON alarms (mrn, raised_at);
      CREATE INDEX alarms_by_time ON alarms (raised_at);
      -- The last message from each hub ('' device) and device: the silence timers after a restart.
      CREATE TABLE alarm_contacts (
        gateway_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (gateway_id, device_id)
      ) WITHOUT ROWID;
    `,
  },
];

export const ALARM_SCHEMA_VERSION = ALARM_MIGRATIONS.at(-1)?.version ?? 0;

export function migrateAlarms(db: SqliteDatabase, now: number): { from: number; to: number } {
  // One IMMEDIATE transaction reads the version and applies what is missing, so two processes opening the
  // file at once cannot both apply a migration.
  return db
    .transaction(() => {
      db.exec(
        'CREATE TABLE IF NOT EXISTS alarm_schema_version (version INTEGER NOT NULL, applied_ms INTEGER NOT NULL)',
      );
      const row = db.prepare('SELECT max(version) AS version FROM alarm_schema_version').get() as {
        version: number | null;
      };
      const from = row.version ?? 0;
      if (from > ALARM_SCHEMA_VERSION) {
        throw new AlarmError(
          'ALARM_SCHEMA_TOO_NEW',
          `the alarm tables have schema version ${from}; this software knows up to ${ALARM_SCHEMA_VERSION} (was it downgraded?)`,
        );
      }
      const insert = db.prepare('INSERT INTO alarm_schema_version (version, applied_ms) VALUES (?, ?)');
      for (const migration of ALARM_MIGRATIONS) {
        if (migration.version <= from) continue;
        db.exec(migration.sql);
        insert.run(migration.version, now);
      }
      return { from, to: Math.max(from, ALARM_SCHEMA_VERSION) };
    })
    .immediate();
}
