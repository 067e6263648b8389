import { lstatSync } from 'node:fs';
import type { ClinicDatabaseSettings } from '../../config/clinic/schema.js';
import { keyProvider } from '../../config/secrets.js';
import { ClinicServiceError } from '../service/errors.js';
import { hasClinicSchema, postgresConnection } from '../storage/open.js';
import type { AlarmStore } from './alarm-store.js';
import { PgAlarmStore } from './postgres/pg-alarm-store.js';
import { SqliteAlarmStore } from './sqlite/sqlite-alarm-store.js';

/**
 * The one place a clinic command turns `database:` into an AlarmStore (beside src/clinic/storage/open.ts and
 * src/clinic/staff/open.ts): the same database as the clinic record, never made here. `rpm-gateway clinic
 * init` makes the database; the alarm tables are added to it on first open (their own migration track), on
 * SQLite and on PostgreSQL alike. A missing database is CLINIC_NOT_INITIALISED: SqliteAlarmStore.open on its
 * own would make a new, empty file, and a mistyped path must not become one.
 */
export async function openAlarmStore(
  database: ClinicDatabaseSettings,
  options: {
    readonly env: NodeJS.ProcessEnv;
    /** PostgreSQL: failures nobody awaits (an idle pooled connection that broke). */
    readonly onError?: (error: Error) => void;
  },
): Promise<AlarmStore> {
  switch (database.kind) {
    case 'sqlite': {
      const { path } = database.sqlite;
      if (!exists(path)) {
        throw new ClinicServiceError(
          'CLINIC_NOT_INITIALISED',
          `the clinic database ${path} does not exist; make it with "rpm-gateway clinic init"`,
        );
      }
      const key = await keyProvider(database.sqlite.key, options.env).load({ create: false });
      try {
        return await SqliteAlarmStore.open({ path, key });
      } finally {
        key.fill(0);
      }
    }
    case 'postgres': {
      const settings = database.postgres;
      const connection = await postgresConnection(settings, options.env);
      if (!(await hasClinicSchema(connection))) {
        throw new ClinicServiceError(
          'CLINIC_NOT_INITIALISED',
          `the PostgreSQL database ${settings.user}@${settings.host}:${settings.port}/${settings.database} has no clinic tables; make them with "rpm-gateway clinic init"`,
        );
      }
      // A pool of its own (the clinic record's is the store's and ends with it). The engine's leader lock
      // takes one more connection of its own (PgAlarmStore.lead).
      return PgAlarmStore.open({
        connection: { ...connection, max: settings.poolSize },
        ...(options.onError ? { onError: options.onError } : {}),
      });
    }
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
