import { GatewayError } from '../../errors.js';

/** Stable codes of the FHIR export (docs/errors.md, "FHIR export"). Messages never hold PHI. */
export type FhirExportErrorCode =
  /** The FHIR server could not be reached (connection refused or reset, DNS, TLS, timeout). */
  | 'FHIR_UNREACHABLE'
  /** The server refused the credentials (HTTP 401 or 403). */
  | 'FHIR_UNAUTHORIZED'
  /** The server refused the Bundle's content (HTTP 400, 404, 409, 412, 422). */
  | 'FHIR_REJECTED'
  /** The server failed (HTTP 5xx, 429) or answered something that is not a transaction-response Bundle. */
  | 'FHIR_SERVER_ERROR'
  /** The bearer-token or CA file cannot be read or is unsafe (permissions, owner, symbolic link). */
  | 'FHIR_CREDENTIALS'
  /** A Bundle could not be written to the export folder. */
  | 'FHIR_FOLDER_WRITE'
  /** The exporter's options are wrong (a base URL that is not http(s), a batch size below 1...). */
  | 'FHIR_CONFIG';

export class FhirExportError extends GatewayError {
  declare readonly code: FhirExportErrorCode;

  constructor(code: FhirExportErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
