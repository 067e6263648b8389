import { clinicAuditLog } from '../clinic/service/admin.js';
import {
  addStaffUser,
  changeCareTeam,
  disableStaffUser,
  mfaState,
  resetStaffMfa,
  type StaffAdminContext,
  userNamed,
} from '../clinic/staff/admin.js';
import { openStaffStore } from '../clinic/staff/open.js';
import { isValidMrn, isValidUsername } from '../clinic/staff/rules.js';
import type { StaffRole, StaffStore, StaffUser } from '../clinic/staff/staff-store.js';
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
import { table } from './clinic-admin.js';
import { EXIT_CONFIG, loadClinicOrReport, reportedAsConfigError } from './clinic-load.js';
import type { CommandIo } from './io.js';

/**
 * `rpm-gateway clinic user <action>`: the dashboard's staff accounts in the clinic database. Changes go to
 * the clinic's audit log with who and when (src/clinic/staff/admin.ts). The initial password of `add` is printed
 * once, on stdout only: it is in no log, no audit entry and no database (only its argon2id hash is).
 */

const COMMON_HELP = `${CLINIC_CONFIG_OPTIONS_HELP}
  -h, --help             show this help`;

const ADD_HELP = `Usage: rpm-gateway clinic user add <username> --role admin|clinician [options]

Adds a staff account with a random initial password, printed once on stdout (20 letters and digits, 119 bits)
and stored only as an argon2id hash. The account has no second factor yet: the first login asks for the
password, then enrols TOTP (a QR code) before anything else. Hand the password over in person or by a channel
you trust. Recorded in the clinic's audit log.

  --role <role>          admin (users, care teams, alarm limits; sees every patient) or clinician (sees only
                         the patients whose care team they are in)
  usernames: 3 to 64 characters, lower-case letters, digits, . _ -
${BY_OPTION_HELP}
${COMMON_HELP}`;

const DISABLE_HELP = `Usage: rpm-gateway clinic user disable <username> [options]

Disables an account and ends every session it has: the dashboard refuses it at once. The account stays (audit
entries and care teams name it), and its username cannot be taken again. Recorded in the clinic's audit log.

${BY_OPTION_HELP}
${COMMON_HELP}`;

const RESET_MFA_HELP = `Usage: rpm-gateway clinic user reset-mfa <username> [options]

Removes an account's second factor (a lost or replaced phone) and ends its sessions: the next login enrols
TOTP again after the password. Recorded in the clinic's audit log.

${BY_OPTION_HELP}
${COMMON_HELP}`;

const LIST_HELP = `Usage: rpm-gateway clinic user list [--json] [options]

Lists the staff accounts: username, role, active or disabled, second factor (none: enrols at the next login;
pending: enrolment begun; enrolled), failed logins, lock, the number of patients in their care, who made them
and when. Never a password, hash or secret.

  --json                 one JSON array (with each clinician's MRNs)
${COMMON_HELP}`;

const CARE_HELP = `Usage: rpm-gateway clinic user care <username> [--add <MRN> | --remove <MRN>] [options]

A clinician's care team membership: which patient records (MRN) they may see on the dashboard (admins see
every patient). With --add or --remove, changes it (recorded in the clinic's audit log); with neither, lists
the clinician's patients.

  --add <MRN>            add the clinician to the patient's care team
  --remove <MRN>         remove them from it
${BY_OPTION_HELP}
${COMMON_HELP}`;

const ACTIONS: Readonly<
  Record<string, { summary: string; help: string; run: (argv: string[], io: CommandIo) => Promise<number> }>
> = {
  add: { summary: 'add an account; prints its initial password once', help: ADD_HELP, run: add },
  disable: { summary: 'disable an account and end its sessions', help: DISABLE_HELP, run: disable },
  'reset-mfa': {
    summary: 'remove the second factor (enrols again at the next login)',
    help: RESET_MFA_HELP,
    run: resetMfa,
  },
  list: { summary: 'list the accounts', help: LIST_HELP, run: list },
  care: { summary: "change or show a clinician's patients (care teams)", help: CARE_HELP, run: care },
};

