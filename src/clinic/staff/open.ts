import type { ClinicDatabaseSettings } from '../../config/clinic/schema.js';
import { openOnClinicDatabase } from '../storage/open.js';
import { PgStaffStore } from './postgres/pg-staff-store.js';
import { SqliteStaffStore } from './sqlite/sqlite-staff-store.js';
import type { StaffStore } from './staff-store.js';

/**
 * The one place a clinic command turns `database:` into a StaffStore: the same database as the clinic record
 * (src/clinic/storage/open.ts opens that one), never made here. `rpm-gateway clinic init` makes the database;
 * the staff tables are added to it on first open, on SQLite and on PostgreSQL alike.
 */
export function openStaffStore(
  database: ClinicDatabaseSettings,
  options: { readonly env: NodeJS.ProcessEnv },
): Promise<StaffStore> {
  return openOnClinicDatabase<StaffStore>(database, options.env, {
    sqlite: (path, key) => SqliteStaffStore.open({ path, key }),
    postgres: (connection) => PgStaffStore.open({ connection }),
  });
}
