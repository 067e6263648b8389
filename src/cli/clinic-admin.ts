import {
  type AdminContext,
  assignGateway,
  clinicAuditLog,
  unassignGateway,
} from '../clinic/service/admin.js';
import type { Assignment, ClinicStore } from '../clinic/storage/clinic-store.js';
import { openClinicStore } from '../clinic/storage/open.js';
import type { LoadedClinicConfig } from '../config/clinic/load.js';
import {
  CLINIC_CONFIG_OPTIONS,
  CLINIC_CONFIG_OPTIONS_HELP,
  type ClinicConfigOptionValues,
} from '../config/clinic/options.js';
import { UsageError } from '../errors.js';
import { systemClock } from '../util/clock.js';
import { parseCommandArgs } from './args.js';
import { actorOf, BY_OPTION, BY_OPTION_HELP } from './clinic-actor.js';
import { EXIT_CONFIG, loadClinicOrReport, reportedAsConfigError } from './clinic-load.js';
import type { CommandIo } from './io.js';

/**
 * The administrator's commands on the clinic database: dated patient assignments (assign, unassign,
 * assignments) and what the intake kept aside (unassigned readings, rejection counts). Changes go to the
 * clinic's audit log with who and when (src/clinic/service/admin.ts says why the MRN is written as is).
 * Readings' values never appear: only ids, gateways, devices and times.
 */

const COMMON_HELP = `${CLINIC_CONFIG_OPTIONS_HELP}
  -h, --help             show this help`;

export const CLINIC_ASSIGN_HELP = `Usage: rpm-gateway clinic assign <gatewayId> <mrn> --from <date-time> [--time-zone <zone>] [options]

Assigns a gateway, and the devices enrolled on it, to a patient record (MRN) from a time on. Readings are
attributed by their measurement time, so readings measured before --from (a back-filled backlog) stay with the
earlier patient. The gateway's open assignment, if any, ends at --from (a hub reissued to the next patient).
Recorded in the clinic's audit log.

  --from <date-time>     RFC 3339 with an offset: 2026-12-01T08:00:00+01:00 or 2026-12-01T07:00:00Z
  --time-zone <zone>     the patient's IANA time zone (Europe/Berlin): device times without an offset are read
                         in it (default clinic.timeZone)
${BY_OPTION_HELP}
${COMMON_HELP}`;

export const CLINIC_UNASSIGN_HELP = `Usage: rpm-gateway clinic unassign <gatewayId> --at <date-time> [options]

Ends the gateway's open assignment at --at (RFC 3339 with an offset): readings measured from then on are
unassigned until the gateway is assigned again. Recorded in the clinic's audit log. Exit 1 when the gateway
has no open assignment.

${BY_OPTION_HELP}
${COMMON_HELP}`;

export const CLINIC_ASSIGNMENTS_HELP = `Usage: rpm-gateway clinic assignments [gatewayId] [--json] [options]

Lists the assignments (of one gateway, or all): id, gateway, MRN, from, to, time zone, who made it and when.
The output names patients' records: it is for the clinic's staff.

  --json                 one JSON array
${COMMON_HELP}`;

export const CLINIC_UNASSIGNED_HELP = `Usage: rpm-gateway clinic unassigned [--limit N] [--json] [options]

Lists readings measured outside every assignment of their gateway (kept, never dropped): measurement id,
gateway, device, driver and measurement time. No values (they are PHI): assign the gateway for the time to
attribute them.

  --limit <n>            at most n readings (default 100)
  --json                 one JSON array
${COMMON_HELP}`;

export const CLINIC_REJECTIONS_HELP = `Usage: rpm-gateway clinic rejections [--json] [options]

Counts of the messages the intake refused, per code (WIRE_*, INTAKE_*; docs/errors.md), since the database
was made. The rows themselves are bounded (intake.rejected); the counts are not.

  --json                 one JSON array of { code, count }
${COMMON_HELP}`;

const HELP = { help: { type: 'boolean', short: 'h' } } as const;
const JSON_OPTION = { json: { type: 'boolean' } } as const;

