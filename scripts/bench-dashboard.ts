/**
 * `npm run bench:dashboard`: issue 12's benchmark. `rpm-gateway clinic serve` on SQLite, the default deployment
 * (the intake, the alarm engine and the dashboard in one process: SQLite tells a commit only to the process
 * that made it), with P patients' hubs each sending one reading a second and S staff sessions holding the live
 * feed: the delay from each reading's commit to its event at the client, the events lost, and the server's CPU
 * and memory. docs/dashboard.md, "Performance", has the method and results; --help the options.
 *
 * Process layout (each a process of its own, so the server's CPU and RSS are its own):
 *   this process   the orchestrator: PKI, configuration, database set-up; samples the server; joins; prints
 *   broker         `rpm-gateway broker` (the clinic's embedded broker, its queues on disk with fsync)
 *   server         `rpm-gateway clinic serve`: what is measured
 *   publisher      the hubs: one mutual-TLS MQTT connection each (scripts/support/dashboard-bench-publisher.ts)
 *   clients        the staff's browsers: HTTPS logins and live feeds (scripts/support/dashboard-bench-clients.ts)
 *
 * Readings go the real way, hub to broker to intake to store commit to the dashboard's live feed: nothing is
 * committed to the store from outside the server process (on SQLite the dashboard would never hear of it).
 * The delay is the client's arrival time minus the `committedAt` the event carries (the store's clock, stamped
 * in the commit's transaction); both processes read the same system clock.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDevelopmentPki } from '../src/pki/index.js';
import { type BenchChild, benchChild, stopBenchChild } from './support/bench-child.js';
import {
  awaitCommitted,
  BENCH_CLINIC,
  initClinic,
  processCpu,
  processMemory,
  setUpClinic,
  spawnCli,
  stopCli,
  writeBenchConfig,
} from './support/dashboard-bench-clinic.js';
import {
  type ClientRecord,
  DASHBOARD_BENCH_HELP,
  type DashboardBenchOptions,
  GOAL_P99_MS,
  gatewayIdOf,
  parseDashboardBenchArgs,
  percentile,
  staffPlan,
  type Tally,
  tally,
} from './support/dashboard-bench-plan.js';
import { createFleet, writeFleetCertificates } from './support/gateway-fleet.js';
import { freePort, mosquittoAvailable, startMosquitto } from './support/mosquitto.js';
import { printTable } from './support/table.js';

const here = fileURLToPath(new URL('.', import.meta.url));
/** How long after the measurement every acknowledged reading may take to be committed before it counts as not. */
const COMMIT_WAIT_MS = 30_000;

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function loadText(): string {
  return loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
}

interface ServerFigures {
  readonly seconds: number;
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
  readonly rssMax: number;
  readonly rssPeak: number;
}

interface Result {
  readonly options: DashboardBenchOptions;
  readonly startedAt: string;
  readonly loadBefore: string;
  readonly loadAfter: string;
  /** Measured readings the broker acknowledged to the hubs, and of them those the intake committed. */
  readonly readingsSent: number;
  readonly readingsCommitted: number;
  /** Acknowledged to the hub, but not in the database COMMIT_WAIT_MS after the measurement. */
  readonly notCommitted: number;
  readonly publishFailures: number;
  readonly publisherMaxLateMs: number;
  readonly server: ServerFigures;
  readonly clientsCpuPercent: number;
  readonly groups: { readonly name: string; readonly tally: Tally }[];
  readonly endedStreams: number;
  readonly unfinished: readonly string[];
  readonly liveErrors: number;
}

