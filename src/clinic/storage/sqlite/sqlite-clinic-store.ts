import type { SqliteDatabase } from '../../../store/encrypted-database.js';
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
  PatientHub,
  PatientLatest,
  Receipt,
  RejectionCount,
  SeriesPoint,
  SeriesQuery,
  StoredMeasurement,
} from '../clinic-store.js';
import { ClinicStoreError, checkPageLimit } from '../errors.js';
import { clinicErrorFrom, openClinicDatabase } from './database.js';
import { migrateClinic } from './migrations.js';
import {
  type AssignmentRow,
  assignmentOf,
  type GapRow,
  gapOf,
  MEASUREMENT_COLUMNS,
  type MeasurementRow,
  measurementRest,
  type RejectionRow,
  rejectionOf,
  type StatusRow,
  statusOf,
  storedMeasurementOf,
} from './rows.js';

export interface SqliteClinicStoreOptions {
  /** The database file; its `-wal`, `-shm` and `.keycheck` companions sit beside it. */
  readonly path: string;
  /** The raw 256-bit database key (from a KeyProvider, src/store/keys.ts). */
  readonly key: Uint8Array;
  /** Stamps `committedAt`; the system clock by default. */
  readonly clock?: Clock;
  /** Rejected-message rows kept (the oldest go beyond it); counts per code are never bounded. Default 10,000. */
  readonly maxRejectedRows?: number;
  /** Bytes of quarantined payloads kept (the oldest such rows go beyond it). Default 64 MiB. */
  readonly maxQuarantineBytes?: number;
  /** The page cache, KiB. Default 16 MiB. */
  readonly cacheKib?: number;
  /** How long a write waits for another connection (a second process) to finish its write, ms. Default 5 s. */
  readonly busyTimeoutMs?: number;
  /** Told when a live-feed listener throws; the commit has happened either way. */
  readonly onListenerError?: (error: unknown) => void;
  /**
   * After a commit, the store checkpoints the WAL (PASSIVE) once no other commit has come for this long, ms:
   * the copy then happens while the intake is idle, not inside a later commit that holds PUBACKs. 0 turns it
   * off (SQLite's automatic checkpoint still bounds the WAL, database.ts). Default 200.
   */
  readonly idleCheckpointMs?: number;
  /** Told when an idle checkpoint fails: nothing is lost (the WAL keeps the commits), the next one retries. */
  readonly onCheckpointError?: (error: ClinicStoreError) => void;
}

export const DEFAULT_MAX_REJECTED_ROWS = 10_000;
export const DEFAULT_MAX_QUARANTINE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_IDLE_CHECKPOINT_MS = 200;

/** Where a measurement is attributed: the gateway's assignment whose [from, to) holds its measurement time. */
const COVERS = (a: string, gateway: string, at: string) =>
  `${a}.gateway_id = ${gateway} AND ${a}.from_ms <= ${at} AND (${a}.to_ms IS NULL OR ${at} < ${a}.to_ms)`;

/**
 * The ClinicStore on one encrypted SQLite file (src/clinic/storage/clinic-store.ts has the contract).
 *
 * better-sqlite3 is synchronous: every method does its work at once, on the caller's turn of the event loop,
 * and returns a settled promise. Two `commit`s are therefore never interleaved inside one process, and each is
 * one IMMEDIATE transaction, so a second process writing the same file waits for the lock (busy timeout) rather
 * than failing half-way. Attribution to patients happens at query time, by joining measurement times against
 * the assignment intervals: an assignment made later attributes readings already stored, and a reassignment
 * never moves earlier readings.
 *
 * The live feed is in-process: it tells the commits of this store object, the intake's, which shares its
 * process with the dashboard on SQLite. A reader in another process sees new rows through the WAL.
 */
