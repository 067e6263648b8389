import type { RawValue } from './defaults.js';
import { DEFAULTS, environmentDefaults } from './defaults.js';
import type { ConfigDefinition } from './definition.js';
import { GATEWAY_VARIABLES, isTree } from './layers.js';
import {
  type ConfigReportOf,
  inspectWith,
  type LoadedConfigOf,
  type LoadOptions,
  loadWith,
} from './loader.js';
import { statePaths } from './paths.js';
import { configSchema, type GatewayConfig, isLoopback } from './schema.js';

export type { ConfigView, LoadOptions } from './loader.js';

/** Where the service's configuration lives when neither --config nor $RPM_CONFIG names one. */
export const DEFAULT_CONFIG_FILE = '/etc/rpm-gateway/gateway.yaml';

export type LoadedConfig = LoadedConfigOf<GatewayConfig>;
export type ConfigReport = ConfigReportOf<GatewayConfig>;

/** The hub's configuration: config/gateway.example.yaml, docs/configuration.md. */
export const GATEWAY_CONFIG: ConfigDefinition<GatewayConfig> = {
  program: 'rpm-gateway',
  schema: configSchema,
  defaults: DEFAULTS,
  environmentDefaults,
  defaultFile: DEFAULT_CONFIG_FILE,
  fileVariable: 'RPM_CONFIG',
  variables: GATEWAY_VARIABLES,
  sectionsHint: 'gateway:, paths:, uplink:, ...',
  derivedDefaults: (tree) => {
    // The store key sits in the data directory unless said otherwise, wherever the data directory ended up.
    const dataDir = tree.get(['paths', 'dataDir']);
    if (typeof dataDir === 'string') {
      tree.setDefault(['store', 'key'], { file: statePaths(dataDir).keyFile }, 'in paths.dataDir');
    }
  },
  // A variable named as the store key's holder (store.key.env) is not a misspelt setting.
  namedVariables: (get) => {
    const key = get(['store', 'key']);
    return isTree(key) && typeof key.env === 'string' ? [key.env] : [];
  },
  warnings: (get, from) => {
    const warnings: string[] = [];
    if (get(['log', 'redact']) === false) {
      warnings.push(
        `log.redact is false${from(['log', 'redact'])}: reading values, Bluetooth addresses, device names and keys will be written to the logs`,
      );
    }
    const key = get(['store', 'key']);
    if (isTree(key) && typeof key.env === 'string') {
      warnings.push(
        `the store key comes from the environment variable ${key.env}${from(['store', 'key'])}: for tests and demos only, since the environment leaks easily (child processes, /proc)`,
      );
    }
    for (const section of ['metrics', 'patientPage']) {
      const host: RawValue | undefined = get([section, 'host']);
      if (get([section, 'enabled']) === true && typeof host === 'string' && !isLoopback(host)) {
        warnings.push(
          `${section} is served on ${host}${from([section, 'host'])}: reachable from the network`,
        );
      }
    }
    return warnings;
  },
};

/** Loads and checks the hub's configuration; throws CONFIG_INVALID listing every problem. */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  return loadWith(GATEWAY_CONFIG, options);
}

/**
 * Layers defaults < file < RPM_* environment < flags, then validates the result with the one schema. Never
 * throws for a problem in the configuration: every problem of every layer is in `issues`, in file order
 * first.
 */
export function inspectConfig(options: LoadOptions = {}): ConfigReport {
  return inspectWith(GATEWAY_CONFIG, options);
}
