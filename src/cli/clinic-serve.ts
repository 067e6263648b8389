import { readFileSync } from 'node:fs';
import type { AlarmStore } from '../clinic/alarms/alarm-store.js';
import { openAlarmStore } from '../clinic/alarms/open.js';
import { DashboardError } from '../clinic/dashboard/errors.js';
import { clinicAuditLog } from '../clinic/service/admin.js';
import { ComposedProcess, type ProcessPart } from '../clinic/service/compose.js';
import { dashboardProcess } from '../clinic/service/dashboard-process.js';
import { extraIntakeServices } from '../clinic/service/extras.js';
import { HubCommandsService } from '../clinic/service/hub-commands.js';
import { intakeFromConfig } from '../clinic/service/intake-from-config.js';
import { runClinicProcess } from '../clinic/service/run.js';
import { openStaffStore } from '../clinic/staff/open.js';
import type { StaffStore } from '../clinic/staff/staff-store.js';
import type { ClinicStore } from '../clinic/storage/clinic-store.js';
import { openClinicStore } from '../clinic/storage/open.js';
import { CLINIC_CONFIG_OPTIONS, CLINIC_CONFIG_OPTIONS_HELP } from '../config/clinic/options.js';
import { secretPath } from '../config/secrets.js';
import { readPrivateKeyFile } from '../pki/files.js';
import { createLog } from '../runtime/log.js';
import { systemClock } from '../util/clock.js';
import { realScheduler } from '../util/scheduler.js';
import { parseCommandArgs } from './args.js';
import { EXIT_CONFIG, loadClinicOrReport, reportedAsConfigError } from './clinic-load.js';
import type { CommandIo } from './io.js';

export const CLINIC_SERVE_HELP = `Usage: rpm-gateway clinic serve [options]

Serves the staff dashboard (the dashboard: section of the clinic configuration) over HTTPS until SIGTERM or
SIGINT (docs/dashboard.md), with the clinic's alarm engine (docs/alarms.md). Staff log in with their password
and a TOTP code; the first login enrols the authenticator app from a QR code. Users are made with
"rpm-gateway clinic user add".

What runs in this process depends on the database (docs/dashboard.md, "Processes"):
  SQLite      the intake (the intake: section, required), the FHIR export when fhir.enabled, the alarm
              engine and the dashboard: SQLite's live feed reaches only its own process. Do not run
              "rpm-gateway clinic intake" beside it.
  PostgreSQL  the alarm engine (one process leads, others stand by) and the dashboard; the live feed comes
              over LISTEN/NOTIFY from the "rpm-gateway clinic intake" processes.

The certificate (dashboard.cert, dashboard.key) must name the host of dashboard.publicOrigin, the address
staff browse to; it is checked before anything listens. Logins, failed logins, locks, second-factor changes,
logouts, patient views, exports, acknowledgements and limit changes go to the clinic's audit log (clinic-audit.log in
paths.dataDir). Logs are JSON lines on stdout; never a password, a reading's value or a patient's record
number.

The database must exist ("rpm-gateway clinic init" makes it). A configuration problem exits 2 before
anything listens. On SIGTERM or SIGINT: stops the dashboard, then the intake (it commits what it received),
then the alarm engine, within 10 s (exit 0; 1 past it).

Options:
${CLINIC_CONFIG_OPTIONS_HELP}
  -h, --help             show this help`;

