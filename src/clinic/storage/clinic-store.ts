import type { Gap } from '../../model/gap.js';
import type { Measurement } from '../../model/measurement.js';
import type { InvalidReason } from '../../model/observation.js';
import type { GatewayStatus } from '../../wire/status.js';

/**
 * The clinic's repository: everything the intake receives, the patients readings belong to, and the FHIR export
 * queue, behind one interface with two real implementations (SQLite, encrypted, for one machine; PostgreSQL for
 * several intake processes). test/clinic/storage/contract.ts is the one contract suite both must pass.
 *
 * Exactly-once is a unique key on the measurement id in the database, never a set in memory: `commit` inserts
 * what is new and counts what was already there, so a redelivery, a restart or a second intake process cannot
 * store a reading twice. The intake acknowledges a message to the broker only after the `commit` holding its
 * items has resolved.
 *
 * Times are epoch milliseconds (UTC) everywhere in this interface.
 */

/** Where an item came from: added by the intake to everything it stores (provenance). */
export interface Receipt {
  readonly gatewayId: string;
  /** The lane topic it came on (docs/wire-format.md, topics). */
  readonly topic: 'obs' | 'alert';
  /** The batch's sequence number (`seq`) and the signer's own claim of when it was signed (`sent`). */
  readonly batchSeq: number;
  readonly sentAt: number;
  /** The signing certificate's serial number (lower-case hex). */
  readonly signerSerial: string;
  /** When the intake received the message (its own clock). */
  readonly receivedAt: number;
}

export interface IncomingMeasurement {
  readonly measurement: Measurement;
  /**
   * The measurement time as an instant. `measurement.time` may be the device's local wall-clock time without
   * an offset (docs/wire-format.md section 5, rule 7); the intake resolves it in the gateway's time zone.
   */
  readonly measuredAt: number;
  readonly receipt: Receipt;
}

export interface IncomingGap {
  readonly gap: Gap;
  readonly receipt: Receipt;
}

export interface IncomingStatus {
  readonly status: GatewayStatus;
  readonly signerSerial: string;
  readonly receivedAt: number;
}

/** A message the intake refused, with why. Counted forever; the rows themselves are bounded (oldest go). */
export interface IncomingRejection {
  readonly topic: string;
  /** A stable error code (WIRE_*, INTAKE_*). */
  readonly code: string;
  /** Written for people; never PHI. */
  readonly message: string;
  readonly receivedAt: number;
  /** The gateway the topic names, when it parsed. */
  readonly gatewayId?: string;
  /**
   * The message itself, kept only where it may be retried (an unknown kid: the gateway inventory may be late,
   * docs/wire-format.md section 4); bounded with the rows.
   */
  readonly payload?: Uint8Array;
}

/** What one intake commit writes, in one transaction. */
export interface IntakeWrite {
  readonly measurements: readonly IncomingMeasurement[];
  readonly gaps: readonly IncomingGap[];
  readonly statuses: readonly IncomingStatus[];
  readonly rejections: readonly IncomingRejection[];
}

export interface CommitOutcome {
  /** Measurement ids stored by this commit, in input order. */
  readonly inserted: readonly string[];
  /** Measurements already in the database (or twice in this write): not stored again. */
  readonly duplicates: number;
  readonly gapsInserted: number;
  readonly gapDuplicates: number;
}

/** One observation of a stored measurement, as a time series needs it. */
export interface SeriesPoint {
  readonly measurementId: string;
  readonly measuredAt: number;
  readonly code: string;
  readonly value: number | null;
  readonly unit: string;
  readonly invalid?: InvalidReason;
  readonly qualifier?: string;
  /** The device had stored it before sending (a back-filled reading). */
  readonly stored: boolean;
  readonly gatewayId: string;
  readonly deviceId: string;
  readonly driver: string;
}

/** A stored measurement with its provenance. */
export interface StoredMeasurement {
  readonly measurement: Measurement;
  readonly measuredAt: number;
  readonly receipt: Receipt;
  /** When this database committed it. */
  readonly committedAt: number;
}

/** A gateway (and so its devices) belongs to a patient from `from` until `to` (exclusive; open when absent). */
export interface Assignment {
  readonly id: number;
  readonly gatewayId: string;
  /** The patient's medical record number in the clinic's records. */
  readonly mrn: string;
  readonly from: number;
  readonly to?: number;
  /** IANA time zone of the patient's home: resolves device times without an offset. */
  readonly timeZone?: string;
  readonly createdBy: string;
  readonly createdAt: number;
}

export interface NewAssignment {
  readonly gatewayId: string;
  readonly mrn: string;
  readonly from: number;
  readonly timeZone?: string;
  readonly createdBy: string;
  readonly at: number;
}

/** A patient's readings of one code over [from, to), attributed by measurement time (never by today's assignment). */
export interface SeriesQuery {
  readonly mrn: string;
  readonly code: string;
  readonly from: number;
  readonly to: number;
  readonly limit?: number;
}

/** Where a page of `measurementPage` ended: the next page starts after this measurement. */
export interface MeasurementCursor {
  readonly measuredAt: number;
  readonly measurementId: string;
}

/**
 * One page of a patient's measurements over [from, to), attributed by measurement time like `measurementsOf`,
 * in the order (measuredAt, measurement id), ids compared byte by byte. Keyset pagination: the page after
 * `after` (exclusive) holds the next `limit` measurements in that order, so a reader walks any range in pages
 * of bounded size, each found by an index seek rather than by skipping the earlier ones (an OFFSET would
 * re-read them). A measurement committed meanwhile is in a later page if it sorts after the cursor.
 */
