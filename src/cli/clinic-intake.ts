import { readFileSync } from 'node:fs';
import { extraIntakeServices } from '../clinic/service/extras.js';
import { IntakeService } from '../clinic/service/intake-service.js';
import { runClinicProcess } from '../clinic/service/run.js';
import type { ClinicStore } from '../clinic/storage/clinic-store.js';
import { openClinicStore } from '../clinic/storage/open.js';
import { CLINIC_CONFIG_OPTIONS, CLINIC_CONFIG_OPTIONS_HELP } from '../config/clinic/options.js';
import { secretPath } from '../config/secrets.js';
import { readPrivateKeyFile } from '../pki/files.js';
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
    const log = createLog({
      level: config.log.level,
      redact: config.log.redact,
      base: { service: 'intake' },
    });
    for (const warning of loaded.warnings) log.warn('config.warning', { detail: warning });
    const caPem = readFileSync(config.pki.ca, 'utf8');
    const service = new IntakeService({
      brokers: settings.brokers,
      clientId: settings.clientId,
      protocolVersion: settings.protocolVersion,
      ...(settings.sharedGroup === undefined ? {} : { sharedGroup: settings.sharedGroup }),
      tls: {
        ca: settings.ca === undefined ? caPem : readFileSync(settings.ca, 'utf8'),
        cert: readFileSync(settings.cert, 'utf8'),
        key: await readPrivateKeyFile(secretPath(settings.key, io.env)),
      },
      store,
      gateways: {
        caPem,
        folder: config.pki.gatewayCerts,
        ...(config.pki.crl === undefined ? {} : { crlFile: config.pki.crl }),
      },
      graceMs: settings.signerGraceMs,
      defaultTimeZone: config.clinic.timeZone,
      group: { maxMessages: settings.groupCommit.maxMessages, maxDelayMs: settings.groupCommit.maxDelayMs },
      log,
      scheduler: realScheduler,
      extras: extras({ config, store, log, scheduler: realScheduler, env: io.env }),
    });
    return await runClinicProcess({ name: 'intake', service, log, env: io.env });
  } finally {
    await store.close();
  }
}
