import { lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import type { PostgresSettings } from '../../config/clinic/database.js';
import type { ClinicDatabaseSettings } from '../../config/clinic/schema.js';
import { keyProvider, secretPath } from '../../config/secrets.js';
import { KeyFileProvider } from '../../store/keys.js';
import type { Clock } from '../../util/clock.js';
import { readSecretFile } from '../../util/secret-file.js';
import { ClinicServiceError } from '../service/errors.js';
import type { ClinicStore } from './clinic-store.js';
import { ClinicStoreError } from './errors.js';
import { pgErrorFrom } from './postgres/errors.js';
import { PgClinicStore } from './postgres/pg-clinic-store.js';
import { SqliteClinicStore } from './sqlite/sqlite-clinic-store.js';

/**
 * The one place a clinic command turns `database:` into a ClinicStore, so every command (the intake, `clinic
 * init`, the admin commands) opens the same engine the same way: one branch per engine.
 */
export interface OpenClinicStoreOptions {
  /** The environment a systemd credential is found through ($CREDENTIALS_DIRECTORY). */
  readonly env: NodeJS.ProcessEnv;
  /**
   * `existing` (the intake, the admin commands): the database must be there, else CLINIC_NOT_INITIALISED; a
   * mistyped path must not become a new, empty record the intake then acknowledges readings into.
   * `create` (`clinic init`): nothing may be there yet (CLINIC_ALREADY_INITIALISED), and a key file is made.
   */
  readonly mode: 'existing' | 'create';
  /** Bounds on the rejected messages kept (intake.rejected). */
  readonly rejected?: { readonly maxRows: number; readonly maxQuarantineBytes: number };
  readonly clock?: Clock;
}

export async function openClinicStore(
  database: ClinicDatabaseSettings,
  options: OpenClinicStoreOptions,
): Promise<ClinicStore> {
  switch (database.kind) {
    case 'sqlite':
      return openSqlite(database.sqlite, options);
    case 'postgres':
      return openPostgres(database.postgres, options);
  }
}

/**
 * Opens another store (staff, alarms) on the clinic database that `clinic init` made, never making one: a
 * missing SQLite file or a PostgreSQL database without the clinic tables is CLINIC_NOT_INITIALISED (the stores
 * on their own would make a new, empty file, and a mistyped path must not become one). The SQLite key is
 * zeroed once the store has opened; on PostgreSQL each store gets a pool of its own, `poolSize` connections.
 */
export async function openOnClinicDatabase<T>(
  database: ClinicDatabaseSettings,
  env: NodeJS.ProcessEnv,
  open: {
    readonly sqlite: (path: string, key: Uint8Array) => Promise<T>;
    readonly postgres: (connection: pg.PoolConfig) => Promise<T>;
  },
): Promise<T> {
  switch (database.kind) {
    case 'sqlite': {
      const { path } = database.sqlite;
      if (!exists(path)) {
        throw new ClinicServiceError(
          'CLINIC_NOT_INITIALISED',
          `the clinic database ${path} does not exist; make it with "rpm-gateway clinic init"`,
        );
      }
      const key = await keyProvider(database.sqlite.key, env).load({ create: false });
      try {
        return await open.sqlite(path, key);
      } finally {
        key.fill(0);
      }
    }
    case 'postgres': {
      const settings = database.postgres;
      const connection = await postgresConnection(settings, env);
      if (!(await hasClinicSchema(connection))) {
        throw new ClinicServiceError(
          'CLINIC_NOT_INITIALISED',
          `the PostgreSQL database ${settings.user}@${settings.host}:${settings.port}/${settings.database} has no clinic tables; make them with "rpm-gateway clinic init"`,
        );
      }
      return open.postgres({ ...connection, max: settings.poolSize });
    }
  }
}

/** Where the database is, for messages and the audit log (never a secret: a key is named, not read). */
export function describeDatabase(database: ClinicDatabaseSettings): Record<string, string> {
  if (database.kind === 'postgres') {
    const pg = database.postgres;
    return { database: `postgres ${pg.user}@${pg.host}:${pg.port}/${pg.database}` };
  }
  const { path, key } = database.sqlite;
  return {
    database: path,
    key:
      key.source === 'file'
        ? key.path
        : key.source === 'credential'
          ? `credential ${key.name}`
          : key.variable,
  };
}

/** What SQLite keeps beside the database: its write-ahead log and the key commitment (src/store/encrypted-database.ts). */
const COMPANIONS = ['', '-wal', '.keycheck'];

async function openSqlite(
  settings: Extract<ClinicDatabaseSettings, { kind: 'sqlite' }>['sqlite'],
  options: OpenClinicStoreOptions,
): Promise<ClinicStore> {
  const { path } = settings;
  const keyRef = settings.key;
  const present = COMPANIONS.map((suffix) => `${path}${suffix}`).filter(exists);
  let key: Uint8Array;
  if (options.mode === 'existing') {
    if (!exists(path)) {
      throw new ClinicServiceError(
        'CLINIC_NOT_INITIALISED',
        `the clinic database ${path} does not exist; make it with "rpm-gateway clinic init" (the intake never creates one)`,
      );
    }
    key = await keyProvider(keyRef, options.env).load({ create: false });
  } else {
    const keyFile = keyRef.source === 'file' ? keyRef.path : undefined;
    if (keyFile !== undefined && exists(keyFile)) present.push(keyFile);
    if (present.length > 0) {
      throw new ClinicServiceError(
        'CLINIC_ALREADY_INITIALISED',
        `${present.join(', ')} already ${present.length === 1 ? 'exists' : 'exist'}; nothing was changed (clinic init never overwrites a database or a key)`,
      );
    }
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // A new key file, 256 random bits, mode 0600, linked into place so a second init cannot replace it
    // (src/store/keys.ts); a systemd credential is made by the administrator (systemd-creds) and only read.
    key =
      keyFile !== undefined
        ? await new KeyFileProvider(keyFile, { create: true }).load()
        : await keyProvider(keyRef, options.env).load({ create: false });
  }
  try {
    return await SqliteClinicStore.open({
      path,
      key,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.rejected
        ? {
            maxRejectedRows: options.rejected.maxRows,
            maxQuarantineBytes: options.rejected.maxQuarantineBytes,
          }
        : {}),
    });
  } finally {
    key.fill(0);
  }
}