async function run(options: DashboardBenchOptions, root: string): Promise<Result> {
  const startedAt = new Date().toISOString();
  const loadBefore = loadText();
  const stops: (() => Promise<unknown>)[] = [];
  try {
    console.error(`bench:dashboard: PKI and ${options.patients} hub certificates in ${root}`);
    const pki = await createDevelopmentPki(join(root, 'pki'), { clinicName: BENCH_CLINIC });
    const fleet = await createFleet(pki.ca, options.patients, 'gw-dash');
    fleet.forEach((g, i) => {
      if (g.id !== gatewayIdOf(i)) throw new Error(`the fleet's hub ${i} is ${g.id}, not ${gatewayIdOf(i)}`);
    });
    const gatewayCerts = join(root, 'gateways');
    writeFleetCertificates(fleet, gatewayCerts);
    const fleetFile = join(root, 'fleet.json');
    writeFileSync(
      fleetFile,
      JSON.stringify({
        gateways: fleet.map((g) => ({
          id: g.id,
          certificatePem: g.certificatePem,
          privateKeyPem: g.privateKeyPem,
        })),
      }),
      { mode: 0o600 },
    );
    let brokerPort = await freePort();
    let intakeBrokerPort: number | undefined;
    if (options.broker === 'mosquitto') {
      if (!mosquittoAvailable())
        throw new Error('--broker mosquitto: Mosquitto is not installed (Debian package mosquitto)');
      const mosquitto = await startMosquitto({
        dir: root,
        caFile: pki.files.ca,
        certFile: pki.files.broker,
        keyFile: pki.files.brokerKey,
        clinicName: BENCH_CLINIC,
        // The intake holds each PUBACK until its commit: no cap on messages in flight, and no dropped queue
        // (mosquitto.conf(5); docs/brokers.md).
        settings: ['max_inflight_messages 0', 'max_queued_messages 0', 'max_connections -1'],
      });
      stops.push(() => mosquitto.stop());
      brokerPort = mosquitto.port;
      intakeBrokerPort = mosquitto.port;
    }
    const dashboardPort = await freePort();
    const files = writeBenchConfig({
      root,
      pki,
      gatewayCerts,
      brokerPort,
      ...(intakeBrokerPort === undefined ? {} : { intakeBrokerPort }),
      dashboardPort,
      runSeconds: options.warmupSeconds + options.seconds,
    });
    await initClinic(files.config);
    const users = staffPlan(options);
    const accounts = await setUpClinic(files.config, options.patients, users);

    if (options.broker === 'clinic') {
      const broker = spawnCli(['broker', '--config', files.config], join(root, 'broker.log'));
      stops.push(() => stopCli(broker));
      await broker.waitFor('broker.listening');
    }
    const server = spawnCli(['clinic', 'serve', '--config', files.config], join(root, 'serve.log'));
    stops.unshift(() => stopCli(server));
    const served = await server.waitFor('dashboard.listening');
    await server.waitFor('intake.started');
    const pid = server.child.pid as number;
    console.error(
      `bench:dashboard: ${options.broker} broker on port ${brokerPort}; ${String(served.detail)}`,
    );

    const clients = benchChild(join(here, 'support', 'dashboard-bench-clients.js'), {
      port: dashboardPort,
      ca: pki.files.ca,
      users: accounts,
    });
    stops.unshift(() => stopBenchChild(clients));
    await clients.next('started');
    clients.send({ type: 'login' });
    await clients.next('ready');
    console.error(
      `bench:dashboard: ${accounts.length} staff logged in (password + TOTP), each holding /api/live`,
    );

    const publisher = benchChild(join(here, 'support', 'dashboard-bench-publisher.js'), {
      fleetFile,
      ca: pki.files.ca,
      port: brokerPort,
      warmupSeconds: options.warmupSeconds,
      seconds: options.seconds,
    });
    stops.unshift(() => stopBenchChild(publisher));
    await publisher.next('ready');
    publisher.send({ type: 'connect' });
    await publisher.next('connected');
    console.error(
      `bench:dashboard: ${options.patients} hubs connected; warm-up ${options.warmupSeconds} s, then ${options.seconds} s measured`,
    );

    const window = await sampleWindow(publisher, pid);
    const sent = window.measured;
    // Only what the intake committed can reach a page: wait for it, then fence it with the closing round.
    const { committed, missing } = await awaitCommitted(
      files.config,
      sent.map(([id]) => id),
      COMMIT_WAIT_MS,
    );
    publisher.send({ type: 'close' });
    const done = (await publisher.next('done')) as {
      closing: [string, number][];
      failures: { count: number; first?: string };
      maxLateMs: number;
    };
    clients.send({ type: 'drain', closing: done.closing.map(([id]) => id) });
    const report = (await clients.next('report')) as {
      clients: ClientRecord[];
      unfinished: string[];
      cpuUserMs: number;
      cpuSystemMs: number;
      seconds: number;
    };
    if (options.keep) {
      writeFileSync(
        join(root, 'readings.json'),
        JSON.stringify({ sent, missing, closing: done.closing, report }),
      );
    }
    if (done.failures.count > 0) console.error(`bench:dashboard: a publish failed: ${done.failures.first}`);

    const measured = new Map(sent.filter(([id]) => committed.has(id)));
    const patientOf = new Map([...sent, ...done.closing]);
    const group = (name: string, keep: (c: ClientRecord) => boolean) => ({
      name,
      tally: tally(measured, patientOf, users, report.clients.filter(keep)),
    });
    const groups = [
      group(
        `${count(options.admins, 'admin')} (${count(options.patients, 'patient')} each)`,
        (c) => c.role === 'admin',
      ),
      group(
        `${count(options.clinicians, 'clinician')} (${count(options.team, 'patient')} each)`,
        (c) => c.role === 'clinician',
      ),
      group(`all ${count(accounts.length, 'connection')}`, () => true),
    ].filter((g) => g.tally.connections > 0);
    return {
      options,
      startedAt,
      loadBefore,
      loadAfter: loadText(),
      readingsSent: sent.length,
      readingsCommitted: measured.size,
      notCommitted: missing.length,
      publishFailures: done.failures.count,
      publisherMaxLateMs: done.maxLateMs,
      server: window.figures,
      clientsCpuPercent: (report.cpuUserMs + report.cpuSystemMs) / 10 / report.seconds,
      groups,
      endedStreams: report.clients.filter((c) => c.ended).length,
      unfinished: report.unfinished,
      liveErrors: server.count('dashboard.live_error'),
    };
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
  }
}

