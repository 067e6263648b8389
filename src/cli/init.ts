import { AuditLog } from '../audit/audit-log.js';
import { ensureDataDir } from '../config/data-dir.js';
import { CONFIG_OPTIONS, CONFIG_OPTIONS_HELP } from '../config/options.js';
import { statePaths } from '../config/paths.js';
import type { GatewayConfig } from '../config/schema.js';
import { storeExists } from '../store/encrypted-database.js';
import { StoreError } from '../store/errors.js';
import {
  EnvKeyProvider,
  KeyFileProvider,
  type KeyProvider,
  SystemdCredentialProvider,
} from '../store/keys.js';
import { Store } from '../store/store.js';
import { parseCommandArgs } from './args.js';
import type { CommandIo } from './io.js';
import { EXIT_CONFIG, loadOrReport } from './start.js';
import { cliStoreEvents } from './store-notices.js';

export const INIT_HELP = `Usage: rpm-gateway init [options]

Makes a new, empty encrypted store where the configuration says (paths.dataDir), explicitly, once: the data
directory (mode 0700), the store key, and the store. Refuses when a store already exists there. "start" and
the other commands never create any of these.

The store key, as store.key names it:
  { file: <path> }        made here (256 random bits, mode 0600) unless the file exists, then used
  { credential: <name> }  a systemd encrypted credential: made by you with systemd-creds (init says how), then
                          init is run with it (as the service) to make the store
  { env: <VARIABLE> }     tests and demos only

Options:
${CONFIG_OPTIONS_HELP}
  -h, --help             show this help`;

export async function initCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: [...argv],
    options: { ...CONFIG_OPTIONS, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.stdout.write(`${INIT_HELP}\n`);
    return 0;
  }
  const loaded = loadOrReport('init', values, io, { creating: true });
  if (loaded === undefined) return EXIT_CONFIG;
  const { config } = loaded;
  const paths = statePaths(config.paths.dataDir);
  if (storeExists(paths.store)) {
    io.stderr.write(
      `rpm-gateway init: a store already exists at ${paths.store}; init makes a new one only where there is none (nothing was changed)\n`,
    );
    return 1;
  }
  const ref = config.store.key;
  let keys: KeyProvider;
  if (ref.source === 'credential') {
    keys = new SystemdCredentialProvider(ref.name, io.env);
    try {
      await keys.load();
    } catch (error) {
      if (!(error instanceof StoreError) || error.code !== 'STORE_KEY_MISSING') throw error;
      io.stderr.write(credentialHowTo(ref.name));
      return 1;
    }
  } else if (ref.source === 'file') {
    keys = new KeyFileProvider(ref.path, { create: true });
  } else {
    keys = new EnvKeyProvider(ref.variable, io.env);
  }
  await makeStore(config, keys, io, 'init');
  io.stdout.write(
    `rpm-gateway init: made an empty store at ${paths.store} (key: ${keys.description}); next: enrol devices (rpm-gateway pair) and start the hub\n`,
  );
  return 0;
}

/**
 * What `init` does once the key is settled, and the demo does for its own data directory: the data directory
 * (0700), the new empty store, and a `store.created` audit entry. The caller checked there is no store yet.
 */
export async function makeStore(
  config: GatewayConfig,
  keys: KeyProvider,
  io: Pick<CommandIo, 'stderr'>,
  command: string,
): Promise<void> {
  const paths = statePaths(config.paths.dataDir);
  ensureDataDir(paths.dataDir);
  const audit = new AuditLog(paths.auditLog);
  const store = await Store.open({
    path: paths.store,
    keys,
    existing: 'create',
    retention: config.store.retention,
    onEvent: cliStoreEvents(audit, io, command),
  });
  store.close();
  audit.record('store.created', 'cli', { path: paths.store, key: keys.description });
}

/** How to make the store key as a systemd encrypted credential (systemd-creds(1), "encrypt"). */
function credentialHowTo(name: string): string {
  const file = `/etc/credstore.encrypted/rpm-gateway-${name}`;
  return [
    `rpm-gateway init: the store key is the systemd credential "${name}", which is not available to this process`,
    '($CREDENTIALS_DIRECTORY is not set, or has no such credential). Nothing was created. Make the key, sealed to',
    'this machine (TPM2 when present, else the host key), as root:',
    '',
    `  openssl rand -hex 32 | systemd-creds encrypt --name=${name} - ${file}`,
    '',
    'then make the store as the service would see it:',
    '',
    `  systemd-run --pipe --wait --uid=rpm-gateway -p StateDirectory=rpm-gateway \\`,
    `    -p LoadCredentialEncrypted=${name}:${file} rpm-gateway init --credential ${name}`,
    '',
  ].join('\n');
}