export const CLINIC_USER_HELP = [
  'Usage: rpm-gateway clinic user <action> [options]',
  '',
  "The dashboard's staff accounts, in the clinic database. Changes are recorded in the clinic's audit log.",
  '',
  'Actions:',
  ...Object.entries(ACTIONS).map(([name, a]) => `  ${name.padEnd(9)}  ${a.summary}`),
  '',
  'Options:',
  '  -h, --help     show help (also: rpm-gateway clinic user <action> --help)',
].join('\n');

export async function clinicUserCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const topic = name === 'help' && rest[0] ? ACTIONS[rest[0]] : undefined;
    io.stdout.write(`${topic ? topic.help : CLINIC_USER_HELP}\n`);
    return 0;
  }
  const action = ACTIONS[name];
  if (!action) throw new UsageError(`unknown clinic user action "${name}"`, { help: CLINIC_USER_HELP });
  return action.run(rest, io);
}

const HELP = { help: { type: 'boolean', short: 'h' } } as const;

function oneUsername(positionals: readonly string[], help: string, usage: string): string {
  const [username, ...extra] = positionals;
  if (username === undefined || extra.length > 0) throw new UsageError(`name one user: ${usage}`, { help });
  if (!isValidUsername(username)) {
    throw new UsageError(
      'a username is 3 to 64 characters: lower-case letters, digits, dot, underscore or hyphen',
      { help },
    );
  }
  return username;
}

async function add(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: argv,
    allowPositionals: true,
    options: { ...CLINIC_CONFIG_OPTIONS, ...BY_OPTION, ...HELP, role: { type: 'string' } },
  });
  if (values.help) return printHelp(io, ADD_HELP);
  const username = oneUsername(positionals, ADD_HELP, 'add <username> --role admin|clinician');
  if (values.role !== 'admin' && values.role !== 'clinician') {
    throw new UsageError('--role admin or --role clinician is required', { help: ADD_HELP });
  }
  const role: StaffRole = values.role;
  actorOf(values.by); // a bad --by is a usage error before the database is opened
  return withStaff('clinic user add', values, io, async (store, loaded) => {
    const { user, password } = await addStaffUser(context(store, loaded, values.by), { username, role });
    io.stdout.write(
      [
        `user ${user.username} added (${user.role}, id ${user.id})`,
        `initial password: ${password}`,
        'This password is shown once and stored nowhere; the first login enrols a TOTP second factor.',
        '',
      ].join('\n'),
    );
    return 0;
  });
}

async function disable(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: argv,
    allowPositionals: true,
    options: { ...CLINIC_CONFIG_OPTIONS, ...BY_OPTION, ...HELP },
  });
  if (values.help) return printHelp(io, DISABLE_HELP);
  const username = oneUsername(positionals, DISABLE_HELP, 'disable <username>');
  actorOf(values.by);
  return withStaff('clinic user disable', values, io, async (store, loaded) => {
    const done = await disableStaffUser(context(store, loaded, values.by), username);
    io.stdout.write(
      done.changed
        ? `user ${username} disabled; ${sessions(done.sessionsRevoked)} ended\n`
        : `user ${username} was already disabled; no sessions were live\n`,
    );
    return 0;
  });
}

async function resetMfa(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: argv,
    allowPositionals: true,
    options: { ...CLINIC_CONFIG_OPTIONS, ...BY_OPTION, ...HELP },
  });
  if (values.help) return printHelp(io, RESET_MFA_HELP);
  const username = oneUsername(positionals, RESET_MFA_HELP, 'reset-mfa <username>');
  actorOf(values.by);
  return withStaff('clinic user reset-mfa', values, io, async (store, loaded) => {
    const done = await resetStaffMfa(context(store, loaded, values.by), username);
    io.stdout.write(
      done.changed
        ? `user ${username}: second factor removed, ${sessions(done.sessionsRevoked)} ended; the next login enrols TOTP\n`
        : `user ${username} has no second factor yet; nothing to reset\n`,
    );
    return 0;
  });
}

