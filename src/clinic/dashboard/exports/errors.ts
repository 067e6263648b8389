import { GatewayError } from '../../../errors.js';

/**
 * Stable codes of the dashboard's exports (GET /patients/:mrn/export; docs/errors.md, "Dashboard exports"),
 * each answered 400 with the code on the page. Messages name no patient and no value.
 */
export type ExportErrorCode =
  /** `from` or `to` is missing or not a date-time (YYYY-MM-DDTHH:MM in the clinic's zone, or with an offset). */
  | 'EXPORT_RANGE_INVALID'
  /** `to` is not after `from`. */
  | 'EXPORT_RANGE_INVERTED'
  /** The range spans more than MAX_EXPORT_SPAN_MS (31 days). */
  | 'EXPORT_RANGE_TOO_LONG'
  /** `format` is neither `csv` nor `fhir`. */
  | 'EXPORT_FORMAT_UNKNOWN'
  /** A FHIR download, but the configuration has no fhir.patientIdentifierSystem and fhir.systemBase. */
  | 'EXPORT_FHIR_NOT_CONFIGURED'
  /** A FHIR download of a range holding more measurements than one Bundle may (MAX_FHIR_MEASUREMENTS). */
  | 'EXPORT_TOO_MANY_READINGS';

export class ExportError extends GatewayError {
  declare readonly code: ExportErrorCode;

  constructor(code: ExportErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
