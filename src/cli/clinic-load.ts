import { BrokerError } from '../broker/errors.js';
import { CONFIGURATION_CODES } from '../clinic/service/errors.js';
import { findClinicPathProblems } from '../config/clinic/check-paths.js';
import { type LoadedClinicConfig, loadClinicConfig, requireSection } from '../config/clinic/load.js';
import { type ClinicConfigOptionValues, clinicConfigFlags } from '../config/clinic/options.js';
import { ConfigError, formatIssue, invalidConfig } from '../config/errors.js';
import { GatewayError } from '../errors.js';
import type { CommandIo } from './io.js';

/**
 * How every clinic command that runs something reads its configuration: the clinic's file and RPM_CLINIC_*
 * variables, the section it needs, and the paths it names (src/config/clinic/check-paths.ts, as `clinic config
 * check` checks them). On any problem it prints every one, with where it is, and the command exits with
 * EXIT_CONFIG before it has created or started anything. Warnings are the caller's to show: a service logs
 * them, an admin command prints them.
 */
export const EXIT_CONFIG = 2;

export function loadClinicOrReport(
  command: string,
  values: ClinicConfigOptionValues,
  io: CommandIo,
  needs?: 'broker' | 'intake',
): LoadedClinicConfig | undefined {
  try {
    const loaded = loadClinicConfig({
      env: io.env,
      ...(values.config === undefined ? {} : { configFile: values.config }),
      flags: clinicConfigFlags(values),
    });
    if (needs) requireSection(loaded, needs, `rpm-gateway ${command}`);
    const problems = findClinicPathProblems(loaded);
    if (problems.length > 0) throw invalidConfig(problems);
    return loaded;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    reportConfigError(command, error, io);
    return undefined;
  }
}

/** True (and reported) for an error that is the configuration's fault: the caller exits EXIT_CONFIG. */
export function reportedAsConfigError(command: string, error: unknown, io: CommandIo): boolean {
  const configuration =
    error instanceof ConfigError ||
    (error instanceof BrokerError && error.code === 'BROKER_BAD_DURABLE_SUBSCRIBER') ||
    (error instanceof GatewayError && CONFIGURATION_CODES.has(error.code));
  if (!configuration) return false;
  if (error instanceof ConfigError) reportConfigError(command, error, io);
  else {
    const { code, message } = error as GatewayError;
    io.stderr.write(
      `rpm-gateway ${command}: the configuration cannot be used; nothing was started or created: ${message} [${code}]\n`,
    );
  }
  return true;
}

function reportConfigError(command: string, error: ConfigError, io: CommandIo): void {
  const issues = error.issues;
  if (issues.length === 0) {
    io.stderr.write(`rpm-gateway ${command}: ${error.message} [${error.code}]\n`);
    return;
  }
  const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
  io.stderr.write(
    `rpm-gateway ${command}: the configuration has ${count}; nothing was started or created:\n${issues
      .map((i) => `  ${formatIssue(i)}\n`)
      .join('')}`,
  );
}
