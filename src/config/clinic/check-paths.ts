import { statSync } from 'node:fs';
import { storeExists } from '../../broker/store-dir.js';
import type { ConfigIssue } from '../errors.js';
import type { SecretRef } from '../fields.js';
import { pathKey } from '../walk.js';
import type { LoadedClinicConfig } from './load.js';

/**
 * The paths the clinic's configuration names, checked as `rpm-gateway clinic config check` does and as the
 * clinic commands do before they start: certificates, keys and the gateway inventory must exist (a typo is
 * caught before a service starts half-way). What the processes make on first use (the data directory, the
 * broker's queue folder, a new database with its key, the FHIR folder) may be absent, but must not be
 * something else; a database file or a broker store without its key is refused, since a new key would not
 * open it.
 */
export function findClinicPathProblems(loaded: LoadedClinicConfig): ConfigIssue[] {
  const { config } = loaded;
  const issues: ConfigIssue[] = [];
  const check = (
    path: (string | number)[],
    target: string,
    expect: 'directory' | 'file',
    mayBeMade: boolean,
    hint = 'check it for a typo',
  ): boolean => {
    const source = loaded.sourceOf(path);
    const at = { path: pathKey(path), ...(source ? { source } : {}) };
    let stats: ReturnType<typeof statSync>;
    try {
      stats = statSync(target);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && mayBeMade) return false;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        issues.push({
          code: 'CONFIG_PATH_MISSING',
          ...at,
          message: `${target} does not exist${code === 'ENOTDIR' ? ' (a part of its path is a file)' : ''}; ${hint}`,
        });
      } else {
        issues.push({ code: 'CONFIG_NO_ACCESS', ...at, message: `${target} cannot be reached (${code})` });
      }
      return false;
    }
    if (expect === 'directory' && !stats.isDirectory()) {
      issues.push({ code: 'CONFIG_NOT_A_DIRECTORY', ...at, message: `${target} is not a directory` });
    } else if (expect === 'file' && !stats.isFile()) {
      issues.push({ code: 'CONFIG_NOT_A_FILE', ...at, message: `${target} is not a regular file` });
    }
    return true;
  };
  // A systemd credential exists only inside the service (systemd.exec(5), $CREDENTIALS_DIRECTORY).
  const secret = (path: (string | number)[], ref: SecretRef | undefined, mayBeMade = false) =>
    ref?.source === 'file' ? check(path, ref.path, 'file', mayBeMade) : true;

  check(['paths', 'dataDir'], config.paths.dataDir, 'directory', true);
  check(['pki', 'ca'], config.pki.ca, 'file', false);
  if (config.pki.crl !== undefined) check(['pki', 'crl'], config.pki.crl, 'file', false);
  check(['pki', 'gatewayCerts'], config.pki.gatewayCerts, 'directory', false);
  if (config.broker) {
    check(['broker', 'cert'], config.broker.cert, 'file', false);
    secret(['broker', 'key'], config.broker.key);
    const { persistence } = config.broker;
    if (check(['broker', 'persistence', 'dir'], persistence.dir, 'directory', true)) {
      // The broker makes its store key with a new store only; an existing store needs the key it was made with.
      let exists = true;
      try {
        exists = storeExists(persistence.dir);
      } catch {
        // An unreadable folder: reported by the broker when it starts; a key is then required.
      }
      secret(['broker', 'persistence', 'key'], persistence.key, !exists);
    } else {
      secret(['broker', 'persistence', 'key'], persistence.key, true);
    }
  }
  if (config.intake) {
    check(['intake', 'cert'], config.intake.cert, 'file', false);
    secret(['intake', 'key'], config.intake.key);
    if (config.intake.ca !== undefined) check(['intake', 'ca'], config.intake.ca, 'file', false);
  }
  if (config.dashboard) {
    check(['dashboard', 'cert'], config.dashboard.cert, 'file', false);
    secret(['dashboard', 'key'], config.dashboard.key);
    const commands = config.dashboard.hubCommands;
    if (commands) {
      check(['dashboard', 'hubCommands', 'cert'], commands.cert, 'file', false);
      secret(['dashboard', 'hubCommands', 'key'], commands.key);
      if (commands.ca !== undefined) check(['dashboard', 'hubCommands', 'ca'], commands.ca, 'file', false);
    }
  }
  const { database } = config;
  if (database.kind === 'sqlite') {
    const exists = check(['database', 'sqlite', 'path'], database.sqlite.path, 'file', true);
    secret(['database', 'sqlite', 'key'], database.sqlite.key, !exists);
  } else {
    secret(['database', 'postgres', 'password'], database.postgres.password);
    const ca = database.postgres.ssl.ca;
    if (ca !== undefined) check(['database', 'postgres', 'ssl', 'ca'], ca, 'file', false);
  }
  const { fhir } = config;
  if (fhir.target !== undefined && 'folder' in fhir.target) {
    check(['fhir', 'target', 'folder'], fhir.target.folder, 'directory', true);
  }
  secret(['fhir', 'token'], fhir.token);
  return issues;
}
