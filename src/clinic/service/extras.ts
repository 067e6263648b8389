import type { ClinicConfig } from '../../config/clinic/schema.js';
import type { Service } from '../../runtime/lifecycle.js';
import type { RuntimeLog } from '../../runtime/log.js';
import type { Scheduler } from '../../util/scheduler.js';
import type { ClinicStore } from '../storage/clinic-store.js';
import { ClinicServiceError } from './errors.js';

/**
 * The services `rpm-gateway clinic intake` runs beside the intake, as the configuration turns them on: the
 * one seam where the FHIR export (fhir:, src/clinic/fhir) is plugged in once it exists. Two steps, so that a
 * configuration asking for something this build does not have is refused before anything is opened: this
 * function decides from the configuration alone (and throws CLINIC_FHIR_UNAVAILABLE, a configuration
 * error), and the function it returns builds the services once the store is open.
 */
export interface ExtraServiceContext {
  readonly config: ClinicConfig;
  readonly store: ClinicStore;
  readonly log: RuntimeLog;
  readonly scheduler: Scheduler;
  readonly env: NodeJS.ProcessEnv;
}

export type ExtraServices = (context: ExtraServiceContext) => Service[];

export function extraIntakeServices(config: ClinicConfig): ExtraServices {
  if (config.fhir.enabled) {
    throw new ClinicServiceError(
      'CLINIC_FHIR_UNAVAILABLE',
      'fhir.enabled is true, but this build has no FHIR exporter yet; set fhir.enabled: false',
    );
  }
  return () => [];
}
