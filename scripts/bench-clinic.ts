/**
 * `npm run bench:clinic`: signed messages from 1,000 simulated gateways through a broker into ONE clinic intake
 * process, persisted and de-duplicated, into SQLite and (when it is available) PostgreSQL, printed as tables
 * with the issue's goals marked met or NOT met. docs/clinic-intake.md, "Benchmark", has the method and results.
 *
 * Process layout (each a process of its own, so the intake's CPU and RSS are its own):
 *   this process   the orchestrator: PKI and fleet, starts everything, joins the stamps, prints
 *   broker         Mosquitto 2.0 (scripts/support/mosquitto.ts) for the headline figures, or the embedded
 *                  ClinicalBroker with its LevelDB persistence (sync: true; scripts/support/clinic-bench-broker.ts)
 *   publisher      the gateways: one mutual-TLS MQTT connection per gateway (scripts/support/clinic-bench-publisher.ts)
 *   intake         one ClinicIntake with its store (scripts/support/clinic-bench-intake.ts): what is measured
 *
 * Phases (scripts/support/clinic-bench-plan.ts): backlog (batches of 250 readings), live (one reading per
 * message, 1 in 100 sent twice), mixed (live messages at a fixed rate while 100 gateways send backlog batches).
 * Throughput: readings stored / (last commit - first publish). Latency: publish (publisher process) to commit
 * (when the store's commit resolves in the intake process), both stamped with performance.timeOrigin + performance.now().
 *
 * Before the measured phases, a warm-up (not reported): 100 gateways send a backlog batch and a one-reading message
 * each, so the intake runs compiled code from the first measured message, as a running intake does.
 *
 * Options: --brokers mosquitto,embedded --stores sqlite,pg --gateways 1000 --backlog-batches 1 --live 20
 * --mixed-rate 500 --mixed-seconds 10 --phases backlog,live,mixed --window 4 --warmup 100 --cpu-prof DIR --pg-waits (what the
 * intake's PostgreSQL backends wait on, sampled from pg_stat_activity every 10 ms) --pg-setting NAME=VALUE
 * (repeatable: a server setting for the benchmark's PostgreSQL, to measure a configuration) --dir DIR (keep the
 * run's folder, PKI and fleet included, and reuse them next time: issuing 1,000 certificates takes 10-30 s).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { clinicClientId } from '../src/broker/acl.js';
import { createDevelopmentPki, type DevelopmentPki } from '../src/pki/index.js';
import { type BenchChild, benchChild, stopBenchChild } from './support/bench-child.js';
import { BENCH_PG_SETTINGS, postgresMissing, startBenchPostgres } from './support/clinic-bench-pg.js';
import { type BenchPlan, type PhaseName, planPhase, probeId } from './support/clinic-bench-plan.js';
import { createFleet, writeFleetCertificates } from './support/gateway-fleet.js';
import { mosquittoAvailable, startMosquitto } from './support/mosquitto.js';
import type { WaitSample } from './support/pg-wait-sampler.js';
import { printTable } from './support/table.js';

const { values } = parseArgs({
  options: {
    help: { type: 'boolean', short: 'h' },
    brokers: { type: 'string', default: 'mosquitto,embedded' },
    stores: { type: 'string', default: 'sqlite,pg' },
    phases: { type: 'string', default: 'backlog,live,mixed' },
    gateways: { type: 'string', default: '1000' },
    'batch-size': { type: 'string', default: '250' },
    'backlog-batches': { type: 'string', default: '1' },
    live: { type: 'string', default: '20' },
    'mixed-rate': { type: 'string', default: '500' },
    'mixed-seconds': { type: 'string', default: '10' },
    window: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '100' },
    'cpu-prof': { type: 'string' },
    'pg-waits': { type: 'boolean' },
    'pg-setting': { type: 'string', multiple: true },
    dir: { type: 'string' },
  },
});

if (values.help) {
  console.log(
    [
      'Usage: npm run bench:clinic [-- options]',
      '  signed messages from simulated gateways through a broker into one clinic intake process (docs/clinic-intake.md, "Benchmark")',
      '  --brokers mosquitto,embedded   brokers to run (default both)',
      '  --stores sqlite,pg             clinic databases (default both; pg needs Debian postgresql-15)',
      '  --phases backlog,live,mixed    phases to run (default all three)',
      '  --gateways 1000                simulated gateways, one mutual-TLS connection each',
      '  --batch-size 250               readings per backlog batch',
      '  --backlog-batches 1            backlog batches per gateway',
      '  --live 20                      one-reading messages per gateway in the live phase',
      '  --mixed-rate 500               live messages/s in the mixed phase',
      '  --mixed-seconds 10             length of the mixed phase',
      '  --window 4                     PUBLISHes per gateway awaiting their PUBACK',
      '  --warmup 100                   gateways sending a backlog batch and a one-reading message first, not counted (0: none)',
      '  --cpu-prof DIR                 write a CPU profile of the intake process to DIR',
      "  --pg-waits                     sample what the intake's PostgreSQL backends wait on, per phase",
      '  --pg-setting NAME=VALUE        a setting for the PostgreSQL server (repeatable), e.g. wal_buffers=16MB',
      '  --dir DIR                      keep the run folder (PKI, fleet) in DIR and reuse it next time',
    ].join('\n'),
  );
  process.exit(0);
}

/** --pg-setting NAME=VALUE, as given: the server refuses a name or value it does not know when it starts. */
const pgSettings: Record<string, string> = {};
for (const setting of values['pg-setting'] ?? []) {
  const match = /^([a-z_][a-z0-9_.]*)=(\S+)$/i.exec(setting);
  if (!match) {
    console.error(`bench:clinic: --pg-setting takes NAME=VALUE, not ${JSON.stringify(setting)}`);
    process.exit(2);
  }
  pgSettings[match[1] as string] = match[2] as string;
}

