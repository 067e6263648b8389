import { readFileSync } from 'node:fs';
import { DashboardError } from '../clinic/dashboard/errors.js';
import { DashboardServer } from '../clinic/dashboard/server.js';
import { clinicAuditLog } from '../clinic/service/admin.js';
import { type ClinicProcess, runClinicProcess } from '../clinic/service/run.js';
import { openStaffStore } from '../clinic/staff/open.js';
import type { StaffStore } from '../clinic/staff/staff-store.js';
import type { ClinicStore } from '../clinic/storage/clinic-store.js';
import { openClinicStore } from '../clinic/storage/open.js';
import { CLINIC_CONFIG_OPTIONS, CLINIC_CONFIG_OPTIONS_HELP } from '../config/clinic/options.js';
import { secretPath } from '../config/secrets.js';
import { readPrivateKeyFile } from '../pki/files.js';
import { createLog } from '../runtime/log.js';
import { systemClock } from '../util/clock.js';
import { parseCommandArgs } from './args.js';
import { EXIT_CONFIG, loadClinicOrReport, reportedAsConfigError } from './clinic-load.js';
import type { CommandIo } from './io.js';

export const CLINIC_SERVE_HELP = `Usage: rpm-gateway clinic serve [options]

Serves the staff dashboard (the dashboard: section of the clinic configuration) over HTTPS until SIGTERM or
SIGINT (docs/dashboard.md). Staff log in with their password and a TOTP code; the first login enrols the
authenticator app from a QR code. Users are made with "rpm-gateway clinic user add".

The certificate (dashboard.cert, dashboard.key) must name the host of dashboard.publicOrigin, the address
staff browse to; it is checked before anything listens. Logins, failed logins, locks, second-factor changes,
logouts and patient views go to the clinic's audit log (clinic-audit.log in paths.dataDir). Logs are JSON
lines on stdout; never a password, a reading's value or a patient's record number.

The database must exist ("rpm-gateway clinic init" makes it). A configuration problem exits 2 before
anything listens.

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

  const log = createLog({
    level: config.log.level,
    redact: config.log.redact,
    base: { service: 'dashboard' },
  });
  let clinic: ClinicStore | undefined;
  let staff: StaffStore | undefined;
  try {
    let server: DashboardServer;
    try {
      clinic = await openClinicStore(config.database, { env: io.env, mode: 'existing' });
      staff = await openStaffStore(config.database, { env: io.env });
      server = new DashboardServer({
        host: settings.host,
        port: settings.port,
        allowNetwork: settings.allowNetwork,
        https: {
          cert: readFileSync(settings.cert, 'utf8'),
          key: await readPrivateKeyFile(secretPath(settings.key, io.env)),
        },
        publicOrigin: settings.publicOrigin,
        session: settings.session,
        lockout: settings.lockout,
        loginsPerMinute: settings.loginsPerMinute,
        staleAfterMs: settings.staleAfterMs,
        // The error of a store read, never a reading's value; the next commit is tried again.
        onLiveError: (error) =>
          log.warn('dashboard.live_error', {
            detail: error instanceof Error ? error.message : String(error),
          }),
        clinicName: config.clinic.name,
        timeZone: config.clinic.timeZone,
        staff,
        clinic,
        audit: clinicAuditLog(config.paths.dataDir),
        clock: systemClock,
      });
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
    const service: ClinicProcess = {
      start: async () => {
        await server.start();
        log.info('dashboard.listening', { detail: server.statusText() });
      },
      stop: (reason) => server.stop(reason),
      statusText: () => server.statusText(),
    };
    return await runClinicProcess({ name: 'dashboard', service, log, env: io.env });
  } finally {
    await staff?.close();
    await clinic?.close();
  }
}