/**
 * PostgreSQL: the database itself is made by its administrator (CREATE DATABASE, owned by the clinic's role);
 * `clinic init` makes the tables in it. The schema table (clinic_schema, postgres/migrate.ts) tells an
 * initialised database from an empty one: `existing` refuses a database without it, so the intake pointed at
 * the wrong database does not quietly create tables there and acknowledge readings into it; `create` refuses
 * one that has it, as `clinic init` never touches an initialised database. A database that has the schema is
 * brought up to date by the store (migrations under an advisory lock) whichever command opens it.
 */
async function openPostgres(
  settings: PostgresSettings,
  options: OpenClinicStoreOptions,
): Promise<ClinicStore> {
  const connection = await postgresConnection(settings, options.env);
  const where = `${settings.user}@${settings.host}:${settings.port}/${settings.database}`;
  const initialised = await hasClinicSchema(connection);
  if (options.mode === 'existing' && !initialised) {
    throw new ClinicServiceError(
      'CLINIC_NOT_INITIALISED',
      `the PostgreSQL database ${where} has no clinic tables; make them with "rpm-gateway clinic init" (the intake never creates them)`,
    );
  }
  if (options.mode === 'create' && initialised) {
    throw new ClinicServiceError(
      'CLINIC_ALREADY_INITIALISED',
      `the PostgreSQL database ${where} already holds the clinic tables; nothing was changed (clinic init never touches an initialised database)`,
    );
  }
  return PgClinicStore.open({
    connection: { ...connection, max: settings.poolSize },
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.rejected
      ? {
          maxRejectedRows: options.rejected.maxRows,
          maxQuarantineBytes: options.rejected.maxQuarantineBytes,
        }
      : {}),
  });
}

/** Whether the database holds the clinic's schema table; a connection failure is CLINIC_STORE_UNREACHABLE. */
export async function hasClinicSchema(connection: pg.ClientConfig): Promise<boolean> {
  const client = new pg.Client(connection);
  // An error after connect (the server going away) would otherwise be an uncaught 'error' event.
  client.on('error', () => undefined);
  try {
    await client.connect();
    const found = await client.query<{ table: string | null }>(
      "SELECT to_regclass('clinic_schema')::text AS table",
    );
    return found.rows[0]?.table != null;
  } catch (error) {
    throw pgErrorFrom(error, 'opening the clinic database');
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * node-postgres connection options from database.postgres. sslmode as libpq defines it (PostgreSQL 15 docs,
 * section 34.19.3): `require` encrypts without checking the server's certificate, `verify-ca` checks that a
 * trusted CA signed it, `verify-full` also that it names the host. `ssl.ca` replaces the system's CAs (Node's
 * tls.connect `ca` option). A host that is a folder is the server's Unix socket directory, where TLS does not
 * apply (libpq ignores sslmode there too).
 */
export async function postgresConnection(
  settings: PostgresSettings,
  env: NodeJS.ProcessEnv,
): Promise<pg.ClientConfig> {
  const password = settings.password === undefined ? undefined : await readPassword(settings, env);
  const socket = settings.host.startsWith('/');
  let ssl: false | ConnectionOptions = false;
  if (!socket && settings.ssl.mode !== 'disable') {
    const ca = settings.ssl.ca === undefined ? undefined : readCa(settings.ssl.ca);
    ssl =
      settings.ssl.mode === 'require'
        ? { rejectUnauthorized: false }
        : settings.ssl.mode === 'verify-ca'
          ? { rejectUnauthorized: true, ...(ca ? { ca } : {}), checkServerIdentity: () => undefined }
          : { rejectUnauthorized: true, ...(ca ? { ca } : {}), servername: settings.host };
  }
  return {
    host: settings.host,
    port: settings.port,
    database: settings.database,
    user: settings.user,
    ...(password === undefined ? {} : { password }),
    ssl,
    application_name: 'rpm-gateway clinic',
  };
}

/** The role's password from its file or credential (checked like a key: 0600, owned by this user). */
async function readPassword(settings: PostgresSettings, env: NodeJS.ProcessEnv): Promise<string> {
  const ref = settings.password;
  if (ref === undefined) return '';
  const path = secretPath(ref, env);
  try {
    // One trailing newline is the editor's, not the password's.
    return (await readSecretFile(path)).toString('utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new ClinicStoreError(
      'CLINIC_STORE_UNREACHABLE',
      `cannot read the PostgreSQL password (database.postgres.password): ${(error as Error).message}`,
      { cause: error },
    );
  }
}

function readCa(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ClinicStoreError(
      'CLINIC_STORE_UNREACHABLE',
      `cannot read database.postgres.ssl.ca ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: error },
    );
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
