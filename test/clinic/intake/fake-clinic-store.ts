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

/**
 * An in-memory ClinicStore for the intake's tests until the SQLite store lands: honest about what the intake
 * relies on (a commit is all or nothing, measurement and gap ids are unique keys, rejections are counted and
 * their rows bounded, quarantine rows keep their payload), plus the test's levers: `hold()` keeps commits from
 * resolving until `release()`, and `failing` makes every commit throw as a database that is down would.
 */
export class FakeClinicStore implements ClinicStore {
  private readonly measurements = new Map<string, StoredMeasurement>();
  private readonly gapRows = new Map<string, { readonly gap: Gap; readonly receipt: Receipt }>();
  private readonly statuses: IncomingStatus[] = [];
  private readonly rejections: (IncomingRejection & { readonly id: number })[] = [];
  private readonly rejectionCount = new Map<string, number>();
  private readonly assignmentRows: Assignment[] = [];
  private readonly exportState = new Map<
    string,
    { attempts: number; leaseUntil: number; done?: 'exported' | 'skipped'; retryAt: number; failing: boolean }
  >();
  private readonly listeners = new Set<(event: CommittedEvent) => void>();
  private nextId = 1;
  private gate: { promise: Promise<void>; open: () => void } | undefined;
  /** Every commit throws while set. */
  failing: Error | undefined;
  /** Commits started (attempts), and those that committed. */
  commitsStarted = 0;
  commitsDone = 0;
  /** Called when a commit starts (before the hold): tests wait for it. */
  onCommitStart: (() => void) | undefined;
  /** Messages per commit as the store saw them: write sizes. */
  readonly writes: IntakeWrite[] = [];

  constructor(
    private readonly clock: () => number = Date.now,
    private readonly maxRejectionRows = 10_000,
  ) {}

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

  async commit(write: IntakeWrite): Promise<CommitOutcome> {
    this.commitsStarted++;
    this.onCommitStart?.();
    if (this.gate) await this.gate.promise;
    if (this.failing) throw this.failing;
    const now = this.clock();
    // Build everything first and apply it at the end: all or nothing.
    const inserted: StoredMeasurement[] = [];
    const seen = new Set<string>();
    let duplicates = 0;
    for (const m of write.measurements) {
      const id = m.measurement.id;
      if (this.measurements.has(id) || seen.has(id)) {
        duplicates++;
        continue;
      }
      seen.add(id);
      inserted.push({
        measurement: m.measurement,
        measuredAt: m.measuredAt,
        receipt: m.receipt,
        committedAt: now,
      });
    }
    const gaps: { gap: Gap; receipt: Receipt }[] = [];
    let gapDuplicates = 0;
    for (const g of write.gaps) {
      if (this.gapRows.has(g.gap.id) || gaps.some((x) => x.gap.id === g.gap.id)) gapDuplicates++;
      else gaps.push({ gap: g.gap, receipt: g.receipt });
    }
    for (const s of inserted) {
      this.measurements.set(s.measurement.id, s);
      this.exportState.set(s.measurement.id, { attempts: 0, leaseUntil: 0, retryAt: 0, failing: false });
    }
    for (const g of gaps) this.gapRows.set(g.gap.id, g);
    this.statuses.push(...write.statuses);
    for (const r of write.rejections) {
      this.rejectionCount.set(r.code, (this.rejectionCount.get(r.code) ?? 0) + 1);
      this.rejections.push({ ...r, id: this.nextId++ });
    }
    while (this.rejections.length > this.maxRejectionRows) this.rejections.shift();
    this.writes.push(write);
    this.commitsDone++;
    const event: CommittedEvent = { measurements: inserted, gaps, statuses: write.statuses };
    for (const listener of this.listeners) listener(event);
    return {
      inserted: inserted.map((s) => s.measurement.id),
      duplicates,
      gapsInserted: gaps.length,
      gapDuplicates,
    };
  }

  async measurement(id: string): Promise<StoredMeasurement | undefined> {
    return this.measurements.get(id);
  }

  async countMeasurements(): Promise<number> {
    return this.measurements.size;
  }

