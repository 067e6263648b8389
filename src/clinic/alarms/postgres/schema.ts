/**
 * The alarm tables on PostgreSQL, in the clinic's database, as numbered migrations on their own track
 * (`alarm_schema`), apart from the clinic record's and the staff's, for the reason
 * src/clinic/staff/postgres/schema.ts gives. Version n is reached by applying ALARM_MIGRATIONS[0..n-1] in order; a
 * released migration is never edited. Times are epoch milliseconds in `bigint` columns; limits and values are
 * `double precision`, the same numbers the SQLite engine stores as REAL.
 */
export const ALARM_MIGRATIONS: readonly (readonly string[])[] = [
  [
    `CREATE TABLE alarm_limit_sets (
      mrn text PRIMARY KEY,
      set_by text NOT NULL,
      set_at bigint NOT NULL
    )`,
    `CREATE TABLE alarm_limits (
      mrn text NOT NULL REFERENCES alarm_limit_sets (mrn) ON DELETE CASCADE,
      code text NOT NULL,
      unit text NOT NULL,
      below double precision,
      above double precision,
      for_ms bigint NOT NULL,
      hysteresis double precision NOT NULL,
      priority text NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
      PRIMARY KEY (mrn, code)
    )`,
    // Never deleted: a cleared alarm is history. The identity column never reuses an id.
    `CREATE TABLE alarms (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      condition_key text NOT NULL,
      mrn text NOT NULL,
      gateway_id text NOT NULL,
      device_id text,
      kind text NOT NULL,
      code text,
      priority text NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
      state text NOT NULL CHECK (state IN ('active', 'latched', 'cleared')),
      late boolean NOT NULL,
      raised_at bigint NOT NULL,
      measured_at bigint,
      condition_ended_at bigint,
      cleared_at bigint,
      acknowledged_by text,
      acknowledged_at bigint,
      value double precision,
      unit text,
      details text NOT NULL,
      CHECK ((acknowledged_by IS NULL) = (acknowledged_at IS NULL))
    )`,
    // At most one open alarm per condition, whichever process raises it.
    `CREATE UNIQUE INDEX alarms_open_condition ON alarms (condition_key) WHERE state <> 'cleared'`,
    'CREATE INDEX alarms_by_patient ON alarms (mrn, raised_at)',
    'CREATE INDEX alarms_by_time ON alarms (raised_at)',
    `CREATE TABLE alarm_contacts (
      gateway_id text NOT NULL,
      device_id text NOT NULL,
      at bigint NOT NULL,
      PRIMARY KEY (gateway_id, device_id)
    )`,
  ],
];

export const ALARM_SCHEMA_VERSION = ALARM_MIGRATIONS.length;
