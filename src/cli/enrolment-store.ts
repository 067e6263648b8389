import { existsSync } from 'node:fs';
import { AuditLog } from '../audit/audit-log.js';
import { checkDataDir, ensureDataDir } from '../config/data-dir.js';
import { defaultDataDir, type StatePaths, statePaths } from '../config/paths.js';
import type { DeviceRegistry } from '../store/device-registry.js';
import { StoreError } from '../store/errors.js';
import { KeyFileProvider, type KeyProvider, SystemdCredentialProvider } from '../store/keys.js';
import type { StoreEvent } from '../store/outbox.js';
import { Store } from '../store/store.js';
import type { CommandIo } from './io.js';
import { cliStoreEvents } from './store-notices.js';

/** The options every enrolment command (pair, devices, forget) takes to find the store. */
export const STORE_OPTIONS = {
  'data-dir': { type: 'string' },
  'key-file': { type: 'string' },
  credential: { type: 'string' },
} as const;

export const STORE_OPTIONS_HELP = `  --data-dir <dir>       state folder (default: $RPM_GATEWAY_DATA_DIR, $STATE_DIRECTORY, or
                         ~/.local/state/rpm-gateway); holds outbox.db, store.key, audit.log
  --key-file <path>      the store key file (default: <data-dir>/store.key)
  --credential <name>    read the store key from the systemd credential <name> instead`;

export interface StoreLocation {
  readonly paths: StatePaths;
  readonly keys: KeyProvider;
  readonly audit: AuditLog;
  /** The store's events: audited, and damage said on stderr. */
  readonly onEvent: (event: StoreEvent) => void;
}

export function storeLocation(
  values: { 'data-dir'?: string; 'key-file'?: string; credential?: string },
  io: CommandIo,
): StoreLocation {
  const paths = statePaths(values['data-dir'] ?? defaultDataDir(io.env));
  checkDataDir(paths.dataDir);
  const keys = values.credential
    ? new SystemdCredentialProvider(values.credential, io.env)
    : new KeyFileProvider(values['key-file'] ?? paths.keyFile);
  const audit = new AuditLog(paths.auditLog);
  return { paths, keys, audit, onEvent: cliStoreEvents(audit, io) };
}

/** Whether a store exists yet (listing or forgetting needs none, and should not create one). */
export function storeExists(location: StoreLocation): boolean {
  return existsSync(location.paths.store);
}

export interface OpenRegistry {
  readonly registry: DeviceRegistry;
  close(): void;
}

/**
 * Opens the encrypted store (creating it, and its key file, on first use) and the device registry on its
 * connection. The store has one owner at a time (an exclusive SQLite lock): while the gateway runs, these
 * commands get STORE_LOCKED, reworded to say what to do.
 */
export async function openRegistry(location: StoreLocation): Promise<OpenRegistry> {
  ensureDataDir(location.paths.dataDir);
  let store: Store;
  try {
    store = await Store.open({
      path: location.paths.store,
      keys: location.keys,
      onEvent: location.onEvent,
      existing: 'create',
    });
  } catch (error) {
    if (error instanceof StoreError && error.code === 'STORE_LOCKED') {
      throw new StoreError(
        'STORE_LOCKED',
        `the store ${location.paths.store} is in use by the running gateway: stop the service first ` +
          '(sudo systemctl stop rpm-gateway) and try again (enrolling through the running gateway comes later)',
        { cause: error },
      );
    }
    throw error;
  }
  return { registry: store.devices, close: () => store.close() };
}