export interface MeasurementPageQuery {
  readonly mrn: string;
  readonly from: number;
  readonly to: number;
  readonly after?: MeasurementCursor;
  readonly limit: number;
}

/** A hub assigned to a patient now (an open assignment), with the last status it sent, if any. */
export interface PatientHub {
  readonly gatewayId: string;
  readonly since: number;
  readonly status?: IncomingStatus;
}

/**
 * A patient's current picture, what a dashboard tile shows: the latest observation of every code the
 * patient's hubs ever sent (attributed by measurement time, as `series` does; the last point `series` would
 * give for that code over all time), ordered by code, and the hubs assigned to the patient now. A device's
 * battery level is the observation MDC_ATTR_VAL_BATT_CHARGE (a hub's status does not carry one).
 */
export interface PatientLatest {
  readonly observations: readonly SeriesPoint[];
  readonly hubs: readonly PatientHub[];
}

/** Committed readings, as the live feed tells them (after the commit, never before). */
export interface CommittedEvent {
  readonly measurements: readonly StoredMeasurement[];
  readonly gaps: readonly { readonly gap: Gap; readonly receipt: Receipt }[];
  readonly statuses: readonly IncomingStatus[];
}

/** A measurement waiting for FHIR export, leased to one exporter until `leaseUntil`. */
export interface ExportItem {
  readonly stored: StoredMeasurement;
  /** The patient it is attributed to by its measurement time. */
  readonly mrn: string;
  readonly attempts: number;
}

export type ExportResult =
  | { readonly measurementId: string; readonly outcome: 'exported'; readonly at: number }
  /** Not exported by policy (a continuous stream thinned), never retried. */
  | { readonly measurementId: string; readonly outcome: 'skipped'; readonly at: number; readonly why: string }
  | {
      readonly measurementId: string;
      readonly outcome: 'failed';
      readonly at: number;
      readonly retryAt: number;
      readonly error: string;
    };

export interface RejectionCount {
  readonly code: string;
  readonly count: number;
}

export interface ClinicStore {
  /** Stores one intake write in one transaction; resolves after the commit is durable. */
  commit(write: IntakeWrite): Promise<CommitOutcome>;
  /**
   * Readies the store for `concurrent` commits at once before the first one (the intake calls it as it starts).
   * PostgreSQL opens that many connections and keeps them; a store that commits in the process has no such
   * work and leaves it out.
   */
  prepareCommits?(concurrent: number): Promise<void>;

  measurement(id: string): Promise<StoredMeasurement | undefined>;
  countMeasurements(): Promise<number>;
  /** Every stored measurement id (tests and fault checks compare them with what the hubs appended). */
  measurementIds(): Promise<string[]>;
  series(query: SeriesQuery): Promise<SeriesPoint[]>;
  /** The patient's latest observation per code and current hubs with their last status (PatientLatest). */
  latest(mrn: string): Promise<PatientLatest>;
  /** A patient's measurements over [from, to), by measurement time against the assignment intervals. */
  measurementsOf(mrn: string, from: number, to: number): Promise<StoredMeasurement[]>;
  /** The same measurements one page at a time (MeasurementPageQuery): what an export streams. */
  measurementPage(query: MeasurementPageQuery): Promise<StoredMeasurement[]>;
  /** Measurements outside every assignment interval: kept and listed, never dropped. */
  unassigned(limit: number): Promise<StoredMeasurement[]>;
  gaps(gatewayId: string): Promise<{ readonly gap: Gap; readonly receipt: Receipt }[]>;
  latestStatus(gatewayId: string): Promise<IncomingStatus | undefined>;

  /** Ends the gateway's open assignment at `from` (if any) and starts the new one; audited by the caller. */
  assign(assignment: NewAssignment): Promise<Assignment>;
  /** Ends the gateway's open assignment at `to`. */
  unassign(gatewayId: string, to: number): Promise<Assignment | undefined>;
  assignments(gatewayId?: string): Promise<Assignment[]>;

  rejectionCounts(): Promise<RejectionCount[]>;
  /** Rejected messages kept for a retry (payload present), oldest first. */
  quarantined(limit: number): Promise<(IncomingRejection & { readonly id: number })[]>;
  /** Removes quarantined messages (after a retry stored or refused them for good). */
  releaseQuarantined(ids: readonly number[]): Promise<void>;

  /**
   * Up to `limit` measurements due for export (never exported or skipped; attributed to a patient; not leased
   * or their lease has passed; retry time reached), leased until `now + leaseMs`.
   */
  leaseExports(limit: number, now: number, leaseMs: number): Promise<ExportItem[]>;
  completeExports(results: readonly ExportResult[]): Promise<void>;
  exportCounts(): Promise<{ pending: number; exported: number; skipped: number; failing: number }>;
  /**
   * The measurement time of the latest exported measurement from this device's characteristic at or before
   * `at`: what the export policy thins a continuous stream by.
   */
  lastExportedAt(
    gatewayId: string,
    deviceId: string,
    characteristic: string,
    at: number,
  ): Promise<number | undefined>;

  /**
   * Tells `listener` about every commit, by any process sharing this database, after it committed. Resolves
   * once listening; the returned function stops it.
   */
  subscribe(listener: (event: CommittedEvent) => void): Promise<() => Promise<void>>;

  close(): Promise<void>;
}