/** The server's CPU between the first measured reading and the last measured PUBACK; its RSS every second. */
async function sampleWindow(
  publisher: BenchChild,
  pid: number,
): Promise<{ figures: ServerFigures; measured: [string, number][] }> {
  const measuring = publisher.next('measuring');
  const measured = publisher.next('measured');
  publisher.send({ type: 'go' });
  await measuring;
  const started = performance.now();
  const cpu0 = processCpu(pid);
  let rssMax = processMemory(pid).rss;
  const sampler = setInterval(() => {
    rssMax = Math.max(rssMax, processMemory(pid).rss);
  }, 1_000);
  let ids: [string, number][];
  try {
    ids = ((await measured) as { measured: [string, number][] }).measured;
  } finally {
    clearInterval(sampler);
  }
  const cpu1 = processCpu(pid);
  const memory = processMemory(pid);
  const figures = {
    seconds: (performance.now() - started) / 1000,
    cpuUserMs: cpu1.userMs - cpu0.userMs,
    cpuSystemMs: cpu1.systemMs - cpu0.systemMs,
    rssMax: Math.max(rssMax, memory.rss),
    rssPeak: memory.peak,
  };
  return { figures, measured: ids };
}

function print(r: Result): void {
  const o = r.options;
  const mib = (bytes: number) => (bytes / 1_048_576).toFixed(0);
  console.log(
    `bench:dashboard  ${r.startedAt}  rpm-gateway clinic serve on SQLite (intake + alarm engine + dashboard, one process); ${process.version}`,
  );
  console.log(
    `${o.patients} patients, one hub each, 1 reading/s each (SpO2 + pulse rate, one signed QoS 1 message) over mutual-TLS MQTT ` +
      `through ${o.broker === 'clinic' ? 'rpm-gateway broker' : 'Mosquitto'} into the intake's commits (not committed to the store directly); ` +
      `${r.groups.at(-1)?.tally.connections ?? 0} staff sessions logged in over HTTPS (password + TOTP), each holding /api/live`,
  );
  console.log(
    `warm-up ${o.warmupSeconds} s, measured ${r.server.seconds.toFixed(1)} s; delay = arrival at the client - the event's committedAt (same machine, same clock); ` +
      `load average before ${r.loadBefore}, after ${r.loadAfter} (2 cores, shared with other engineers' test runs)`,
  );
  console.log('');
  const table: string[][] = [
    [
      'connections',
      'events',
      'expected',
      'lost',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      `goal p99 < ${GOAL_P99_MS} ms`,
    ],
  ];
  for (const { name, tally: t } of r.groups) {
    const p99 = percentile(t.delays, 99);
    table.push([
      name,
      String(t.delivered),
      String(t.expected),
      String(t.lost),
      percentile(t.delays, 50).toFixed(0),
      percentile(t.delays, 90).toFixed(0),
      p99.toFixed(0),
      (t.delays.at(-1) ?? Number.NaN).toFixed(0),
      p99 < GOAL_P99_MS ? 'met' : 'NOT met',
    ]);
  }
  printTable(table);
  console.log('');
  const s = r.server;
  const cpuMs = s.cpuUserMs + s.cpuSystemMs;
  printTable([
    [
      'server process',
      'readings',
      'readings/s',
      'CPU user s',
      'CPU sys s',
      'CPU %',
      'CPU ms/reading',
      'RSS max MiB',
      'peak RSS MiB',
    ],
    [
      'rpm-gateway clinic serve',
      String(r.readingsCommitted),
      (r.readingsCommitted / s.seconds).toFixed(0),
      (s.cpuUserMs / 1000).toFixed(1),
      (s.cpuSystemMs / 1000).toFixed(1),
      `${(cpuMs / 10 / s.seconds).toFixed(0)}%`,
      (cpuMs / r.readingsCommitted).toFixed(2),
      mib(s.rssMax),
      mib(s.rssPeak),
    ],
  ]);
  console.log('');
  const all = r.groups.at(-1)?.tally;
  console.log(
    `duplicates ${all?.duplicates ?? 0}, events of a patient the session may not see ${all?.foreign ?? 0}, ` +
      `streams ended early ${r.endedStreams}, dashboard.live_error ${r.liveErrors}, failed publishes ${r.publishFailures}; ` +
      `measured readings acknowledged by the broker ${r.readingsSent}, not committed by the intake ${COMMIT_WAIT_MS / 1000} s later ${r.notCommitted}; ` +
      `publisher behind schedule by ${r.publisherMaxLateMs} ms at most; clients process CPU ${r.clientsCpuPercent.toFixed(0)}%`,
  );
  if (r.unfinished.length > 0) console.log(`no closing reading within 60 s at: ${r.unfinished.join(', ')}`);
}

