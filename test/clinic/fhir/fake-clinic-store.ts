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
  NewAssignment,
  Receipt,
  RejectionCount,
  SeriesPoint,
  SeriesQuery,
  StoredMeasurement,
} from '../../../src/clinic/storage/clinic-store.js';
import type { Gap } from '../../../src/model/gap.js';

interface Row {
  readonly stored: StoredMeasurement;
  state: 'pending' | 'exported' | 'skipped';
  attempts: number;
  retryAt: number;
  leaseUntil: number;
}

/**
 * An in-memory ClinicStore for the exporter's tests until the SQLite one is on main: the same export-queue rules
 * the interface documents (unique measurement ids; only measurements attributed to a patient by their measurement
 * time are leased; a lease hides a row until it passes; failed rows wait for their retry time; exported and
 * skipped rows never come back). It is a test double, not a second implementation: no durability.
 */
export class FakeClinicStore implements ClinicStore {
  private readonly rows = new Map<string, Row>();
  private readonly assignmentList: Assignment[] = [];
  private readonly gapList: { gap: Gap; receipt: Receipt }[] = [];
  private readonly statusList: IncomingStatus[] = [];
  private readonly rejections: (IncomingRejection & { id: number })[] = [];
  private readonly listeners = new Set<(event: CommittedEvent) => void>();
  private nextId = 1;
  /** Every completeExports call's results, in order (tests inspect attempts and outcomes). */
  readonly completed: ExportResult[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  async commit(write: IntakeWrite): Promise<CommitOutcome> {
    const inserted: string[] = [];
    let duplicates = 0;
    const committed: StoredMeasurement[] = [];
    for (const m of write.measurements) {
      if (this.rows.has(m.measurement.id)) {
        duplicates++;
        continue;
      }
      const stored: StoredMeasurement = { ...m, committedAt: this.now() };
      this.rows.set(m.measurement.id, { stored, state: 'pending', attempts: 0, retryAt: 0, leaseUntil: 0 });
      inserted.push(m.measurement.id);
      committed.push(stored);
    }
    this.gapList.push(...write.gaps);
    this.statusList.push(...write.statuses);
    for (const r of write.rejections) this.rejections.push({ ...r, id: this.nextId++ });
    const event: CommittedEvent = { measurements: committed, gaps: write.gaps, statuses: write.statuses };
    for (const l of this.listeners) l(event);
    return { inserted, duplicates, gapsInserted: write.gaps.length, gapDuplicates: 0 };
  }

  async measurement(id: string): Promise<StoredMeasurement | undefined> {
    return this.rows.get(id)?.stored;
  }
  async countMeasurements(): Promise<number> {
    return this.rows.size;
  }
  async measurementIds(): Promise<string[]> {
    return [...this.rows.keys()];
  }
  async series(query: SeriesQuery): Promise<SeriesPoint[]> {
    const points: SeriesPoint[] = [];
    for (const s of await this.measurementsOf(query.mrn, query.from, query.to)) {
      for (const o of s.measurement.observations) {
        if (o.code !== query.code) continue;
        points.push({
          measurementId: s.measurement.id,
          measuredAt: s.measuredAt,
          code: o.code,
          value: o.value,
          unit: o.unit,
          ...(o.invalid === undefined ? {} : { invalid: o.invalid }),
          ...(o.qualifier === undefined ? {} : { qualifier: o.qualifier }),
          stored: s.measurement.stored === true,
          gatewayId: s.receipt.gatewayId,
          deviceId: s.measurement.deviceId,
          driver: s.measurement.driver,
        });
      }
    }
    return points.slice(0, query.limit ?? points.length);
  }
  async measurementsOf(mrn: string, from: number, to: number): Promise<StoredMeasurement[]> {
    return [...this.rows.values()]
      .map((r) => r.stored)
      .filter(
        (s) =>
          s.measuredAt >= from && s.measuredAt < to && this.mrnAt(s.receipt.gatewayId, s.measuredAt) === mrn,
      )
      .sort((a, b) => a.measuredAt - b.measuredAt);
  }
  async unassigned(limit: number): Promise<StoredMeasurement[]> {
    return [...this.rows.values()]
      .map((r) => r.stored)
      .filter((s) => this.mrnAt(s.receipt.gatewayId, s.measuredAt) === undefined)
      .slice(0, limit);
  }
  async gaps(gatewayId: string): Promise<{ readonly gap: Gap; readonly receipt: Receipt }[]> {
    return this.gapList.filter((g) => g.receipt.gatewayId === gatewayId);
  }
  async latestStatus(gatewayId: string): Promise<IncomingStatus | undefined> {
    return this.statusList.filter((s) => s.status.gatewayId === gatewayId).at(-1);
  }

  async assign(a: NewAssignment): Promise<Assignment> {
    await this.unassign(a.gatewayId, a.from);
    const assignment: Assignment = {
      id: this.nextId++,
      gatewayId: a.gatewayId,
      mrn: a.mrn,
      from: a.from,
      ...(a.timeZone === undefined ? {} : { timeZone: a.timeZone }),
      createdBy: a.createdBy,
      createdAt: a.at,
    };
    this.assignmentList.push(assignment);
    return assignment;
  }
  async unassign(gatewayId: string, to: number): Promise<Assignment | undefined> {
    const index = this.assignmentList.findIndex((a) => a.gatewayId === gatewayId && a.to === undefined);
    if (index < 0) return undefined;
    const ended = { ...(this.assignmentList[index] as Assignment), to };
    this.assignmentList[index] = ended;
    return ended;
  }
  async assignments(gatewayId?: string): Promise<Assignment[]> {
    return this.assignmentList.filter((a) => gatewayId === undefined || a.gatewayId === gatewayId);
  }

  async rejectionCounts(): Promise<RejectionCount[]> {
    const counts = new Map<string, number>();
    for (const r of this.rejections) counts.set(r.code, (counts.get(r.code) ?? 0) + 1);
    return [...counts].map(([code, count]) => ({ code, count }));
  }
  async quarantined(limit: number): Promise<(IncomingRejection & { readonly id: number })[]> {
    return this.rejections.filter((r) => r.payload !== undefined).slice(0, limit);
  }
  async releaseQuarantined(ids: readonly number[]): Promise<void> {
    for (const id of ids) {
      const index = this.rejections.findIndex((r) => r.id === id);
      if (index >= 0) this.rejections.splice(index, 1);
    }
  }

  async leaseExports(limit: number, now: number, leaseMs: number): Promise<ExportItem[]> {
    const items: ExportItem[] = [];
    for (const row of this.rows.values()) {
      if (items.length >= limit) break;
      if (row.state !== 'pending' || row.leaseUntil > now || row.retryAt > now) continue;
      const mrn = this.mrnAt(row.stored.receipt.gatewayId, row.stored.measuredAt);
      if (mrn === undefined) continue;
      row.leaseUntil = now + leaseMs;
      items.push({ stored: row.stored, mrn, attempts: row.attempts });
    }
    return items;
  }
  async completeExports(results: readonly ExportResult[]): Promise<void> {
    for (const r of results) {
      this.completed.push(r);
      const row = this.rows.get(r.measurementId);
      if (row === undefined) continue;
      row.leaseUntil = 0;
      if (r.outcome === 'failed') {
        row.attempts++;
        row.retryAt = r.retryAt;
      } else row.state = r.outcome;
    }
  }
  async exportCounts(): Promise<{ pending: number; exported: number; skipped: number; failing: number }> {
    let pending = 0;
    let exported = 0;
    let skipped = 0;
    let failing = 0;
    for (const row of this.rows.values()) {
      if (row.state === 'exported') exported++;
      else if (row.state === 'skipped') skipped++;
      else if (row.attempts > 0) failing++;
      else pending++;
    }
    return { pending, exported, skipped, failing };
  }
  async lastExportedAt(
    gatewayId: string,
    deviceId: string,
    characteristic: string,
    at: number,
  ): Promise<number | undefined> {
    let latest: number | undefined;
    for (const row of this.rows.values()) {
      const s = row.stored;
      if (row.state !== 'exported' || s.receipt.gatewayId !== gatewayId) continue;
      if (s.measurement.deviceId !== deviceId || s.measurement.characteristic !== characteristic) continue;
      if (s.measuredAt <= at && (latest === undefined || s.measuredAt > latest)) latest = s.measuredAt;
    }
    return latest;
  }

  async subscribe(listener: (event: CommittedEvent) => void): Promise<() => Promise<void>> {
    this.listeners.add(listener);
    return async () => {
      this.listeners.delete(listener);
    };
  }
  async close(): Promise<void> {
    this.listeners.clear();
  }

  private mrnAt(gatewayId: string, at: number): string | undefined {
    return this.assignmentList.find(
      (a) => a.gatewayId === gatewayId && a.from <= at && (a.to === undefined || at < a.to),
    )?.mrn;
  }
}
