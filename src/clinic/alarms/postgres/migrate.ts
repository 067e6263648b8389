import type pg from 'pg';
import { pgErrorFrom } from '../../storage/postgres/errors.js';
import { AlarmError } from '../errors.js';
import { ALARM_MIGRATIONS, ALARM_SCHEMA_VERSION } from './schema.js';

/**
 * Advisory lock keys: the first 8 bytes of SHA-256 of a name, as a signed bigint, derived like the clinic
 * record's and the staff's (src/clinic/staff/postgres/migrate.ts) and different from them.
 * - SHA-256("rpm-gateway alarm schema"): serialises the alarm migrations.
 * - SHA-256("rpm-gateway alarm engine leader"): held by the one alarm engine that evaluates.
 */
export const ALARM_MIGRATION_LOCK_KEY = '4851691577869754615';
export const ALARM_LEADER_LOCK_KEY = '3341162043292415544';

/**
 * Brings the alarm tables to ALARM_SCHEMA_VERSION, or refuses ones written by newer code: one transaction that
 * first takes a transaction-level advisory lock (PostgreSQL docs, "Advisory Locks", pg_advisory_xact_lock), so
 * processes that start together apply each migration once. DDL is transactional in PostgreSQL.
 */
export async function migrateAlarms(
  client: pg.ClientBase,
  now: number,
): Promise<{ from: number; to: number }> {
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [ALARM_MIGRATION_LOCK_KEY]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS alarm_schema (version integer PRIMARY KEY, applied_at bigint NOT NULL)',
    );
    const found = await client.query<{ version: number | null }>(
      'SELECT max(version) AS version FROM alarm_schema',
    );
    const from = found.rows[0]?.version ?? 0;
    if (from > ALARM_SCHEMA_VERSION) {
      throw new AlarmError(
        'ALARM_SCHEMA_TOO_NEW',
        `the alarm tables have schema version ${from}, newer than this software's ${ALARM_SCHEMA_VERSION}: upgrade rpm-gateway (nothing was changed)`,
      );
    }
    for (let version = from + 1; version <= ALARM_SCHEMA_VERSION; version++) {
      for (const statement of ALARM_MIGRATIONS[version - 1] ?? []) await client.query(statement);
      await client.query('INSERT INTO alarm_schema (version, applied_at) VALUES ($1, $2)', [version, now]);
    }
    await client.query('COMMIT');
    return { from, to: Math.max(from, ALARM_SCHEMA_VERSION) };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (error instanceof AlarmError) throw error;
    throw pgErrorFrom(error, 'migrating the alarm tables');
  }
}
