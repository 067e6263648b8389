import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Bundle } from 'fhir/r4.js';
import type { AuditLog } from '../audit/audit-log.js';
import { clinicClientId } from '../broker/acl.js';
import { type DurableSubscriber, intakeSubscriptions } from '../broker/durable-subscribers.js';
import { identifyClient } from '../broker/identify.js';
import type { PersistenceOptions } from '../broker/persistence.js';
import { FhirExporter } from '../clinic/fhir/exporter.js';
import { type ExportTarget, FolderTarget } from '../clinic/fhir/targets.js';
import { ClinicIntake, type IntakeEvent } from '../clinic/intake/index.js';
import { assignGateway, CLINIC_AUDIT_LOG, clinicAuditLog } from '../clinic/service/admin.js';
import type { CommittedEvent } from '../clinic/storage/clinic-store.js';
import { SqliteClinicStore } from '../clinic/storage/sqlite/sqlite-clinic-store.js';
import type { RuntimeLog } from '../runtime/log.js';
import { KeyFileProvider } from '../store/keys.js';
import type { Scheduler } from '../util/scheduler.js';
import type { DemoEnvironment } from './environment.js';

/**
 * The demo's clinic: the real intake (src/clinic/intake, acknowledging a message to the broker only after its
 * readings are committed) writing to the real clinic database (src/clinic/storage/sqlite, encrypted), with the
 * demo's gateway assigned to a demo patient so that readings are attributed. Its state lives in D/clinic/, laid
 * out as a clinic's own data directory is by default (src/config/clinic/defaults.ts):
 *
 *     D/clinic/clinic.db           the clinic database (encrypted from its first page), with its WAL
 *     D/clinic/clinic.db.keycheck
 *     D/clinic/clinic.key          its key (256 random bits, mode 0600), made on the first run like D/store.key
 *     D/clinic/clinic-audit.log    the clinic's audit log: the patient assignment, made as an admin makes it,
 *                                  the demo's staff logins (dashboard.ts) and what the dashboard audits
 *     D/clinic/broker/             the broker's sessions and QoS 1 queues (LevelDB, every value encrypted)
 *     D/clinic/broker.key          their key (mode 0600), made on the broker's first start
 *
 * What the terminal shows comes from the database's live feed (ClinicStore.subscribe): a reading is printed
 * once it is committed, so the view is what the clinic really has, and a later run reopening the database
 * finds every reading an earlier run printed.
 */
export const DEMO_MRN = 'DEMO-0001';

/**
 * The simulated devices hand over records they kept for up to three days (src/demo/devices.ts); the demo
 * patient's assignment starts a week before the demo's first run so those records are attributed too (a clinic
 * assigns from the day it handed the hub and its devices to the patient).
 */
const ASSIGNED_BEFORE_FIRST_RUN_MS = 7 * 86_400_000;

export interface DemoClinicPaths {
  readonly dir: string;
  readonly database: string;
  readonly key: string;
  readonly audit: string;
  readonly broker: string;
  readonly brokerKey: string;
}

export function demoClinicPaths(dataDir: string): DemoClinicPaths {
  const dir = join(dataDir, 'clinic');
  return {
    dir,
    database: join(dir, 'clinic.db'),
    key: join(dir, 'clinic.key'),
    audit: join(dir, CLINIC_AUDIT_LOG),
    broker: join(dir, 'broker'),
    brokerKey: join(dir, 'broker.key'),
  };
}

export interface DemoClinicOptions {
  readonly environment: DemoEnvironment;
  readonly scheduler: Scheduler;
  readonly log: RuntimeLog;
  /** A terminal line. */
  readonly out: (line: string) => void;
}

/** What the clinic did in this run, and what its database holds. */
export interface DemoClinicSummary {
  /** Readings in the clinic database (counted there), this run's and earlier runs'. */
  readonly inDatabase: number;
  /** Readings the database refused as already stored (its unique key on the measurement id), this run. */
  readonly duplicates: number;
  /** Messages the intake refused this run, by code. */
  readonly refused: Readonly<Record<string, number>>;
  /** With --fhir-folder: what the FHIR exporter wrote there this run. */
  readonly fhir?: FhirWritten;
}

export interface FhirWritten {
  readonly bundles: number;
  readonly observations: number;
}

/**
 * The demo's FHIR identifier systems (src/clinic/fhir/mapping.ts MappingOptions). A clinic uses URIs it owns
 * (config/clinic.example.yaml, `fhir`); `.example` is reserved for examples (RFC 2606 section 3).
 */
const DEMO_FHIR_MAPPING = {
  patientIdentifierSystem: 'https://clinic-demo.example/fhir/mrn',
  systemBase: 'https://clinic-demo.example/fhir',
};

/** The folder target, counting the Bundles it wrote and the Observations in them. */
class CountingFolder implements ExportTarget {
  bundles = 0;
  observations = 0;
  private readonly folder: FolderTarget;

  constructor(folder: string) {
    this.folder = new FolderTarget(folder);
  }

