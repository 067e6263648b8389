import { mkdirSync } from 'node:fs';
import { clinicAuditLog } from '../clinic/service/admin.js';
import type { ClinicStore } from '../clinic/storage/clinic-store.js';
import { describeDatabase, openClinicStore } from '../clinic/storage/open.js';
import { CLINIC_CONFIG_OPTIONS, CLINIC_CONFIG_OPTIONS_HELP } from '../config/clinic/options.js';
import { parseCommandArgs } from './args.js';
import { actorOf, BY_OPTION, BY_OPTION_HELP } from './clinic-actor.js';
import { EXIT_CONFIG, loadClinicOrReport, reportedAsConfigError } from './clinic-load.js';
import type { CommandIo } from './io.js';

export const CLINIC_INIT_HELP = `Usage: rpm-gateway clinic init [options]

Makes the clinic's data: the data directory (paths.dataDir, mode 0700), the database key (database.sqlite.key
as a file: 256 random bits, mode 0600; a systemd credential is made by you, with systemd-creds, and only
read) and an empty encrypted database (database.sqlite.path) with its tables. On PostgreSQL (database.kind:
postgres) it makes the tables in the database its administrator created. Run it once, before the first
"rpm-gateway clinic intake", which never creates a database.

Nothing that exists is ever overwritten: with a database, its key check or the key file already there (on
PostgreSQL: the clinic tables) it changes nothing and exits 1. A configuration problem exits 2 before anything is created. Recorded in the
clinic's audit log (<paths.dataDir>/clinic-audit.log).

Options:
${CLINIC_CONFIG_OPTIONS_HELP}
${BY_OPTION_HELP}
  -h, --help             show this help`;

export async function clinicInitCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: [...argv],
    options: { ...CLINIC_CONFIG_OPTIONS, ...BY_OPTION, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.stdout.write(`${CLINIC_INIT_HELP}\n`);
    return 0;
  }
  const loaded = loadClinicOrReport('clinic init', values, io);
  if (loaded === undefined) return EXIT_CONFIG;
  for (const warning of loaded.warnings) io.stderr.write(`rpm-gateway clinic init: warning: ${warning}\n`);
  const { config } = loaded;
  const actor = actorOf(values.by);
  let store: ClinicStore;
  try {
    // The engine is checked first, so a database kind this build cannot open creates nothing at all.
    store = await openClinicStore(config.database, { env: io.env, mode: 'create' });
  } catch (error) {
    if (reportedAsConfigError('clinic init', error, io)) return EXIT_CONFIG;
    throw error;
  }
  await store.close();
  mkdirSync(config.paths.dataDir, { recursive: true, mode: 0o700 });
  const made = describeDatabase(config.database);
  clinicAuditLog(config.paths.dataDir).record('clinic.initialised', actor, made);
  io.stdout.write(
    `initialised: ${Object.entries(made)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}\n`,
  );
  return 0;
}