export class SqliteClinicStore implements ClinicStore {
  private closed = false;
  private readonly listeners = new Set<(event: CommittedEvent) => void>();
  private readonly clock: Clock;
  private readonly maxRejectedRows: number;
  private readonly maxQuarantineBytes: number;
  private readonly s: ReturnType<typeof prepare>;
  private readonly idleCheckpointMs: number;
  private idleTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly db: SqliteDatabase,
    private readonly options: SqliteClinicStoreOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.maxRejectedRows = options.maxRejectedRows ?? DEFAULT_MAX_REJECTED_ROWS;
    this.maxQuarantineBytes = options.maxQuarantineBytes ?? DEFAULT_MAX_QUARANTINE_BYTES;
    this.s = prepare(db);
    this.idleCheckpointMs = options.idleCheckpointMs ?? DEFAULT_IDLE_CHECKPOINT_MS;
  }

  static async open(options: SqliteClinicStoreOptions): Promise<SqliteClinicStore> {
    for (const [name, value] of [
      ['maxRejectedRows', options.maxRejectedRows],
      ['maxQuarantineBytes', options.maxQuarantineBytes],
      ['idleCheckpointMs', options.idleCheckpointMs],
    ] as const) {
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
        throw new ClinicStoreError('CLINIC_STORE_IO', `${name} must be a whole number, 0 or more`);
      }
    }
    const db = openClinicDatabase(options.path, options.key, {
      cacheKib: options.cacheKib ?? 16_384,
      busyTimeoutMs: options.busyTimeoutMs ?? 5_000,
    });
    try {
      migrateClinic(db, (options.clock ?? systemClock).now());
      return new SqliteClinicStore(db, options);
    } catch (error) {
      db.close();
      throw clinicErrorFrom(error, `opening the clinic database ${options.path}`);
    }
  }

  /** Runs `work` now (synchronously) and settles the promise with its result or its typed error. */
  private async run<T>(what: string, work: () => T): Promise<T> {
    if (this.closed)
      throw new ClinicStoreError('CLINIC_STORE_CLOSED', `${what}: the clinic database is closed`);
    try {
      return work();
    } catch (error) {
      throw clinicErrorFrom(error, what);
    }
  }

  async commit(write: IntakeWrite): Promise<CommitOutcome> {
    const { outcome, event } = await this.run('committing an intake write', () =>
      this.db.transaction(() => this.write(write, this.clock.now())).immediate(),
    );
    this.armIdleCheckpoint();
    if (event !== undefined) this.tell(event);
    return outcome;
  }

  /**
   * (Re)starts the idle timer: each commit pushes the checkpoint back, so it runs in the first pause of
   * `idleCheckpointMs`, after the PUBACKs of the last commit went out. PASSIVE never waits for readers (a
   * dashboard reading through the WAL) and never blocks a writer (https://www.sqlite.org/c3ref/wal_checkpoint_v2.html).
   * A real timer, unref'd: maintenance must not keep the process alive, and it has no effect a caller could
   * observe other than the time a later commit takes.
   */
  private armIdleCheckpoint(): void {
    if (this.idleCheckpointMs === 0) return;
    if (this.idleTimer !== undefined) {
      this.idleTimer.refresh();
      return;
    }
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.closed) return;
      try {
        this.db.pragma('wal_checkpoint(PASSIVE)');
      } catch (error) {
        this.options.onCheckpointError?.(clinicErrorFrom(error, 'checkpointing the clinic database'));
      }
    }, this.idleCheckpointMs);
    this.idleTimer.unref();
  }

  private write(write: IntakeWrite, committedAt: number): { outcome: CommitOutcome; event?: CommittedEvent } {
    const s = this.s;
    const inserted: string[] = [];
    const measurements: StoredMeasurement[] = [];
    let duplicates = 0;
    for (const { measurement: m, measuredAt, receipt: r } of write.measurements) {
      const result = s.insertMeasurement.run(
        m.id,
        r.gatewayId,
        m.deviceId,
        m.driver,
        m.characteristic,
        m.time,
        measuredAt,
        m.timeSource,
        m.stored === true ? 1 : 0,
        m.alert?.rule ?? null,
        m.alert === undefined ? null : m.alert.late ? 1 : 0,
        r.topic,
        r.batchSeq,
        r.sentAt,
        r.signerSerial,
        r.receivedAt,
        committedAt,
        measurementRest(m),
      );
      if (result.changes === 0) {
        duplicates++;
        continue;
      }
      const seq = Number(result.lastInsertRowid);
      m.observations.forEach((o, ordinal) => {
        s.insertObservation.run(
          r.gatewayId,
          o.code,
          measuredAt,
          seq,
          ordinal,
          o.value,
          o.unit,
          o.invalid ?? null,
          o.qualifier ?? null,
        );
      });
      s.insertExport.run(seq);
      inserted.push(m.id);
      measurements.push({ measurement: m, measuredAt, receipt: r, committedAt });
    }

    const gaps: { gap: IntakeWrite['gaps'][number]['gap']; receipt: Receipt }[] = [];
    let gapDuplicates = 0;
    for (const { gap, receipt: r } of write.gaps) {
      const result = s.insertGap.run(
        gap.id,
        r.gatewayId,
        gap.deviceId,
        gap.count,
        gap.reason,
        r.topic,
        r.batchSeq,
        r.sentAt,
        r.signerSerial,
        r.receivedAt,
        committedAt,
        JSON.stringify(gap),
      );
      if (result.changes === 0) gapDuplicates++;
      else gaps.push({ gap, receipt: r });
    }

    const statuses: IncomingStatus[] = [];
    for (const incoming of write.statuses) {
      const { status } = incoming;
      const result = s.insertStatus.run(
        status.gatewayId,
        status.state,
        status.sentAt,
        incoming.signerSerial,
        incoming.receivedAt,
        committedAt,
        JSON.stringify(status),
      );
      if (result.changes === 0) continue; // the retained status again
      s.upsertLatestStatus.run(status.gatewayId, Number(result.lastInsertRowid), incoming.receivedAt);
      statuses.push(incoming);
    }

    if (write.rejections.length > 0) this.reject(write.rejections);

    const outcome: CommitOutcome = { inserted, duplicates, gapsInserted: gaps.length, gapDuplicates };
    const told = measurements.length > 0 || gaps.length > 0 || statuses.length > 0;
    return told ? { outcome, event: { measurements, gaps, statuses } } : { outcome };
  }

  /** Stores rejections, counts them, and drops the oldest rows beyond the bounds: all in the caller's transaction. */
  private reject(rejections: readonly IncomingRejection[]): void {
    const s = this.s;
    const counts = new Map<string, number>();
    let quarantined = false;
    for (const r of rejections) {
      const payload = r.payload === undefined ? null : Buffer.from(r.payload);
      s.insertRejection.run(
        r.topic,
        r.code,
        r.message,
        r.receivedAt,
        r.gatewayId ?? null,
        payload,
        payload?.length ?? 0,
      );
      counts.set(r.code, (counts.get(r.code) ?? 0) + 1);
      if (payload !== null) quarantined = true;
    }
    for (const [code, n] of counts) s.countRejection.run(code, n);
    s.boundRejectionRows.run(this.maxRejectedRows);
    if (quarantined) s.boundQuarantineBytes.run(this.maxQuarantineBytes);
  }

  private tell(event: CommittedEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.options.onListenerError?.(error);
      }
    }
  }

  measurement(id: string): Promise<StoredMeasurement | undefined> {
    return this.run('reading a measurement', () => {
      const row = this.s.measurementById.get(id) as MeasurementRow | undefined;
      return row === undefined ? undefined : storedMeasurementOf(row);
    });
  }

  countMeasurements(): Promise<number> {
    return this.run('counting measurements', () => (this.s.countMeasurements.get() as { n: number }).n);
  }

  measurementIds(): Promise<string[]> {
    return this.run('listing measurement ids', () => this.s.measurementIds.pluck().all() as string[]);
  }

  series(query: SeriesQuery): Promise<SeriesPoint[]> {
    return this.run('reading a series', () => {
      const rows = this.s.series.all({
        mrn: query.mrn,
        code: query.code,
        from: query.from,
        to: query.to,
        limit: query.limit ?? -1,
      }) as SeriesRow[];
      return rows.map(seriesPointOf);
    });
  }

  /**
   * Per assignment of the patient: the codes its gateway ever sent (a loose index scan of observations_series
   * written as a recursive CTE, one seek per distinct code: PostgreSQL wiki, "Loose indexscan"; SQLite answers
   * each min() with one seek, "The SQLite Query Optimizer Overview", MIN/MAX optimization), then per code one
   * seek for the newest observation inside the assignment's interval. No scan of the readings, however many a
   * gateway has; the newest of each code over the patient's assignments wins.
   */
  latest(mrn: string): Promise<PatientLatest> {
    return this.run("reading a patient's latest readings", () => {
      const assignments = (this.s.assignmentsOfMrn.all(mrn) as AssignmentRow[]).map(assignmentOf);
      const newest = new Map<string, SeriesPoint>();
      const codesOf = new Map<string, string[]>();
      for (const a of assignments) {
        let codes = codesOf.get(a.gatewayId);
        if (codes === undefined) {
          codes = this.s.codesOf.pluck().all({ gateway: a.gatewayId }) as string[];
          codesOf.set(a.gatewayId, codes);
        }
        for (const code of codes) {
          const row = this.s.latestOf.get({
            gateway: a.gatewayId,
            code,
            from: a.from,
            to: a.to ?? Number.MAX_SAFE_INTEGER,
          }) as SeriesRow | undefined;
          if (row === undefined) continue;
          const point = seriesPointOf(row);
          const held = newest.get(code);
          if (held === undefined || later(point, held)) newest.set(code, point);
        }
      }
      const hubs: PatientHub[] = assignments
        .filter((a) => a.to === undefined)
        .map((a) => {
          const row = this.s.latestStatus.get(a.gatewayId) as StatusRow | undefined;
          return {
            gatewayId: a.gatewayId,
            since: a.from,
            ...(row === undefined ? {} : { status: statusOf(row) }),
          };
        });
      const observations = [...newest.values()].sort((x, y) =>
        x.code < y.code ? -1 : x.code > y.code ? 1 : 0,
      );
      return { observations, hubs };
    });
  }

  measurementsOf(mrn: string, from: number, to: number): Promise<StoredMeasurement[]> {
    return this.run("reading a patient's measurements", () =>
      (this.s.measurementsOf.all({ mrn, from, to }) as MeasurementRow[]).map(storedMeasurementOf),
    );
  }

  /**
   * Per assignment of the patient that overlaps [from, to): at most `limit` rows of its gateway after the
   * cursor, each an index range on measurements_by_time (gateway, time) that starts at the cursor's time and
   * stops after `limit` rows; then the merge of those (one per assignment) in (time, id) order, cut to
   * `limit`. One statement joining the assignments could not stop early: with two hubs of one patient at
   * once, its rows come per assignment, so SQLite would sort the whole rest of the range for every page.
   */
  measurementPage(query: MeasurementPageQuery): Promise<StoredMeasurement[]> {
    return this.run("reading a page of a patient's measurements", () => {
      checkPageLimit(query.limit);
      const afterAt = query.after?.measuredAt ?? Number.MIN_SAFE_INTEGER;
      const afterId = query.after?.measurementId ?? '';
      const rows: MeasurementRow[] = [];
      for (const a of (this.s.assignmentsOfMrn.all(query.mrn) as AssignmentRow[]).map(assignmentOf)) {
        const lo = Math.max(a.from, query.from, afterAt);
        const hi = Math.min(a.to ?? query.to, query.to);
        if (lo >= hi) continue;
        const page = this.s.gatewayPage.all({
          gateway: a.gatewayId,
          lo,
          hi,
          afterAt,
          afterId,
          limit: query.limit,
        }) as MeasurementRow[];
        rows.push(...page);
      }
      // Measurement ids are ASCII ("m1-" and hex, docs/wire-format.md), so JavaScript's string order is
      // SQLite's BINARY collation: byte order.
      rows.sort((x, y) =>
        x.measured_at !== y.measured_at
          ? x.measured_at - y.measured_at
          : x.id < y.id
            ? -1
            : x.id > y.id
              ? 1
              : 0,
      );
      return rows.slice(0, query.limit).map(storedMeasurementOf);
    });
  }

  unassigned(limit: number): Promise<StoredMeasurement[]> {
    return this.run('listing unassigned measurements', () =>
      (this.s.unassigned.all(limit) as MeasurementRow[]).map(storedMeasurementOf),
    );
  }

  gaps(
    gatewayId: string,
  ): Promise<{ readonly gap: IntakeWrite['gaps'][number]['gap']; readonly receipt: Receipt }[]> {
    return this.run('reading gaps', () => (this.s.gaps.all(gatewayId) as GapRow[]).map(gapOf));
  }

  latestStatus(gatewayId: string): Promise<IncomingStatus | undefined> {
    return this.run('reading a status', () => {
      const row = this.s.latestStatus.get(gatewayId) as StatusRow | undefined;
      return row === undefined ? undefined : statusOf(row);
    });
  }

  assign(assignment: NewAssignment): Promise<Assignment> {
    return this.run('assigning a gateway', () =>
      this.db
        .transaction(() => {
          const existing = (this.s.assignmentsOf.all(assignment.gatewayId) as AssignmentRow[]).map(
            assignmentOf,
          );
          const { endOpen } = checkNewAssignment(assignment, existing);
          if (endOpen !== undefined) this.s.endAssignment.run(assignment.from, endOpen.id);
          const result = this.s.insertAssignment.run(
            assignment.gatewayId,
            assignment.mrn,
            assignment.from,
            assignment.timeZone ?? null,
            assignment.createdBy,
            assignment.at,
          );
          return assignmentOf(this.s.assignmentById.get(Number(result.lastInsertRowid)) as AssignmentRow);
        })
        .immediate(),
    );
  }

  unassign(gatewayId: string, to: number): Promise<Assignment | undefined> {
    return this.run('ending an assignment', () =>
      this.db
        .transaction(() => {
          const row = this.s.openAssignment.get(gatewayId) as AssignmentRow | undefined;
          if (row === undefined) return undefined;
          checkEnd(assignmentOf(row), to);
          this.s.endAssignment.run(to, row.id);
          return assignmentOf(this.s.assignmentById.get(row.id) as AssignmentRow);
        })
        .immediate(),
    );
  }

  assignments(gatewayId?: string): Promise<Assignment[]> {
    return this.run('listing assignments', () =>
      (
        (gatewayId === undefined
          ? this.s.allAssignments.all()
          : this.s.assignmentsOf.all(gatewayId)) as AssignmentRow[]
      ).map(assignmentOf),
    );
  }

  rejectionCounts(): Promise<RejectionCount[]> {
    return this.run('reading rejection counts', () => this.s.rejectionCounts.all() as RejectionCount[]);
  }

  quarantined(limit: number): Promise<(IncomingRejection & { readonly id: number })[]> {
    return this.run('listing quarantined messages', () =>
      (this.s.quarantined.all(limit) as RejectionRow[]).map(rejectionOf),
    );
  }

  releaseQuarantined(ids: readonly number[]): Promise<void> {
    return this.run('releasing quarantined messages', () => {
      this.db.transaction(() => {
        for (const id of ids) this.s.releaseQuarantined.run(id);
      })();
    });
  }

  leaseExports(limit: number, now: number, leaseMs: number): Promise<ExportItem[]> {
    return this.run('leasing exports', () =>
      this.withoutFsync(() =>
        this.db
          .transaction(() => {
            const due = this.s.dueExports.all({ now, limit }) as {
              seq: number;
              mrn: string;
              attempts: number;
            }[];
            return due.map(({ seq, mrn, attempts }) => {
              this.s.leaseExport.run(now + leaseMs, seq);
              const stored = storedMeasurementOf(this.s.measurementBySeq.get(seq) as MeasurementRow);
              return { stored, mrn, attempts };
            });
          })
          .immediate(),
      ),
    );
  }

  completeExports(results: readonly ExportResult[]): Promise<void> {
    return this.run('recording export results', () =>
      this.withoutFsync(() =>
        this.db
          .transaction(() => {
            for (const result of results) {
              switch (result.outcome) {
                case 'exported':
                case 'skipped':
                  this.s.settleExport.run({
                    state: result.outcome,
                    at: result.at,
                    note: result.outcome === 'skipped' ? result.why : null,
                    id: result.measurementId,
                  });
                  this.s.unqueueExport.run(result.measurementId);
                  break;
                case 'failed':
                  this.s.failExport.run(result.retryAt, result.error, result.measurementId);
                  break;
              }
            }
          })
          .immediate(),
      ),
    );
  }

  /**
   * Runs an export-queue transaction (a lease, recorded results) without the fsync at its commit
   * (synchronous = NORMAL for it alone; https://www.sqlite.org/pragma.html#pragma_synchronous). Losing such a
   * commit in a power cut loses no data, only the exporter's progress: a lost lease makes its measurements due
   * again at once, a lost result re-sends them after their lease lapses, and every upload is a conditional create
   * that finds what the first one created (docs/fhir.md, "Identifiers and idempotence"). In WAL mode the
   * database stays consistent either way, and the next intake commit (FULL, database.ts) fsyncs the log with these frames in
   * it. Two fsyncs per Bundle were half of the exporter's wall time (docs/fhir.md, "Throughput"). better-sqlite3 is
   * synchronous, so no intake commit can run while the setting is lowered; it is restored even when `work` throws.
   */
  private withoutFsync<T>(work: () => T): T {
    const before = this.db.pragma('synchronous', { simple: true }) as number;
    this.db.pragma('synchronous = NORMAL');
    try {
      return work();
    } finally {
      this.db.pragma(`synchronous = ${before}`);
    }
  }

  exportCounts(): Promise<{ pending: number; exported: number; skipped: number; failing: number }> {
    return this.run('counting exports', () => {
      const counts = { pending: 0, exported: 0, skipped: 0, failing: 0 };
      for (const row of this.s.exportCounts.all() as { state: keyof typeof counts; n: number }[]) {
        counts[row.state] = row.n;
      }
      return counts;
    });
  }

  lastExportedAt(
    gatewayId: string,
    deviceId: string,
    characteristic: string,
    at: number,
  ): Promise<number | undefined> {
    return this.run('reading the last export', () => {
      const value = this.s.lastExportedAt.pluck().get(gatewayId, deviceId, characteristic, at) as
        | number
        | null;
      return value ?? undefined;
    });
  }

  subscribe(listener: (event: CommittedEvent) => void): Promise<() => Promise<void>> {
    return this.run('subscribing to commits', () => {
      // A wrapper, so subscribing the same function twice makes two subscriptions, each stopped on its own.
      const entry = (event: CommittedEvent) => listener(event);
      this.listeners.add(entry);
      return async () => {
        this.listeners.delete(entry);
      };
    });
  }

  /** Closes the database (a checkpoint folds the WAL into the main file). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    try {
      this.db.close();
    } catch (error) {
      throw clinicErrorFrom(error, 'closing the clinic database');
    }
  }
}

interface SeriesRow {
  readonly id: string;
  readonly measured_at: number;
  readonly code: string;
  readonly value: number | null;
  readonly unit: string;
  readonly invalid: string | null;
  readonly qualifier: string | null;
  readonly stored: number;
  readonly gateway_id: string;
  readonly device_id: string;
  readonly driver: string;
}

/** The order `series` gives points in: by measurement time, then measurement id. */
function later(a: SeriesPoint, b: SeriesPoint): boolean {
  return a.measuredAt !== b.measuredAt ? a.measuredAt > b.measuredAt : a.measurementId > b.measurementId;
}

