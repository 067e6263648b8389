import type { BrokerEndpoint } from '../../config/fields.js';
import type { TlsMaterial } from '../../pki/tls.js';
import type { Service } from '../../runtime/lifecycle.js';
import type { RuntimeLog } from '../../runtime/log.js';
import type { Scheduler, TimerHandle } from '../../util/scheduler.js';
import { ClinicIntake, type IntakeEvent, type IntakeGroupOptions } from '../intake/clinic-intake.js';
import type { IntakeStats } from '../intake/stats.js';
import type { ClinicStore } from '../storage/clinic-store.js';
import { ClinicServiceError } from './errors.js';
import { type IntakeLane, laneSubscription } from './intake-lanes.js';

/**
 * `rpm-gateway clinic intake` as a service: two ClinicIntakes (src/clinic/intake) on one ClinicStore, one per
 * lane (intake-lanes.ts: alerts on a connection of their own), both on the same broker, plus the extra
 * services the configuration turns on (the FHIR export, when it exists: see extraIntakeServices).
 *
 * Brokers: intake.brokers are tried in order at start; the first that accepts both connections is used. Once
 * connected, mqtt.js reconnects to that broker when the connection drops (the persistent sessions keep what
 * arrives meanwhile); it does not move to the next broker. A broker that stays down while another is up is a
 * restart's business: the unit restarts the intake when it exits, and the start tries the list again.
 *
 * Stats go to the log every STATS_INTERVAL_MS and once more at stop: counts and codes only, never a value,
 * an MRN or a payload.
 */
export const STATS_INTERVAL_MS = 60_000;
/** How long one broker may take to accept a connection and its subscriptions before the next is tried. */
export const BROKER_ATTEMPT_MS = 30_000;

export interface IntakeServiceOptions {
  readonly brokers: readonly BrokerEndpoint[];
  readonly clientId: string;
  readonly protocolVersion: 4 | 5;
  readonly sharedGroup?: string;
  readonly tls: TlsMaterial;
  readonly store: ClinicStore;
  readonly gateways: { readonly caPem: string; readonly folder: string; readonly crlFile?: string };
  readonly graceMs: number;
  readonly defaultTimeZone: string;
  readonly group: IntakeGroupOptions;
  readonly log: RuntimeLog;
  readonly scheduler: Scheduler;
  /** Started after the intakes, stopped before them (the FHIR export). */
  readonly extras?: readonly Service[];
  readonly statsIntervalMs?: number;
  readonly brokerAttemptMs?: number;
}

export class IntakeService implements Service {
  private intakes: Partial<Record<IntakeLane, ClinicIntake>> = {};
  private broker: BrokerEndpoint | undefined;
  private statsTimer: TimerHandle | undefined;
  private startedExtras: Service[] = [];

  constructor(private readonly options: IntakeServiceOptions) {}

  /** The running intake of a lane (tests look at its stats). */
  lane(lane: IntakeLane): ClinicIntake | undefined {
    return this.intakes[lane];
  }

  async start(): Promise<void> {
    const { log, brokers } = this.options;
    const failures: string[] = [];
    for (const broker of brokers) {
      try {
        await this.connect(broker);
        this.broker = broker;
        break;
      } catch (error) {
        await this.stopIntakes(false);
        const message = error instanceof Error ? error.message : String(error);
        failures.push(`${broker.url}: ${message}`);
        log.warn('intake.broker-failed', { broker: broker.url, error: message });
      }
    }
    if (this.broker === undefined) {
      throw new ClinicServiceError(
        'CLINIC_BROKER_UNREACHABLE',
        `no broker of intake.brokers accepted the intake (${failures.join('; ')})`,
      );
    }
    for (const extra of this.options.extras ?? []) {
      await extra.start();
      this.startedExtras.push(extra);
    }
    // Both lanes have subscribed (what systemd's READY=1 says too): from here nothing published is missed.
    log.info('intake.started', { detail: `receiving from ${this.broker.url}` });
    this.scheduleStats();
  }

  async stop(): Promise<void> {
    if (this.statsTimer !== undefined) this.options.scheduler.clearTimeout(this.statsTimer);
    this.statsTimer = undefined;
    for (const extra of this.startedExtras.splice(0).reverse()) await extra.stop('intake stopping');
    await this.stopIntakes(true);
  }

  statusText(): string {
    return this.broker ? `receiving from ${this.broker.url}` : 'starting';
  }

  private async connect(broker: BrokerEndpoint): Promise<void> {
    const o = this.options;
    for (const lane of ['main', 'alert'] as const) {
      const intake = new ClinicIntake({
        broker: {
          host: broker.host,
          port: broker.port,
          ...(broker.servername === undefined ? {} : { servername: broker.servername }),
        },
        tls: o.tls,
        ...laneSubscription(lane, o.clientId, o.sharedGroup),
        protocolVersion: o.protocolVersion,
        store: o.store,
        gateways: o.gateways,
        graceMs: o.graceMs,
        defaultTimeZone: o.defaultTimeZone,
        group: o.group,
        scheduler: o.scheduler,
        onEvent: (event) => this.logEvent(lane, event),
      });
      this.intakes[lane] = intake;
      await this.within(intake.start(), o.brokerAttemptMs ?? BROKER_ATTEMPT_MS, broker.url);
    }
  }

