import type { ConfigDefinition } from '../definition.js';
import { type ConfigIssue, invalidConfig } from '../errors.js';
import type { VariableRules } from '../layers.js';
import {
  type ConfigReportOf,
  inspectWith,
  type LoadedConfigOf,
  type LoadOptions,
  loadWith,
} from '../loader.js';
import { CLINIC_DEFAULTS, clinicEnvironmentDefaults, deriveClinicDefaults } from './defaults.js';
import { type ClinicConfig, clinicConfigSchema } from './schema.js';

/** Where the clinic's configuration lives when neither --config nor $RPM_CLINIC_CONFIG names one. */
export const DEFAULT_CLINIC_CONFIG_FILE = '/etc/rpm-gateway/clinic.yaml';

export type LoadedClinicConfig = LoadedConfigOf<ClinicConfig>;
export type ClinicConfigReport = ConfigReportOf<ClinicConfig>;

/**
 * The clinic's variables: RPM_CLINIC_<SECTION>_<KEY> (RPM_CLINIC_BROKER_PORT, RPM_CLINIC_LOG_LEVEL), all
 * of them the clinic's, so a misspelt one is always reported; the hub's RPM_* settings are never read.
 */
export const CLINIC_VARIABLES: VariableRules = {
  prefix: 'RPM_CLINIC_',
  reserved: { RPM_CLINIC_CONFIG: 'the configuration file' },
  aliases: { RPM_CLINIC_NAME: 'clinic.name', RPM_CLINIC_DATA_DIR: 'paths.dataDir' },
  ownsPrefix: true,
  docs: 'docs/configuration.md ("The clinic\'s configuration")',
};

/** The clinic's configuration: config/clinic.example.yaml, docs/configuration.md. */
export const CLINIC_CONFIG: ConfigDefinition<ClinicConfig> = {
  program: 'rpm-gateway clinic',
  schema: clinicConfigSchema,
  defaults: CLINIC_DEFAULTS,
  environmentDefaults: clinicEnvironmentDefaults,
  defaultFile: DEFAULT_CLINIC_CONFIG_FILE,
  fileVariable: 'RPM_CLINIC_CONFIG',
  variables: CLINIC_VARIABLES,
  sectionsHint: 'clinic:, paths:, pki:, broker:, intake:, database:, ...',
  derivedDefaults: deriveClinicDefaults,
  warnings: (get, from) => {
    const warnings: string[] = [];
    if (get(['log', 'redact']) === false) {
      warnings.push(
        `log.redact is false${from(['log', 'redact'])}: reading values, patient identifiers and keys will be written to the logs`,
      );
    }
    if (get(['broker', 'persistence', 'sync']) === false) {
      warnings.push(
        `broker.persistence.sync is false${from(['broker', 'persistence', 'sync'])}: a power cut may lose readings the broker has already acknowledged to a hub`,
      );
    }
    return warnings;
  },
};

/** Loads and checks the clinic's configuration; throws CONFIG_INVALID listing every problem. */
export function loadClinicConfig(options: LoadOptions = {}): LoadedClinicConfig {
  return loadWith(CLINIC_CONFIG, options);
}

/** Like loadClinicConfig, but returns the problems instead of throwing (for `clinic config check`). */
export function inspectClinicConfig(options: LoadOptions = {}): ClinicConfigReport {
  return inspectWith(CLINIC_CONFIG, options);
}

/**
 * The broker, intake or dashboard section a command needs (`rpm-gateway broker` runs the broker section), or
 * CONFIG_INVALID saying it is missing: those sections are optional, since a machine may run either.
 */
export function requireSection<K extends 'broker' | 'intake' | 'dashboard'>(
  loaded: LoadedClinicConfig,
  section: K,
  command: string,
): NonNullable<ClinicConfig[K]> {
  const value = loaded.config[section];
  if (value !== undefined) return value as NonNullable<ClinicConfig[K]>;
  const needs = section === 'intake' ? 'cert, key and, without a broker section, brokers' : 'cert and key';
  const issue: ConfigIssue = {
    code: 'CONFIG_MISSING_KEY',
    path: section,
    message: `${command} needs a ${section}: section (at least ${needs}); see config/clinic.example.yaml`,
    ...(loaded.file ? { source: { kind: 'file', file: loaded.file } } : {}),
  };
  throw invalidConfig([issue]);
}
