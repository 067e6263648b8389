import type { AlarmStore } from '../clinic/alarms/alarm-store.js';
import { openAlarmStore } from '../clinic/alarms/open.js';
import { AlarmService } from '../clinic/service/alarm-service.js';
import { ComposedProcess, type ProcessPart } from '../clinic/service/compose.js';
import { extraIntakeServices } from '../clinic/service/extras.js';
import { intakeFromConfig } from '../clinic/service/intake-from-config.js';
import { runClinicProcess } from '../clinic/service/run.js';
import type { ClinicStore } from '../clinic/storage/clinic-store.js';
import { openClinicStore } from '../clinic/storage/open.js';
import { CLINIC_CONFIG_OPTIONS, CLINIC_CONFIG_OPTIONS_HELP } from '../config/clinic/options.js';
import { createLog } from '../runtime/log.js';
import { realScheduler } from '../util/scheduler.js';
import { parseCommandArgs } from './args.js';
import { EXIT_CONFIG, loadClinicOrReport, reportedAsConfigError } from './clinic-load.js';
import type { CommandIo } from './io.js';

export const CLINIC_INTAKE_HELP = `Usage: rpm-gateway clinic intake [options]

Runs the clinic intake (the intake: section of the clinic configuration) until SIGTERM or SIGINT: receives
every gateway's signed readings, gaps, statuses and alerts from the broker over mutual TLS, checks each
signature and signer (pki.ca, pki.gatewayCerts, pki.crl), stores them in the clinic database exactly once
(by measurement id) and acknowledges each message to the broker only after it is committed
(docs/clinic-intake.md).

On SQLite it also runs the clinic's alarm engine (docs/alarms.md), which follows the intake's commits: SQLite
tells them only to this process. A clinic with a dashboard runs "rpm-gateway clinic serve" instead, which runs
the intake, the engine and the dashboard together; never both on one SQLite database. On PostgreSQL this
command only ingests; the engine runs in "clinic serve".

Two connections: observations and statuses as intake.clientId, alerts as <intake.clientId>-a with a session of
their own, so an alert never waits behind a backlog. The brokers of intake.brokers are tried in order at start.

Logs are JSON lines on stdout, with the counts every minute (messages, readings, duplicates, refusals per
code, commits); never a reading's value or a patient's record number. Under systemd (Type=notify) it says
when it has subscribed.

The database must exist ("rpm-gateway clinic init" makes it). A configuration problem exits 2 before anything
is opened. On SIGTERM or SIGINT: stops reading, commits what it received and sends those acknowledgements,
disconnects, within 10 s (exit 0; 1 past it); a second signal ends it at once (what was not committed is
delivered again by the broker).

Options:
${CLINIC_CONFIG_OPTIONS_HELP}
  -h, --help             show this help`;

export async function clinicIntakeCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: [...argv],
    options: { ...CLINIC_CONFIG_OPTIONS, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.stdout.write(`${CLINIC_INTAKE_HELP}\n`);
    return 0;
  }
  const command = 'clinic intake';
  const loaded = loadClinicOrReport(command, values, io, 'intake');
  if (loaded === undefined) return EXIT_CONFIG;
  const { config } = loaded;
  const settings = config.intake;
  if (settings === undefined) return EXIT_CONFIG; // loadClinicOrReport required it

  let extras: ReturnType<typeof extraIntakeServices>;
  let store: ClinicStore;
  let alarmStore: AlarmStore | undefined;
  const log = createLog({ level: config.log.level, redact: config.log.redact, base: { service: 'intake' } });
  try {
    extras = extraIntakeServices(config, io.env);
    store = await openClinicStore(config.database, {
      env: io.env,
      mode: 'existing',
      rejected: settings.rejected,
    });
  } catch (error) {
    if (reportedAsConfigError(command, error, io)) return EXIT_CONFIG;
    throw error;
  }
  try {
    for (const warning of loaded.warnings) log.warn('config.warning', { detail: warning });
    const parts: ProcessPart[] = [];
    // SQLite tells its commits only to its own process: the alarm engine must run where the intake runs
    // (docs/dashboard.md, "Processes"). On PostgreSQL the engine runs in "clinic serve" (LISTEN/NOTIFY).
    if (config.database.kind === 'sqlite') {
      alarmStore = await openAlarmStore(config.database, { env: io.env });
      const alarms = new AlarmService({ clinic: store, alarms: alarmStore, scheduler: realScheduler, log });
      parts.push({ name: 'alarm engine', service: alarms, statusText: () => alarms.statusText() });
    }
    const intake = await intakeFromConfig({
      config,
      settings,
      store,
      extras,
      log,
      scheduler: realScheduler,
      env: io.env,
    });
    parts.push({ name: 'intake', service: intake, statusText: () => intake.statusText() });
    const service = new ComposedProcess(parts, log, 'intake');
    return await runClinicProcess({ name: 'intake', service, log, env: io.env });
  } finally {
    await alarmStore?.close();
    await store.close();
  }
}