  async send(bundle: Bundle): Promise<void> {
    await this.folder.send(bundle);
    this.bundles++;
    this.observations += (bundle.entry ?? []).filter(
      (e) => e.resource?.resourceType === 'Observation',
    ).length;
  }
}

export class DemoClinic {
  private intake: ClinicIntake | undefined;
  private exporter: FhirExporter | undefined;
  private fhirTarget: CountingFolder | undefined;
  private stopFeed: (() => Promise<void>) | undefined;
  private summaryValue: DemoClinicSummary | undefined;

  private constructor(
    private readonly options: DemoClinicOptions,
    readonly store: SqliteClinicStore,
    readonly paths: DemoClinicPaths,
    /** The intake's MQTT client id, from the clinic certificate (src/broker/acl.ts clinicClientId). */
    readonly clientId: string,
    /**
     * The clinic's audit log, one instance for the whole demo (the assignment, the dashboard's staff login and
     * everything the dashboard audits): an AuditLog keeps the chain's head in memory, so a second instance
     * on the same file would chain its entries to a stale head.
     */
    readonly audit: AuditLog,
  ) {}

  /** Opens the database (made with a new key on the first run) and assigns the demo patient once. */
  static async open(options: DemoClinicOptions): Promise<DemoClinic> {
    const { environment } = options;
    const paths = demoClinicPaths(environment.dir);
    mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
    const firstRun = !existsSync(paths.database);
    // A missing key next to an existing database is an error (a new key could never read it), not a new key.
    const key = await new KeyFileProvider(paths.key, { create: firstRun }).load();
    const store = await SqliteClinicStore.open({ path: paths.database, key, clock: options.scheduler });
    key.fill(0);
    try {
      const clinic = new DemoClinic(
        options,
        store,
        paths,
        intakeClientId(environment.pki.pem.clinic),
        clinicAuditLog(paths.dir, options.scheduler),
      );
      await clinic.assignPatient();
      return clinic;
    } catch (error) {
      await store.close();
      throw error;
    }
  }

  /** The intake's session, which the broker creates before any hub connects (src/broker/durable-subscribers.ts). */
  durableSubscriber(): DurableSubscriber {
    return { clientId: this.clientId, subscriptions: intakeSubscriptions() };
  }

  /**
   * The broker's store: sessions and queues survive a stop, so what the broker acknowledged to the hub and had
   * not delivered yet reaches the intake at the next run. Its values are sealed under the key in
   * D/clinic/broker.key (src/broker/persistence.ts), made on the first start of a new store.
   */
  brokerPersistence(): PersistenceOptions {
    return { dir: this.paths.broker, key: new KeyFileProvider(this.paths.brokerKey) };
  }

  /**
   * The gateway belongs to the demo patient, once: a later run finds the assignment in the database and leaves
   * it. Made as `rpm-gateway clinic assign` makes it (src/clinic/service/admin.ts), so it is audited in the
   * clinic's audit log, by the actor "demo".
   */
  private async assignPatient(): Promise<void> {
    const { environment, scheduler } = this.options;
    const gatewayId = environment.pki.gatewayId;
    if ((await this.store.assignments(gatewayId)).length > 0) return;
    const assignment = await assignGateway(
      {
        store: this.store,
        audit: this.audit,
        actor: 'demo',
        clock: scheduler,
      },
      {
        gatewayId,
        mrn: DEMO_MRN,
        from: scheduler.now() - ASSIGNED_BEFORE_FIRST_RUN_MS,
        timeZone: DEMO_TIME_ZONE,
      },
    );
    // The MRN stays out of the operational log (src/clinic/service/admin.ts says why).
    this.options.log.info('clinic.patient.assigned', { gatewayId, detail: `assignment ${assignment.id}` });
    this.options.out(
      `demo: the clinic assigned ${gatewayId} to patient ${DEMO_MRN} from ${new Date(assignment.from).toISOString().slice(0, 10)} (audited in clinic/${CLINIC_AUDIT_LOG})`,
    );
  }

  /** Follows the database's commits, then connects the intake to the broker. */
  async start(
    broker: { readonly host: string; readonly port: number; readonly servername: string },
    onCommitted: (event: CommittedEvent) => void,
    onRefused: (code: string) => void,
  ): Promise<void> {
    const { environment, scheduler } = this.options;
    this.stopFeed = await this.store.subscribe(onCommitted);
    const intake = new ClinicIntake({
      broker,
      tls: {
        ca: environment.pki.pem.ca,
        cert: environment.pki.pem.clinic,
        key: environment.pki.pem.clinicKey,
      },
      clientId: this.clientId,
      store: this.store,
      gateways: { caPem: environment.pki.pem.ca },
      defaultTimeZone: DEMO_TIME_ZONE,
      scheduler,
      onEvent: (event) => {
        if (event.type === 'rejected') onRefused(event.code);
        this.logEvent(event);
      },
    });
    const added = intake.inventory.add(environment.pki.pem.gateway);
    if (typeof added === 'string') throw new Error(`the demo's gateway certificate: ${added}`);
    await intake.start();
    this.intake = intake;
  }

