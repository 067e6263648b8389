import { PLX_CONTINUOUS_MEASUREMENT } from '../../drivers/sdk/sig/pulse-oximetry.js';
import { normalizeUuid } from '../../gatt/uuid.js';
import type { ClinicStore, ExportItem } from '../storage/clinic-store.js';

/**
 * Which measurements go to the EHR (docs/fhir.md, "Export policy"). Spot measurements (a cuff, a scale, a
 * thermometer, a glucose meter, a PLX spot check) all go. A continuous stream (the PLX Continuous Measurement,
 * 0x2A5F, and the Heart Rate Measurement, 0x2A37, notify about once a second) is thinned to one measurement per
 * interval and device: 86,400 Observations per patient per day is not what an EHR wants, and the full stream
 * stays in the clinic database for the dashboard. Intermediate readings (cuff pressure while inflating, a
 * thermometer settling) and device information are not results and never go.
 */
export interface ExportPolicyOptions {
  /** At most one measurement per this interval from each continuous characteristic of a device. Default 5 min. */
  readonly continuousIntervalMs?: number;
  /** Characteristics that stream (any UUID form). Default: 2a5f (PLX continuous), 2a37 (heart rate). */
  readonly continuousCharacteristics?: readonly string[];
}

export const DEFAULT_CONTINUOUS_INTERVAL_MS = 5 * 60_000;
const HEART_RATE_MEASUREMENT = '2a37';

export type PolicyDecision = { readonly export: true } | { readonly export: false; readonly why: string };

/**
 * Decides a leased batch. Thinning needs the last exported measurement of the stream (ClinicStore.lastExportedAt,
 * at or before this one's time, so a back-filled reading is judged against its own neighbourhood) and the
 * decisions already taken in this batch, which the store does not know yet: the batch is decided in measurement
 * time order and each kept measurement counts for the next.
 */
export class ExportPolicy {
  private readonly intervalMs: number;
  private readonly continuous: ReadonlySet<string>;

  constructor(options: ExportPolicyOptions = {}) {
    this.intervalMs = options.continuousIntervalMs ?? DEFAULT_CONTINUOUS_INTERVAL_MS;
    this.continuous = new Set(
      (options.continuousCharacteristics ?? [PLX_CONTINUOUS_MEASUREMENT, HEART_RATE_MEASUREMENT]).map(
        normalizeUuid,
      ),
    );
  }

  isContinuous(characteristic: string): boolean {
    return this.continuous.has(characteristic);
  }

  async decide(store: ClinicStore, items: readonly ExportItem[]): Promise<Map<string, PolicyDecision>> {
    const decisions = new Map<string, PolicyDecision>();
    const keptInBatch = new Map<string, number[]>();
    const ordered = [...items].sort((a, b) => a.stored.measuredAt - b.stored.measuredAt);
    for (const item of ordered) {
      const m = item.stored.measurement;
      if (m.kind !== 'measurement') {
        decisions.set(m.id, { export: false, why: `${m.kind} reading, not a result` });
        continue;
      }
      if (!this.continuous.has(m.characteristic) || this.intervalMs <= 0) {
        decisions.set(m.id, { export: true });
        continue;
      }
      const at = item.stored.measuredAt;
      const stream = `${item.stored.receipt.gatewayId}\u0000${m.deviceId}\u0000${m.characteristic}`;
      const kept = keptInBatch.get(stream) ?? [];
      const exported = await store.lastExportedAt(
        item.stored.receipt.gatewayId,
        m.deviceId,
        m.characteristic,
        at,
      );
      const near = [...kept, ...(exported === undefined ? [] : [exported])].some(
        (t) => Math.abs(at - t) < this.intervalMs,
      );
      if (near) {
        decisions.set(m.id, {
          export: false,
          why: `continuous stream thinned to one per ${this.intervalMs} ms`,
        });
      } else {
        decisions.set(m.id, { export: true });
        keptInBatch.set(stream, [...kept, at]);
      }
    }
    return decisions;
  }
}
