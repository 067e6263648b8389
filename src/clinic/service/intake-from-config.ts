import { readFileSync } from 'node:fs';
import type { ClinicConfig, ClinicIntakeSettings } from '../../config/clinic/schema.js';
import { secretPath } from '../../config/secrets.js';
import { readPrivateKeyFile } from '../../pki/files.js';
import type { RuntimeLog } from '../../runtime/log.js';
import type { Scheduler } from '../../util/scheduler.js';
import type { ClinicStore } from '../storage/clinic-store.js';
import type { ExtraServices } from './extras.js';
import { IntakeService } from './intake-service.js';

/** Group commits in flight at once on PostgreSQL (each on its own pooled connection). */
export const POSTGRES_COMMITS_IN_FLIGHT = 3;

/**
 * The intake as the configuration describes it (intake: and pki:), with its extra services (the FHIR export):
 * what `rpm-gateway clinic intake` runs, and `clinic serve` on SQLite beside the dashboard.
 */
export async function intakeFromConfig(options: {
  readonly config: ClinicConfig;
  readonly settings: ClinicIntakeSettings;
  readonly store: ClinicStore;
  readonly extras: ExtraServices;
  readonly log: RuntimeLog;
  readonly scheduler: Scheduler;
  readonly env: NodeJS.ProcessEnv;
}): Promise<IntakeService> {
  const { config, settings, store, log, scheduler, env } = options;
  const caPem = readFileSync(config.pki.ca, 'utf8');
  return new IntakeService({
    brokers: settings.brokers,
    clientId: settings.clientId,
    protocolVersion: settings.protocolVersion,
    ...(settings.sharedGroup === undefined ? {} : { sharedGroup: settings.sharedGroup }),
    tls: {
      ca: settings.ca === undefined ? caPem : readFileSync(settings.ca, 'utf8'),
      cert: readFileSync(settings.cert, 'utf8'),
      key: await readPrivateKeyFile(secretPath(settings.key, env)),
    },
    store,
    gateways: {
      caPem,
      folder: config.pki.gatewayCerts,
      ...(config.pki.crl === undefined ? {} : { crlFile: config.pki.crl }),
    },
    graceMs: settings.signerGraceMs,
    defaultTimeZone: config.clinic.timeZone,
    group: {
      maxMessages: settings.groupCommit.maxMessages,
      maxDelayMs: settings.groupCommit.maxDelayMs,
      // PostgreSQL commits of one process can overlap (group-commit.ts, maxConcurrent); SQLite's cannot. Why
      // three: docs/clinic-intake.md, "Where a backlog commit's time goes".
      maxConcurrent: config.database.kind === 'postgres' ? POSTGRES_COMMITS_IN_FLIGHT : 1,
    },
    log,
    scheduler,
    extras: options.extras({ config, store, log, scheduler, env }),
  });
}
