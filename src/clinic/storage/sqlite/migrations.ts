import type { SqliteDatabase } from '../../../store/encrypted-database.js';
import { ClinicStoreError } from '../errors.js';

/**
 * The clinic database's schema, as numbered migrations applied in order, each in its own transaction with its
 * row in `schema_version`. A database with a version above the last one here was written by newer software:
 * refused (CLINIC_STORE_SCHEMA_TOO_NEW) rather than written with a schema this code does not understand.
 * Times are epoch milliseconds (UTC) in INTEGER columns, as in the ClinicStore interface.
 */
export const CLINIC_MIGRATIONS: readonly { readonly version: number; readonly sql: string }[] = [
  {
    // Version 1 was rewritten before any release (no database with it exists outside tests): what each
    // reading costs at intake was cut to one row per table and one b-tree entry per row where a query allows
    // (measurements: the rowid, the id key, the gateway-time index; observations: one clustered key; the
    // export queue: one rowid row). docs/clinic-intake.md, "Benchmark", has the figures.
    version: 1,
    sql: `
      -- Every measurement the intake stored, once: the UNIQUE id is the exactly-once key (a redelivery, a
      -- restart or a second intake process inserts nothing). seq (the rowid) is commit order and the compact key
      -- the observation and export rows use.
      CREATE TABLE measurements (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        gateway_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        driver TEXT NOT NULL,                  -- id@version
        characteristic TEXT NOT NULL,
        time_text TEXT NOT NULL,               -- Measurement.time as sent (may lack an offset)
        measured_at INTEGER NOT NULL,          -- the resolved instant: attribution and series use it
        time_source TEXT NOT NULL,
        stored INTEGER NOT NULL,               -- 1: the device had stored it (back-filled)
        alert_rule TEXT,
        alert_late INTEGER,
        topic TEXT NOT NULL,                   -- lane: obs or alert
        batch_seq INTEGER NOT NULL,
        sent_at INTEGER NOT NULL,
        signer_serial TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        committed_at INTEGER NOT NULL,
        -- The Measurement's other fields, JSON: with the columns above it is the whole Measurement again
        -- (rows.ts), without storing the id, device, driver, characteristic and time twice.
        rest TEXT NOT NULL
      );
      -- measurementsOf (a patient's gateways over their intervals) and unassigned.
      CREATE INDEX measurements_by_time ON measurements (gateway_id, measured_at);
      -- One row per coded value, for time series per patient and code: patients are gateways over assignment
      -- intervals, so the key is gateway, code and measurement time. The series key is the table's own key
      -- (WITHOUT ROWID: the rows live in that b-tree), so a value costs one b-tree entry, not a row and an index
      -- entry (https://www.sqlite.org/withoutrowid.html). gateway_id and measured_at are copies of the
      -- measurement's: an index covers one table only.
      CREATE TABLE observations (
        gateway_id TEXT NOT NULL,
        code TEXT NOT NULL,
        measured_at INTEGER NOT NULL,
        measurement_seq INTEGER NOT NULL REFERENCES measurements (seq),
        ordinal INTEGER NOT NULL,              -- position in Measurement.observations
        value REAL,                            -- NULL exactly when invalid says why
        unit TEXT NOT NULL,
        invalid TEXT,
        qualifier TEXT,
        PRIMARY KEY (gateway_id, code, measured_at, measurement_seq, ordinal)
      ) WITHOUT ROWID;
      CREATE TABLE gaps (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        gateway_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        count INTEGER NOT NULL,
        reason TEXT NOT NULL,
        topic TEXT NOT NULL,
        batch_seq INTEGER NOT NULL,
        sent_at INTEGER NOT NULL,
        signer_serial TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        committed_at INTEGER NOT NULL,
        body TEXT NOT NULL                     -- the whole Gap, JSON
      );
      CREATE INDEX gaps_by_gateway ON gaps (gateway_id, seq);
      -- Status messages. The status is published retained, so the broker hands the same one again at every
      -- subscription: (gateway, sent, state) identifies one, and a redelivery is not stored twice.
      CREATE TABLE status_events (
        seq INTEGER PRIMARY KEY,
        gateway_id TEXT NOT NULL,
        state TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        signer_serial TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        committed_at INTEGER NOT NULL,
        body TEXT NOT NULL,                    -- the whole GatewayStatus, JSON
        UNIQUE (gateway_id, sent_at, state)
      );
      -- The latest status per gateway, by receipt (not by sent: an offline Last Will is signed at connect time,
      -- before the statuses that follow it).
      CREATE TABLE status_latest (
        gateway_id TEXT PRIMARY KEY,
        event_seq INTEGER NOT NULL REFERENCES status_events (seq),
        received_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      -- Refused messages, bounded (the oldest go, in the committing transaction) so a junk flood cannot fill the
      -- disk; their counts per code are never bounded.
      CREATE TABLE rejections (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: quarantine ids stay unique after deletions
        topic TEXT NOT NULL,
        code TEXT NOT NULL,
        message TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        gateway_id TEXT,
        payload BLOB,                          -- kept only for a retry (quarantine)
        size INTEGER NOT NULL                  -- payload bytes, 0 without one
      );
      CREATE INDEX rejections_quarantined ON rejections (id) WHERE payload IS NOT NULL;
      CREATE TABLE rejection_counts (code TEXT PRIMARY KEY, count INTEGER NOT NULL) WITHOUT ROWID;
      -- Who a gateway's readings belong to, by measurement time: [from_ms, to_ms), open while to_ms is NULL.
      -- Never overlapping per gateway (src/clinic/storage/assignment-rules.ts).
      CREATE TABLE assignments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        gateway_id TEXT NOT NULL,
        mrn TEXT NOT NULL,
        from_ms INTEGER NOT NULL,
        to_ms INTEGER,
        time_zone TEXT,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        CHECK (to_ms IS NULL OR to_ms > from_ms)
      );
      CREATE INDEX assignments_by_gateway ON assignments (gateway_id, from_ms);
      CREATE INDEX assignments_by_mrn ON assignments (mrn, from_ms);
      CREATE UNIQUE INDEX assignments_one_open ON assignments (gateway_id) WHERE to_ms IS NULL;
      -- The FHIR export queue: a measurement waits here (one rowid row, appended in commit order, no other
      -- index) until it is exported or skipped; it then moves to export_done. Failing = attempts > 0.
      CREATE TABLE export_queue (
        measurement_seq INTEGER PRIMARY KEY REFERENCES measurements (seq),
        attempts INTEGER NOT NULL DEFAULT 0,   -- failed attempts so far
        retry_at INTEGER,
        lease_until INTEGER,
        note TEXT                              -- the last error
      );
      -- Settled exports. The device, characteristic and time are copied here so the export policy's "last
      -- exported reading of this stream" is one index lookup (export_done_streams).
      CREATE TABLE export_done (
        measurement_seq INTEGER PRIMARY KEY REFERENCES measurements (seq),
        state TEXT NOT NULL CHECK (state IN ('exported', 'skipped')),
        gateway_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        characteristic TEXT NOT NULL,
        measured_at INTEGER NOT NULL,
        done_at INTEGER NOT NULL,
        note TEXT                              -- why skipped
      );
      CREATE INDEX export_done_streams ON export_done (gateway_id, device_id, characteristic, measured_at)
        WHERE state = 'exported';
    `,
  },
];

export const CLINIC_SCHEMA_VERSION = CLINIC_MIGRATIONS.at(-1)?.version ?? 0;

export function migrateClinic(db: SqliteDatabase, now: number): { from: number; to: number } {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_ms INTEGER NOT NULL)',
  );
  // One write transaction reads the version and applies what is missing, so two processes opening a new
  // database at once cannot both apply a migration.
  return db
    .transaction(() => {
      const row = db.prepare('SELECT max(version) AS version FROM schema_version').get() as {
        version: number | null;
      };
      const from = row.version ?? 0;
      if (from > CLINIC_SCHEMA_VERSION) {
        throw new ClinicStoreError(
          'CLINIC_STORE_SCHEMA_TOO_NEW',
          `the clinic database has schema version ${from}; this software knows up to ${CLINIC_SCHEMA_VERSION} (was it downgraded?)`,
        );
      }
      const insert = db.prepare('INSERT INTO schema_version (version, applied_ms) VALUES (?, ?)');
      for (const migration of CLINIC_MIGRATIONS) {
        if (migration.version <= from) continue;
        db.exec(migration.sql);
        insert.run(migration.version, now);
      }
      return { from, to: CLINIC_SCHEMA_VERSION };
    })
    .immediate();
}
