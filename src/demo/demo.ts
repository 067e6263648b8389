import { pino } from 'pino';
import { AuditLog } from '../audit/audit-log.js';
import { ClinicalBroker, type Refusal } from '../broker/clinical-broker.js';
import { identifyClient } from '../broker/identify.js';
import type { ProgressStream } from '../cli/progress.js';
import type { CommittedEvent } from '../clinic/storage/clinic-store.js';
import { statePaths } from '../config/paths.js';
import { loadBundledRegistry } from '../drivers/default-registry.js';
import type { Hub } from '../runtime/hub.js';
import { keyProvider } from '../runtime/hub.js';
import type { Service } from '../runtime/lifecycle.js';
import { createLog, type RuntimeLog } from '../runtime/log.js';
import { createHub } from '../runtime/service.js';
import { Store } from '../store/store.js';
import type { Scheduler, TimerHandle } from '../util/scheduler.js';
import { DemoClinic, type DemoClinicSummary } from './clinic-side.js';
import { ClinicView } from './clinic-view.js';
import { DemoDashboard } from './dashboard.js';
import { type DemoRadio, demoRadio, enrolDemoDevices, Patient } from './devices.js';
import type { DemoEnvironment } from './environment.js';
import { DemoError } from './errors.js';
import { OutageScenario } from './scenario.js';

/**
 * The whole demo as one service the lifecycle starts and stops (src/runtime/lifecycle.ts, as `start` runs the
 * hub): the embedded clinical broker, the clinic side (clinic-side.ts: the clinic intake committing every
 * verified reading to the encrypted clinic database, the demo patient assigned; ClinicView prints what the
 * database's live feed reports committed), the clinic dashboard with its alarm engine as `clinic serve` runs
 * them (dashboard.ts: the same feed drives the tiles and charts; a fresh staff login each run), and the hub
 * `rpm-gateway start` runs (src/runtime/service.ts createHub), with the demo's simulated radio in place of
 * Bluetooth. Everything between the devices and the
 * clinic's record is the real path: GATT bytes decoded by the drivers, one session per enrolled device, the
 * encrypted outbox, signed batches over mutual-TLS MQTT, PUBACKs only after the clinic's commit.
 *
 * The broker keeps its sessions and QoS 1 queues on disk in D/clinic/broker, every value encrypted
 * (src/broker/persistence.ts), and the intake's session is provisioned before any hub connects: nothing is
 * acknowledged to the hub that the intake would not receive, and what the broker holds at a stop reaches the
 * intake at the next run. At stop the demo also waits (a few seconds at most) for the intake to commit the
 * hub's offline status, the hub's last message, so this run's summary includes what the hub sent.
 *
 * Start: devices enrolled (first run), clinic database (the patient assigned on the first run), alarm engine
 * and dashboard (the login printed), broker, intake, hub, then the patient starts measuring. Stop: the patient,
 * the hub (its own ordered stop: intake, commits, offline status, uplink, store), the clinic intake (it commits
 * what it received), the broker, the dashboard (its connections end) and the alarm engine, the clinic database
 * (counted, then closed).
 *
 * The hub's, the intake's and the dashboard's logs go to D/logs/hub.log (JSON lines, redacted as on a Pi), not
 * to the terminal: the terminal is the clinic's view, and the only place the staff password is shown. The reading values the clinic prints are on the terminal only; the files
 * in D that hold them are encrypted (the hub's store, the clinic database).
 */
export interface DemoOptions {
  readonly environment: DemoEnvironment;
  readonly scheduler: Scheduler;
  /** One line on the terminal. */
  readonly out: (line: string) => void;
  /** Where the scenario's progress line goes (redrawn on a terminal only). */
  readonly progress: ProgressStream;
  readonly scenario: 'none' | 'outage';
  readonly outageMs: number;
  /** Export the clinic's readings as FHIR transaction Bundles into this folder (outside the data directory). */
  readonly fhirFolder?: string;
}

export interface DemoSummary {
  /** Readings the clinic committed in this run (the lines printed). */
  readonly received: number;
  readonly devices: number;
  /** Readings the clinic database refused as already stored (its key on the measurement id), this run. */
  readonly duplicatesDropped: number;
  readonly stored: number;
  readonly waiting: number | undefined;
  /** The clinic database's own counts, taken after the intake stopped; undefined if they could not be read. */
  readonly clinic: DemoClinicSummary | undefined;
}

/** How long the stop waits for the intake to commit the hub's offline status (the hub's last message). */
const LAST_MESSAGE_WAIT_MS = 5_000;

export class Demo implements Service {
  readonly log: RuntimeLog;
  private radio: DemoRadio | undefined;
  private broker: ClinicalBroker | undefined;
  private clinic: DemoClinic | undefined;
  private dashboard: DemoDashboard | undefined;
  private hub: Hub | undefined;
  private patient: Patient | undefined;
  private scenario: OutageScenario | undefined;
  private readonly view: ClinicView;
  private readonly kinds = new Map<string, string>();
  private readonly stored = new Set<string>();
  private readonly received = new Map<string, number>();
  private readonly devicesSeen = new Set<string>();
  /** Set while the stop waits for the hub's offline status to be committed. */
  private offlineCommitted: (() => void) | undefined;
  /** Why start() failed, for the terminal (the log has it too). */
  failure: unknown;

