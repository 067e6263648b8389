import { Counter, Gauge, Registry } from 'prom-client';
import { SESSION_TRANSITIONS, type SessionState } from '../session/session-states.js';
import type { Lane } from '../store/outbox.js';
import { collectProcessMetrics } from './process-metrics.js';

/**
 * The hub's Prometheus metrics (names and meaning in docs/metrics.md). The hub owns the registry: never
 * prom-client's global one, so two hubs in one process (tests, the demo) never mix their numbers, and nothing
 * a library registers globally ends up on the endpoint.
 *
 * No PHI in any label, and bounded cardinality (Prometheus, "Instrumentation", "Do not overuse labels"):
 * labels are a lane (3 values), a session state (13), a broker's position in the configured list, and an
 * error code from the stable list of docs/errors.md. Sessions are counted per state, never one series per
 * device; device ids, addresses, labels and reading values never appear.
 *
 * Two kinds of number:
 *  - events the hub reports as they happen (`readingStored`, `readingsAcknowledged`, `error`): counters;
 *  - state read on every scrape from the hub's `MetricsSource` (backlog, sessions, broker, store, clock,
 *    certificate): gauges, so they are exact at scrape time and cost nothing in between.
 */
export const LANES: readonly Lane[] = ['alert', 'live', 'backlog'];

/** Every session state, in the order of the documented diagram (src/session/session-states.ts). */
export const SESSION_STATES: readonly SessionState[] = [...SESSION_TRANSITIONS.keys()];

/** What the hub is, read at scrape time. Every field is a count, a time or a flag: nothing about a patient. */
export interface MetricsSnapshot {
  /** Unacknowledged rows per lane (Outbox.stats().pending). */
  readonly pending: Readonly<Record<Lane, number>>;
  /** Age of the oldest unacknowledged row, ms; null when the outbox is empty. */
  readonly oldestPendingAgeMs: number | null;
  /** The store's main file plus WAL (Outbox.stats().bytesOnDisk). */
  readonly storeBytes: number;
  /** Gap records the store made since it was created (Outbox.stats().gapsTotal). */
  readonly gapRecords: number;
  /** Readings evicted to keep the store within its limits (Outbox.stats().evictedTotal). */
  readonly evictedReadings: number;
  /** The state of every running device session (one entry per session); counted per state. */
  readonly sessionStates: Iterable<SessionState>;
  /** The position in `uplink.brokers` of the broker the uplink is connected to; null when not connected. */
  readonly connectedBroker: number | null;
  readonly clockSynchronised: boolean;
  /** The hub certificate's notAfter, epoch ms; null when it could not be read. */
  readonly certificateNotAfterMs: number | null;
}

/** The hub-facing source of the scrape-time state; may throw (a store closing at shutdown): the scrape fails. */
export type MetricsSource = () => MetricsSnapshot;

export interface GatewayMetricsOptions {
  /** How many brokers `uplink.brokers` lists: one `rpm_gateway_broker_connected` series each. */
  readonly brokers: number;
  readonly source: MetricsSource;
  /** Epoch ms; the certificate's remaining time is measured against it. */
  readonly now: () => number;
  /**
   * prom-client's process metrics (CPU, resident memory, open files, event-loop lag; `process_*` and
   * `nodejs_*`), the ones a long-running service is watched by, without the GC-duration histogram
   * (src/observability/process-metrics.ts says why). Default true.
   */
  readonly processMetrics?: boolean;
}

