import { UsageError } from '../errors.js';
import {
  CLINIC_ASSIGN_HELP,
  CLINIC_ASSIGNMENTS_HELP,
  CLINIC_REJECTIONS_HELP,
  CLINIC_UNASSIGN_HELP,
  CLINIC_UNASSIGNED_HELP,
  clinicAssignCommand,
  clinicAssignmentsCommand,
  clinicRejectionsCommand,
  clinicUnassignCommand,
  clinicUnassignedCommand,
} from './clinic-admin.js';
import { CLINIC_CONFIG_HELP, clinicConfigCommand } from './clinic-config.js';
import { CLINIC_INIT_HELP, clinicInitCommand } from './clinic-init.js';
import { CLINIC_INTAKE_HELP, clinicIntakeCommand } from './clinic-intake.js';
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
  init: {
    summary: 'make the data directory, the database key and an empty encrypted database',
    help: CLINIC_INIT_HELP,
    run: clinicInitCommand,
  },
  intake: {
    summary: 'run the intake until SIGTERM: signed readings from the broker into the database, exactly once',
    help: CLINIC_INTAKE_HELP,
    run: clinicIntakeCommand,
  },
  assign: {
    summary: 'assign a gateway (its devices) to a patient record (MRN) from a date-time on',
    help: CLINIC_ASSIGN_HELP,
    run: clinicAssignCommand,
  },
  unassign: {
    summary: "end a gateway's open assignment at a date-time",
    help: CLINIC_UNASSIGN_HELP,
    run: clinicUnassignCommand,
  },
  assignments: {
    summary: 'list the assignments (of one gateway, or all)',
    help: CLINIC_ASSIGNMENTS_HELP,
    run: clinicAssignmentsCommand,
  },
  unassigned: {
    summary: 'list readings measured outside every assignment (ids, gateway, device, time; no values)',
    help: CLINIC_UNASSIGNED_HELP,
    run: clinicUnassignedCommand,
  },
  rejections: {
    summary: 'count the messages the intake refused, per code',
    help: CLINIC_REJECTIONS_HELP,
    run: clinicRejectionsCommand,
  },
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
