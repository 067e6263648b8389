import type { SqliteDatabase } from './encrypted-database.js';
import { StoreError } from './errors.js';

/**
 * Schema migrations, applied in order inside one transaction each and recorded in schema_version. A store
 * written by a newer gateway is refused (STORE_SCHEMA_TOO_NEW) rather than guessed at.
 */
export const MIGRATIONS: readonly { readonly version: number; readonly sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, -- append order; per-device order within a lane follows it
        id TEXT NOT NULL UNIQUE,               -- measurement id (or gap id): idempotent append
        kind INTEGER NOT NULL,                 -- 0 measurement, 1 gap record
        lane INTEGER NOT NULL,                 -- 0 alert, 1 live, 2 backlog (lease order)
        device TEXT NOT NULL,
        stable INTEGER NOT NULL,               -- 1 when the id is derived from the device's timestamp
        measured_at TEXT NOT NULL,
        appended_ms INTEGER NOT NULL,
        size INTEGER NOT NULL,
        body BLOB NOT NULL,
        lease INTEGER                          -- lease id while in flight, NULL when pending
      );
      CREATE INDEX outbox_pending ON outbox (lane, seq) WHERE lease IS NULL;
      CREATE INDEX outbox_appended ON outbox (appended_ms);
      -- Ids of acknowledged readings that a device may send again (stored records), so a re-sent record is not
      -- forwarded twice. Pruned after the retention window.
      CREATE TABLE acked (id TEXT PRIMARY KEY, acked_ms INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    sql: `
      -- Records the uplink could not encode (a bug or a corrupt row): moved here, never deleted, so an
      -- operator can inspect them and nothing blocks the queue behind them.
      CREATE TABLE quarantine (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        device TEXT NOT NULL,
        body BLOB NOT NULL,
        reason TEXT NOT NULL,
        quarantined_ms INTEGER NOT NULL
      );
    `,
  },
  {
    version: 3,
    sql: `
      -- Enrolled devices (src/store/device-registry.ts): only these are ever connected and read. The address is
      -- PHI-adjacent (it identifies a patient's device), so it lives only here, inside the encrypted store.
      CREATE TABLE devices (
        id TEXT PRIMARY KEY,                   -- 'd1-' + 16 random hex digits, never derived from the address
        address TEXT NOT NULL UNIQUE,          -- the backend's handle (a Bluetooth address, upper case)
        driver TEXT NOT NULL,                  -- driver id, e.g. 'sig/blood-pressure'
        category TEXT NOT NULL,                -- the driver's profile, e.g. 'blood-pressure'
        label TEXT,                            -- the user's name for it; may identify the patient
        model TEXT,                            -- Device Information manufacturer and model, when read
        bonded INTEGER NOT NULL,               -- 1 when the adapter holds a bond (keys) with the device
        enrolled_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        last_seen_ms INTEGER
      ) WITHOUT ROWID;
      -- Ids of forgotten devices: never handed out again, so a reading's device id names one device forever.
      CREATE TABLE retired_device_ids (id TEXT PRIMARY KEY, retired_ms INTEGER NOT NULL) WITHOUT ROWID;
    `,
  },
  {
    version: 4,
    sql: `
      -- 1. Each body names its format (src/store/record-codec.ts): 0 JSON, 1 the wire format's batch item (CBOR),
      --    so the uplink splices stored items into a batch without decoding and encoding them again.
      -- 2. Ids are unique only where a duplicate can arrive: ids derived from the device's timestamp (stable = 1,
      --    a stored record the device may send again). Other ids are random (src/model/ids.ts) and cannot
      --    collide; leaving them out of the unique index spares every live reading an insert and a delete at a
      --    random place in that index (the drain of 1 Hz oximeter readings was bound by it).
      -- SQLite cannot drop a column's UNIQUE, so the table is rebuilt; the AUTOINCREMENT counter is carried
      -- over, so no seq is ever handed out twice (the quarantine is keyed by seq).
      CREATE TABLE outbox_v4 (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL,
        kind INTEGER NOT NULL,
        lane INTEGER NOT NULL,
        device TEXT NOT NULL,
        stable INTEGER NOT NULL,
        measured_at TEXT NOT NULL,
        appended_ms INTEGER NOT NULL,
        size INTEGER NOT NULL,
        format INTEGER NOT NULL DEFAULT 0,
        body BLOB NOT NULL,
        lease INTEGER
      );
      INSERT INTO outbox_v4 (seq, id, kind, lane, device, stable, measured_at, appended_ms, size, format, body, lease)
        SELECT seq, id, kind, lane, device, stable, measured_at, appended_ms, size, 0, body, lease FROM outbox;
      DELETE FROM sqlite_sequence WHERE name = 'outbox_v4';
      INSERT INTO sqlite_sequence (name, seq)
        SELECT 'outbox_v4', max(seq) FROM (
          SELECT seq FROM sqlite_sequence WHERE name = 'outbox'
          UNION ALL SELECT max(seq) FROM quarantine
          UNION ALL SELECT 0
        );
      DROP TABLE outbox;
      ALTER TABLE outbox_v4 RENAME TO outbox;
      CREATE UNIQUE INDEX outbox_stable_id ON outbox (id) WHERE stable = 1;
      CREATE INDEX outbox_pending ON outbox (lane, seq) WHERE lease IS NULL;
      CREATE INDEX outbox_appended ON outbox (appended_ms);
      ALTER TABLE quarantine ADD COLUMN format INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 5,
    sql: `
      -- Damage found at open (src/store/damage.ts): committed readings gone from the store's files. Kept until an
      -- operator acknowledges it (rpm-gateway store acknowledge-damage); until then store status exits non-zero.
      CREATE TABLE damage (
        id INTEGER PRIMARY KEY,
        detected_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,                    -- wal-tail, store-missing, store-corrupt, high-water-*
        lost INTEGER,                          -- upper bound of unacknowledged records lost; NULL = unknown
        first_seq INTEGER,                     -- outbox seqs of the lost records
        last_seq INTEGER,
        first_ms INTEGER,                      -- when they were stored
        last_ms INTEGER,
        kept_at TEXT,                          -- where the damaged files were kept
        gap_id TEXT,                           -- the gap record sent for it
        acknowledged_ms INTEGER
      );
    `,
  },
  {
    version: 6,
    sql: `
      -- Where each glucose meter's RACP download resumes (src/store/racp-resume.ts): written in the same
      -- transaction as the outbox rows it covers.
      CREATE TABLE racp_resume (
        device TEXT PRIMARY KEY,               -- the enrolled device's id
        sequence INTEGER NOT NULL,             -- the last stored record's sequence number (uint16)
        anchor TEXT,                           -- that record's stable measurement id; NULL without a device time
        updated_ms INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 7,
    sql: `
      -- Settings the hub keeps across restarts that are not in its configuration file (src/store/settings.ts):
      -- today the clinic's per-patient alert limits. Inside the encrypted store, since limits describe a patient.
      CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,                   -- JSON
        updated_ms INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.at(-1)?.version ?? 0;

export function migrate(db: SqliteDatabase, now: number): { from: number; to: number } {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_ms INTEGER NOT NULL)',
  );
  const row = db.prepare('SELECT max(version) AS version FROM schema_version').get() as {
    version: number | null;
  };
  const from = row.version ?? 0;
  if (from > SCHEMA_VERSION) {
    throw new StoreError(
      'STORE_SCHEMA_TOO_NEW',
      `the store has schema version ${from}; this gateway knows up to ${SCHEMA_VERSION} (was it downgraded?)`,
    );
  }
  for (const migration of MIGRATIONS) {
    if (migration.version <= from) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.prepare('INSERT INTO schema_version (version, applied_ms) VALUES (?, ?)').run(
        migration.version,
        now,
      );
    })();
  }
  return { from, to: SCHEMA_VERSION };
}