const plan: BenchPlan = {
  gateways: Number(values.gateways),
  batchSize: Number(values['batch-size']),
  backlogBatches: Number(values['backlog-batches']),
  live: Number(values.live),
  duplicateEvery: 100,
  mixedRate: Number(values['mixed-rate']),
  mixedSeconds: Number(values['mixed-seconds']),
  mixedBacklogGateways: 100,
  warmupGateways: Number(values.warmup),
};
const phases = (values.phases as string).split(',') as PhaseName[];
const here = fileURLToPath(new URL('.', import.meta.url));
const root = values.dir ?? mkdtempSync(join(tmpdir(), 'rpm-bench-clinic-'));
mkdirSync(root, { recursive: true });
const clinicName = 'clinic-bench';
const intakeClientId = clinicClientId(clinicName, 'intake');

/** Goals of issue 11, "Benchmark". */
const GOAL_BACKLOG_READINGS = 20_000;
const GOAL_LIVE_MESSAGES = 3_000;

function loadText(): string {
  return loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
}

// ---------------------------------------------------------------------------------------------- PKI and fleet
interface Setup {
  readonly pki: Pick<DevelopmentPki, 'files'>;
  readonly fleetFile: string;
  readonly inventoryDir: string;
  readonly gatewayIds: string[];
  readonly issueSeconds: number | undefined;
}

async function setup(): Promise<Setup> {
  const pkiDir = join(root, 'pki');
  const fleetFile = join(root, `fleet-${plan.gateways}.json`);
  const inventoryDir = join(root, `gateways-${plan.gateways}`);
  if (existsSync(fleetFile) && existsSync(join(pkiDir, 'ca.crt'))) {
    const gateways = (JSON.parse(readFileSync(fleetFile, 'utf8')) as { gateways: { id: string }[] }).gateways;
    const files = {
      ca: join(pkiDir, 'ca.crt'),
      clinic: join(pkiDir, 'clinic.crt'),
      clinicKey: join(pkiDir, 'clinic.key'),
      broker: join(pkiDir, 'broker.crt'),
      brokerKey: join(pkiDir, 'broker.key'),
      gateway: join(pkiDir, 'gateway.crt'),
      gatewayKey: join(pkiDir, 'gateway.key'),
    };
    return {
      pki: { files },
      fleetFile,
      inventoryDir,
      gatewayIds: gateways.map((g) => g.id),
      issueSeconds: undefined,
    };
  }
  mkdirSync(pkiDir, { recursive: true });
  const pki = await createDevelopmentPki(pkiDir, { clinicName });
  const started = performance.now();
  const fleet = await createFleet(pki.ca, plan.gateways, 'gw-bench');
  const issueSeconds = (performance.now() - started) / 1000;
  writeFleetCertificates(fleet, inventoryDir);
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
  return { pki, fleetFile, inventoryDir, gatewayIds: fleet.map((g) => g.id), issueSeconds };
}

