import { GatewayError } from '../../errors.js';

/** Stable codes of the clinic database, whichever engine holds it (docs/errors.md, "Clinic database"). */
export type ClinicStoreErrorCode =
  /** The database key is not 256 bits. */
  | 'CLINIC_STORE_KEY_MALFORMED'
  /** The database exists but was encrypted with another key; it is left untouched. */
  | 'CLINIC_STORE_KEY_WRONG'
  /** The database was written by a newer version of this software (a schema version this one does not know). */
  | 'CLINIC_STORE_SCHEMA_TOO_NEW'
  /** The database opens with its key but fails its integrity check; it is left untouched (restore a backup). */
  | 'CLINIC_STORE_CORRUPT'
  /** The disk is full; the write in flight was not stored (and so not acknowledged), nothing stored was lost. */
  | 'CLINIC_STORE_DISK_FULL'
  /** The database's folder or file cannot be written. */
  | 'CLINIC_STORE_READ_ONLY'
  /** Another process held the database's write lock for longer than the busy timeout. */
  | 'CLINIC_STORE_BUSY'
  /** The database was used after close(). */
  | 'CLINIC_STORE_CLOSED'
  /** PostgreSQL: the server cannot be reached or refused the connection (password, database name), or shut down. */
  | 'CLINIC_STORE_UNREACHABLE'
  /** Any other failure of the database. */
  | 'CLINIC_STORE_IO'
  /** An assignment would overlap another of the same gateway (see src/clinic/storage/assignment-rules.ts). */
  | 'CLINIC_ASSIGNMENT_CONFLICT'
  /** An assignment's fields are not acceptable: empty gateway or MRN, a time that is not epoch ms, an unknown time zone. */
  | 'CLINIC_ASSIGNMENT_INVALID';

export class ClinicStoreError extends GatewayError {
  declare readonly code: ClinicStoreErrorCode;

  constructor(code: ClinicStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A page's size (`measurementPage`): a whole number of at least 1; a caller's mistake otherwise. */
export function checkPageLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new ClinicStoreError('CLINIC_STORE_IO', 'a page of measurements needs a limit of 1 or more');
  }
}
