import { readFileSync } from 'node:fs';
import { BrokerService } from '../clinic/service/broker-service.js';
import { runClinicProcess } from '../clinic/service/run.js';
import { CLINIC_CONFIG_OPTIONS, CLINIC_CONFIG_OPTIONS_HELP } from '../config/clinic/options.js';
import { keyProvider, secretPath } from '../config/secrets.js';
import { readPrivateKeyFile } from '../pki/files.js';
import { createLog } from '../runtime/log.js';
import { systemClock } from '../util/clock.js';
import { parseCommandArgs } from './args.js';
import { EXIT_CONFIG, loadClinicOrReport, reportedAsConfigError } from './clinic-load.js';
import type { CommandIo } from './io.js';

export const BROKER_HELP = `Usage: rpm-gateway broker [options]

Runs the clinic's embedded MQTT broker (the broker: section of the clinic configuration) until SIGTERM or
SIGINT: mutual TLS against pki.ca (and pki.crl, re-read when it changes), the per-gateway ACL, sessions and
QoS 1 queues on disk in broker.persistence.dir, and the intake's sessions (broker.durableSubscribers) made
before any hub can connect, so no reading is acknowledged to a hub while nobody would receive it.

Logs are JSON lines on stdout (no reading values, no patient identifiers). Every refusal (TLS, CONNECT,
PUBLISH, SUBSCRIBE) and every CRL change also goes to the hash-chained audit log
<paths.dataDir>/broker-audit.log. Under systemd (Type=notify) it says when it listens.

Before anything else the configuration is checked: every problem is printed and nothing starts (exit status
2). On SIGTERM or SIGINT: stops listening, closes the queues on disk, exit status 0 (1 past 10 s); a second
signal ends it at once.

Options:
${CLINIC_CONFIG_OPTIONS_HELP}
  -h, --help             show this help`;

export async function brokerCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: [...argv],
    options: { ...CLINIC_CONFIG_OPTIONS, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.stdout.write(`${BROKER_HELP}\n`);
    return 0;
  }
  const loaded = loadClinicOrReport('broker', values, io, 'broker');
  if (loaded === undefined) return EXIT_CONFIG;
  const { config } = loaded;
  const settings = config.broker;
  if (settings === undefined) return EXIT_CONFIG; // loadClinicOrReport required it
  const log = createLog({ level: config.log.level, redact: config.log.redact, base: { service: 'broker' } });
  let service: BrokerService;
  try {
    service = new BrokerService({
      settings,
      ca: readFileSync(config.pki.ca, 'utf8'),
      cert: readFileSync(settings.cert, 'utf8'),
      key: await readPrivateKeyFile(secretPath(settings.key, io.env)),
      ...(config.pki.crl === undefined ? {} : { crlFile: config.pki.crl }),
      persistenceKey: keyProvider(settings.persistence.key, io.env, { create: true }),
      dataDir: config.paths.dataDir,
      log,
      clock: systemClock,
    });
  } catch (error) {
    if (reportedAsConfigError('broker', error, io)) return EXIT_CONFIG;
    throw error;
  }
  for (const warning of loaded.warnings) log.warn('config.warning', { detail: warning });
  return runClinicProcess({ name: 'broker', service, log, env: io.env });
}