function seriesPointOf(row: SeriesRow): SeriesPoint {
  return {
    measurementId: row.id,
    measuredAt: row.measured_at,
    code: row.code,
    value: row.value,
    unit: row.unit,
    ...(row.invalid === null ? {} : { invalid: row.invalid as NonNullable<SeriesPoint['invalid']> }),
    ...(row.qualifier === null ? {} : { qualifier: row.qualifier }),
    stored: row.stored === 1,
    gatewayId: row.gateway_id,
    deviceId: row.device_id,
    driver: row.driver,
  };
}

function prepare(db: SqliteDatabase) {
  return {
    insertMeasurement: db.prepare(
      `INSERT INTO measurements (id, gateway_id, device_id, driver, characteristic, time_text, measured_at,
         time_source, stored, alert_rule, alert_late, topic, batch_seq, sent_at, signer_serial, received_at,
         committed_at, rest)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
    ),
    insertObservation: db.prepare(
      `INSERT INTO observations (gateway_id, code, measured_at, measurement_seq, ordinal, value, unit, invalid, qualifier)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertExport: db.prepare('INSERT INTO export_queue (measurement_seq) VALUES (?)'),
    insertGap: db.prepare(
      `INSERT INTO gaps (id, gateway_id, device_id, count, reason, topic, batch_seq, sent_at, signer_serial,
         received_at, committed_at, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
    ),
    insertStatus: db.prepare(
      `INSERT INTO status_events (gateway_id, state, sent_at, signer_serial, received_at, committed_at, body)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (gateway_id, sent_at, state) DO NOTHING`,
    ),
    // The later receipt wins; on a tie, the later commit (the statement runs in commit order).
    upsertLatestStatus: db.prepare(
      `INSERT INTO status_latest (gateway_id, event_seq, received_at) VALUES (?, ?, ?)
       ON CONFLICT (gateway_id) DO UPDATE SET event_seq = excluded.event_seq, received_at = excluded.received_at
       WHERE excluded.received_at >= status_latest.received_at`,
    ),
    insertRejection: db.prepare(
      `INSERT INTO rejections (topic, code, message, received_at, gateway_id, payload, size)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    countRejection: db.prepare(
      `INSERT INTO rejection_counts (code, count) VALUES (?, ?)
       ON CONFLICT (code) DO UPDATE SET count = count + excluded.count`,
    ),
    // Keeps the newest `?` rows: the row at that offset from the newest, and all older, go.
    boundRejectionRows: db.prepare(
      `DELETE FROM rejections WHERE id <= (SELECT id FROM rejections ORDER BY id DESC LIMIT 1 OFFSET ?)`,
    ),
    // Keeps the newest quarantined payloads whose sizes add up to at most `?` bytes.
    boundQuarantineBytes: db.prepare(
      `DELETE FROM rejections WHERE payload IS NOT NULL AND id <= (
         SELECT max(id) FROM (
           SELECT id, sum(size) OVER (ORDER BY id DESC ROWS UNBOUNDED PRECEDING) AS newer_bytes
           FROM rejections WHERE payload IS NOT NULL
         ) WHERE newer_bytes > ?
       )`,
    ),
    measurementById: db.prepare(`SELECT ${MEASUREMENT_COLUMNS} FROM measurements m WHERE m.id = ?`),
    measurementBySeq: db.prepare(`SELECT ${MEASUREMENT_COLUMNS} FROM measurements m WHERE m.seq = ?`),
    countMeasurements: db.prepare('SELECT count(*) AS n FROM measurements'),
    measurementIds: db.prepare('SELECT id FROM measurements ORDER BY seq'),
    // Per assignment of the patient that overlaps [from, to): that gateway's observations of the code inside
    // both intervals (observations_series index: gateway, code, time range).
    series: db.prepare(
      `SELECT m.id, o.measured_at, o.code, o.value, o.unit, o.invalid, o.qualifier, m.stored, m.gateway_id,
              m.device_id, m.driver
       FROM assignments a
       JOIN observations o ON o.gateway_id = a.gateway_id AND o.code = @code
         AND o.measured_at >= max(a.from_ms, @from) AND o.measured_at < min(coalesce(a.to_ms, @to), @to)
       JOIN measurements m ON m.seq = o.measurement_seq
       WHERE a.mrn = @mrn AND a.from_ms < @to AND (a.to_ms IS NULL OR a.to_ms > @from)
       ORDER BY o.measured_at, m.id, o.ordinal
       LIMIT @limit`,
    ),
    assignmentsOfMrn: db.prepare('SELECT * FROM assignments WHERE mrn = ? ORDER BY from_ms'),
    // The distinct codes of one gateway, each found by one seek on observations_series.
    codesOf: db.prepare(
      `WITH RECURSIVE codes (code) AS (
         SELECT (SELECT min(code) FROM observations WHERE gateway_id = @gateway)
         UNION ALL
         SELECT (SELECT min(code) FROM observations WHERE gateway_id = @gateway AND code > codes.code)
         FROM codes WHERE codes.code IS NOT NULL
       )
       SELECT code FROM codes WHERE code IS NOT NULL`,
    ),
    // The newest observation of a code in [from, to) of one gateway: the last entry of that index range.
    latestOf: db.prepare(
      `SELECT m.id, o.measured_at, o.code, o.value, o.unit, o.invalid, o.qualifier, m.stored, m.gateway_id,
              m.device_id, m.driver
       FROM observations o JOIN measurements m ON m.seq = o.measurement_seq
       WHERE o.gateway_id = @gateway AND o.code = @code AND o.measured_at >= @from AND o.measured_at < @to
       ORDER BY o.measured_at DESC, m.id DESC, o.ordinal DESC
       LIMIT 1`,
    ),
    measurementsOf: db.prepare(
      `SELECT ${MEASUREMENT_COLUMNS}
       FROM assignments a
       JOIN measurements m ON m.gateway_id = a.gateway_id
         AND m.measured_at >= max(a.from_ms, @from) AND m.measured_at < min(coalesce(a.to_ms, @to), @to)
       WHERE a.mrn = @mrn AND a.from_ms < @to AND (a.to_ms IS NULL OR a.to_ms > @from)
       ORDER BY m.measured_at, m.id`,
    ),
    // One gateway's measurements in [lo, hi) after the cursor (time, id), in that order: an index range
    // (measurements_by_time) from lo, where lo is at least the cursor's time.
    gatewayPage: db.prepare(
      `SELECT ${MEASUREMENT_COLUMNS} FROM measurements m
       WHERE m.gateway_id = @gateway AND m.measured_at >= @lo AND m.measured_at < @hi
         AND (m.measured_at > @afterAt OR m.id > @afterId)
       ORDER BY m.measured_at, m.id
       LIMIT @limit`,
    ),
    unassigned: db.prepare(
      `SELECT ${MEASUREMENT_COLUMNS} FROM measurements m
       WHERE NOT EXISTS (SELECT 1 FROM assignments a WHERE ${COVERS('a', 'm.gateway_id', 'm.measured_at')})
       ORDER BY m.seq LIMIT ?`,
    ),
    gaps: db.prepare(
      `SELECT gateway_id, topic, batch_seq, sent_at, signer_serial, received_at, body
       FROM gaps WHERE gateway_id = ? ORDER BY seq`,
    ),
    latestStatus: db.prepare(
      `SELECT e.body, e.signer_serial, e.received_at
       FROM status_latest l JOIN status_events e ON e.seq = l.event_seq WHERE l.gateway_id = ?`,
    ),
    assignmentById: db.prepare('SELECT * FROM assignments WHERE id = ?'),
    assignmentsOf: db.prepare('SELECT * FROM assignments WHERE gateway_id = ? ORDER BY from_ms'),
    allAssignments: db.prepare('SELECT * FROM assignments ORDER BY gateway_id, from_ms'),
    openAssignment: db.prepare('SELECT * FROM assignments WHERE gateway_id = ? AND to_ms IS NULL'),
    endAssignment: db.prepare('UPDATE assignments SET to_ms = ? WHERE id = ?'),
    insertAssignment: db.prepare(
      `INSERT INTO assignments (gateway_id, mrn, from_ms, time_zone, created_by, created_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    rejectionCounts: db.prepare('SELECT code, count FROM rejection_counts ORDER BY code'),
    quarantined: db.prepare(
      `SELECT id, topic, code, message, received_at, gateway_id, payload
       FROM rejections WHERE payload IS NOT NULL ORDER BY id LIMIT ?`,
    ),
    releaseQuarantined: db.prepare('DELETE FROM rejections WHERE id = ? AND payload IS NOT NULL'),
    // Due: still queued, retry time reached, no live lease, and attributed to a patient (unassigned ones wait).
    dueExports: db.prepare(
      `SELECT q.measurement_seq AS seq, a.mrn, q.attempts
       FROM export_queue q
       JOIN measurements m ON m.seq = q.measurement_seq
       JOIN assignments a ON ${COVERS('a', 'm.gateway_id', 'm.measured_at')}
       WHERE (q.retry_at IS NULL OR q.retry_at <= @now)
         AND (q.lease_until IS NULL OR q.lease_until <= @now)
       ORDER BY q.measurement_seq
       LIMIT @limit`,
    ),
    leaseExport: db.prepare('UPDATE export_queue SET lease_until = ? WHERE measurement_seq = ?'),
    // Settling moves the item from the queue to export_done. A result for an item no longer queued (a late
    // answer after its lease passed and another exporter settled it) changes nothing.
    settleExport: db.prepare(
      `INSERT INTO export_done (measurement_seq, state, gateway_id, device_id, characteristic, measured_at, done_at, note)
       SELECT q.measurement_seq, @state, m.gateway_id, m.device_id, m.characteristic, m.measured_at, @at, @note
       FROM measurements m JOIN export_queue q ON q.measurement_seq = m.seq
       WHERE m.id = @id`,
    ),
    unqueueExport: db.prepare(
      'DELETE FROM export_queue WHERE measurement_seq = (SELECT seq FROM measurements WHERE id = ?)',
    ),
    failExport: db.prepare(
      `UPDATE export_queue SET attempts = attempts + 1, retry_at = ?, note = ?, lease_until = NULL
       WHERE measurement_seq = (SELECT seq FROM measurements WHERE id = ?)`,
    ),
    exportCounts: db.prepare(
      `SELECT CASE WHEN attempts > 0 THEN 'failing' ELSE 'pending' END AS state, count(*) AS n
       FROM export_queue GROUP BY 1
       UNION ALL
       SELECT state, count(*) AS n FROM export_done GROUP BY state`,
    ),
    lastExportedAt: db.prepare(
      `SELECT max(measured_at) FROM export_done
       WHERE gateway_id = ? AND device_id = ? AND characteristic = ? AND measured_at <= ? AND state = 'exported'`,
    ),
  };
}