/** RFC 3339 section 5.6 date-time, with its offset required: an admin's "08:00" must say whose 08:00. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}:\d{2})$/;

export function parseInstant(option: string, text: string | undefined, help: string): number {
  if (text === undefined) throw new UsageError(`${option} <date-time> is required`, { help });
  const at = DATE_TIME.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(at)) {
    throw new UsageError(
      `${option}: expected an RFC 3339 date-time with an offset, e.g. 2026-12-01T08:00:00+01:00 (got ${JSON.stringify(text.slice(0, 40))})`,
      { help },
    );
  }
  return at;
}

/** Opens the database the configuration names, runs `work`, closes it; config problems exit 2. */
async function withStore(
  command: string,
  values: ClinicConfigOptionValues,
  io: CommandIo,
  work: (store: ClinicStore, loaded: LoadedClinicConfig) => Promise<number>,
): Promise<number> {
  const loaded = loadClinicOrReport(command, values, io);
  if (loaded === undefined) return EXIT_CONFIG;
  for (const warning of loaded.warnings) io.stderr.write(`rpm-gateway ${command}: warning: ${warning}\n`);
  let store: ClinicStore;
  try {
    store = await openClinicStore(loaded.config.database, { env: io.env, mode: 'existing' });
  } catch (error) {
    if (reportedAsConfigError(command, error, io)) return EXIT_CONFIG;
    throw error;
  }
  try {
    return await work(store, loaded);
  } finally {
    await store.close();
  }
}

function context(store: ClinicStore, loaded: LoadedClinicConfig, by: string | undefined): AdminContext {
  return {
    store,
    audit: clinicAuditLog(loaded.config.paths.dataDir),
    actor: actorOf(by),
    clock: systemClock,
  };
}

export async function clinicAssignCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      ...CLINIC_CONFIG_OPTIONS,
      ...BY_OPTION,
      ...HELP,
      from: { type: 'string' },
      'time-zone': { type: 'string' },
    },
  });
  if (values.help) {
    io.stdout.write(`${CLINIC_ASSIGN_HELP}\n`);
    return 0;
  }
  const help = CLINIC_ASSIGN_HELP;
  const [gatewayId, mrn, ...extra] = positionals;
  if (gatewayId === undefined || mrn === undefined || extra.length > 0) {
    throw new UsageError('name the gateway and the patient record: assign <gatewayId> <mrn>', { help });
  }
  const from = parseInstant('--from', values.from, help);
  actorOf(values.by); // a bad --by is a usage error before the database is opened
  return withStore('clinic assign', values, io, async (store, loaded) => {
    const timeZone = values['time-zone'];
    const made = await assignGateway(context(store, loaded, values.by), {
      gatewayId,
      mrn,
      from,
      ...(timeZone === undefined ? {} : { timeZone }),
    });
    io.stdout.write(
      `assignment ${made.id}: gateway ${made.gatewayId} from ${iso(made.from)}${made.timeZone ? ` (${made.timeZone})` : ''}\n`,
    );
    return 0;
  });
}

export async function clinicUnassignCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: [...argv],
    allowPositionals: true,
    options: { ...CLINIC_CONFIG_OPTIONS, ...BY_OPTION, ...HELP, at: { type: 'string' } },
  });
  if (values.help) {
    io.stdout.write(`${CLINIC_UNASSIGN_HELP}\n`);
    return 0;
  }
  const help = CLINIC_UNASSIGN_HELP;
  const [gatewayId, ...extra] = positionals;
  if (gatewayId === undefined || extra.length > 0) {
    throw new UsageError('name the gateway: unassign <gatewayId> --at <date-time>', { help });
  }
  const at = parseInstant('--at', values.at, help);
  actorOf(values.by);
  return withStore('clinic unassign', values, io, async (store, loaded) => {
    const ended = await unassignGateway(context(store, loaded, values.by), { gatewayId, at });
    if (ended === undefined) {
      io.stderr.write(`rpm-gateway clinic unassign: gateway ${gatewayId} has no open assignment\n`);
      return 1;
    }
    io.stdout.write(`assignment ${ended.id}: gateway ${ended.gatewayId} ended at ${iso(at)}\n`);
    return 0;
  });
}

