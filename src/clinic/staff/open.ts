import { lstatSync } from 'node:fs';
import type { ClinicDatabaseSettings } from '../../config/clinic/schema.js';
import { keyProvider } from '../../config/secrets.js';
import { ClinicServiceError } from '../service/errors.js';
import { hasClinicSchema, postgresConnection } from '../storage/open.js';
import { PgStaffStore } from './postgres/pg-staff-store.js';
import { SqliteStaffStore } from './sqlite/sqlite-staff-store.js';
import type { StaffStore } from './staff-store.js';

/**
 * The one place a clinic command turns `database:` into a StaffStore: the same database as the clinic record
 * (src/clinic/storage/open.ts opens that one), never made here. `rpm-gateway clinic init` makes the database;
 * the staff tables are added to it on first open, on SQLite and on PostgreSQL alike.
 */
export async function openStaffStore(
  database: ClinicDatabaseSettings,
  options: { readonly env: NodeJS.ProcessEnv },
): Promise<StaffStore> {
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
        return await SqliteStaffStore.open({ path, key });
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
      return PgStaffStore.open({ connection: { ...connection, max: settings.poolSize } });
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
