import { lstatSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ClinicDatabaseSettings } from '../../config/clinic/schema.js';
import { keyProvider } from '../../config/secrets.js';
import { KeyFileProvider } from '../../store/keys.js';
import type { Clock } from '../../util/clock.js';
import { ClinicServiceError } from '../service/errors.js';
import type { ClinicStore } from './clinic-store.js';
import { SqliteClinicStore } from './sqlite/sqlite-clinic-store.js';

/**
 * The one place a clinic command turns `database:` into a ClinicStore, so every command (the intake, `clinic
 * init`, the admin commands) opens the same engine the same way. One branch per engine: PostgreSQL's is added
 * here when its store lands; until then a configuration naming it is refused before anything is opened.
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
      throw new ClinicServiceError(
        'CLINIC_ENGINE_UNAVAILABLE',
        'database.kind is postgres, but this build has no PostgreSQL clinic store yet; use database.kind: sqlite',
      );
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

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
