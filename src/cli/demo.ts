import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { DEMO_MRN, demoClinicPaths } from '../demo/clinic-side.js';
import { Demo } from '../demo/demo.js';
import { prepareDemoDir } from '../demo/environment.js';
import { UsageError } from '../errors.js';
import { runUntilSignalled } from '../runtime/lifecycle.js';
import { realScheduler } from '../util/scheduler.js';
import { parseCommandArgs } from './args.js';
import type { CommandIo } from './io.js';
import type { ProgressStream } from './progress.js';

export const DEMO_HELP = `Usage: rpm-gateway demo [options]

The whole path on this machine, with nothing to set up (this is what "npm start" runs): a development PKI,
the embedded clinical broker, the clinic side, and the hub "rpm-gateway start" runs, reading five simulated
devices (pulse oximeter, BP cuff, thermometer, scale, glucose meter) through simulated Bluetooth, sessions,
the encrypted store, and signed batches over mutual-TLS MQTT to the clinic intake, which verifies each message
and commits its readings to the clinic's encrypted database (<data dir>/clinic/clinic.db) before acknowledging
it. The clinic dashboard runs on that database as "rpm-gateway clinic serve" runs it (with its alarm
engine), on 127.0.0.1: the demo prints its https://localhost address, the demo CA to trust, and a staff login
made for this run (an admin; a random password shown once; the first login enrols TOTP from a QR code; the
logins of earlier runs are disabled). The terminal shows what the database has committed, one line per
reading; the hub's, the intake's and the dashboard's JSON log goes to <data dir>/logs/hub.log. No file in the
data directory holds a reading value in the clear.

Runs until Ctrl-C (or SIGTERM), then stops everything in order (exit status 0); a second Ctrl-C ends it at
once.

Options:
  --duration <seconds>      stop after this many seconds (exit status 0)
  --data-dir <dir>          keep the demo's state (PKI, configuration, store, clinic database, logs) in <dir>,
                            made if absent, and use it again next time (the clinic keeps earlier readings);
                            without it the demo uses a new temporary folder and removes it at exit. A folder
                            holding anything but a demo's state is refused.
  --scenario <name>         none (default), or outage: the clinic's broker goes off the network for 30 s, so
                            the hub's backlog and its drain are visible
  --outage-seconds <n>      how long the outage lasts (default 30; tests use a short one)
  --fhir-folder <dir>       also export what the clinic stores as FHIR R4 transaction Bundles (one JSON file
                            each, docs/fhir.md) into <dir>, made if absent. They hold reading values in the clear,
                            so <dir> may not be inside the data directory.
  -h, --help                show this help`;

const SCENARIOS = ['none', 'outage'] as const;
type Scenario = (typeof SCENARIOS)[number];

