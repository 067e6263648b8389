import { GatewayError } from '../../errors.js';

/**
 * Stable codes of the clinic's processes as commands start them (`rpm-gateway broker`, `rpm-gateway clinic
 * intake|init|assign|...`; docs/errors.md, "Clinic commands"). The services' own failures keep their codes
 * (BROKER_*, INTAKE_*, CLINIC_STORE_*); these say what the wiring around them found.
 */
export type ClinicServiceErrorCode =
  /** The clinic database does not exist: `rpm-gateway clinic init` makes it (the intake never does). */
  | 'CLINIC_NOT_INITIALISED'
  /** `clinic init` found a database, its key or its key check already there: nothing was changed. */
  | 'CLINIC_ALREADY_INITIALISED'
  /** The intake could connect to none of intake.brokers. */
  | 'CLINIC_BROKER_UNREACHABLE';

export class ClinicServiceError extends GatewayError {
  declare readonly code: ClinicServiceErrorCode;

  constructor(code: ClinicServiceErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The codes that are mistakes in the configuration: the command exits 2 before it starts anything. */
export const CONFIGURATION_CODES: ReadonlySet<string> = new Set([
  // The FHIR exporter's options as the configuration gave them (src/clinic/service/extras.ts).
  'FHIR_CONFIG',
]);
