import { EventEmitter } from 'node:events';
import type { RuntimeLog } from '../../runtime/log.js';
import { SILENT_LOG } from '../../runtime/log.js';
import { Backoff, type BackoffPolicy } from '../../uplink/backoff.js';
import { realScheduler, type Scheduler, type TimerHandle } from '../../util/scheduler.js';
import type { ClinicStore, ExportItem, ExportResult } from '../storage/clinic-store.js';
import { transactionBundle } from './bundle.js';
import { FhirExportError } from './errors.js';
import { type MappedMeasurement, type MappingOptions, mapMeasurement } from './mapping.js';
import { ExportPolicy, type ExportPolicyOptions } from './policy.js';
import { type ExportTarget, FolderTarget, HttpTarget, type HttpTargetOptions } from './targets.js';

export type FhirTargetOptions =
  | ({ readonly kind: 'http' } & HttpTargetOptions)
  | { readonly kind: 'folder'; readonly folder: string };

export interface FhirExporterOptions {
  readonly store: ClinicStore;
  /** A FHIR server (transaction Bundles POSTed to its base URL) or a folder (one file per Bundle). */
  readonly target: FhirTargetOptions | ExportTarget;
  readonly mapping: MappingOptions;
  readonly policy?: ExportPolicyOptions;
  /** Measurements per Bundle. Default 100. */
  readonly batchSize?: number;
  /** How long a leased batch is this exporter's before another may take it. Default 2 min. */
  readonly leaseMs?: number;
  /** How long to wait when nothing is due. Default 5 s. */
  readonly idleMs?: number;
  /** Delays after a failed upload (full jitter, src/uplink/backoff.ts). Default 1 s doubling to 5 min. */
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
  readonly scheduler?: Scheduler;
  readonly log?: RuntimeLog;
}

/** What one cycle did (counts only: no PHI). */
export interface ExportCycle {
  readonly leased: number;
  readonly exported: number;
  readonly skipped: number;
  readonly failed: number;
  /** The error code when the upload failed. */
  readonly error?: string;
  /** When the next cycle runs (epoch ms, the scheduler's clock), if the exporter is running. */
  readonly nextAt?: number;
}

const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 5 * 60_000, stableAfterMs: 0 };

/**
 * The FHIR exporter: a loop that leases due measurements from the clinic database's export queue
 * (ClinicStore.leaseExports: only those attributed to a patient, so an unassigned gateway's readings wait there
 * until an assignment covers them), applies the export policy, maps the rest to PHD IG resources, sends them as
 * one transaction Bundle, and records each measurement as exported, skipped (by policy, never retried) or
 * failed (retried after a backoff delay). Nothing is removed from the database: a FHIR server outage only delays
 * the export, and a crash between the upload and completeExports re-sends a Bundle whose conditional creates
 * find what the first upload created.
 *
 * Events: 'cycle' (ExportCycle) after each cycle.
 */
export class FhirExporter extends EventEmitter {
  private readonly store: ClinicStore;
  private readonly target: ExportTarget;
  private readonly policy: ExportPolicy;
  private readonly scheduler: Scheduler;
  private readonly log: RuntimeLog;
  private readonly batchSize: number;
  private readonly leaseMs: number;
  private readonly idleMs: number;
  private backoff: Backoff;
  private timer: TimerHandle | undefined;
  private running = false;
  private inFlight: Promise<void> | undefined;

  constructor(private readonly options: FhirExporterOptions) {
    super();
    this.store = options.store;
    this.target = toTarget(options.target);
    this.policy = new ExportPolicy(options.policy);
    this.scheduler = options.scheduler ?? realScheduler;
    this.log = options.log ?? SILENT_LOG;
    this.batchSize = positive(options.batchSize ?? 100, 'batchSize');
    this.leaseMs = positive(options.leaseMs ?? 120_000, 'leaseMs');
    this.idleMs = positive(options.idleMs ?? 5_000, 'idleMs');
    this.backoff = this.newBackoff();
  }

  /** Starts the loop; the first cycle runs at once. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stops the loop and waits for a cycle in progress to finish. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) this.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  /** One cycle, outside the loop (the loop calls it too). */
  async runOnce(): Promise<ExportCycle & { readonly delayMs: number }> {
    const now = this.scheduler.now();
    const items = await this.store.leaseExports(this.batchSize, now, this.leaseMs);
    if (items.length === 0) return { leased: 0, exported: 0, skipped: 0, failed: 0, delayMs: this.idleMs };

    const decisions = await this.policy.decide(this.store, items);
    const results: ExportResult[] = [];
    const toSend: MappedMeasurement[] = [];
    for (const item of items) {
      const id = item.stored.measurement.id;
      const decision = decisions.get(id);
      if (decision !== undefined && !decision.export) {
        results.push({ measurementId: id, outcome: 'skipped', at: now, why: decision.why });
        continue;
      }
      const mapped = this.map(item);
      if (typeof mapped === 'string')
        results.push({ measurementId: id, outcome: 'skipped', at: now, why: mapped });
      else toSend.push(mapped);
    }

    const sent = await this.send(toSend, now);
    results.push(...sent.results);
    await this.store.completeExports(results);
    const count = (o: ExportResult['outcome']) => results.filter((r) => r.outcome === o).length;
    const cycle = {
      leased: items.length,
      exported: count('exported'),
      skipped: count('skipped'),
      failed: count('failed'),
      ...(sent.error === undefined ? {} : { error: sent.error }),
    };
    // A full batch says more is waiting: go on at once; after a failure wait out the backoff.
    const delayMs =
      sent.error !== undefined ? sent.delayMs : items.length >= this.batchSize ? 0 : this.idleMs;
    return { ...cycle, delayMs };
  }

