import { pino } from 'pino';
import { AuditLog } from '../audit/audit-log.js';
import { ClinicalBroker, type Refusal } from '../broker/clinical-broker.js';
import { identifyClient } from '../broker/identify.js';
import type { ProgressStream } from '../cli/progress.js';
import { GatewayDirectory } from '../clinic/gateway-directory.js';
import { ClinicReceiver } from '../clinic/receiver.js';
import { statePaths } from '../config/paths.js';
import { loadBundledRegistry } from '../drivers/default-registry.js';
import type { Measurement } from '../model/measurement.js';
import type { Hub } from '../runtime/hub.js';
import { keyProvider } from '../runtime/hub.js';
import type { Service } from '../runtime/lifecycle.js';
import { createLog, type RuntimeLog } from '../runtime/log.js';
import { createHub } from '../runtime/service.js';
import { Store } from '../store/store.js';
import type { Scheduler } from '../util/scheduler.js';
import { ClinicView } from './clinic-view.js';
import { type DemoRadio, demoRadio, enrolDemoDevices, Patient } from './devices.js';
import type { DemoEnvironment } from './environment.js';
import { DemoError } from './errors.js';
import { OutageScenario } from './scenario.js';

/**
 * The whole demo as one service the lifecycle starts and stops (src/runtime/lifecycle.ts, as `start` runs the
 * hub): the embedded clinical broker, the clinic side (a receiver that verifies every signed envelope, printed
 * by ClinicView), and the hub `rpm-gateway start` runs (src/runtime/service.ts createHub), with the demo's
 * simulated radio in place of Bluetooth. Everything between the devices and the clinic is the real path: GATT
 * bytes decoded by the drivers, one session per enrolled device, the encrypted outbox, signed batches over
 * mutual-TLS MQTT.
 *
 * Start: devices enrolled (first run), broker, clinic, hub, then the patient starts measuring. Stop, in
 * reverse: the patient, the hub (its own ordered stop: intake, commits, offline status, uplink, store), the
 * clinic, the broker.
 *
 * The hub's log goes to D/logs/hub.log (JSON lines, redacted as on a Pi), not to the terminal: the terminal is
 * the clinic's view. The reading values the clinic prints are on the terminal only; no file in D holds them.
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
}

export interface DemoSummary {
  readonly received: number;
  readonly devices: number;
  readonly duplicatesDropped: number;
  readonly stored: number;
  readonly waiting: number | undefined;
}

export class Demo implements Service {
  readonly log: RuntimeLog;
  private radio: DemoRadio | undefined;
  private broker: ClinicalBroker | undefined;
  private receiver: ClinicReceiver | undefined;
  private hub: Hub | undefined;
  private patient: Patient | undefined;
  private scenario: OutageScenario | undefined;
  private readonly view: ClinicView;
  private readonly kinds = new Map<string, string>();
  private readonly stored = new Set<string>();
  private readonly received = new Map<string, number>();
  private readonly devicesSeen = new Set<string>();
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

    const broker = new ClinicalBroker({
      ca: environment.pki.pem.ca,
      cert: environment.pki.pem.broker,
      key: environment.pki.pem.brokerKey,
      identify: identifyClient,
      port: brokerPort(environment),
      onRefusal: (refusal: Refusal) =>
        this.log.warn('broker.refused', {
          reason: `${refusal.stage}: ${refusal.reason}`,
          ...(refusal.identity ? { detail: refusal.identity } : {}),
        }),
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

    const directory = new GatewayDirectory(environment.pki.pem.ca);
    directory.add(environment.pki.pem.gateway);
    const receiver = new ClinicReceiver({
      broker: { host: '127.0.0.1', port: brokerPort(environment), servername: 'localhost' },
      tls: {
        ca: environment.pki.pem.ca,
        cert: environment.pki.pem.clinic,
        key: environment.pki.pem.clinicKey,
      },
      clientId: 'clinic-demo',
      directory,
      onMeasurement: (gatewayId, measurement) => this.clinicReceived(gatewayId, measurement),
      onGap: (gatewayId, gap) => this.view.gap(gatewayId, gap),
      onStatus: (status) => this.view.status(status),
      onRejected: (_topic, error) => this.view.rejected(error.code),
    });
    await receiver.start();
    this.receiver = receiver;

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
        duplicatesDropped: () => receiver.duplicates,
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
    this.scenario?.stop();
    await this.hub?.stop(reason);
    await this.receiver?.stop().catch(() => undefined);
    await this.broker?.stop();
    if (this.hub) this.lastWaiting = await this.waitingInStore();
    this.log.flush();
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
      duplicatesDropped: this.receiver?.duplicates ?? 0,
      stored: this.stored.size,
      waiting: this.lastWaiting,
    };
  }

  summaryLine(): string {
    const s = this.summary();
    this.view.counts.duplicates = s.duplicatesDropped;
    const waiting =
      s.waiting === undefined ? '' : `; ${s.waiting} reading(s) left waiting in the hub's store`;
    return `demo: the clinic received ${s.received} reading(s) from ${s.devices} of ${this.radio?.devices.length ?? 5} devices (the hub stored ${s.stored}), dropped ${s.duplicatesDropped} duplicate(s) by id${waiting}`;
  }

  private clinicReceived(gatewayId: string, measurement: Measurement): void {
    this.received.set(measurement.id, (this.received.get(measurement.id) ?? 0) + 1);
    this.devicesSeen.add(measurement.deviceId);
    this.view.measurement(gatewayId, measurement, measurement.alert ? 'alert' : 'obs');
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