async function list(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: argv,
    allowPositionals: true,
    options: { ...CLINIC_CONFIG_OPTIONS, ...HELP, json: { type: 'boolean' } },
  });
  if (values.help) return printHelp(io, LIST_HELP);
  if (positionals.length > 0) throw new UsageError('list takes no names', { help: LIST_HELP });
  return withStaff('clinic user list', values, io, async (store) => {
    const users = await store.listUsers();
    const rows = await Promise.all(users.map(async (u) => userJson(u, await store.patientsOf(u.id))));
    if (values.json) io.stdout.write(`${JSON.stringify(rows)}\n`);
    else if (rows.length === 0) io.stdout.write('no users; add one with "rpm-gateway clinic user add"\n');
    else {
      io.stdout.write(
        table(
          ['USERNAME', 'ROLE', 'STATE', 'MFA', 'FAILED', 'LOCKED UNTIL', 'PATIENTS', 'CREATED', 'BY'],
          rows.map((r) => [
            r.username,
            r.role,
            r.disabled ? 'disabled' : 'active',
            r.mfa,
            String(r.failedLogins),
            r.lockedUntil ?? '-',
            r.role === 'admin' ? 'all' : String(r.patients.length),
            r.createdAt,
            r.createdBy,
          ]),
        ),
      );
    }
    return 0;
  });
}

async function care(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...CLINIC_CONFIG_OPTIONS,
      ...BY_OPTION,
      ...HELP,
      add: { type: 'string' },
      remove: { type: 'string' },
    },
  });
  if (values.help) return printHelp(io, CARE_HELP);
  const username = oneUsername(positionals, CARE_HELP, 'care <username> [--add <MRN> | --remove <MRN>]');
  if (values.add !== undefined && values.remove !== undefined) {
    throw new UsageError('give --add or --remove, not both', { help: CARE_HELP });
  }
  const mrn = values.add ?? values.remove;
  if (mrn !== undefined && !isValidMrn(mrn)) {
    throw new UsageError('an MRN is 1 to 64 printable characters without spaces', { help: CARE_HELP });
  }
  actorOf(values.by);
  return withStaff('clinic user care', values, io, async (store, loaded) => {
    if (mrn === undefined) {
      const user = await userNamed(store, username);
      const patients = await store.patientsOf(user.id);
      if (user.role === 'admin') io.stdout.write(`${username} is an admin and sees every patient\n`);
      else if (patients.length === 0) io.stdout.write(`${username} is in no care team\n`);
      else io.stdout.write(`${patients.join('\n')}\n`);
      return 0;
    }
    const action = values.add !== undefined ? 'add' : 'remove';
    const done = await changeCareTeam(context(store, loaded, values.by), { username, mrn, action });
    const verb = action === 'add' ? 'added to' : 'removed from';
    io.stdout.write(
      done.changed
        ? `${username} ${verb} the care team of ${mrn}\n`
        : `${username} was already ${action === 'add' ? 'in' : 'not in'} the care team of ${mrn}\n`,
    );
    return 0;
  });
}

/** Opens the staff tables of the database the configuration names, runs `work`, closes; config problems exit 2. */
async function withStaff(
  command: string,
  values: ClinicConfigOptionValues,
  io: CommandIo,
  work: (store: StaffStore, loaded: LoadedClinicConfig) => Promise<number>,
): Promise<number> {
  const loaded = loadClinicOrReport(command, values, io);
  if (loaded === undefined) return EXIT_CONFIG;
  for (const warning of loaded.warnings) io.stderr.write(`rpm-gateway ${command}: warning: ${warning}\n`);
  let store: StaffStore;
  try {
    store = await openStaffStore(loaded.config.database, { env: io.env });
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

function context(store: StaffStore, loaded: LoadedClinicConfig, by: string | undefined): StaffAdminContext {
  return {
    store,
    audit: clinicAuditLog(loaded.config.paths.dataDir),
    actor: actorOf(by),
    clock: systemClock,
  };
}

function userJson(user: StaffUser, patients: readonly string[]) {
  return {
    id: user.id,
    username: user.username,
    role: user.role,
    disabled: user.disabled,
    mfa: mfaState(user),
    failedLogins: user.failedLogins,
    lockedUntil: user.lockedUntil === undefined ? null : iso(user.lockedUntil),
    patients,
    createdAt: iso(user.createdAt),
    createdBy: user.createdBy,
  };
}

const sessions = (n: number) => (n === 1 ? '1 session' : `${n} sessions`);
const iso = (ms: number) => new Date(ms).toISOString();

function printHelp(io: CommandIo, help: string): number {
  io.stdout.write(`${help}\n`);
  return 0;
}