  private map(item: ExportItem): MappedMeasurement | string {
    try {
      const mapped = mapMeasurement(item.stored, item.mrn, this.options.mapping);
      if (mapped.observations.length > 0) return mapped;
      const codes = mapped.notExported.map((n) => `${n.code}: ${n.why}`).join('; ');
      return `nothing to export (${codes === '' ? 'no observations' : codes})`;
    } catch (error) {
      // The mapping is pure; a throw means a stored measurement it cannot read. Say so, keep the row, go on.
      return `cannot be mapped to FHIR (${(error as Error).message})`;
    }
  }

  /**
   * Sends the batch as one transaction. When the server refuses its content (HTTP 4xx), one bad measurement
   * must not hold back the rest: each is then sent in a Bundle of its own, and only the refused ones fail.
   */
  private async send(
    mapped: readonly MappedMeasurement[],
    now: number,
  ): Promise<{ results: ExportResult[]; error?: string; delayMs: number }> {
    if (mapped.length === 0) return { results: [], delayMs: 0 };
    try {
      await this.target.send(transactionBundle(mapped));
      this.backoff = this.newBackoff();
      return { results: mapped.map((m) => exported(m, now)), delayMs: 0 };
    } catch (error) {
      const code = error instanceof FhirExportError ? error.code : 'FHIR_UNREACHABLE';
      if (code === 'FHIR_REJECTED' && mapped.length > 1) return this.sendEach(mapped, now);
      return this.failAll(mapped, now, error);
    }
  }

  private async sendEach(
    mapped: readonly MappedMeasurement[],
    now: number,
  ): Promise<{ results: ExportResult[]; error?: string; delayMs: number }> {
    const results: ExportResult[] = [];
    let error: string | undefined;
    let delayMs = 0;
    for (const m of mapped) {
      const one = await this.send([m], now);
      results.push(...one.results);
      if (one.error !== undefined) {
        error = one.error;
        delayMs = Math.max(delayMs, one.delayMs);
      }
    }
    return { results, delayMs, ...(error === undefined ? {} : { error }) };
  }

  private failAll(mapped: readonly MappedMeasurement[], now: number, error: unknown) {
    const code = error instanceof FhirExportError ? error.code : 'FHIR_UNREACHABLE';
    const message = error instanceof FhirExportError ? error.message : 'the upload failed';
    const delayMs = this.backoff.next();
    this.log.warn('fhir.export.failed', { code, count: mapped.length, retryInMs: delayMs });
    const results: ExportResult[] = mapped.map((m) => ({
      measurementId: m.measurementId,
      outcome: 'failed',
      at: now,
      retryAt: now + delayMs,
      error: `${code}: ${message}`,
    }));
    return { results, error: code, delayMs };
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = this.scheduler.setTimeout(() => {
      this.timer = undefined;
      this.inFlight = this.cycle();
    }, delayMs);
  }

  private async cycle(): Promise<void> {
    let outcome: ExportCycle & { delayMs: number };
    try {
      outcome = await this.runOnce();
    } catch (error) {
      // The store failed (a database outage): nothing was completed, the leases lapse, try again later.
      const code = (error as { code?: unknown })?.code;
      const delayMs = this.backoff.next();
      this.log.error('fhir.export.store-failed', {
        code: typeof code === 'string' ? code : 'unknown',
        retryInMs: delayMs,
      });
      outcome = { leased: 0, exported: 0, skipped: 0, failed: 0, error: 'STORE', delayMs };
    }
    if (outcome.leased > 0) {
      const detail = `leased ${outcome.leased}, exported ${outcome.exported}, skipped ${outcome.skipped}, failed ${outcome.failed}`;
      this.log.info('fhir.export.cycle', { count: outcome.leased, detail });
    }
    const { delayMs, ...cycle } = outcome;
    this.schedule(delayMs);
    this.emit('cycle', this.running ? { ...cycle, nextAt: this.scheduler.now() + delayMs } : cycle);
  }

  private newBackoff(): Backoff {
    return new Backoff(this.options.backoff ?? DEFAULT_BACKOFF, this.options.random);
  }
}

function exported(m: MappedMeasurement, now: number): ExportResult {
  return { measurementId: m.measurementId, outcome: 'exported', at: now };
}

function toTarget(target: FhirTargetOptions | ExportTarget): ExportTarget {
  if ('send' in target) return target;
  return target.kind === 'http' ? new HttpTarget(target) : new FolderTarget(target.folder);
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 1)
    throw new FhirExportError('FHIR_CONFIG', `${name} must be at least 1`);
  return value;
}