export async function clinicAssignmentsCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: [...argv],
    allowPositionals: true,
    options: { ...CLINIC_CONFIG_OPTIONS, ...HELP, ...JSON_OPTION },
  });
  if (values.help) {
    io.stdout.write(`${CLINIC_ASSIGNMENTS_HELP}\n`);
    return 0;
  }
  if (positionals.length > 1) {
    throw new UsageError('at most one gateway id', { help: CLINIC_ASSIGNMENTS_HELP });
  }
  const gatewayId = positionals[0];
  return withStore('clinic assignments', values, io, async (store) => {
    const list = await store.assignments(gatewayId);
    if (values.json) {
      io.stdout.write(`${JSON.stringify(list.map(assignmentJson))}\n`);
    } else if (list.length === 0) {
      io.stdout.write(`no assignments${gatewayId ? ` of gateway ${gatewayId}` : ''}\n`);
    } else {
      io.stdout.write(
        table(
          ['ID', 'GATEWAY', 'MRN', 'FROM', 'TO', 'TIME ZONE', 'BY'],
          list.map((a) => [
            String(a.id),
            a.gatewayId,
            a.mrn,
            iso(a.from),
            a.to === undefined ? 'open' : iso(a.to),
            a.timeZone ?? '-',
            a.createdBy,
          ]),
        ),
      );
    }
    return 0;
  });
}

export async function clinicUnassignedCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: [...argv],
    options: { ...CLINIC_CONFIG_OPTIONS, ...HELP, ...JSON_OPTION, limit: { type: 'string' } },
  });
  if (values.help) {
    io.stdout.write(`${CLINIC_UNASSIGNED_HELP}\n`);
    return 0;
  }
  const limit = values.limit === undefined ? 100 : Number(values.limit);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1_000_000) {
    throw new UsageError('--limit: expected a whole number from 1 to 1000000', {
      help: CLINIC_UNASSIGNED_HELP,
    });
  }
  return withStore('clinic unassigned', values, io, async (store) => {
    const rows = (await store.unassigned(limit)).map((s) => ({
      measurementId: s.measurement.id,
      gatewayId: s.receipt.gatewayId,
      deviceId: s.measurement.deviceId,
      driver: s.measurement.driver,
      measuredAt: iso(s.measuredAt),
    }));
    if (values.json) io.stdout.write(`${JSON.stringify(rows)}\n`);
    else if (rows.length === 0) io.stdout.write('no unassigned readings\n');
    else {
      io.stdout.write(
        table(
          ['MEASUREMENT', 'GATEWAY', 'DEVICE', 'DRIVER', 'MEASURED AT'],
          rows.map((r) => [r.measurementId, r.gatewayId, r.deviceId, r.driver, r.measuredAt]),
        ),
      );
    }
    return 0;
  });
}

export async function clinicRejectionsCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: [...argv],
    options: { ...CLINIC_CONFIG_OPTIONS, ...HELP, ...JSON_OPTION },
  });
  if (values.help) {
    io.stdout.write(`${CLINIC_REJECTIONS_HELP}\n`);
    return 0;
  }
  return withStore('clinic rejections', values, io, async (store) => {
    const counts = await store.rejectionCounts();
    if (values.json) io.stdout.write(`${JSON.stringify(counts)}\n`);
    else if (counts.length === 0) io.stdout.write('no rejected messages\n');
    else
      io.stdout.write(
        table(
          ['CODE', 'COUNT'],
          counts.map((c) => [c.code, String(c.count)]),
        ),
      );
    return 0;
  });
}

function assignmentJson(a: Assignment) {
  return {
    id: a.id,
    gatewayId: a.gatewayId,
    mrn: a.mrn,
    from: iso(a.from),
    to: a.to === undefined ? null : iso(a.to),
    timeZone: a.timeZone ?? null,
    createdBy: a.createdBy,
    createdAt: iso(a.createdAt),
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n`;
}
