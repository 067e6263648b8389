import pg from 'pg';
import type { Gap } from '../../../model/gap.js';
import { type Clock, systemClock } from '../../../util/clock.js';
import { checkEnd, checkNewAssignment } from '../assignment-rules.js';
import type {
  Assignment,
  ClinicStore,
  CommitOutcome,
  CommittedEvent,
  ExportItem,
  ExportResult,
  IncomingRejection,
  IncomingStatus,
  IntakeWrite,
  MeasurementPageQuery,
  NewAssignment,
  PatientLatest,
  Receipt,
  RejectionCount,
  SeriesPoint,
  SeriesQuery,
  StoredMeasurement,
} from '../clinic-store.js';
import { ClinicStoreError, checkPageLimit } from '../errors.js';
import { type CopyValue, copyData, copyRows } from './copy-rows.js';
import { pgErrorFrom } from './errors.js';
import { type CommittedIds, FEED_CHANNEL, listen, notificationPayloads } from './live-feed.js';
import { migrate } from './migrate.js';
import {
  type AssignmentRow,
  assignmentOf,
  GAP_COLUMNS,
  type GapRow,
  gapOf,
  type Int8,
  MEASUREMENT_COLUMNS,
  type MeasurementRow,
  type RejectionRow,
  rejectionOf,
  type SeriesRow,
  STATUS_COLUMNS,
  type StatusRow,
  seriesPointOf,
  statusOf,
  storedMeasurementOf,
} from './rows.js';

export interface PgClinicStoreOptions {
  /**
   * A pool the caller owns (and ends after close()), or connection options for a pool the store makes and
   * ends. With a pool, `pool.options` also opens the live feed's own connection.
   */
  readonly pool?: pg.Pool;
  readonly connection?: pg.PoolConfig;
  readonly clock?: Clock;
  /** Rejected-message rows kept (the oldest go beyond it); counts are never bounded. Default 10,000. */
  readonly maxRejectedRows?: number;
  /** Bytes of quarantined payloads kept (the oldest such rows go beyond it). Default 64 MiB. */
  readonly maxQuarantineBytes?: number;
  /**
   * Failures nobody awaits: an idle pooled connection that broke, the live feed's connection dropping (it
   * reconnects), a feed notification whose rows could not be read. Messages carry no PHI. Default: ignored.
   */
  readonly onError?: (error: ClinicStoreError) => void;
  /** Told when a live-feed listener throws; the commit has happened either way. */
  readonly onListenerError?: (error: unknown) => void;
  /** How long the live feed waits before reconnecting. Default 1 s. */
  readonly feedReconnectDelayMs?: number;
}

const DEFAULT_MAX_REJECTED_ROWS = 10_000;
const DEFAULT_MAX_QUARANTINE_BYTES = 64 * 1024 * 1024;
/** node-postgres Pool's `max` when none is given. */
const DEFAULT_POOL_MAX = 10;

/** Second key of the per-gateway advisory lock that serialises assignment changes (the first is the gateway). */
/** A status joined from the left: all null when the gateway never sent one. */
type NullableStatusRow = { readonly [K in keyof StatusRow]: StatusRow[K] | null };

const ASSIGNMENT_LOCK = 1_936_877_925;

/**
 * The clinic database on PostgreSQL, for clinics that run several intake processes against one database.
 * Every process opens its own PgClinicStore; the database alone keeps them consistent:
 *
 * - exactly-once: the measurement id is the primary key and a commit inserts with ON CONFLICT DO NOTHING, in
 *   one transaction per commit; rows are inserted in id order, so two processes committing overlapping
 *   batches take their row locks in the same order and cannot deadlock (one waits for the other's commit, then
 *   finds the ids present);
 * - export leases: SELECT ... FOR UPDATE SKIP LOCKED, so two exporters never lease the same item;
 * - the live feed: NOTIFY in the committing transaction (live-feed.ts);
 * - migrations: once, under an advisory lock (migrate.ts).
 */
export class PgClinicStore implements ClinicStore {
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #clock: Clock;
  readonly #maxRejectedRows: number;
  readonly #maxQuarantineBytes: number;
  readonly #onError: (error: ClinicStoreError) => void;
  readonly #onListenerError: (error: unknown) => void;
  readonly #feedReconnectDelayMs: number;
  readonly #subscriptions = new Set<() => Promise<void>>();
  /** Pooled connections whose session has the staging tables (STAGING_TABLES). */
  readonly #staged = new WeakSet<pg.PoolClient>();
  #closed = false;

  private constructor(pool: pg.Pool, ownsPool: boolean, options: PgClinicStoreOptions) {
    this.#pool = pool;
    this.#ownsPool = ownsPool;
    this.#clock = options.clock ?? systemClock;
    this.#maxRejectedRows = options.maxRejectedRows ?? DEFAULT_MAX_REJECTED_ROWS;
    this.#maxQuarantineBytes = options.maxQuarantineBytes ?? DEFAULT_MAX_QUARANTINE_BYTES;
    this.#onError = options.onError ?? (() => undefined);
    this.#onListenerError = options.onListenerError ?? (() => undefined);
    this.#feedReconnectDelayMs = options.feedReconnectDelayMs ?? 1000;
  }