  async measurementIds(): Promise<string[]> {
    return [...this.measurements.keys()].sort();
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
    return [...this.measurements.values()]
      .filter((s) => s.measuredAt >= from && s.measuredAt < to && this.mrnOf(s) === mrn)
      .sort((a, b) => a.measuredAt - b.measuredAt);
  }

  async unassigned(limit: number): Promise<StoredMeasurement[]> {
    return [...this.measurements.values()].filter((s) => this.mrnOf(s) === undefined).slice(0, limit);
  }

  async gaps(gatewayId: string): Promise<{ readonly gap: Gap; readonly receipt: Receipt }[]> {
    return [...this.gapRows.values()].filter((g) => g.receipt.gatewayId === gatewayId);
  }

  async latestStatus(gatewayId: string): Promise<IncomingStatus | undefined> {
    return this.statuses.filter((s) => s.status.gatewayId === gatewayId).at(-1);
  }

  async assign(assignment: NewAssignment): Promise<Assignment> {
    await this.unassign(assignment.gatewayId, assignment.from);
    const row: Assignment = {
      id: this.nextId++,
      gatewayId: assignment.gatewayId,
      mrn: assignment.mrn,
      from: assignment.from,
      ...(assignment.timeZone === undefined ? {} : { timeZone: assignment.timeZone }),
      createdBy: assignment.createdBy,
      createdAt: assignment.at,
    };
    this.assignmentRows.push(row);
    return row;
  }

  async unassign(gatewayId: string, to: number): Promise<Assignment | undefined> {
    const index = this.assignmentRows.findIndex((a) => a.gatewayId === gatewayId && a.to === undefined);
    if (index < 0) return undefined;
    const ended = { ...(this.assignmentRows[index] as Assignment), to };
    this.assignmentRows[index] = ended;
    return ended;
  }

  async assignments(gatewayId?: string): Promise<Assignment[]> {
    return this.assignmentRows.filter((a) => gatewayId === undefined || a.gatewayId === gatewayId);
  }

  async rejectionCounts(): Promise<RejectionCount[]> {
    return [...this.rejectionCount]
      .map(([code, count]) => ({ code, count }))
      .sort((a, b) => a.code.localeCompare(b.code));
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
    for (const [id, state] of this.exportState) {
      if (items.length >= limit) break;
      const stored = this.measurements.get(id);
      const mrn = stored && this.mrnOf(stored);
      if (!stored || !mrn || state.done || state.leaseUntil > now || state.retryAt > now) continue;
      state.leaseUntil = now + leaseMs;
      items.push({ stored, mrn, attempts: state.attempts });
    }
    return items;
  }

  async completeExports(results: readonly ExportResult[]): Promise<void> {
    for (const result of results) {
      const state = this.exportState.get(result.measurementId);
      if (!state) continue;
      state.attempts++;
      state.leaseUntil = 0;
      if (result.outcome === 'failed') {
        state.retryAt = result.retryAt;
        state.failing = true;
      } else {
        state.done = result.outcome;
        state.failing = false;
      }
    }
  }

  async exportCounts(): Promise<{ pending: number; exported: number; skipped: number; failing: number }> {
    const counts = { pending: 0, exported: 0, skipped: 0, failing: 0 };
    for (const state of this.exportState.values()) {
      if (state.done === 'exported') counts.exported++;
      else if (state.done === 'skipped') counts.skipped++;
      else if (state.failing) counts.failing++;
      else counts.pending++;
    }
    return counts;
  }

  async lastExportedAt(
    gatewayId: string,
    deviceId: string,
    characteristic: string,
    at: number,
  ): Promise<number | undefined> {
    let last: number | undefined;
    for (const [id, state] of this.exportState) {
      const s = this.measurements.get(id);
      if (!s || state.done !== 'exported' || s.measuredAt > at) continue;
      if (s.receipt.gatewayId !== gatewayId || s.measurement.deviceId !== deviceId) continue;
      if (s.measurement.characteristic !== characteristic) continue;
      last = last === undefined ? s.measuredAt : Math.max(last, s.measuredAt);
    }
    return last;
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

  private mrnOf(s: StoredMeasurement): string | undefined {
    return this.assignmentRows.find(
      (a) =>
        a.gatewayId === s.receipt.gatewayId &&
        a.from <= s.measuredAt &&
        (a.to === undefined || s.measuredAt < a.to),
    )?.mrn;
  }
}
