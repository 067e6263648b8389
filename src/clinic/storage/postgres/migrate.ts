import type pg from 'pg';
import { ClinicStoreError } from '../errors.js';
import { pgErrorFrom } from './errors.js';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';

/**
 * The advisory lock key that serialises migrations (any 64-bit number the clinic's database uses for nothing
 * else): the first 8 bytes of SHA-256("rpm-gateway clinic schema"), as a signed bigint.
 */
export const MIGRATION_LOCK_KEY = '2853002666677682392';

/**
 * Brings the database to SCHEMA_VERSION, or refuses one written by newer code.
 *
 * Several intake processes may start at once against one database. Each runs this in one transaction that
 * first takes a transaction-level advisory lock (PostgreSQL docs, "Advisory Locks", pg_advisory_xact_lock):
 * the others wait on the lock, then find the version already reached and apply nothing, so every migration runs
 * exactly once. DDL is transactional in PostgreSQL, so a failed migration leaves the previous version intact,
 * and the lock is released by the commit or the rollback whatever happens.
 */
export async function migrate(client: pg.ClientBase, now: number): Promise<{ from: number; to: number }> {
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS clinic_schema (version integer PRIMARY KEY, applied_at bigint NOT NULL)',
    );
    const found = await client.query<{ version: number | null }>(
      'SELECT max(version) AS version FROM clinic_schema',
    );
    const from = found.rows[0]?.version ?? 0;
    if (from > SCHEMA_VERSION) {
      throw new ClinicStoreError(
        'CLINIC_STORE_SCHEMA_TOO_NEW',
        `the clinic database has schema version ${from}, newer than this software's ${SCHEMA_VERSION}: upgrade rpm-gateway (nothing was changed)`,
      );
    }
    for (let version = from + 1; version <= SCHEMA_VERSION; version++) {
      for (const statement of MIGRATIONS[version - 1] ?? []) await client.query(statement);
      await client.query('INSERT INTO clinic_schema (version, applied_at) VALUES ($1, $2)', [version, now]);
    }
    await client.query('COMMIT');
    return { from, to: Math.max(from, SCHEMA_VERSION) };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw pgErrorFrom(error, 'migrating the clinic database');
  }
}
