import { UsageError } from '../errors.js';
import { CLINIC_CONFIG_HELP, clinicConfigCommand } from './clinic-config.js';
import type { CommandIo } from './io.js';

/**
 * `rpm-gateway clinic <command>`: the clinic's side (the intake, its configuration), read from the clinic's
 * own configuration file (/etc/rpm-gateway/clinic.yaml, RPM_CLINIC_* variables), never the hub's.
 */

interface Subcommand {
  readonly summary: string;
  readonly help: string;
  readonly run: (argv: readonly string[], io: CommandIo) => Promise<number>;
}

const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  config: {
    summary: "check the clinic's configuration, or print it with where each value came from",
    help: CLINIC_CONFIG_HELP,
    run: clinicConfigCommand,
  },
};

function clinicHelp(): string {
  const width = Math.max(...Object.keys(SUBCOMMANDS).map((name) => name.length));
  const rows = Object.entries(SUBCOMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'Usage: rpm-gateway clinic <command> [options]',
    '',
    "The clinic's side, configured by /etc/rpm-gateway/clinic.yaml (or --config, $RPM_CLINIC_CONFIG) and",
    'RPM_CLINIC_* variables: see config/clinic.example.yaml and docs/configuration.md.',
    '',
    'Commands:',
    ...rows,
    '',
    'Options:',
    '  -h, --help     show help (also: rpm-gateway clinic <command> --help)',
  ].join('\n');
}

export const CLINIC_HELP = clinicHelp();

export async function clinicCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const topic = name === 'help' && rest[0] ? SUBCOMMANDS[rest[0]] : undefined;
    io.stdout.write(`${topic ? topic.help : CLINIC_HELP}\n`);
    return 0;
  }
  const subcommand = SUBCOMMANDS[name];
  if (!subcommand) throw new UsageError(`unknown clinic command "${name}"`);
  return subcommand.run(rest, io);
}