  /** Connects, brings the schema up to date (or refuses a newer one), and returns the store. */
  static async open(options: PgClinicStoreOptions): Promise<PgClinicStore> {
    if ((options.pool === undefined) === (options.connection === undefined)) {
      throw new ClinicStoreError(
        'CLINIC_STORE_IO',
        'PgClinicStore.open needs exactly one of `pool` and `connection`',
      );
    }
    for (const [name, value] of [
      ['maxRejectedRows', options.maxRejectedRows],
      ['maxQuarantineBytes', options.maxQuarantineBytes],
    ] as const) {
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
        throw new ClinicStoreError('CLINIC_STORE_IO', `${name} must be a whole number, 0 or more`);
      }
    }
    const ownsPool = options.pool === undefined;
    const pool = options.pool ?? new pg.Pool(options.connection);
    const store = new PgClinicStore(pool, ownsPool, options);
    // Without a listener, an idle client's error would be thrown as an uncaught 'error' event (node-postgres
    // docs, Pool, "error" event). The pool discards that client by itself.
    pool.on('error', store.#poolError);
    try {
      const client = await pool.connect();
      try {
        await migrate(client, store.#clock.now());
      } finally {
        client.release();
      }
    } catch (error) {
      pool.off('error', store.#poolError);
      if (ownsPool) await pool.end().catch(() => undefined);
      throw pgErrorFrom(error, 'opening the clinic database');
    }
    return store;
  }

  readonly #poolError = (error: Error) => this.#onError(pgErrorFrom(error, 'an idle database connection'));

  /**
   * Readies `concurrent` pooled connections for commits before the first one: each is opened and gets its
   * staging tables, and (when the store made the pool) the pool keeps at least that many open while idle
   * (node-postgres Pool `min`; idle ones above it close after `idleTimeoutMillis`, 10 s by default). A connection
   * opened during a burst waits twice: node-postgres's SCRAM-SHA-256 login derives its key with WebCrypto's PBKDF2
   * on libuv's thread pool, behind the signature checks of the messages being judged, and each reply waits for
   * the busy event loop. In `npm run bench:clinic`'s backlog phase the first commits waited 0.5-1.2 s for their
   * connection (docs/clinic-intake.md, "Benchmark").
   */
  async prepareCommits(concurrent: number): Promise<void> {
    this.#ensureOpen();
    if (!Number.isSafeInteger(concurrent) || concurrent < 1) {
      throw new ClinicStoreError(
        'CLINIC_STORE_IO',
        'prepareCommits needs a whole number of connections, 1 or more',
      );
    }
    const max = this.#pool.options.max ?? DEFAULT_POOL_MAX;
    const count = Math.min(concurrent, max);
    // Read by the pool whenever a connection falls idle (pg-pool, `_isAboveMin`), so it applies from now on.
    if (this.#ownsPool) this.#pool.options.min = Math.max(this.#pool.options.min ?? 0, count);
    const clients: pg.PoolClient[] = [];
    try {
      // At once, so the pool opens `count` connections instead of handing one out `count` times in turn.
      const connecting = await Promise.allSettled(Array.from({ length: count }, () => this.#pool.connect()));
      for (const result of connecting) if (result.status === 'fulfilled') clients.push(result.value);
      const failed = connecting.find((result) => result.status === 'rejected');
      if (failed) throw failed.reason;
      for (const client of clients) {
        if (this.#staged.has(client)) continue;
        await client.query(STAGING_TABLES);
        this.#staged.add(client);
      }
    } catch (error) {
      throw pgErrorFrom(error, 'opening connections for commits');
    } finally {
      for (const client of clients) client.release();
    }
  }

  async commit(write: IntakeWrite): Promise<CommitOutcome> {
    const committedAt = this.#clock.now();
    // Each gap once (the first occurrence), its id in the write's order (the order `inserted` reports), and the
    // rows sorted by id for the insert.
    const gaps = uniqueBy(write.gaps, (g) => g.gap.id);
    const gapOrder = gaps.map((g) => g.gap.id);
    gaps.sort(byKey((g) => g.gap.id));
    const statuses = [...write.statuses].sort(byKey(statusKey));
    let stagedOn: pg.PoolClient | undefined;
    const outcome = await this.#transaction(
      'storing an intake commit',
      async (client, rows: StagedRows) => {
        let insertedIds = new Set<string>();
        if (rows.ids.length > 0) {
          if (!this.#staged.has(client)) await client.query(STAGING_TABLES);
          stagedOn = client;
          await copyRows(client, 'intake_measurements', STAGED_MEASUREMENT_COLUMNS, rows.measurements);
          await copyRows(client, 'intake_observations', STAGED_OBSERVATION_COLUMNS, rows.observations);
          const result = await client.query<{ id: string }>(INSERT_MEASUREMENTS, [committedAt]);
          insertedIds = new Set(result.rows.map((r) => r.id));
        }
        let insertedGaps = new Set<string>();
        if (gaps.length > 0) {
          const result = await client.query<{ id: string }>(INSERT_GAPS, gapParameters(gaps, committedAt));
          insertedGaps = new Set(result.rows.map((r) => r.id));
        }
        let statusIds: number[] = [];
        if (statuses.length > 0) {
          const result = await client.query<{ id: Int8 }>(
            INSERT_STATUSES,
            statusParameters(statuses, committedAt),
          );
          statusIds = result.rows.map((r) => Number(r.id)).sort((a, b) => a - b);
        }
        if (write.rejections.length > 0) await this.#storeRejections(client, write.rejections);

        const inserted = rows.ids.filter((id) => insertedIds.has(id));
        const gapIds = gapOrder.filter((id) => insertedGaps.has(id));
        // Delivered to listeners only if this transaction commits (PostgreSQL docs, NOTIFY). All of a commit's
        // payloads in one statement (one round trip), sent in array order (WITH ORDINALITY, ORDER BY).
        const payloads = notificationPayloads({ m: inserted, g: gapIds, s: statusIds });
        if (payloads.length > 0) {
          await client.query(
            'SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n',
            [FEED_CHANNEL, payloads],
          );
        }
        return {
          inserted,
          duplicates: write.measurements.length - inserted.length,
          gapsInserted: gapIds.length,
          gapDuplicates: write.gaps.length - gapIds.length,
        };
      },
      // The rows' COPY data is made while BEGIN travels to the server and back: its reply would otherwise wait
      // for this CPU work anyway (the event loop runs one thing at a time), and the transaction takes no lock
      // before the INSERT. work_mem: see COMMIT_WORK_MEM.
      { prepare: () => stagedRows(write.measurements), workMem: COMMIT_WORK_MEM },
    );
    // Only now: the staging tables were created in that transaction, which has committed.
    if (stagedOn !== undefined) this.#staged.add(stagedOn);
    return outcome;
  }

  async #storeRejections(client: pg.PoolClient, rejections: readonly IncomingRejection[]): Promise<void> {
    await client.query(INSERT_REJECTIONS, [
      rejections.map((r) => r.topic),
      rejections.map((r) => r.code),
      rejections.map((r) => r.message),
      rejections.map((r) => r.receivedAt),
      rejections.map((r) => r.gatewayId ?? null),
      rejections.map((r) => (r.payload === undefined ? null : Buffer.from(r.payload))),
    ]);
    // Counted in code order: concurrent commits lock the count rows in one order, so they cannot deadlock.
    const counts = new Map<string, number>();
    for (const r of rejections) counts.set(r.code, (counts.get(r.code) ?? 0) + 1);
    const codes = [...counts.keys()].sort();
    await client.query(
      `INSERT INTO rejection_counts (code, count)
       SELECT code, count FROM unnest($1::text[], $2::bigint[]) AS t(code, count) ORDER BY code
       ON CONFLICT (code) DO UPDATE SET count = rejection_counts.count + EXCLUDED.count`,
      [codes, codes.map((c) => counts.get(c))],
    );
    // The bounds, in this transaction: everything older than the newest maxRejectedRows rows goes, and so do
    // the older quarantined rows beyond maxQuarantineBytes of payloads (counted from the newest).
    await client.query(
      `DELETE FROM rejections WHERE id <= (SELECT id FROM rejections ORDER BY id DESC OFFSET $1 LIMIT 1)`,
      [this.#maxRejectedRows],
    );
    await client.query(
      `DELETE FROM rejections WHERE id IN (
         SELECT id FROM (
           SELECT id, sum(octet_length(payload)) OVER (ORDER BY id DESC) AS newer_bytes
           FROM rejections WHERE payload IS NOT NULL
         ) t WHERE newer_bytes > $1)`,
      [this.#maxQuarantineBytes],
    );
  }

  async measurement(id: string): Promise<StoredMeasurement | undefined> {
    const rows = await this.#query<MeasurementRow>(
      'reading a measurement',
      `SELECT ${MEASUREMENT_COLUMNS} FROM measurements m WHERE m.id = $1`,
      [id],
    );
    return rows[0] === undefined ? undefined : storedMeasurementOf(rows[0]);
  }

  async countMeasurements(): Promise<number> {
    const rows = await this.#query<{ n: Int8 }>(
      'counting measurements',
      'SELECT count(*) AS n FROM measurements',
    );
    return Number(rows[0]?.n ?? 0);
  }

  async measurementIds(): Promise<string[]> {
    const rows = await this.#query<{ id: string }>(
      'listing measurement ids',
      'SELECT id FROM measurements ORDER BY id',
    );
    return rows.map((r) => r.id);
  }

  async series(query: SeriesQuery): Promise<SeriesPoint[]> {
    const rows = await this.#query<SeriesRow>(
      'reading a series',
      `SELECT o.measurement_id, o.measured_at, o.code, o.value, o.unit, o.invalid, o.qualifier,
              m.stored, o.gateway_id, m.device_id, m.driver
       FROM assignments a
       JOIN observations o ON o.gateway_id = a.gateway_id AND o.code = $2
         AND o.measured_at >= GREATEST(a.from_at, $3) AND o.measured_at < LEAST(COALESCE(a.to_at, $4), $4)
       JOIN measurements m ON m.id = o.measurement_id
       WHERE a.mrn = $1
       ORDER BY o.measured_at, o.measurement_id, o.position
       LIMIT $5`,
      [query.mrn, query.code, query.from, query.to, query.limit ?? null],
    );
    return rows.map(seriesPointOf);
  }

  /**
   * Per assignment of the patient: the codes its gateway ever sent, by a loose index scan of
   * observations_series (a recursive CTE, one seek per distinct code: PostgreSQL wiki, "Loose indexscan"),
   * then per code one backward seek for the newest observation inside the assignment's interval (LATERAL);
   * DISTINCT ON keeps the newest per code over the assignments. No scan of the readings.
   */
  async latest(mrn: string): Promise<PatientLatest> {
    const [rows, hubs] = await Promise.all([
      this.#query<SeriesRow>(
        "reading a patient's latest readings",
        `WITH RECURSIVE
           patient AS (SELECT gateway_id, from_at, to_at FROM assignments WHERE mrn = $1),
           codes (gateway_id, code) AS (
             SELECT g.gateway_id, (SELECT min(o.code) FROM observations o WHERE o.gateway_id = g.gateway_id)
             FROM (SELECT DISTINCT gateway_id FROM patient) g
             UNION ALL
             SELECT c.gateway_id,
                    (SELECT min(o.code) FROM observations o WHERE o.gateway_id = c.gateway_id AND o.code > c.code)
             FROM codes c WHERE c.code IS NOT NULL
           )
         SELECT DISTINCT ON (l.code) l.*
         FROM patient p
         JOIN codes c ON c.gateway_id = p.gateway_id AND c.code IS NOT NULL
         CROSS JOIN LATERAL (
           SELECT o.measurement_id, o.measured_at, o.code, o.value, o.unit, o.invalid, o.qualifier, m.stored,
                  o.gateway_id, m.device_id, m.driver
           FROM observations o JOIN measurements m ON m.id = o.measurement_id
           WHERE o.gateway_id = p.gateway_id AND o.code = c.code
             AND o.measured_at >= p.from_at AND o.measured_at < COALESCE(p.to_at, 9223372036854775807)
           ORDER BY o.measured_at DESC, o.measurement_id DESC, o.position DESC
           LIMIT 1
         ) l
         ORDER BY l.code, l.measured_at DESC, l.measurement_id DESC`,
        [mrn],
      ),
      this.#query<{ gateway_id: string; from_at: Int8 } & NullableStatusRow>(
        "reading a patient's hubs",
        `SELECT a.gateway_id, a.from_at, s.signer_serial, s.received_at, s.body
         FROM assignments a
         LEFT JOIN LATERAL (
           SELECT ${STATUS_COLUMNS} FROM statuses s WHERE s.gateway_id = a.gateway_id
           ORDER BY s.received_at DESC, s.id DESC LIMIT 1
         ) s ON true
         WHERE a.mrn = $1 AND a.to_at IS NULL
         ORDER BY a.from_at, a.gateway_id`,
        [mrn],
      ),
    ]);
    // By code in code-point order, as the SQLite store gives them (the database's collation may differ).
    const observations = rows
      .map(seriesPointOf)
      .sort((x, y) => (x.code < y.code ? -1 : x.code > y.code ? 1 : 0));
    return {
      observations,
      hubs: hubs.map((h) => ({
        gatewayId: h.gateway_id,
        since: Number(h.from_at),
        ...(h.body === null ? {} : { status: statusOf(h as StatusRow) }),
      })),
    };
  }

  async measurementsOf(mrn: string, from: number, to: number): Promise<StoredMeasurement[]> {
    const rows = await this.#query<MeasurementRow>(
      "reading a patient's measurements",
      `SELECT ${MEASUREMENT_COLUMNS}
       FROM assignments a
       JOIN measurements m ON m.gateway_id = a.gateway_id
         AND m.measured_at >= GREATEST(a.from_at, $2) AND m.measured_at < LEAST(COALESCE(a.to_at, $3), $3)
       WHERE a.mrn = $1
       ORDER BY m.measured_at, m.id`,
      [mrn, from, to],
    );
    return rows.map(storedMeasurementOf);
  }