export async function demoCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: [...argv],
    options: {
      duration: { type: 'string' },
      'data-dir': { type: 'string' },
      scenario: { type: 'string' },
      'outage-seconds': { type: 'string' },
      'fhir-folder': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(`${DEMO_HELP}\n`);
    return 0;
  }
  const durationS = values.duration === undefined ? undefined : seconds('--duration', values.duration);
  const outageS =
    values['outage-seconds'] === undefined ? 30 : seconds('--outage-seconds', values['outage-seconds']);
  const scenario = (values.scenario ?? 'none') as Scenario;
  if (!SCENARIOS.includes(scenario)) {
    throw new UsageError(`--scenario: "${values.scenario}" is not one of: ${SCENARIOS.join(', ')}`);
  }

  // Without --data-dir: a new temporary folder, never the hub's own data directory (~/.local/state/rpm-gateway
  // or /var/lib/rpm-gateway), so trying the demo cannot touch a real store.
  const temporary = values['data-dir'] === undefined;
  const dir = values['data-dir'] ?? mkdtempSync(join(tmpdir(), 'rpm-gateway-demo-'));
  const cleanUp = () => {
    if (temporary) rmSync(dir, { recursive: true, force: true });
  };
  const fhirFolder = values['fhir-folder'] === undefined ? undefined : resolve(values['fhir-folder']);
  if (fhirFolder !== undefined && inside(fhirFolder, resolve(dir))) {
    cleanUp();
    throw new UsageError(
      '--fhir-folder: the Bundles hold reading values in the clear; give a folder outside the data directory',
    );
  }
  let durationTimer: NodeJS.Timeout | undefined;
  try {
    const environment = await prepareDemoDir(dir, io);
    const out = (line: string) => io.stdout.write(`${line}\n`);
    const shown = (file: string) => relative(environment.dir, file);
    const port = environment.loaded.config.uplink.brokers[0]?.port;
    out('rpm-gateway demo: five simulated devices -> the hub -> the clinic, all on this machine');
    out(
      `  data:    ${environment.dir}${temporary ? ' (temporary: removed at exit; keep it with --data-dir)' : ''}`,
    );
    out(
      `  hub:     config ${shown(environment.configFile)}, log ${shown(environment.logFile)} (JSON, no reading values), encrypted store ${shown(join(environment.dir, 'outbox.db'))}`,
    );
    out(
      `  path:    simulated Bluetooth -> sessions -> encrypted store -> signed batches over mutual-TLS MQTT -> broker 127.0.0.1:${port} -> clinic`,
    );
    out(
      `  clinic:  intake -> encrypted clinic database ${shown(demoClinicPaths(environment.dir).database)}, gateway assigned to patient ${DEMO_MRN}; broker queues encrypted on disk in ${shown(demoClinicPaths(environment.dir).broker)}`,
    );
    out(
      '           the dashboard (below) shows it live; the lines after it are what the clinic database has committed (printed after each commit)',
    );
    out(
      `  ${durationS === undefined ? 'runs until Ctrl-C' : `runs for ${durationS} s (Ctrl-C stops sooner)`}${scenario === 'outage' ? `; scenario outage: the broker goes away for ${outageS} s once every device has reported` : ''}`,
    );

    const demo = new Demo({
      environment,
      scheduler: realScheduler,
      out,
      progress: io.stdout as unknown as ProgressStream,
      scenario,
      outageMs: outageS * 1000,
      ...(fhirFolder === undefined ? {} : { fhirFolder }),
    });
    const stopWhen =
      durationS === undefined
        ? undefined
        : new Promise<string>((resolve) => {
            durationTimer = setTimeout(() => resolve(`--duration ${durationS}`), durationS * 1000);
          });
    const status = await runUntilSignalled({
      service: demo,
      signals: process,
      deadlineMs: environment.loaded.config.shutdown.deadlineMs,
      scheduler: realScheduler,
      log: demo.log,
      ...(stopWhen ? { stopWhen } : {}),
      forceExit: (code) => {
        cleanUp();
        process.exit(code);
      },
    });
    if (demo.failure !== undefined) {
      const error = demo.failure as { message?: string; code?: string };
      io.stderr.write(
        `rpm-gateway demo: the demo did not start: ${error.message ?? String(demo.failure)}${error.code ? ` [${error.code}]` : ''} (the hub's log: ${environment.logFile})\n`,
      );
      return status === 0 ? 1 : status;
    }
    out(demo.summaryLine());
    if (status !== 0)
      io.stderr.write(`rpm-gateway demo: the stop did not finish in time (see ${environment.logFile})\n`);
    return status;
  } finally {
    if (durationTimer !== undefined) clearTimeout(durationTimer);
    cleanUp();
  }
}

/** Whether `path` is `dir` or lies under it (both absolute). */
function inside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

function seconds(option: string, text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !Number.isFinite(n) || n <= 0 || n > 7 * 24 * 3600) {
    throw new UsageError(`${option}: expected a number of seconds greater than 0, got "${text}"`);
  }
  return n;
}