export async function clinicServeCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: [...argv],
    options: { ...CLINIC_CONFIG_OPTIONS, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.stdout.write(`${CLINIC_SERVE_HELP}\n`);
    return 0;
  }
  const command = 'clinic serve';
  const loaded = loadClinicOrReport(command, values, io, 'dashboard');
  if (loaded === undefined) return EXIT_CONFIG;
  const { config } = loaded;
  const settings = config.dashboard;
  if (settings === undefined) return EXIT_CONFIG; // loadClinicOrReport required it
  const sqlite = config.database.kind === 'sqlite';
  const intakeSettings = sqlite ? config.intake : undefined;
  if (sqlite && intakeSettings === undefined) {
    const error = new DashboardError(
      'DASHBOARD_NEEDS_INTAKE',
      'with database.kind sqlite, "clinic serve" runs the intake in its own process (the alarm engine and the live tiles follow the intake\'s commits, which SQLite tells only its own process), so it needs an intake: section; see config/clinic.example.yaml and docs/dashboard.md ("Processes")',
    );
    io.stderr.write(
      `rpm-gateway ${command}: the configuration cannot be used; nothing was started: ${error.message} [${error.code}]\n`,
    );
    return EXIT_CONFIG;
  }

  const log = createLog({
    level: config.log.level,
    redact: config.log.redact,
    base: { service: 'dashboard' },
  });
  let clinic: ClinicStore | undefined;
  let staff: StaffStore | undefined;
  let alarmStore: AlarmStore | undefined;
  try {
    let parts: ProcessPart[] = [];
    try {
      const extras = intakeSettings ? extraIntakeServices(config, io.env) : undefined;
      clinic = await openClinicStore(config.database, {
        env: io.env,
        mode: 'existing',
        ...(intakeSettings ? { rejected: intakeSettings.rejected } : {}),
      });
      staff = await openStaffStore(config.database, { env: io.env });
      alarmStore = await openAlarmStore(config.database, {
        env: io.env,
        onError: (error) => log.warn('alarms.database-error', { error: error.message }),
      });
      let intake: ProcessPart | undefined;
      if (intakeSettings && extras) {
        const intakeLog = createLog({
          level: config.log.level,
          redact: config.log.redact,
          base: { service: 'intake' },
        });
        const service = await intakeFromConfig({
          config,
          settings: intakeSettings,
          store: clinic,
          extras,
          log: intakeLog,
          scheduler: realScheduler,
          env: io.env,
        });
        intake = { name: 'intake', service, statusText: () => service.statusText() };
      }
      const commands = settings.hubCommands;
      const hubCommands =
        commands === undefined
          ? undefined
          : new HubCommandsService({
              broker: commands.brokers[0] as (typeof commands.brokers)[number],
              clientId: commands.clientId,
              tls: {
                ca: readFileSync(commands.ca ?? config.pki.ca, 'utf8'),
                cert: readFileSync(commands.cert, 'utf8'),
                key: await readPrivateKeyFile(secretPath(commands.key, io.env)),
              },
              gateways: {
                caPem: readFileSync(config.pki.ca, 'utf8'),
                folder: config.pki.gatewayCerts,
                ...(config.pki.crl === undefined ? {} : { crlFile: config.pki.crl }),
              },
              scheduler: realScheduler,
              log,
            });
      parts = dashboardProcess({
        clinic,
        staff,
        alarmStore,
        settings,
        https: {
          cert: readFileSync(settings.cert, 'utf8'),
          key: await readPrivateKeyFile(secretPath(settings.key, io.env)),
        },
        clinicName: config.clinic.name,
        timeZone: config.clinic.timeZone,
        audit: clinicAuditLog(config.paths.dataDir),
        log,
        scheduler: realScheduler,
        clock: systemClock,
        ...(intake ? { intake } : {}),
        ...(hubCommands ? { hubCommands } : {}),
        // The patient page's FHIR download uses the export's identifier systems, with or without fhir.enabled.
        ...(config.fhir.patientIdentifierSystem !== undefined && config.fhir.systemBase !== undefined
          ? {
              fhirExport: {
                patientIdentifierSystem: config.fhir.patientIdentifierSystem,
                systemBase: config.fhir.systemBase,
              },
            }
          : {}),
      }).parts;
    } catch (error) {
      if (error instanceof DashboardError) {
        io.stderr.write(
          `rpm-gateway ${command}: the configuration cannot be used; nothing was started: ${error.message} [${error.code}]\n`,
        );
        return EXIT_CONFIG;
      }
      if (reportedAsConfigError(command, error, io)) return EXIT_CONFIG;
      throw error;
    }
    for (const warning of loaded.warnings) log.warn('config.warning', { detail: warning });
    const service = new ComposedProcess(parts, log, 'dashboard');
    return await runClinicProcess({ name: 'dashboard', service, log, env: io.env });
  } finally {
    await alarmStore?.close();
    await staff?.close();
    await clinic?.close();
  }
}