  /** `work`, or an error once `ms` have passed without it settling. */
  private within(work: Promise<void>, ms: number, url: string): Promise<void> {
    const { scheduler } = this.options;
    return new Promise<void>((resolve, reject) => {
      const timer = scheduler.setTimeout(
        () => reject(new Error(`no connection within ${ms} ms to ${url}`)),
        ms,
      );
      work.then(
        () => {
          scheduler.clearTimeout(timer);
          resolve();
        },
        (error: unknown) => {
          scheduler.clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  /** Stops the lanes; `final`: log their last stats (not for a broker attempt that failed). */
  private async stopIntakes(final: boolean): Promise<void> {
    const running = Object.entries(this.intakes) as [IntakeLane, ClinicIntake][];
    this.intakes = {};
    // Each drains its own commits (their PUBACKs follow) and disconnects; the lanes stop side by side.
    await Promise.all(running.map(([, intake]) => intake.stop()));
    if (!final) return;
    for (const [lane, intake] of running) this.logStats(lane, intake.snapshot(), 'intake.stats-final');
  }

  private scheduleStats(): void {
    const { scheduler } = this.options;
    this.statsTimer = scheduler.setTimeout(() => {
      for (const [lane, intake] of Object.entries(this.intakes) as [IntakeLane, ClinicIntake][]) {
        this.logStats(lane, intake.snapshot(), 'intake.stats');
      }
      this.scheduleStats();
    }, this.options.statsIntervalMs ?? STATS_INTERVAL_MS);
  }

  private logStats(lane: IntakeLane, stats: IntakeStats, event: string): void {
    this.options.log.info(event, {
      lane,
      messages: stats.received,
      readings: stats.measurementsInserted,
      duplicates: stats.measurementDuplicates,
      commits: stats.commits,
      backlog: stats.backlog,
      count: stats.acksSent,
      rejectedByCode: stats.rejected,
      ...(stats.commitFailures > 0 ? { attempt: stats.commitFailures } : {}),
    });
  }

  private logEvent(lane: IntakeLane, event: IntakeEvent): void {
    const { log } = this.options;
    const clientId = laneSubscription(lane, this.options.clientId, undefined).clientId;
    switch (event.type) {
      case 'connected':
        log.info('intake.connected', {
          lane,
          clientId,
          state: event.resumed ? 'session resumed' : 'new session',
        });
        return;
      case 'disconnected':
        log.warn('intake.disconnected', { lane, clientId });
        return;
      case 'mqtt-error':
        log.warn('intake.mqtt-error', { lane, clientId, error: event.message });
        return;
      case 'rejected':
        // The message is the intake's own text (never a value); the gateway id is the topic's.
        log.warn('intake.rejected', {
          lane,
          code: event.code,
          reason: event.message,
          ...(event.gatewayId === undefined ? {} : { gatewayId: event.gatewayId }),
        });
        return;
      case 'commit-failed':
        log.error('intake.commit-failed', {
          lane,
          attempt: event.attempt,
          error: event.message,
          ...(event.retryInMs === undefined ? {} : { retryInMs: event.retryInMs }),
        });
        return;
      case 'quarantine-released':
        log.info('intake.quarantine-released', { lane, released: event.count });
        return;
      case 'quarantine-failed':
        log.error('intake.quarantine-failed', { lane, error: event.message });
        return;
      case 'bad-time-zone':
        // The zone is a patient's assignment: named by the gateway only.
        log.warn('intake.bad-time-zone', { lane, gatewayId: event.gatewayId });
        return;
      case 'inventory':
        this.logInventory(lane, event.event);
        return;
    }
  }

  private logInventory(lane: IntakeLane, event: Extract<IntakeEvent, { type: 'inventory' }>['event']): void {
    const { log } = this.options;
    // Both lanes read the same folder and CRL: the main lane reports them, once.
    if (lane !== 'main') return;
    switch (event.type) {
      case 'loaded':
        log.info('intake.gateways-loaded', { count: event.certificates });
        return;
      case 'refused':
        log.warn('intake.gateway-certificate-refused', { path: event.file, reason: event.reason });
        return;
      case 'folder-unreadable':
        log.error('intake.gateway-folder-unreadable', { reason: event.reason });
        return;
      case 'crl':
        if (event.state.status === 'loaded') {
          log.info('intake.crl-loaded', {
            count: event.state.list.entries.size,
            next: event.state.list.nextUpdate.toISOString(),
          });
        } else if (event.state.status === 'unusable') {
          log.error('intake.crl-unusable', {
            code: event.state.error.code,
            error: event.state.error.message,
          });
        }
        return;
      case 'crl-stale':
        log.warn('intake.crl-stale', { next: new Date(event.nextUpdate).toISOString() });
        return;
    }
  }
}