/** A stable code as docs/errors.md writes them; anything else is counted as OTHER, so a label never carries text. */
const STABLE_CODE = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/;
const MAX_CODE_LENGTH = 64;

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly readingsIn: Counter<'lane'>;
  private readonly readingsOut: Counter<'lane'>;
  private readonly errors: Counter<'code'>;
  private readonly backlogRows: Gauge<'lane'>;
  private readonly oldestAge: Gauge;
  private readonly storeBytes: Gauge;
  private readonly gapRecords: Gauge;
  private readonly evicted: Gauge;
  private readonly sessions: Gauge<'state'>;
  private readonly brokerConnected: Gauge<'broker'>;
  private readonly clockSynchronised: Gauge;
  private readonly certificateSeconds: Gauge;

  constructor(private readonly options: GatewayMetricsOptions) {
    const registers = [this.registry];
    this.readingsIn = new Counter({
      name: 'rpm_gateway_readings_stored_total',
      help: 'Readings committed to the encrypted outbox, per lane',
      labelNames: ['lane'],
      registers,
    });
    this.readingsOut = new Counter({
      name: 'rpm_gateway_readings_acknowledged_total',
      help: 'Readings the clinic broker acknowledged (MQTT PUBACK), per lane',
      labelNames: ['lane'],
      registers,
    });
    this.errors = new Counter({
      name: 'rpm_gateway_errors_total',
      help: 'Errors by stable code (docs/errors.md)',
      labelNames: ['code'],
      registers,
    });
    this.backlogRows = new Gauge({
      name: 'rpm_gateway_outbox_pending_rows',
      help: 'Readings and gap records stored and not yet acknowledged, per lane',
      labelNames: ['lane'],
      registers,
    });
    this.oldestAge = new Gauge({
      name: 'rpm_gateway_outbox_oldest_pending_age_seconds',
      help: 'Age of the oldest unacknowledged row; 0 when nothing is pending',
      registers,
    });
    this.storeBytes = new Gauge({
      name: 'rpm_gateway_store_bytes',
      help: 'Size of the encrypted store on disk (main file and WAL)',
      registers,
    });
    this.gapRecords = new Gauge({
      name: 'rpm_gateway_store_gap_records',
      help: 'Gap records the store holds or sent: readings it had to drop, reported to the clinic',
      registers,
    });
    this.evicted = new Gauge({
      name: 'rpm_gateway_store_evicted_readings',
      help: 'Readings evicted to keep the store within its retention limits',
      registers,
    });
    this.sessions = new Gauge({
      name: 'rpm_gateway_sessions',
      help: 'Device sessions per state',
      labelNames: ['state'],
      registers,
    });
    this.brokerConnected = new Gauge({
      name: 'rpm_gateway_broker_connected',
      help: '1 for the broker the uplink is connected to, by its position in uplink.brokers; 0 for the others',
      labelNames: ['broker'],
      registers,
    });
    this.clockSynchronised = new Gauge({
      name: 'rpm_gateway_clock_synchronised',
      help: '1 once the system clock is synchronised, 0 while wall-clock stamping is held',
      registers,
    });
    this.certificateSeconds = new Gauge({
      name: 'rpm_gateway_certificate_expiry_seconds',
      help: "Seconds until the hub certificate's notAfter; negative once expired, NaN when unreadable",
      registers,
    });
    // Every series exists from the start, so a dashboard sees a 0 rather than a missing series.
    for (const lane of LANES) {
      this.readingsIn.inc({ lane }, 0);
      this.readingsOut.inc({ lane }, 0);
    }
    if (options.processMetrics ?? true) collectProcessMetrics(this.registry);
  }

  /** A reading was committed to the outbox on `lane` (once its append resolved 'stored'). */
  readingStored(lane: Lane, count = 1): void {
    this.readingsIn.inc({ lane }, count);
  }

  /** The broker acknowledged `count` readings of `lane` (the uplink's acknowledged batch). */
  readingsAcknowledged(lane: Lane, count: number): void {
    if (count > 0) this.readingsOut.inc({ lane }, count);
  }

  /** An error with a stable code happened (a session's BLE error, a store or uplink failure). */
  error(code: string): void {
    const label = code.length <= MAX_CODE_LENGTH && STABLE_CODE.test(code) ? code : 'OTHER';
    this.errors.inc({ code: label });
  }

  /** The exposition text (Prometheus text format 0.0.4), with the scrape-time state read now. */
  async scrape(): Promise<string> {
    this.refresh(this.options.source());
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private refresh(s: MetricsSnapshot): void {
    for (const lane of LANES) this.backlogRows.set({ lane }, s.pending[lane]);
    this.oldestAge.set(s.oldestPendingAgeMs === null ? 0 : s.oldestPendingAgeMs / 1000);
    this.storeBytes.set(s.storeBytes);
    this.gapRecords.set(s.gapRecords);
    this.evicted.set(s.evictedReadings);
    const perState = new Map<SessionState, number>(SESSION_STATES.map((state) => [state, 0]));
    for (const state of s.sessionStates) perState.set(state, (perState.get(state) ?? 0) + 1);
    for (const [state, n] of perState) this.sessions.set({ state }, n);
    for (let broker = 0; broker < this.options.brokers; broker++) {
      this.brokerConnected.set({ broker: String(broker) }, s.connectedBroker === broker ? 1 : 0);
    }
    this.clockSynchronised.set(s.clockSynchronised ? 1 : 0);
    // NaN (Prometheus' "no value") rather than 0, which would read as "expires now".
    this.certificateSeconds.set(
      s.certificateNotAfterMs === null ? Number.NaN : (s.certificateNotAfterMs - this.options.now()) / 1000,
    );
  }
}
