import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where the gateway keeps its state. In order: $RPM_GATEWAY_DATA_DIR; systemd's $STATE_DIRECTORY (set by
 * StateDirectory=rpm-gateway, i.e. /var/lib/rpm-gateway, owned by the service user); else the XDG state folder
 * of the user running it (a developer's machine).
 */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RPM_GATEWAY_DATA_DIR) return env.RPM_GATEWAY_DATA_DIR;
  if (env.STATE_DIRECTORY) return env.STATE_DIRECTORY.split(':')[0] as string;
  return join(env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'rpm-gateway');
}

export interface StatePaths {
  readonly dataDir: string;
  readonly store: string;
  readonly keyFile: string;
  readonly auditLog: string;
}

export function statePaths(dataDir: string): StatePaths {
  return {
    dataDir,
    store: join(dataDir, 'outbox.db'),
    keyFile: join(dataDir, 'store.key'),
    auditLog: join(dataDir, 'audit.log'),
  };
}