  constructor(private readonly options: DemoOptions) {
    const { config } = options.environment.loaded;
    this.log = createLog({
      level: config.log.level,
      redact: config.log.redact,
      base: { gatewayId: config.gateway.id },
      destination: pino.destination({ dest: options.environment.logFile, sync: true, mkdir: true }),
    });
    this.view = new ClinicView(
      (line) => {
        this.scenario?.interrupt();
        options.out(line);
      },
      (id) => this.kinds.get(id) ?? id,
    );
  }

  async start(): Promise<void> {
    try {
      await this.startAll();
    } catch (error) {
      this.failure = error;
      throw error;
    }
  }

  private async startAll(): Promise<void> {
    const { environment, scheduler } = this.options;
    const radio = demoRadio(scheduler);
    this.radio = radio;
    await this.enrol(radio);

    const clinic = await DemoClinic.open({
      environment,
      scheduler,
      log: this.log,
      out: this.options.out,
    });
    this.clinic = clinic;

    // The dashboard (and the alarm engine) before the intake: the engine and the live feed see every commit.
    const dashboard = await DemoDashboard.start({ environment, clinic, scheduler, log: this.log });
    this.dashboard = dashboard;
    for (const line of dashboard.lines(environment)) this.options.out(line);

    const broker = new ClinicalBroker({
      ca: environment.pki.pem.ca,
      cert: environment.pki.pem.broker,
      key: environment.pki.pem.brokerKey,
      identify: identifyClient,
      port: brokerPort(environment),
      // The intake's session exists before any hub connects: a reading is never acknowledged to the hub while
      // no session would receive it (src/broker/durable-subscribers.ts).
      durableSubscribers: [clinic.durableSubscriber()],
      persistence: clinic.brokerPersistence(),
      onRefusal: (refusal: Refusal) =>
        this.log.warn('broker.refused', {
          reason: `${refusal.stage}: ${refusal.reason}`,
          ...(refusal.identity ? { detail: refusal.identity } : {}),
        }),
      onError: (error) => this.log.error('broker.store-failed', { code: error.code, error: error.message }),
    });
    try {
      await broker.start();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      throw new DemoError(
        'DEMO_PORT_IN_USE',
        `port ${brokerPort(environment)} (uplink.brokers in ${environment.configFile}) is in use by another program; stop it or change the port there`,
        { cause: error },
      );
    }
    this.broker = broker;

    await clinic.start(
      { host: '127.0.0.1', port: brokerPort(environment), servername: 'localhost' },
      (event) => this.committed(event),
      (code) => this.view.rejected(code),
    );
    if (this.options.fhirFolder !== undefined) clinic.startFhirExport(this.options.fhirFolder);

    const { hub } = createHub(
      environment.loaded,
      {},
      {
        log: this.log,
        createCentral: async () => radio.central,
        onAppended: (measurement, result) => {
          if (result === 'stored') this.stored.add(measurement.id);
        },
      },
    );
    this.hub = hub;
    await hub.start();

    this.patient = new Patient(scheduler, radio.devices);
    this.patient.start();
    if (this.options.scenario === 'outage') {
      this.scenario = new OutageScenario({
        broker,
        scheduler,
        outageMs: this.options.outageMs,
        waiting: () => waitingOf(hub),
        everyDeviceSeen: () => this.devicesSeen.size >= radio.devices.length,
        stored: () => this.stored,
        received: () => this.received,
        duplicatesDropped: () => clinic.duplicates(),
        out: this.options.out,
        progress: this.options.progress,
      });
      this.scenario.start();
    }
  }

  /** Enrols the devices on the first run (the store is the hub's: opened and closed before the hub opens it). */
  private async enrol(radio: DemoRadio): Promise<void> {
    const { config } = this.options.environment.loaded;
    const paths = statePaths(config.paths.dataDir);
    const store = await Store.open({
      path: paths.store,
      keys: keyProvider(config.store.key, {}),
      existing: 'must-exist',
    });
    try {
      const { enrolled } = await enrolDemoDevices({
        radio,
        registry: store.devices,
        drivers: await loadBundledRegistry(),
        audit: new AuditLog(paths.auditLog, this.options.scheduler),
      });
      if (enrolled > 0)
        this.options.out(`demo: enrolled ${enrolled} simulated device(s) (scan, bond, check)`);
      for (const device of store.devices.list()) {
        const kind = radio.kindOf(device.address);
        if (kind) this.kinds.set(device.id, kind);
      }
    } finally {
      store.close();
    }
  }

