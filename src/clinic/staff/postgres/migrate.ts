import type pg from 'pg';
import { pgErrorFrom } from '../../storage/postgres/errors.js';
import { StaffStoreError } from '../errors.js';
import { STAFF_MIGRATIONS, STAFF_SCHEMA_VERSION } from './schema.js';

/**
 * The advisory lock key that serialises the staff migrations: the first 8 bytes of SHA-256("rpm-gateway staff
 * schema") as a signed bigint, derived like the clinic record's (src/clinic/storage/postgres/migrate.ts) and
 * different from it, so the two tracks never wait for each other.
 */
export const STAFF_MIGRATION_LOCK_KEY = '8068636941614713157';

/**
 * Brings the staff tables to STAFF_SCHEMA_VERSION, or refuses ones written by newer code. Several dashboard
 * processes may start at once: each migrates in one transaction that first takes a transaction-level advisory
 * lock (PostgreSQL docs, "Advisory Locks", pg_advisory_xact_lock), so the others wait and then find the
 * version reached. DDL is transactional in PostgreSQL: a failed migration leaves the previous version intact.
 */
export async function migrateStaff(
  client: pg.ClientBase,
  now: number,
): Promise<{ from: number; to: number }> {
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [STAFF_MIGRATION_LOCK_KEY]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS staff_schema (version integer PRIMARY KEY, applied_at bigint NOT NULL)',
    );
    const found = await client.query<{ version: number | null }>(
      'SELECT max(version) AS version FROM staff_schema',
    );
    const from = found.rows[0]?.version ?? 0;
    if (from > STAFF_SCHEMA_VERSION) {
      throw new StaffStoreError(
        'STAFF_SCHEMA_TOO_NEW',
        `the staff tables have schema version ${from}, newer than this software's ${STAFF_SCHEMA_VERSION}: upgrade rpm-gateway (nothing was changed)`,
      );
    }
    for (let version = from + 1; version <= STAFF_SCHEMA_VERSION; version++) {
      for (const statement of STAFF_MIGRATIONS[version - 1] ?? []) await client.query(statement);
      await client.query('INSERT INTO staff_schema (version, applied_at) VALUES ($1, $2)', [version, now]);
    }
    await client.query('COMMIT');
    return { from, to: Math.max(from, STAFF_SCHEMA_VERSION) };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (error instanceof StaffStoreError) throw error;
    throw pgErrorFrom(error, 'migrating the staff tables');
  }
}
