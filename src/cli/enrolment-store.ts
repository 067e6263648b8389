import { existsSync } from 'node:fs';
import { AuditLog } from '../audit/audit-log.js';
import { checkDataDir } from '../config/data-dir.js';
import { defaultDataDir, type StatePaths, statePaths } from '../config/paths.js';
import { credentialKeyProvider } from '../store/credstore-key.js';
import { KeyFileProvider, type KeyProvider } from '../store/keys.js';
import type { StoreEvent } from '../store/outbox.js';
import type { CommandIo } from './io.js';
import { cliStoreEvents } from './store-notices.js';

/** The options every enrolment command (pair, devices, forget, status) takes to find the store. */
export const STORE_OPTIONS = {
  'data-dir': { type: 'string' },
  'key-file': { type: 'string' },
  credential: { type: 'string' },
} as const;

export const STORE_OPTIONS_HELP = `  --data-dir <dir>       state folder (default: $RPM_GATEWAY_DATA_DIR, $STATE_DIRECTORY, or
                         ~/.local/state/rpm-gateway); holds outbox.db, store.key, audit.log
  --key-file <path>      the store key file (default: <data-dir>/store.key)
  --credential <name>    read the store key from the systemd credential <name> instead (in the service:
                         $CREDENTIALS_DIRECTORY; by hand: systemd-creds decrypt of
                         /etc/credstore.encrypted/rpm-gateway-<name>, as root)`;

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
    ? credentialKeyProvider(values.credential, io.env)
    : new KeyFileProvider(values['key-file'] ?? paths.keyFile);
  const audit = new AuditLog(paths.auditLog);
  return { paths, keys, audit, onEvent: cliStoreEvents(audit, io) };
}

/** Whether a store exists yet (listing or forgetting needs none, and should not create one). */
export function storeExists(location: StoreLocation): boolean {
  return existsSync(location.paths.store);
}