async function main(): Promise<number> {
  const options = parseDashboardBenchArgs(process.argv.slice(2));
  if (options === 'help') {
    console.log(DASHBOARD_BENCH_HELP);
    return 0;
  }
  const root = mkdtempSync(join(tmpdir(), 'rpm-bench-dashboard-'));
  try {
    const result = await run(options, root);
    print(result);
    if (options.json !== undefined) {
      const summary = {
        ...result,
        groups: result.groups.map(({ name, tally: t }) => ({
          name,
          connections: t.connections,
          expected: t.expected,
          delivered: t.delivered,
          lost: t.lost,
          duplicates: t.duplicates,
          foreign: t.foreign,
          p50: percentile(t.delays, 50),
          p90: percentile(t.delays, 90),
          p99: percentile(t.delays, 99),
          max: t.delays.at(-1) ?? null,
        })),
      };
      writeFileSync(options.json, `${JSON.stringify(summary, null, 2)}\n`);
    }
    const all = result.groups.at(-1)?.tally;
    // A run that lost a reading or an event, or leaked one across care teams, failed, whatever its delays.
    const whole = all !== undefined && all.lost === 0 && all.foreign === 0 && all.duplicates === 0;
    return whole && result.notCommitted === 0 ? 0 : 1;
  } finally {
    if (options.keep) console.error(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`bench:dashboard: ${(error as Error).message}`);
    process.exitCode = 1;
  },
);
