import { ClinicStoreError } from '../errors.js';

/**
 * Maps a failure of PostgreSQL or of the connection to it to a typed error; `what` says what the store was
 * doing. SQLSTATE classes per PostgreSQL docs, Appendix A "PostgreSQL Error Codes".
 *
 * The server's own message is kept only for connection failures (it names a host, a user or a database, never
 * a reading). For a failed statement the message names the SQLSTATE only: PostgreSQL quotes offending values
 * in its messages and details ("invalid input syntax for type ...: \"...\""), and a value may be PHI. The
 * original error stays available as `cause` for debugging.
 */
export function pgErrorFrom(error: unknown, what: string): ClinicStoreError {
  if (error instanceof ClinicStoreError) return error;
  const code = (error as { code?: unknown } | undefined)?.code;
  const sqlstate = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  if (
    sqlstate === undefined ||
    sqlstate.startsWith('08') ||
    sqlstate.startsWith('28') ||
    sqlstate === '3D000'
  ) {
    // No SQLSTATE: a socket error (ECONNREFUSED, ETIMEDOUT...) or the connection ended. 08: connection
    // exception; 28: invalid authorization (wrong password); 3D000: the database does not exist; 57P0x: the
    // server is shutting down.
    const detail = (error as Error | undefined)?.message ?? String(error);
    return new ClinicStoreError(
      'CLINIC_STORE_UNREACHABLE',
      `${what}: cannot use the PostgreSQL server (${detail})`,
      {
        cause: error,
      },
    );
  }
  if (sqlstate.startsWith('57P0')) {
    return new ClinicStoreError(
      'CLINIC_STORE_UNREACHABLE',
      `${what}: the PostgreSQL server is shutting down`,
      {
        cause: error,
      },
    );
  }
  switch (sqlstate) {
    case '53100': // disk_full
      return new ClinicStoreError('CLINIC_STORE_DISK_FULL', `${what}: the database server's disk is full`, {
        cause: error,
      });
    case '25006': // read_only_sql_transaction (a hot standby, or default_transaction_read_only)
      return new ClinicStoreError(
        'CLINIC_STORE_READ_ONLY',
        `${what}: the database is read-only (a standby?)`,
        {
          cause: error,
        },
      );
    case '40001': // serialization_failure
    case '40P01': // deadlock_detected
    case '55P03': // lock_not_available
    case '57014': // query_canceled (statement_timeout, lock_timeout)
      return new ClinicStoreError(
        'CLINIC_STORE_BUSY',
        `${what}: the database was busy (SQLSTATE ${sqlstate})`,
        {
          cause: error,
        },
      );
    default:
      return new ClinicStoreError('CLINIC_STORE_IO', `${what}: PostgreSQL error (SQLSTATE ${sqlstate})`, {
        cause: error,
      });
  }
}
