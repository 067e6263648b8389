import { mkdirSync } from 'node:fs';
import type { ClinicConfig } from '../../config/clinic/schema.js';
import { secretPath } from '../../config/secrets.js';
import type { Service } from '../../runtime/lifecycle.js';
import type { RuntimeLog } from '../../runtime/log.js';
import type { Scheduler } from '../../util/scheduler.js';
import { FhirExportError } from '../fhir/errors.js';
import { FhirExporter, type FhirTargetOptions } from '../fhir/exporter.js';
import type { MappingOptions } from '../fhir/mapping.js';
import type { ClinicStore } from '../storage/clinic-store.js';

/**
 * The services `rpm-gateway clinic intake` runs beside the intake, as the configuration turns them on: the FHIR
 * export (fhir:, src/clinic/fhir). Two steps, so that a configuration that cannot be used is refused before
 * anything is opened: this function decides from the configuration alone (throwing FHIR_CONFIG, a
 * configuration error), and the function it returns builds the services once the store is open.
 *
 * Every intake process with fhir.enabled runs an exporter. On PostgreSQL several processes may therefore
 * export from one database at once; that is safe because the export queue is leased (ClinicStore.leaseExports:
 * SELECT ... FOR UPDATE SKIP LOCKED, so two exporters never hold the same measurement) and every upload is a
 * conditional create, so a measurement re-sent after a lease lapsed creates nothing new (docs/fhir.md).
 */
export interface ExtraServiceContext {
  readonly config: ClinicConfig;
  readonly store: ClinicStore;
  readonly log: RuntimeLog;
  readonly scheduler: Scheduler;
  readonly env: NodeJS.ProcessEnv;
}

export type ExtraServices = (context: ExtraServiceContext) => Service[];

export function extraIntakeServices(config: ClinicConfig, env: NodeJS.ProcessEnv): ExtraServices {
  const fhir = config.fhir;
  if (!fhir.enabled) return () => [];
  const { target, patientIdentifierSystem, systemBase } = fhir;
  // The schema requires these when enabled (src/config/clinic/fhir.ts); checked again for the type's sake.
  if (target === undefined || patientIdentifierSystem === undefined || systemBase === undefined) {
    throw new FhirExportError(
      'FHIR_CONFIG',
      'fhir.enabled is true without fhir.target, fhir.patientIdentifierSystem and fhir.systemBase',
    );
  }
  const targetOptions: FhirTargetOptions =
    'baseUrl' in target
      ? {
          kind: 'http',
          baseUrl: target.baseUrl,
          ...(fhir.ca === undefined ? {} : { caFile: fhir.ca }),
          ...(fhir.token === undefined ? {} : { bearerTokenFile: secretPath(fhir.token, env) }),
        }
      : { kind: 'folder', folder: target.folder };
  const mapping: MappingOptions = { patientIdentifierSystem, systemBase };
  return ({ store, log, scheduler }) => {
    const exporter = new FhirExporter({
      store,
      target: targetOptions,
      mapping,
      policy: { continuousIntervalMs: fhir.policy.continuousIntervalMs },
      backoff: fhir.backoff,
      scheduler,
      log,
    });
    return [new FhirExportService(exporter, targetOptions)];
  };
}

/** The exporter as a Service of the intake process: started after the intakes, stopped before them. */
class FhirExportService implements Service {
  constructor(
    private readonly exporter: FhirExporter,
    private readonly target: FhirTargetOptions,
  ) {}

  async start(): Promise<void> {
    // The folder is made (0700: the Bundles are PHI) like the data directory; a server is only reached.
    if (this.target.kind === 'folder') mkdirSync(this.target.folder, { recursive: true, mode: 0o700 });
    this.exporter.start();
  }

  async stop(): Promise<void> {
    // Waits for a cycle in flight: its results are recorded before the store closes.
    await this.exporter.stop();
  }
}
