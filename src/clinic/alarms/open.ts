import type { ClinicDatabaseSettings } from '../../config/clinic/schema.js';
import { openOnClinicDatabase } from '../storage/open.js';
import type { AlarmStore } from './alarm-store.js';
import { PgAlarmStore } from './postgres/pg-alarm-store.js';
import { SqliteAlarmStore } from './sqlite/sqlite-alarm-store.js';

/**
 * The one place a clinic command turns `database:` into an AlarmStore (beside src/clinic/storage/open.ts and
 * src/clinic/staff/open.ts): the same database as the clinic record, never made here. `rpm-gateway clinic
 * init` makes the database; the alarm tables are added to it on first open (their own migration track), on
 * SQLite and on PostgreSQL alike.
 */
export function openAlarmStore(
  database: ClinicDatabaseSettings,
  options: {
    readonly env: NodeJS.ProcessEnv;
    /** PostgreSQL: failures nobody awaits (an idle pooled connection that broke). */
    readonly onError?: (error: Error) => void;
  },
): Promise<AlarmStore> {
  return openOnClinicDatabase<AlarmStore>(database, options.env, {
    sqlite: (path, key) => SqliteAlarmStore.open({ path, key }),
    // A pool of its own (the clinic record's is the store's and ends with it). The engine's leader lock takes
    // one more connection of its own (PgAlarmStore.lead).
    postgres: (connection) =>
      PgAlarmStore.open({ connection, ...(options.onError ? { onError: options.onError } : {}) }),
  });
}
