import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
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
} from '../../../src/clinic/storage/clinic-store.js';
import { SqliteClinicStore } from '../../../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import type { Gap } from '../../../src/model/gap.js';

const KEY = Uint8Array.from(Buffer.from('5a'.repeat(32), 'hex'));

/**
 * The real SQLite ClinicStore (an encrypted file in a temporary folder) with the levers the intake's tests need
 * around `commit`, and nothing else changed: `hold()` keeps commits from starting their transaction until
 * `release()`, `failing` makes commits throw before touching the database, as one that is down would.
 */
export class ControlledStore implements ClinicStore {
  private gate: { promise: Promise<void>; open: () => void } | undefined;
  /** Every commit throws while set. */
  failing: Error | undefined;
  /** What the intake asked prepareCommits for, in order; it throws this instead while set. */
  readonly prepared: number[] = [];
  preparing: Error | undefined;
  /** Commit attempts that started, and those that committed. */
  commitsStarted = 0;
  commitsDone = 0;

  private constructor(readonly inner: ClinicStore) {}

  static async open(dir: string): Promise<ControlledStore> {
    const folder = mkdtempSync(join(dir, 'store-'));
    return new ControlledStore(await SqliteClinicStore.open({ path: join(folder, 'clinic.db'), key: KEY }));
  }

  hold(): void {
    if (this.gate) return;
    let open = () => {};
    const promise = new Promise<void>((resolve) => {
      open = resolve;
    });
    this.gate = { promise, open };
  }

  release(): void {
    const gate = this.gate;
    this.gate = undefined;
    gate?.open();
  }

  async prepareCommits(concurrent: number): Promise<void> {
    if (this.preparing) throw this.preparing;
    this.prepared.push(concurrent);
  }

  async commit(write: IntakeWrite): Promise<CommitOutcome> {
    this.commitsStarted++;
    if (this.gate) await this.gate.promise;
    if (this.failing) throw this.failing;
    const outcome = await this.inner.commit(write);
    this.commitsDone++;
    return outcome;
  }

  measurement(id: string): Promise<StoredMeasurement | undefined> {
    return this.inner.measurement(id);
  }
  countMeasurements(): Promise<number> {
    return this.inner.countMeasurements();
  }
  measurementIds(): Promise<string[]> {
    return this.inner.measurementIds();
  }
  series(query: SeriesQuery): Promise<SeriesPoint[]> {
    return this.inner.series(query);
  }
  measurementsOf(mrn: string, from: number, to: number): Promise<StoredMeasurement[]> {
    return this.inner.measurementsOf(mrn, from, to);
  }
  measurementPage(query: MeasurementPageQuery): Promise<StoredMeasurement[]> {
    return this.inner.measurementPage(query);
  }
  unassigned(limit: number): Promise<StoredMeasurement[]> {
    return this.inner.unassigned(limit);
  }
  gaps(gatewayId: string): Promise<{ readonly gap: Gap; readonly receipt: Receipt }[]> {
    return this.inner.gaps(gatewayId);
  }
  latest(mrn: string): Promise<PatientLatest> {
    return this.inner.latest(mrn);
  }
  latestStatus(gatewayId: string): Promise<IncomingStatus | undefined> {
    return this.inner.latestStatus(gatewayId);
  }
  assign(assignment: NewAssignment): Promise<Assignment> {
    return this.inner.assign(assignment);
  }
  unassign(gatewayId: string, to: number): Promise<Assignment | undefined> {
    return this.inner.unassign(gatewayId, to);
  }
  assignments(gatewayId?: string): Promise<Assignment[]> {
    return this.inner.assignments(gatewayId);
  }
  rejectionCounts(): Promise<RejectionCount[]> {
    return this.inner.rejectionCounts();
  }
  quarantined(limit: number): Promise<(IncomingRejection & { readonly id: number })[]> {
    return this.inner.quarantined(limit);
  }
  releaseQuarantined(ids: readonly number[]): Promise<void> {
    return this.inner.releaseQuarantined(ids);
  }
  leaseExports(limit: number, now: number, leaseMs: number): Promise<ExportItem[]> {
    return this.inner.leaseExports(limit, now, leaseMs);
  }
  completeExports(results: readonly ExportResult[]): Promise<void> {
    return this.inner.completeExports(results);
  }
  exportCounts(): Promise<{ pending: number; exported: number; skipped: number; failing: number }> {
    return this.inner.exportCounts();
  }
  lastExportedAt(gatewayId: string, deviceId: string, characteristic: string, at: number) {
    return this.inner.lastExportedAt(gatewayId, deviceId, characteristic, at);
  }
  subscribe(listener: (event: CommittedEvent) => void): Promise<() => Promise<void>> {
    return this.inner.subscribe(listener);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
