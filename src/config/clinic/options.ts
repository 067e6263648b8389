import type { FlagSetting } from '../layers.js';

/**
 * The command-line options every clinic command that reads the clinic's configuration takes
 * (parseCommandArgs style), and how they become the flag layer.
 */
export const CLINIC_CONFIG_OPTIONS = {
  config: { type: 'string' },
  set: { type: 'string', multiple: true },
  'data-dir': { type: 'string' },
} as const;

export const CLINIC_CONFIG_OPTIONS_HELP = `  --config <file>        the clinic configuration file (default: $RPM_CLINIC_CONFIG, else
                         /etc/rpm-gateway/clinic.yaml when it exists); see docs/configuration.md
  --set <key>=<value>    set any key, e.g. --set log.level=debug (repeatable; overrides file and RPM_CLINIC_*)
  --data-dir <dir>       paths.dataDir: the clinic database and the broker's queues`;

export interface ClinicConfigOptionValues {
  readonly config?: string;
  readonly set?: readonly string[];
  readonly 'data-dir'?: string;
}

export function clinicConfigFlags(values: ClinicConfigOptionValues): FlagSetting[] {
  const flags: FlagSetting[] = [];
  if (typeof values['data-dir'] === 'string') {
    flags.push({ flag: '--data-dir', key: 'paths.dataDir', text: values['data-dir'] });
  }
  for (const text of values.set ?? []) flags.push({ flag: '--set', text });
  return flags;
}
