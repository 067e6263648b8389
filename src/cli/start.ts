import { loadSimScenario, SIM_SCENARIO_VARIABLE, type SimScenario } from '../ble/sim/scenario.js';
import { checkPaths } from '../config/check-paths.js';
import { ConfigError, formatIssue } from '../config/errors.js';
import { type LoadedConfig, loadConfig } from '../config/load.js';
import { CONFIG_OPTIONS, CONFIG_OPTIONS_HELP, configFlags } from '../config/options.js';
import { runService } from '../runtime/service.js';
import { parseCommandArgs } from './args.js';
import type { CommandIo } from './io.js';

export const START_HELP = `Usage: rpm-gateway start [options]

Runs the hub until SIGTERM or SIGINT (Ctrl-C): reads the enrolled Bluetooth devices, keeps every reading in
the encrypted store, and sends them, signed, over mutual-TLS MQTT to the clinic's brokers. Logs are JSON lines
on stdout (no reading values, addresses, names or keys). Under systemd (Type=notify) it says when it is ready
and keeps the watchdog fed while healthy.

Before anything else the configuration is checked: every problem is printed, with where it is, and the hub
does not start (exit status 2). The data directory, the store and its key must exist: "start" never creates
them (a mistyped path must not become a new, empty store); "rpm-gateway init" does.

On SIGTERM or SIGINT: stops reading, commits what was read, publishes the offline status, disconnects and
closes the store, within shutdown.deadline (exit status 0; 1 past the deadline). A second signal ends it at
once (exit status 128 + the signal's number).

With ble.backend sim, $RPM_SIM_SCENARIO may name a file of simulated devices (docs/configuration.md).

Options:
${CONFIG_OPTIONS_HELP}
  -h, --help             show this help`;

/** Exit status for a configuration that is not usable (the hub did not start). */
export const EXIT_CONFIG = 2;

export async function startCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: [...argv],
    options: { ...CONFIG_OPTIONS, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.stdout.write(`${START_HELP}\n`);
    return 0;
  }
  const loaded = loadOrReport('start', values, io, { creating: false });
  if (loaded === undefined) return EXIT_CONFIG;
  const scenarioFile = io.env[SIM_SCENARIO_VARIABLE];
  if (scenarioFile === undefined || scenarioFile === '') return runService(loaded, io.env);
  if (loaded.config.ble.backend !== 'sim') {
    io.stderr.write(`rpm-gateway start: ${SIM_SCENARIO_VARIABLE} is set but ble.backend is not sim\n`);
    return EXIT_CONFIG;
  }
  let simScenario: SimScenario;
  try {
    simScenario = loadSimScenario(scenarioFile);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    reportConfigError('start', error, io);
    return EXIT_CONFIG;
  }
  return runService(loaded, io.env, { simScenario });
}

/**
 * Loads the configuration and checks its paths; on a problem prints every one (with where it is) on stderr and
 * returns undefined. Warnings go to stderr too.
 */
export function loadOrReport(
  command: string,
  values: Parameters<typeof configFlags>[0],
  io: CommandIo,
  options: { creating: boolean },
): LoadedConfig | undefined {
  try {
    const loaded = loadConfig({
      env: io.env,
      ...(values.config === undefined ? {} : { configFile: values.config }),
      flags: configFlags(values),
    });
    checkPaths(loaded, options);
    return loaded;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    reportConfigError(command, error, io);
    return undefined;
  }
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
