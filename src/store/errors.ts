import { GatewayError } from '../errors.js';

/** Stable codes for the encrypted store (docs/errors.md). */
export type StoreErrorCode =
  /** The key provider has no key (file absent and creation off, variable unset, credential absent). */
  | 'STORE_KEY_MISSING'
  /** The key file is readable by others than its owner (mode looser than 0600). */
  | 'STORE_KEY_PERMISSIONS'
  /** The key file is a symbolic link, not a regular file, or owned by another user than the gateway's (or root). */
  | 'STORE_KEY_UNSAFE'
  /** The key is not 256 bits written as 64 hex digits. */
  | 'STORE_KEY_MALFORMED'
  /** The store exists but was encrypted with another key. */
  | 'STORE_KEY_WRONG'
  /** The store's folder or file cannot be written. */
  | 'STORE_READ_ONLY'
  /** The disk is full; nothing already stored was lost, the batch in flight was not stored. */
  | 'STORE_DISK_FULL'
  /** The store is full, the retention strategy is "reject", and the reading was refused. */
  | 'STORE_FULL'
  /** The store failed its integrity check and was moved aside (see the event for where). */
  | 'STORE_CORRUPT'
  /**
   * Committed readings are gone from the store's files (damaged or deleted WAL, missing or empty store file,
   * missing or forged high-water mark): found at open, kept aside, reported as a gap record and audited.
   */
  | 'STORE_DAMAGED'
  /** The store was written by a newer gateway (schema version unknown to this one). */
  | 'STORE_SCHEMA_TOO_NEW'
  /** Another running process owns the store (see `<store>.lock`). */
  | 'STORE_LOCKED'
  /** A key rotation could not be completed; the store is unchanged and still opens with the old key. */
  | 'STORE_REKEY_FAILED'
  /** Any other I/O failure of the store. */
  | 'STORE_IO'
  /** The store was used after close(). */
  | 'STORE_CLOSED'
  /** No store exists where one must (the service never creates one: `rpm-gateway init` does). */
  | 'STORE_MISSING'
  /** A stored record's body format is not one this gateway was configured to read (src/store/record-codec.ts). */
  | 'STORE_RECORD_FORMAT';

export class StoreError extends GatewayError {
  declare readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Maps a SQLite failure to a typed error; `what` says what the store was doing. */
export function storeErrorFrom(error: unknown, what: string): StoreError {
  if (error instanceof StoreError) return error;
  const code = (error as { code?: unknown })?.code;
  const message = (error as Error)?.message ?? String(error);
  switch (code) {
    case 'SQLITE_FULL':
      return new StoreError('STORE_DISK_FULL', `${what}: the disk is full`, { cause: error });
    case 'SQLITE_READONLY':
    case 'SQLITE_READONLY_DIRECTORY':
    case 'SQLITE_READONLY_DBMOVED':
    case 'SQLITE_CANTOPEN':
    case 'EACCES':
    case 'EROFS':
    case 'EPERM':
      return new StoreError('STORE_READ_ONLY', `${what}: cannot write the store (${message})`, {
        cause: error,
      });
    case 'ENOSPC':
      return new StoreError('STORE_DISK_FULL', `${what}: the disk is full`, { cause: error });
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return new StoreError('STORE_LOCKED', `${what}: another process is using the store`, { cause: error });
    case 'SQLITE_CORRUPT':
    case 'SQLITE_NOTADB':
      return new StoreError('STORE_CORRUPT', `${what}: the store is damaged (${message})`, { cause: error });
    default:
      return new StoreError('STORE_IO', `${what}: ${message}`, { cause: error });
  }
}
