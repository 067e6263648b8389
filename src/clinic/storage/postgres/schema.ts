/**
 * The clinic database's schema on PostgreSQL, as numbered migrations. Version n is reached by applying
 * MIGRATIONS[0..n-1] in order; a migration, once released, is never edited (a change is a new migration).
 * migrate.ts applies them under an advisory lock. (Migration 1 was rewritten once before its first release, for
 * the intake's write cost: no database with the earlier version exists outside tests.)
 *
 * Times are epoch milliseconds in `bigint` columns (as in the ClinicStore interface), so both engines store
 * the same numbers and no time-zone conversion happens in the database.
 */
export const MIGRATIONS: readonly (readonly string[])[] = [
  [
    // Exactly-once: the measurement id is the primary key; the intake inserts with ON CONFLICT DO NOTHING.
    // `body` is the Measurement as received, so a stored one reads back exactly as the hub sent it. `json`, not
    // `jsonb`: stored as the text it is (only checked to be JSON), no conversion per reading at intake; no
    // query looks inside it (PostgreSQL docs, "JSON Types").
    `CREATE TABLE measurements (
      id text PRIMARY KEY,
      gateway_id text NOT NULL,
      device_id text NOT NULL,
      driver text NOT NULL,
      characteristic text NOT NULL,
      measured_at bigint NOT NULL,
      stored boolean NOT NULL,
      topic text NOT NULL CHECK (topic IN ('obs', 'alert')),
      batch_seq bigint NOT NULL,
      sent_at bigint NOT NULL,
      signer_serial text NOT NULL,
      received_at bigint NOT NULL,
      committed_at bigint NOT NULL,
      body json NOT NULL
    )`,
    // A patient's readings: the gateways assigned to them, over the assignment's interval.
    'CREATE INDEX measurements_by_gateway_time ON measurements (gateway_id, measured_at)',
    // One row per coded value: the time series a chart or the export policy reads, indexed per gateway, code
    // and time (attribution to a patient is by gateway and measurement time against the assignments).
    // No foreign key to measurements, and no key of its own: a foreign key is checked by a trigger per inserted
    // row (PostgreSQL docs, CREATE TABLE, REFERENCES), which cost more than the insert itself; the only writer
    // is the statement that inserts the measurement (INSERT_MEASUREMENTS: observations of the rows it inserted,
    // once each), and measurements are never deleted. The series index is the one every query uses.
    `CREATE TABLE observations (
      measurement_id text NOT NULL,
      position integer NOT NULL,
      gateway_id text NOT NULL,
      code text NOT NULL,
      measured_at bigint NOT NULL,
      value double precision,
      unit text NOT NULL,
      invalid text,
      qualifier text
    )`,
    'CREATE INDEX observations_series ON observations (gateway_id, code, measured_at)',
    `CREATE TABLE gaps (
      seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
      id text PRIMARY KEY,
      gateway_id text NOT NULL,
      topic text NOT NULL,
      batch_seq bigint NOT NULL,
      sent_at bigint NOT NULL,
      signer_serial text NOT NULL,
      received_at bigint NOT NULL,
      committed_at bigint NOT NULL,
      body jsonb NOT NULL
    )`,
    'CREATE INDEX gaps_by_gateway ON gaps (gateway_id, seq)',
    // The status is published retained, so the broker hands the same one again at every subscription:
    // (gateway, sent, state) identifies one, and a redelivery is not stored twice.
    `CREATE TABLE statuses (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      gateway_id text NOT NULL,
      state text NOT NULL,
      sent_at bigint NOT NULL,
      signer_serial text NOT NULL,
      received_at bigint NOT NULL,
      committed_at bigint NOT NULL,
      body jsonb NOT NULL,
      UNIQUE (gateway_id, sent_at, state)
    )`,
    // The latest status is the latest received, not the latest sent: an offline Last Will is signed at
    // connect time, before the statuses that follow it.
    'CREATE INDEX statuses_latest ON statuses (gateway_id, received_at, id)',
    // Dated assignment: [from_at, to_at), open while to_at is null. At most one open interval per gateway;
    // overlaps are refused in the transaction that assigns (under a per-gateway advisory lock).
    `CREATE TABLE assignments (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      gateway_id text NOT NULL,
      mrn text NOT NULL,
      from_at bigint NOT NULL,
      to_at bigint,
      time_zone text,
      created_by text NOT NULL,
      created_at bigint NOT NULL,
      CHECK (to_at IS NULL OR to_at >= from_at)
    )`,
    'CREATE INDEX assignments_by_gateway ON assignments (gateway_id, from_at)',
    'CREATE INDEX assignments_by_mrn ON assignments (mrn)',
    'CREATE UNIQUE INDEX assignments_one_open ON assignments (gateway_id) WHERE to_at IS NULL',
    // Rejected messages: rows bounded (the oldest go), counts never.
    `CREATE TABLE rejections (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      topic text NOT NULL,
      code text NOT NULL,
      message text NOT NULL,
      received_at bigint NOT NULL,
      gateway_id text,
      payload bytea
    )`,
    'CREATE INDEX rejections_quarantined ON rejections (id) WHERE payload IS NOT NULL',
    'CREATE TABLE rejection_counts (code text PRIMARY KEY, count bigint NOT NULL)',
    // The FHIR export queue: one row per measurement. due_at is when it may be leased next (0 at first; the
    // lease's end while leased; the retry time after a failure); attempts counts failed attempts. The attribution columns are copied from the
    // measurement so leasing and thinning read this table alone.
    // No foreign key, for the reason observations has none: INSERT_MEASUREMENTS is its only inserter.
    `CREATE TABLE export_queue (
      measurement_id text PRIMARY KEY,
      gateway_id text NOT NULL,
      device_id text NOT NULL,
      characteristic text NOT NULL,
      measured_at bigint NOT NULL,
      state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'failing', 'exported', 'skipped')),
      attempts integer NOT NULL DEFAULT 0,
      due_at bigint NOT NULL DEFAULT 0,
      last_error text,
      done_at bigint,
      why text
    )`,
    `CREATE INDEX export_queue_due ON export_queue (due_at, measured_at) WHERE state IN ('pending', 'failing')`,
    `CREATE INDEX export_queue_exported ON export_queue (gateway_id, device_id, characteristic, measured_at)
      WHERE state = 'exported'`,
  ],
];

export const SCHEMA_VERSION = MIGRATIONS.length;