  async stop(reason: string): Promise<void> {
    this.patient?.stop();
    // With the broker off the network the hub's offline status cannot reach the intake: no wait for it.
    const brokerDown = this.scenario?.brokerDown ?? false;
    this.scenario?.stop();
    const lastMessage = this.hub && !brokerDown ? this.lastMessageCommitted() : undefined;
    await this.hub?.stop(reason);
    await lastMessage;
    await this.clinic?.stopIntake();
    await this.broker?.stop();
    // After the intake: the engine judges its last commits and the pages see the hub go offline.
    await this.dashboard?.stop(reason).catch((error: unknown) =>
      this.log.warn('demo.dashboard-stop-failed', {
        error: error instanceof Error ? error.message : String(error),
      }),
    );
    await this.clinic?.close().catch((error: unknown) =>
      this.log.warn('demo.clinic-close-failed', {
        error: error instanceof Error ? error.message : String(error),
      }),
    );
    if (this.hub) this.lastWaiting = await this.waitingInStore();
    this.log.flush();
  }

  /**
   * Resolves when the intake has committed the hub's offline status (published as the hub stops, after every
   * reading it sent), or after LAST_MESSAGE_WAIT_MS (the broker suspended by the outage scenario, say).
   */
  private lastMessageCommitted(): Promise<void> {
    const { scheduler } = this.options;
    return new Promise<void>((resolve) => {
      let timer: TimerHandle | undefined;
      const done = () => {
        if (timer !== undefined) scheduler.clearTimeout(timer);
        this.offlineCommitted = undefined;
        resolve();
      };
      timer = scheduler.setTimeout(done, LAST_MESSAGE_WAIT_MS);
      this.offlineCommitted = done;
    });
  }

  private lastWaiting: number | undefined;

  /** What the stopped hub left in its store for the next run (the store is closed by then: opened to count). */
  private async waitingInStore(): Promise<number | undefined> {
    const { config } = this.options.environment.loaded;
    try {
      const store = await Store.open({
        path: statePaths(config.paths.dataDir).store,
        keys: keyProvider(config.store.key, {}),
        existing: 'must-exist',
      });
      try {
        const { pending } = store.outbox.stats();
        return pending.alert + pending.live + pending.backlog;
      } finally {
        store.close();
      }
    } catch (error) {
      this.log.warn('demo.count-failed', { error: error instanceof Error ? error.message : String(error) });
      return undefined;
    }
  }

  summary(): DemoSummary {
    return {
      received: this.view.counts.readings,
      devices: this.devicesSeen.size,
      duplicatesDropped: this.clinic?.summary()?.duplicates ?? this.clinic?.duplicates() ?? 0,
      stored: this.stored.size,
      waiting: this.lastWaiting,
      clinic: this.clinic?.summary(),
    };
  }

  summaryLine(): string {
    const s = this.summary();
    this.view.counts.duplicates = s.duplicatesDropped;
    const waiting =
      s.waiting === undefined ? '' : `; ${s.waiting} reading(s) left waiting in the hub's store`;
    const lines = [
      `demo: the clinic received ${s.received} reading(s) from ${s.devices} of ${this.radio?.devices.length ?? 5} devices (the hub stored ${s.stored})${waiting}`,
    ];
    if (s.clinic) {
      const refused = Object.entries(s.clinic.refused)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([code, count]) => `${code} ${count}`);
      lines.push(
        `demo: the clinic database holds ${s.clinic.inDatabase} reading(s), each once: it refused ${s.clinic.duplicates} duplicate(s) by its measurement-id key; refused messages: ${refused.length === 0 ? 'none' : refused.join(', ')}`,
      );
      if (s.clinic.fhir && this.options.fhirFolder !== undefined) {
        lines.push(
          `demo: FHIR: wrote ${s.clinic.fhir.bundles} transaction Bundle(s) holding ${s.clinic.fhir.observations} Observation(s) to ${this.options.fhirFolder}`,
        );
      }
    }
    return lines.join('\n');
  }

  /** What the clinic database committed (its live feed): printed now, after the commit. */
  private committed(event: CommittedEvent): void {
    for (const { measurement, receipt } of event.measurements) {
      this.received.set(measurement.id, (this.received.get(measurement.id) ?? 0) + 1);
      this.devicesSeen.add(measurement.deviceId);
      this.view.measurement(receipt.gatewayId, measurement, receipt.topic);
    }
    for (const { gap, receipt } of event.gaps) this.view.gap(receipt.gatewayId, gap);
    for (const { status } of event.statuses) {
      this.view.status(status);
      if (status.state === 'offline') this.offlineCommitted?.();
    }
  }
}

function brokerPort(environment: DemoEnvironment): number {
  const first = environment.loaded.config.uplink.brokers[0];
  if (!first) throw new Error('the demo configuration names no broker');
  return first.port;
}

function waitingOf(hub: Hub): number {
  const { alert, live, backlog } = hub.status().backlog;
  return alert.pending + live.pending + backlog.pending;
}
