import type { AlertRuleStatus, ClockStatus, HubStatus, LaneBacklog } from '../control/status.js';
import type { Observation } from '../model/observation.js';
import type { MetricsSnapshot } from '../observability/metrics.js';
import type { PatientPageSnapshot } from '../patient-page/source.js';
import { checkExpiry } from '../pki/expiry.js';
import type { SessionState } from '../session/session-states.js';
import type { EnrolledDevice } from '../store/device-registry.js';
import type { Lane, OutboxStats } from '../store/outbox.js';
import { brokerLabel } from '../uplink/uplink.js';
import type { AckedBatch, BrokerView } from './uplink-watch.js';

/**
 * The running hub's own snapshot, taken in one go (no I/O beyond the store's counters), and the three views made
 * of it: what `rpm-gateway status` shows (the control socket's HubStatus, the one public shape of the hub's
 * state), what a Prometheus scrape reads, and what the patient page shows. One snapshot for all three, so they
 * never disagree about the same hub.
 */
export interface HubView {
  readonly running: boolean;
  readonly gatewayId: string;
  /** gateway.label, else gateway.id. */
  readonly hubName: string;
  readonly startedAtMs: number | null;
  readonly nowMs: number;
  /** Every enrolled device (the registry is the truth), with what its session knows. */
  readonly devices: readonly DeviceView[];
  /** undefined once the store is closed. */
  readonly stats: OutboxStats | undefined;
  readonly storePath: string;
  readonly broker: BrokerView;
  readonly sent: readonly AckedBatch[];
  /** The clock's sync state, and how many readings wait for it to be stamped. */
  readonly clock: ClockStatus;
  /** The hub certificate (PEM, public) of the last successful load; undefined before the first. */
  readonly certificatePem: string | undefined;
  /** Days before notAfter from which the certificate counts as expiring. */
  readonly certificateWarnDays?: number;
  /** Readings stored on the alert lane since the hub started. */
  readonly alertReadings: number;
  /** The alert-lane rules in force and where each came from. */
  readonly alertRules: readonly AlertRuleStatus[];
}

export interface DeviceView {
  readonly device: EnrolledDevice;
  /** Its session's state; null when none runs (no driver for it, or not started). */
  readonly state: SessionState | null;
  /** When the hub last heard from it (connected, or a reading), epoch ms. */
  readonly lastSeenMs: number | null;
  readonly batteryPercent: number | null;
  readonly lastReading: { readonly time: string; readonly observations: readonly Observation[] } | null;
}

const EMPTY_STATS: OutboxStats = {
  pending: { alert: 0, live: 0, backlog: 0 },
  leased: 0,
  rows: 0,
  payloadBytes: 0,
  oldestPendingAgeMs: null,
  oldestAgeMsByLane: { alert: null, live: null, backlog: null },
  bytesOnDisk: 0,
  evictedTotal: 0,
  gapsTotal: 0,
  duplicatesTotal: 0,
  quarantinedTotal: 0,
};

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** What `rpm-gateway status` shows (src/control/status.ts). */
export function controlStatus(view: HubView): HubStatus {
  const stats = view.stats ?? EMPTY_STATS;
  const lane = (name: Lane): LaneBacklog => ({
    pending: stats.pending[name],
    oldestAgeMs: stats.oldestAgeMsByLane[name],
  });
  const { broker } = view;
  const certificate = certificateOf(view);
  return {
    hub: { running: view.running, gatewayId: view.gatewayId, since: iso(view.startedAtMs) },
    devices: view.devices.map((d) => ({
      id: d.device.id,
      label: d.device.label,
      profile: d.device.category,
      driver: d.device.driverId,
      state: d.state,
      lastSeen: iso(d.lastSeenMs),
      batteryPercent: d.batteryPercent,
    })),
    backlog: { alert: lane('alert'), live: lane('live'), backlog: lane('backlog') },
    broker: {
      state: broker.state,
      url: broker.broker ? `mqtts://${brokerLabel(broker.broker)}` : null,
      since: iso(broker.sinceMs),
    },
    clock: view.clock,
    certificate: certificate
      ? {
          notAfter: certificate.notAfter.toISOString(),
          daysLeft: certificate.daysLeft,
          status: certificate.status,
        }
      : null,
    store: { path: view.storePath, bytes: stats.bytesOnDisk, rows: stats.rows },
    gaps: stats.gapsTotal,
    alertReadings: view.alertReadings,
    alertRules: view.alertRules,
  };
}

/** What a scrape reads (src/observability/metrics.ts): counts, times and flags only. */
export function metricsSnapshot(view: HubView): MetricsSnapshot {
  const stats = view.stats ?? EMPTY_STATS;
  const states: SessionState[] = [];
  for (const d of view.devices) if (d.state !== null) states.push(d.state);
  return {
    pending: stats.pending,
    oldestPendingAgeMs: stats.oldestPendingAgeMs,
    storeBytes: stats.bytesOnDisk,
    gapRecords: stats.gapsTotal,
    evictedReadings: stats.evictedTotal,
    sessionStates: states,
    connectedBroker: view.broker.state === 'connected' ? view.broker.index : null,
    clockSynchronised: view.clock.synchronised,
    certificateNotAfterMs: certificateOf(view)?.notAfter.getTime() ?? null,
  };
}

/** What the patient page shows (src/patient-page/source.ts): the hub's own patient's data, never logged. */
export function pageSnapshot(view: HubView): PatientPageSnapshot {
  const stats = view.stats ?? EMPTY_STATS;
  const { broker } = view;
  return {
    hubName: view.hubName,
    devices: view.devices.map((d) => ({
      id: d.device.id,
      label: d.device.label,
      profile: d.device.category,
      model: d.device.model,
      state: d.state,
      lastSeenMs: d.lastSeenMs,
      batteryPercent: d.batteryPercent,
      lastReading: d.lastReading,
    })),
    backlog: {
      pending: stats.pending,
      oldestPendingAgeMs: stats.oldestPendingAgeMs,
    },
    sent: view.sent.map((b) => ({ atMs: b.atMs, readings: b.records, clinic: b.broker?.host ?? '' })),
    connection: {
      state: broker.state === 'disconnected' ? 'offline' : broker.state,
      clinic: broker.state === 'disconnected' ? null : (broker.broker?.host ?? null),
      sinceMs: broker.sinceMs,
    },
    certificateNotAfterMs: certificateOf(view)?.notAfter.getTime() ?? null,
    clockSynchronised: view.clock.synchronised,
  };
}

/** The certificate's validity judged now (not as of its load: a hub runs for months). */
function certificateOf(view: HubView) {
  if (view.certificatePem === undefined) return undefined;
  try {
    return checkExpiry(
      view.certificatePem,
      view.nowMs,
      view.certificateWarnDays === undefined ? {} : { warnDays: view.certificateWarnDays },
    );
  } catch {
    return undefined;
  }
}

/**
 * The battery level a device reported on its last connection (Battery Level 0x2A19, read at link setup), in
 * percent; null when it has no Battery Service or reported a reserved value.
 */
export function batteryPercentOf(state: { readonly [uuid: string]: unknown }): number | null | undefined {
  const reading = state['2a19'] as { observations?: readonly Observation[] } | undefined;
  if (reading === undefined) return undefined;
  const value = reading.observations?.find((o) => o.code === 'MDC_ATTR_VAL_BATT_CHARGE')?.value;
  return typeof value === 'number' ? value : null;
}