// ------------------------------------------------------------------------------------------ child processes
type Child = BenchChild;

function child(script: string, config: object, execArgv: string[] = []): Child {
  return benchChild(join(here, 'support', script), config, execArgv);
}

const stopChild = stopBenchChild;

// -------------------------------------------------------------------------------------------------- results
interface PhaseResult {
  readonly variant: string;
  readonly broker: string;
  readonly store: string;
  readonly phase: PhaseName;
  readonly messages: number;
  readonly readings: number;
  readonly seconds: number;
  readonly latencies: number[];
  readonly cpuPercent: number;
  readonly rssMax: number;
  readonly perCommit: number;
  readonly waits: { readonly rounds: number; readonly waits: readonly WaitSample[] } | undefined;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function runVariant(
  s: Setup,
  broker: 'mosquitto' | 'embedded',
  storeKind: 'sqlite' | 'pg',
): Promise<PhaseResult[]> {
  const dir = mkdtempSync(join(root, `${broker}-${storeKind}-`));
  const cleanup: (() => Promise<void>)[] = [];
  try {
    let port: number;
    if (broker === 'mosquitto') {
      const mosquitto = await startMosquitto({
        dir,
        caFile: s.pki.files.ca,
        certFile: s.pki.files.broker,
        keyFile: s.pki.files.brokerKey,
        clinicName,
        settings: [
          // The intake holds each PUBACK until its group commit: Mosquitto's default of 20 messages in flight per
          // client would cap a group at 20. 0 = no limit (mosquitto.conf(5)); the intake bounds itself.
          'max_inflight_messages 0',
          // Default 1000: beyond it Mosquitto DROPS QoS 1 messages it has PUBACKed (docs/brokers.md).
          'max_queued_messages 0',
          'max_connections -1',
        ],
      });
      cleanup.push(() => mosquitto.stop());
      port = mosquitto.port;
    } else {
      const embedded = child('clinic-bench-broker.js', {
        ca: s.pki.files.ca,
        cert: s.pki.files.broker,
        key: s.pki.files.brokerKey,
        persistenceDir: join(dir, 'broker'),
        sync: true,
        intakeClientId,
      });
      cleanup.push(() => stopChild(embedded));
      port = ((await embedded.next('ready')) as { port: number }).port;
    }
    console.error(`${broker}/${storeKind}: broker on port ${port}`);
    const publisher = child('clinic-bench-publisher.js', {
      fleetFile: s.fleetFile,
      ca: s.pki.files.ca,
      plan,
      window: Number(values.window),
      port,
    });
    cleanup.unshift(() => stopChild(publisher));
    await publisher.next('ready');

    let storeConfig: object;
    if (storeKind === 'sqlite') {
      storeConfig = { kind: 'sqlite', path: join(dir, 'clinic.db') };
    } else {
      const pg = await startBenchPostgres(pgSettings);
      cleanup.push(() => pg.stop());
      storeConfig = { kind: 'pg', url: await pg.database() };
    }
    const profDir = values['cpu-prof'];
    const intake = child(
      'clinic-bench-intake.js',
      {
        store: storeConfig,
        port,
        ca: s.pki.files.ca,
        clinic: s.pki.files.clinic,
        clinicKey: s.pki.files.clinicKey,
        clientId: intakeClientId,
        inventoryDir: s.inventoryDir,
        gatewayIds: s.gatewayIds,
        plan,
        pgWaits: values['pg-waits'] === true,
      },
      profDir === undefined
        ? []
        : [
            '--cpu-prof',
            '--cpu-prof-dir',
            profDir,
            '--cpu-prof-name',
            `intake-${broker}-${storeKind}-${Date.now()}.cpuprofile`,
          ],
    );
    cleanup.unshift(() => stopChild(intake));
    await intake.next('ready');
    console.error(`${broker}/${storeKind}: intake subscribed; connecting ${plan.gateways} gateways`);
    publisher.send({ type: 'connect' });
    await publisher.next('connected');
    console.error(`${broker}/${storeKind}: ${plan.gateways} gateways connected`);

    const runPhase = async (phase: PhaseName): Promise<PhaseResult> => {
      publisher.send({ type: 'prepare', phase });
      const { messages } = (await publisher.next('prepared')) as { messages: number };
      intake.send({ type: 'phase', phase });
      await intake.next('armed');
      spawnSync('sync'); // an earlier phase's writeback must not land in this phase's fsyncs
      const published = publisher.next('published');
      const done = intake.next('phase-done');
      publisher.send({ type: 'go' });
      const p = (await published) as { publishedAt: [string, number][]; firstAt: number };
      // From here the intake only has to commit what the broker acknowledged; it fails if that stalls.
      intake.send({ type: 'acknowledged' });
      console.error(
        `${broker}/${storeKind} ${phase}: all ${messages} messages acknowledged; awaiting commits`,
      );
      const d = (await done) as {
        inserted: number;
        lastCommitAt: number;
        commitAt: [string, number][];
        cpuUserMs: number;
        cpuSystemMs: number;
        rssMax: number;
        commits: number;
        messagesCommitted: number;
        waits?: { rounds: number; waits: WaitSample[] };
      };
      const committed = new Map(d.commitAt);
      const live =
        phase === 'mixed'
          ? new Set(
              planPhase(plan, phase)
                .filter((m) => m.lane === 'live')
                .map((m) => probeId(s.gatewayIds, m)),
            )
          : undefined;
      const latencies: number[] = [];
      for (const [id, at] of p.publishedAt) {
        if (live && !live.has(id)) continue;
        const commitAt = committed.get(id);
        if (commitAt !== undefined && Number.isFinite(commitAt)) latencies.push(commitAt - at);
      }
      latencies.sort((a, b) => a - b);
      const seconds = (d.lastCommitAt - p.firstAt) / 1000;
      const result: PhaseResult = {
        variant: `${broker}/${storeKind}`,
        broker,
        store: storeKind,
        phase,
        messages,
        readings: d.inserted,
        seconds,
        latencies,
        cpuPercent: ((d.cpuUserMs + d.cpuSystemMs) / 1000 / seconds) * 100,
        rssMax: d.rssMax,
        perCommit: d.messagesCommitted / Math.max(1, d.commits),
        waits: d.waits,
      };
      console.error(
        `${broker}/${storeKind} ${phase}: ${(d.inserted / seconds).toFixed(0)} readings/s (load ${loadText()})` +
          (phase === 'warmup' ? ', not counted' : ''),
      );
      return result;
    };
    // Not reported: the measured phases then run the intake's code as a process that has been running does
    // (clinic-bench-plan.ts, warmup).
    if (plan.warmupGateways > 0) await runPhase('warmup');
    const results: PhaseResult[] = [];
    for (const phase of phases) results.push(await runPhase(phase));
    return results;
  } finally {
    // A referenced timer keeps this process alive while a step waits on handles of its own that are unref'd
    // (the PostgreSQL helper's watchdog), and bounds a step that never ends.
    for (const step of cleanup) await Promise.race([step().catch(() => undefined), sleep(30_000)]);
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------- main
const loadBefore = loadText();
const s = await setup();
const brokers = (values.brokers as string).split(',').filter((b): b is 'mosquitto' | 'embedded' => {
  if (b === 'mosquitto' && !mosquittoAvailable()) {
    console.error('mosquitto is not installed (Debian package mosquitto): its variants are skipped');
    return false;
  }
  return b === 'mosquitto' || b === 'embedded';
});
const stores = (values.stores as string).split(',').filter((k): k is 'sqlite' | 'pg' => {
  if (k === 'pg') {
    const missing = postgresMissing();
    if (missing !== undefined) {
      console.error(`PostgreSQL variants skipped: ${missing}`);
      return false;
    }
  }
  return k === 'sqlite' || k === 'pg';
});

const results: PhaseResult[] = [];
try {
  for (const broker of brokers)
    for (const store of stores) results.push(...(await runVariant(s, broker, store)));
} finally {
  if (values.dir === undefined) rmSync(root, { recursive: true, force: true });
}
const loadAfter = loadText();

console.log(
  `bench:clinic  ${plan.gateways} gateways, one TLS connection each, window ${values.window}; ` +
    `backlog ${plan.backlogBatches} x ${plan.batchSize}-reading batch per gateway; live ${plan.live} one-reading messages per gateway (1 in ${plan.duplicateEvery} sent twice); ` +
    `mixed ${plan.mixedRate} live msgs/s for ${plan.mixedSeconds} s + ${plan.mixedBacklogGateways} backlog batches; ` +
    (plan.warmupGateways > 0
      ? `after a warm-up of ${Math.min(plan.warmupGateways, plan.gateways)} batches and as many one-reading messages, not counted`
      : 'no warm-up'),
);
console.log(
  `certificates: ${s.issueSeconds === undefined ? `reused from ${root}` : `${plan.gateways} issued in ${s.issueSeconds.toFixed(1)} s (not timed)`}; ` +
    `load average before ${loadBefore}, after ${loadAfter}; ${process.version}`,
);
if (stores.includes('pg')) {
  const settings = Object.entries({ ...BENCH_PG_SETTINGS, ...pgSettings }).map(
    ([name, value]) => `${name}=${value}`,
  );
  console.log(`PostgreSQL: ${settings.join(', ')}; otherwise initdb's defaults`);
}
console.log('');
const table: string[][] = [
  [
    'broker/store',
    'phase',
    'msgs',
    'readings',
    's',
    'readings/s',
    'msgs/s',
    'p50 ms',
    'p99 ms',
    'intake CPU',
    'RSS MiB',
    'msgs/commit',
  ],
];
for (const r of results) {
  table.push([
    r.variant,
    r.phase,
    String(r.messages),
    String(r.readings),
    r.seconds.toFixed(1),
    (r.readings / r.seconds).toFixed(0),
    (r.messages / r.seconds).toFixed(0),
    percentile(r.latencies, 50).toFixed(0),
    percentile(r.latencies, 99).toFixed(0),
    `${r.cpuPercent.toFixed(0)}%`,
    (r.rssMax / 1048576).toFixed(0),
    r.perCommit.toFixed(0),
  ]);
}
printTable(table);
console.log('');

const goals: string[][] = [['goal (one intake process)', 'broker/store', 'measured', 'result']];
for (const r of results) {
  if (r.phase === 'backlog') {
    const rate = r.readings / r.seconds;
    goals.push([
      `>= ${GOAL_BACKLOG_READINGS} readings/s from backlog batches`,
      r.variant,
      rate.toFixed(0),
      rate >= GOAL_BACKLOG_READINGS ? 'met' : 'NOT met',
    ]);
  }
  if (r.phase === 'live') {
    const rate = r.messages / r.seconds;
    goals.push([
      `>= ${GOAL_LIVE_MESSAGES} live messages/s`,
      r.variant,
      rate.toFixed(0),
      rate >= GOAL_LIVE_MESSAGES ? 'met' : 'NOT met',
    ]);
  }
}
for (const store of ['sqlite', 'pg']) {
  if (!stores.includes(store as 'sqlite' | 'pg')) {
    goals.push(['every goal', `*/${store}`, '-', `not measured: ${postgresMissing() ?? 'not selected'}`]);
  }
}
goals.push([
  'FHIR export keeps up with 1,000 readings/s',
  '-',
  '-',
  'measured apart: npm run bench:fhir (docs/fhir.md, "Throughput")',
]);
printTable(goals);

// --pg-waits: per PostgreSQL phase, the commonest things its backends were doing (pg-wait-sampler.ts). "of
// samples" is the share of sampling rounds that found a backend in that state: two busy backends make 200%.
for (const r of results) {
  if (r.waits === undefined || r.waits.rounds === 0) continue;
  console.log('');
  console.log(`${r.variant} ${r.phase}: PostgreSQL backends, ${r.waits.rounds} samples`);
  const rows: string[][] = [['wait', 'state', 'statement', 'of samples']];
  for (const w of r.waits.waits.slice(0, 12)) {
    rows.push([w.wait, w.state, w.statement, `${((w.samples / r.waits.rounds) * 100).toFixed(0)}%`]);
  }
  printTable(rows);
}