  /**
   * Runs the FHIR exporter (src/clinic/fhir) from the clinic database's export queue into `folder`, one
   * transaction Bundle per file, under the export policy (docs/fhir.md). The Bundles are PHI in the clear: the
   * folder is the caller's choice, never inside the demo's data directory.
   */
  startFhirExport(folder: string): void {
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    const target = new CountingFolder(folder);
    const exporter = new FhirExporter({
      store: this.store,
      target,
      mapping: DEMO_FHIR_MAPPING,
      // Each cycle's leftovers at once; idle, look again every second (the demo is short).
      idleMs: 1_000,
      scheduler: this.options.scheduler,
      log: this.options.log,
    });
    exporter.start();
    this.exporter = exporter;
    this.fhirTarget = target;
  }

  /** Stops the exporter's loop, then exports what is still due (the intake's last commits), once each. */
  private async finishFhirExport(): Promise<void> {
    const exporter = this.exporter;
    if (!exporter) return;
    await exporter.stop();
    // Bounded: each pass leases at most a batch, and a failing folder stops the loop at once.
    for (let pass = 0; pass < 1_000; pass++) {
      const cycle = await exporter.runOnce();
      if (cycle.leased === 0 || cycle.error !== undefined) break;
    }
  }

  /** Readings refused as duplicates so far (this run). */
  duplicates(): number {
    return this.intake?.snapshot().measurementDuplicates ?? 0;
  }

  /** Commits what the intake received and disconnects it (the broker keeps what it had not delivered). */
  async stopIntake(): Promise<void> {
    const intake = this.intake;
    if (!intake) return;
    try {
      await intake.stop();
    } catch (error) {
      this.options.log.warn('clinic.intake.stop-failed', { error: messageOf(error) });
    }
  }

  /** Finishes the FHIR export (if any), counts from the database, then closes it. */
  async close(): Promise<void> {
    await this.stopFeed?.();
    this.stopFeed = undefined;
    try {
      await this.finishFhirExport();
    } catch (error) {
      this.options.log.warn('fhir.export.finish-failed', { error: messageOf(error) });
    }
    try {
      const stats = this.intake?.snapshot();
      const target = this.fhirTarget;
      this.summaryValue = {
        inDatabase: await this.store.countMeasurements(),
        duplicates: stats?.measurementDuplicates ?? 0,
        refused: stats?.rejected ?? {},
        ...(target ? { fhir: { bundles: target.bundles, observations: target.observations } } : {}),
      };
    } catch (error) {
      this.options.log.warn('demo.count-failed', { error: messageOf(error) });
    }
    await this.store.close();
  }

  /** After close(): what the clinic did; undefined when the database could not be counted. */
  summary(): DemoClinicSummary | undefined {
    return this.summaryValue;
  }

  private logEvent(event: IntakeEvent): void {
    const { log } = this.options;
    switch (event.type) {
      case 'connected':
        log.info('clinic.intake.connected', { state: event.resumed ? 'session resumed' : 'new session' });
        return;
      case 'disconnected':
        log.info('clinic.intake.disconnected');
        return;
      case 'mqtt-error':
        log.warn('clinic.intake.mqtt-error', { error: event.message });
        return;
      case 'rejected':
        log.warn('clinic.intake.rejected', {
          code: event.code,
          error: event.message,
          ...(event.gatewayId === undefined ? {} : { gatewayId: event.gatewayId }),
        });
        return;
      case 'commit-failed':
        log.error('clinic.intake.commit-failed', {
          attempt: event.attempt,
          error: event.message,
          ...(event.retryInMs === undefined ? {} : { retryInMs: event.retryInMs }),
        });
        return;
      case 'quarantine-released':
        log.info('clinic.intake.quarantine-released', { count: event.count });
        return;
      case 'quarantine-failed':
        log.warn('clinic.intake.quarantine-failed', { error: event.message });
        return;
      case 'bad-time-zone':
        log.warn('clinic.intake.bad-time-zone', { gatewayId: event.gatewayId });
        return;
      case 'inventory':
        log.info('clinic.intake.inventory', { state: event.event.type });
        return;
    }
  }
}

/**
 * `clinic-<name>-intake`: the clinic name is the clinic certificate's (the broker checks the client id against
 * it, src/broker/acl.ts mayConnect), and the suffix tells the intake's session from any other receiver of the
 * same clinic.
 */
export function intakeClientId(clinicCertificatePem: string): string {
  const identity = identifyClient(new X509Certificate(clinicCertificatePem).raw);
  if (identity?.role !== 'clinic') throw new Error("the demo's clinic certificate does not name a clinic");
  return clinicClientId(identity.id, 'intake');
}

/**
 * The demo patient's time zone: a simulated device's wall clock is UTC (src/ble/sim/virtual-peripheral.ts
 * dateTimeFields), so device times without an offset are resolved in UTC.
 */
const DEMO_TIME_ZONE = 'UTC';

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
