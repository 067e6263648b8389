import type { FlagSetting } from './layers.js';

/**
 * The command-line options every command that reads the configuration takes (parseCommandArgs style), and
 * how they become the flag layer: the common settings by name, anything else with --set <key>=<value>.
 */
export const CONFIG_OPTIONS = {
  config: { type: 'string' },
  set: { type: 'string', multiple: true },
  'data-dir': { type: 'string' },
  'key-file': { type: 'string' },
  credential: { type: 'string' },
  'gateway-id': { type: 'string' },
  broker: { type: 'string', multiple: true },
} as const;

export const CONFIG_OPTIONS_HELP = `  --config <file>        the configuration file (default: $RPM_CONFIG, else /etc/rpm-gateway/gateway.yaml
                         when it exists); see docs/configuration.md
  --set <key>=<value>    set any key, e.g. --set log.level=debug (repeatable; overrides file and RPM_*)
  --data-dir <dir>       paths.dataDir: the store and audit log (must exist; rpm-gateway init makes one)
  --key-file <path>      store.key.file: the store key file
  --credential <name>    store.key.credential: the store key as a systemd credential
  --gateway-id <id>      gateway.id
  --broker <url>         uplink.brokers: mqtts://<host>:<port> (repeatable, tried in order)`;

export interface ConfigOptionValues {
  readonly config?: string;
  readonly set?: readonly string[];
  readonly 'data-dir'?: string;
  readonly 'key-file'?: string;
  readonly credential?: string;
  readonly 'gateway-id'?: string;
  readonly broker?: readonly string[];
}

const NAMED: readonly [keyof ConfigOptionValues, string][] = [
  ['data-dir', 'paths.dataDir'],
  ['key-file', 'store.key.file'],
  ['credential', 'store.key.credential'],
  ['gateway-id', 'gateway.id'],
];

export function configFlags(values: ConfigOptionValues): FlagSetting[] {
  const flags: FlagSetting[] = [];
  for (const [option, key] of NAMED) {
    const text = values[option];
    if (typeof text === 'string') flags.push({ flag: `--${option}`, key, text });
  }
  if (values.broker && values.broker.length > 0) {
    flags.push({ flag: '--broker', key: 'uplink.brokers', text: values.broker.join(',') });
  }
  for (const text of values.set ?? []) flags.push({ flag: '--set', text });
  return flags;
}