  /**
   * Per assignment of the patient that overlaps [from, to) (LATERAL): at most `limit` rows of its gateway after
   * the cursor, an index range on measurements_by_gateway_time from the cursor's time; then those merged in
   * (time, id) order and cut to `limit`. Ids compare as bytes (COLLATE "C"), as SQLite's BINARY does, whatever
   * the database's collation. One join without the per-assignment limit would sort the rest of the range on
   * every page when a patient has two hubs at once.
   */
  async measurementPage(query: MeasurementPageQuery): Promise<StoredMeasurement[]> {
    checkPageLimit(query.limit);
    const rows = await this.#query<MeasurementRow>(
      "reading a page of a patient's measurements",
      `SELECT p.* FROM assignments a
       CROSS JOIN LATERAL (
         SELECT ${MEASUREMENT_COLUMNS}, m.id COLLATE "C" AS order_id
         FROM measurements m
         WHERE m.gateway_id = a.gateway_id
           AND m.measured_at >= GREATEST(a.from_at, $2, $4) AND m.measured_at < LEAST(COALESCE(a.to_at, $3), $3)
           AND (m.measured_at > $4 OR m.id COLLATE "C" > $5)
         ORDER BY m.measured_at, m.id COLLATE "C"
         LIMIT $6
       ) p
       WHERE a.mrn = $1 AND a.from_at < $3 AND (a.to_at IS NULL OR a.to_at > $2)
       ORDER BY p.measured_at, p.order_id
       LIMIT $6`,
      [
        query.mrn,
        query.from,
        query.to,
        query.after?.measuredAt ?? Number.MIN_SAFE_INTEGER,
        query.after?.measurementId ?? '',
        query.limit,
      ],
    );
    return rows.map(storedMeasurementOf);
  }

  async unassigned(limit: number): Promise<StoredMeasurement[]> {
    const rows = await this.#query<MeasurementRow>(
      'listing unassigned measurements',
      `SELECT ${MEASUREMENT_COLUMNS} FROM measurements m
       WHERE NOT EXISTS (${ATTRIBUTED('m')})
       ORDER BY m.measured_at, m.id
       LIMIT $1`,
      [limit],
    );
    return rows.map(storedMeasurementOf);
  }

  async gaps(gatewayId: string): Promise<{ gap: Gap; receipt: Receipt }[]> {
    const rows = await this.#query<GapRow>(
      'reading gap records',
      `SELECT ${GAP_COLUMNS} FROM gaps g WHERE g.gateway_id = $1 ORDER BY g.seq`,
      [gatewayId],
    );
    return rows.map(gapOf);
  }

  async latestStatus(gatewayId: string): Promise<IncomingStatus | undefined> {
    const rows = await this.#query<StatusRow>(
      'reading the latest status',
      `SELECT ${STATUS_COLUMNS} FROM statuses s WHERE s.gateway_id = $1 ORDER BY s.received_at DESC, s.id DESC LIMIT 1`,
      [gatewayId],
    );
    return rows[0] === undefined ? undefined : statusOf(rows[0]);
  }

  async assign(assignment: NewAssignment): Promise<Assignment> {
    return this.#transaction('assigning a gateway', async (client) => {
      const existing = await this.#lockAssignments(client, assignment.gatewayId);
      const { endOpen } = checkNewAssignment(assignment, existing);
      if (endOpen !== undefined) {
        await client.query('UPDATE assignments SET to_at = $2 WHERE id = $1', [endOpen.id, assignment.from]);
      }
      const result = await client.query<AssignmentRow>(
        `INSERT INTO assignments (gateway_id, mrn, from_at, time_zone, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [
          assignment.gatewayId,
          assignment.mrn,
          assignment.from,
          assignment.timeZone ?? null,
          assignment.createdBy,
          assignment.at,
        ],
      );
      return assignmentOf(result.rows[0] as AssignmentRow);
    });
  }

  async unassign(gatewayId: string, to: number): Promise<Assignment | undefined> {
    return this.#transaction('ending an assignment', async (client) => {
      const open = (await this.#lockAssignments(client, gatewayId)).find((a) => a.to === undefined);
      if (open === undefined) return undefined;
      checkEnd(open, to);
      const result = await client.query<AssignmentRow>(
        'UPDATE assignments SET to_at = $2 WHERE id = $1 RETURNING *',
        [open.id, to],
      );
      return assignmentOf(result.rows[0] as AssignmentRow);
    });
  }

  /**
   * Takes the gateway's assignment lock for this transaction and reads its assignments. The lock (not a row
   * lock: a gateway's first assignment has no row to lock yet) makes two concurrent assigns of one gateway
   * take turns, so the overlap check sees the other's result.
   */
  async #lockAssignments(client: pg.PoolClient, gatewayId: string): Promise<Assignment[]> {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1), $2)', [gatewayId, ASSIGNMENT_LOCK]);
    const result = await client.query<AssignmentRow>(
      'SELECT * FROM assignments WHERE gateway_id = $1 ORDER BY from_at, id',
      [gatewayId],
    );
    return result.rows.map(assignmentOf);
  }

  async assignments(gatewayId?: string): Promise<Assignment[]> {
    const rows = await this.#query<AssignmentRow>(
      'listing assignments',
      `SELECT * FROM assignments WHERE $1::text IS NULL OR gateway_id = $1 ORDER BY gateway_id, from_at, id`,
      [gatewayId ?? null],
    );
    return rows.map(assignmentOf);
  }

  async rejectionCounts(): Promise<RejectionCount[]> {
    const rows = await this.#query<{ code: string; count: Int8 }>(
      'reading rejection counts',
      'SELECT code, count FROM rejection_counts ORDER BY code',
    );
    return rows.map((r) => ({ code: r.code, count: Number(r.count) }));
  }

  async quarantined(limit: number): Promise<(IncomingRejection & { readonly id: number })[]> {
    const rows = await this.#query<RejectionRow>(
      'reading quarantined messages',
      'SELECT * FROM rejections WHERE payload IS NOT NULL ORDER BY id LIMIT $1',
      [limit],
    );
    return rows.map(rejectionOf);
  }

  async releaseQuarantined(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.#query(
      'releasing quarantined messages',
      'DELETE FROM rejections WHERE id = ANY($1::bigint[])',
      [[...ids]],
    );
  }

  async leaseExports(limit: number, now: number, leaseMs: number): Promise<ExportItem[]> {
    // SKIP LOCKED: rows another exporter is leasing right now are passed over, not waited for, and never
    // handed out twice (PostgreSQL docs, SELECT, "The Locking Clause"). Once that exporter commits, their
    // due_at is the lease's end, so nobody else takes them before it passes.
    const rows = await this.#transaction(
      'leasing exports',
      async (client) =>
        (
          await client.query<MeasurementRow & { mrn: string; attempts: number }>(
            `WITH due AS (
         SELECT q.measurement_id, a.mrn
         FROM export_queue q
         JOIN assignments a ON a.gateway_id = q.gateway_id AND a.from_at <= q.measured_at
           AND (a.to_at IS NULL OR q.measured_at < a.to_at)
         WHERE q.state IN ('pending', 'failing') AND q.due_at <= $1
         ORDER BY q.due_at, q.measured_at, q.measurement_id
         LIMIT $2
         FOR UPDATE OF q SKIP LOCKED
       ), leased AS (
         UPDATE export_queue q SET due_at = $1 + $3
         FROM due WHERE q.measurement_id = due.measurement_id
         RETURNING q.measurement_id, q.attempts, due.mrn
       )
       SELECT l.mrn, l.attempts, ${MEASUREMENT_COLUMNS}
       FROM leased l JOIN measurements m ON m.id = l.measurement_id
       ORDER BY m.measured_at, m.id`,
            [now, limit, leaseMs],
          )
        ).rows,
      { durable: false },
    );
    return rows.map((row) => ({ stored: storedMeasurementOf(row), mrn: row.mrn, attempts: row.attempts }));
  }

  async completeExports(results: readonly ExportResult[]): Promise<void> {
    if (results.length === 0) return;
    await this.#transaction(
      'recording export results',
      (client) =>
        client.query(
          `UPDATE export_queue q SET
         state = CASE r.outcome WHEN 'exported' THEN 'exported' WHEN 'skipped' THEN 'skipped' ELSE 'failing' END,
         attempts = q.attempts + CASE WHEN r.outcome = 'failed' THEN 1 ELSE 0 END,
         due_at = COALESCE(r.retry_at, q.due_at),
         done_at = CASE WHEN r.outcome = 'failed' THEN NULL ELSE r.at END,
         last_error = CASE WHEN r.outcome = 'failed' THEN r.error ELSE q.last_error END,
         why = r.why
       FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[])
         AS r(id, outcome, at, retry_at, error, why)
       WHERE q.measurement_id = r.id AND q.state IN ('pending', 'failing')`,
          [
            results.map((r) => r.measurementId),
            results.map((r) => r.outcome),
            results.map((r) => r.at),
            results.map((r) => (r.outcome === 'failed' ? r.retryAt : null)),
            results.map((r) => (r.outcome === 'failed' ? r.error : null)),
            results.map((r) => (r.outcome === 'skipped' ? r.why : null)),
          ],
        ),
      { durable: false },
    );
  }

  async exportCounts(): Promise<{ pending: number; exported: number; skipped: number; failing: number }> {
    const rows = await this.#query<{ state: string; n: Int8 }>(
      'counting exports',
      'SELECT state, count(*) AS n FROM export_queue GROUP BY state',
    );
    const count = (state: string) => Number(rows.find((r) => r.state === state)?.n ?? 0);
    return {
      pending: count('pending'),
      exported: count('exported'),
      skipped: count('skipped'),
      failing: count('failing'),
    };
  }

  async lastExportedAt(
    gatewayId: string,
    deviceId: string,
    characteristic: string,
    at: number,
  ): Promise<number | undefined> {
    const rows = await this.#query<{ t: Int8 | null }>(
      'reading the last exported reading',
      `SELECT max(measured_at) AS t FROM export_queue
       WHERE state = 'exported' AND gateway_id = $1 AND device_id = $2 AND characteristic = $3 AND measured_at <= $4`,
      [gatewayId, deviceId, characteristic, at],
    );
    const t = rows[0]?.t;
    return t === null || t === undefined ? undefined : Number(t);
  }

  async subscribe(listener: (event: CommittedEvent) => void): Promise<() => Promise<void>> {
    this.#ensureOpen();
    let stop: () => Promise<void>;
    try {
      stop = await listen({
        connection: this.#pool.options,
        fetch: (ids) => this.#committed(ids),
        listener,
        onError: (error) => this.#onError(pgErrorFrom(error, 'the live feed')),
        onListenerError: this.#onListenerError,
        reconnectDelayMs: this.#feedReconnectDelayMs,
      });
    } catch (error) {
      throw pgErrorFrom(error, 'subscribing to the live feed');
    }
    const unsubscribe = async () => {
      if (!this.#subscriptions.delete(unsubscribe)) return;
      await stop();
    };
    this.#subscriptions.add(unsubscribe);
    return unsubscribe;
  }

  /** The committed rows a notification names, in the order named. */
  async #committed(ids: CommittedIds): Promise<CommittedEvent> {
    const [m, g, s] = await Promise.all([
      ids.m.length === 0
        ? []
        : this.#query<MeasurementRow & { id: string }>(
            'reading committed measurements',
            `SELECT m.id, ${MEASUREMENT_COLUMNS} FROM measurements m WHERE m.id = ANY($1::text[])`,
            [ids.m],
          ),
      ids.g.length === 0
        ? []
        : this.#query<GapRow & { id: string }>(
            'reading committed gaps',
            `SELECT g.id, ${GAP_COLUMNS} FROM gaps g WHERE g.id = ANY($1::text[])`,
            [ids.g],
          ),
      ids.s.length === 0
        ? []
        : this.#query<StatusRow & { id: Int8 }>(
            'reading committed statuses',
            `SELECT s.id, ${STATUS_COLUMNS} FROM statuses s WHERE s.id = ANY($1::bigint[])`,
            [ids.s],
          ),
    ]);
    return {
      measurements: inOrder(ids.m, m, (r) => r.id).map(storedMeasurementOf),
      gaps: inOrder(ids.g, g, (r) => r.id).map(gapOf),
      statuses: inOrder(ids.s, s, (r) => Number(r.id)).map(statusOf),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#subscriptions].map((unsubscribe) => unsubscribe()));
    this.#pool.off('error', this.#poolError);
    if (this.#ownsPool) await this.#pool.end();
  }

  #ensureOpen(): void {
    if (this.#closed)
      throw new ClinicStoreError('CLINIC_STORE_CLOSED', 'the clinic database was used after close()');
  }

  async #query<R extends object>(what: string, text: string, values: readonly unknown[] = []): Promise<R[]> {
    this.#ensureOpen();
    try {
      return (await this.#pool.query<R & pg.QueryResultRow>(text, [...values])).rows;
    } catch (error) {
      throw pgErrorFrom(error, what);
    }
  }

  /**
   * Runs `work` in one transaction on one pooled connection.
   *
   * synchronous_commit stays on, set explicitly for the transaction whatever the server's or role's default:
   * the intake acknowledges a message to the broker (PUBACK) once commit() resolves, and the hub then deletes
   * those readings. With it off, COMMIT returns before the WAL is flushed, and a server crash can lose the last
   * transactions reported committed (PostgreSQL docs, "Asynchronous Commit"), i.e. readings the hub was told
   * were delivered.
   *
   * `durable: false` (the export queue's leases and results only) turns it off for the one transaction: losing
   * such a commit in a crash loses no data, only the exporter's progress. A lost lease makes its measurements due
   * again, a lost result re-sends them after their lease, and every upload is a conditional create that finds
   * what the first one created (docs/fhir.md, "Identifiers and idempotence"). It cannot corrupt the database
   * (same section of the PostgreSQL docs), and the next synchronous commit flushes the WAL with it. Waiting for
   * two WAL flushes per Bundle was two fifths of the exporter's wall time on PostgreSQL (docs/fhir.md, "Throughput").
   */
  async #transaction<T, P = undefined>(
    what: string,
    work: (client: pg.PoolClient, prepared: P) => Promise<T>,
    {
      durable = true,
      workMem,
      prepare,
    }: {
      readonly durable?: boolean;
      /** SET LOCAL work_mem, sent with BEGIN (no round trip of its own). */
      readonly workMem?: string;
      /** CPU work for `work`, done after BEGIN is sent and before its reply is read. */
      readonly prepare?: () => P;
    } = {},
  ): Promise<T> {
    this.#ensureOpen();
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw pgErrorFrom(error, what);
    }
    let broken: Error | undefined;
    try {
      const begun = client.query(
        `BEGIN; SET LOCAL synchronous_commit TO ${durable ? 'on' : 'off'}` +
          (workMem === undefined ? '' : `; SET LOCAL work_mem = '${workMem}'`),
      );
      let prepared: P;
      try {
        prepared = prepare === undefined ? (undefined as P) : prepare();
      } finally {
        // Awaited before anything else is sent, whether or not `prepare` threw (then it is rolled back below).
        await begun;
      }
      const result = await work(client, prepared);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        // The connection itself failed: the pool must not hand it out again.
        broken = rollbackError as Error;
      }
      throw pgErrorFrom(error, what);
    } finally {
      client.release(broken);
    }
  }
}

/** Whether a measurement row `m` falls in an assignment interval of its gateway. */
const ATTRIBUTED = (m: string) =>
  `SELECT 1 FROM assignments a WHERE a.gateway_id = ${m}.gateway_id AND a.from_at <= ${m}.measured_at
   AND (a.to_at IS NULL OR ${m}.measured_at < a.to_at)`;

/**
 * The staging tables a commit's measurements and observations are COPYed into (copy-rows.ts) before one
 * statement moves them into the record. Temporary, so private to the connection and written without WAL; ON
 * COMMIT DELETE ROWS empties them at the end of every transaction (PostgreSQL docs, CREATE TABLE, "Temporary
 * Tables"). Created once per pooled connection (`IF NOT EXISTS`: a creation rolled back with its transaction is
 * simply made again).
 */
const STAGING_TABLES = `
  CREATE TEMP TABLE IF NOT EXISTS intake_measurements (
    id text, gateway_id text, device_id text, driver text, characteristic text, measured_at bigint,
    stored boolean, topic text, batch_seq bigint, sent_at bigint, signer_serial text, received_at bigint, body json
  ) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE IF NOT EXISTS intake_observations (
    measurement_id text, position integer, code text, value double precision, unit text, invalid text,
    qualifier text
  ) ON COMMIT DELETE ROWS`;

const STAGED_MEASUREMENT_COLUMNS = [
  'id',
  'gateway_id',
  'device_id',
  'driver',
  'characteristic',
  'measured_at',
  'stored',
  'topic',
  'batch_seq',
  'sent_at',
  'signer_serial',
  'received_at',
  'body',
] as const;

const STAGED_OBSERVATION_COLUMNS = [
  'measurement_id',
  'position',
  'code',
  'value',
  'unit',
  'invalid',
  'qualifier',
] as const;

/**
 * One statement inserts the staged measurements, their observations and their export-queue rows: only rows that
 * were inserted (RETURNING) get observations and a queue entry, and a duplicate costs one index probe. Rows go
 * in id order (see the class comment on deadlocks).
 */
const INSERT_MEASUREMENTS = `
  WITH inserted AS (
    INSERT INTO measurements (id, gateway_id, device_id, driver, characteristic, measured_at, stored,
                              topic, batch_seq, sent_at, signer_serial, received_at, committed_at, body)
    SELECT id, gateway_id, device_id, driver, characteristic, measured_at, stored,
           topic, batch_seq, sent_at, signer_serial, received_at, $1, body
    FROM intake_measurements ORDER BY id
    ON CONFLICT (id) DO NOTHING
    RETURNING id, gateway_id, device_id, characteristic, measured_at
  ), queued AS (
    INSERT INTO export_queue (measurement_id, gateway_id, device_id, characteristic, measured_at)
    SELECT id, gateway_id, device_id, characteristic, measured_at FROM inserted
  ), observed AS (
    INSERT INTO observations (measurement_id, position, gateway_id, code, measured_at, value, unit, invalid, qualifier)
    SELECT o.measurement_id, o.position, i.gateway_id, o.code, i.measured_at, o.value, o.unit, o.invalid, o.qualifier
    FROM intake_observations o JOIN inserted i ON i.id = o.measurement_id
  )
  SELECT id FROM inserted`;

/**
 * A commit's staging work for the sort in INSERT_MEASUREMENTS: a group commit holds up to 5,000 readings (the
 * intake's group.maxItems), a few MB of rows, which PostgreSQL's default work_mem (4 MB) sorts on disk.
 */
const COMMIT_WORK_MEM = '64MB';

/** A commit's measurements (each id once, the first occurrence) as COPY data for the staging tables. */
interface StagedRows {
  /** Their ids in the write's order (the order `inserted` reports them in). */
  readonly ids: readonly string[];
  readonly measurements: Buffer;
  readonly observations: Buffer;
}

function stagedRows(items: IntakeWrite['measurements']): StagedRows {
  const unique = uniqueBy(items, (m) => m.measurement.id);
  const ids = unique.map((m) => m.measurement.id);
  unique.sort(byKey((m) => m.measurement.id));
  return {
    ids,
    measurements: copyData(measurementRows(unique)),
    observations: copyData(observationRows(unique)),
  };
}

function* measurementRows(
  items: readonly IntakeWrite['measurements'][number][],
): Iterable<readonly CopyValue[]> {
  for (const i of items) {
    yield [
      i.measurement.id,
      i.receipt.gatewayId,
      i.measurement.deviceId,
      i.measurement.driver,
      i.measurement.characteristic,
      i.measuredAt,
      i.measurement.stored === true,
      i.receipt.topic,
      i.receipt.batchSeq,
      i.receipt.sentAt,
      i.receipt.signerSerial,
      i.receipt.receivedAt,
      JSON.stringify(i.measurement),
    ];
  }
}

function* observationRows(
  items: readonly IntakeWrite['measurements'][number][],
): Iterable<readonly CopyValue[]> {
  for (const item of items) {
    let position = 0;
    for (const o of item.measurement.observations) {
      yield [
        item.measurement.id,
        position++,
        o.code,
        o.value,
        o.unit,
        o.invalid ?? null,
        o.qualifier ?? null,
      ];
    }
  }
}

const INSERT_GAPS = `
  INSERT INTO gaps (id, gateway_id, topic, batch_seq, sent_at, signer_serial, received_at, committed_at, body)
  SELECT id, gateway_id, topic, batch_seq, sent_at, signer_serial, received_at, $8, body
  FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[], $9::jsonb[])
    AS t(id, gateway_id, topic, batch_seq, sent_at, signer_serial, received_at, body)
  ORDER BY id
  ON CONFLICT (id) DO NOTHING
  RETURNING id`;

function gapParameters(items: readonly IntakeWrite['gaps'][number][], committedAt: number): unknown[] {
  return [
    items.map((i) => i.gap.id),
    items.map((i) => i.receipt.gatewayId),
    items.map((i) => i.receipt.topic),
    items.map((i) => i.receipt.batchSeq),
    items.map((i) => i.receipt.sentAt),
    items.map((i) => i.receipt.signerSerial),
    items.map((i) => i.receipt.receivedAt),
    committedAt,
    items.map((i) => JSON.stringify(i.gap)),
  ];
}

/** A retained status redelivered (same gateway, sent time and state) is stored once. */
const INSERT_STATUSES = `
  INSERT INTO statuses (gateway_id, state, sent_at, signer_serial, received_at, committed_at, body)
  SELECT gateway_id, state, sent_at, signer_serial, received_at, $6, body
  FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $7::jsonb[])
    AS t(gateway_id, state, sent_at, signer_serial, received_at, body)
  ON CONFLICT (gateway_id, sent_at, state) DO NOTHING
  RETURNING id`;

function statusParameters(items: readonly IncomingStatus[], committedAt: number): unknown[] {
  return [
    items.map((i) => i.status.gatewayId),
    items.map((i) => i.status.state),
    items.map((i) => i.status.sentAt),
    items.map((i) => i.signerSerial),
    items.map((i) => i.receivedAt),
    committedAt,
    items.map((i) => JSON.stringify(i.status)),
  ];
}

const INSERT_REJECTIONS = `
  INSERT INTO rejections (topic, code, message, received_at, gateway_id, payload)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bytea[])`;

const statusKey = (s: IncomingStatus) =>
  `${s.status.gatewayId}\u0000${s.status.sentAt}\u0000${s.status.state}`;

function uniqueBy<T>(items: readonly T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const k = key(item);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Sorts by a string key in code-point order (as PostgreSQL's "C" collation and any collation agree on ASCII). */
function byKey<T>(key: (item: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
}

function inOrder<R, K>(order: readonly K[], rows: readonly R[], key: (row: R) => K): R[] {
  const byId = new Map(rows.map((r) => [key(r), r] as const));
  return order.flatMap((k) => {
    const row = byId.get(k);
    return row === undefined ? [] : [row];
  });
}
