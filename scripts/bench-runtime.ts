/**
 * `npm run bench:runtime`: the running hub (`rpm-gateway start`, the built dist/) through the real path: the
 * sim backend's streaming devices, sessions, the reading pipeline, the encrypted SQLite outbox, mutual-TLS MQTT
 * and signed envelopes, to the embedded broker, printed as tables.
 *
 * Process layout: the hub is a child process; the clinic side (ClinicalBroker + the clinic receiver, which
 * verifies every envelope and counts readings) is another (scripts/support/broker-process.ts); this process only
 * orchestrates and samples. The simulated radio is the hub's sim backend, so it runs inside the hub's process:
 * its own cost is measured apart, by a baseline process running the same devices on the same SimCentral with a
 * consumer that only counts (scripts/support/sim-baseline.ts), for as long as the hub ran (at most 5 minutes:
 * its CPU per notification is steady well before).
 *
 * A. Live: `--devices` devices (oximeters and heart-rate straps, one reading per second each) for `--minutes`
 *    (10 by default: at one reading a second per device, V8 still compiles newly hot functions with its
 *    optimising compiler for about 5 minutes, which grows the heap's code and metadata; docs/runtime.md, "What
 *    the remaining growth was"; the goal's last 4 minutes are after that).
 *    CPU (utime + stime, /proc/<pid>/stat) and RSS (VmRSS, /proc/<pid>/status) sampled every 5 s (1 s in the
 *    first 10). Warm-up: the first minute (a fifth of the run with --quick). CPU per reading: CPU time after
 *    warm-up / readings the clinic received after warm-up; "without the simulator" subtracts the baseline's
 *    CPU per notification (one notification is one reading here). RSS slope: least squares over the samples
 *    after warm-up; growth over the last 4 minutes (the whole post-warm-up span when shorter). First
 *    acknowledgement: when the clinic side got its first reading, from the hub's spawn and from that reading's
 *    receivedAt (when the hub got the notification; the same machine's clock).
 * B. Backlog: `--backlog` readings put in a fresh store with the outbox API (this process, store closed after),
 *    then the hub started with the broker up and no device enrolled: time from spawn until the clinic has them
 *    all, the hub's peak RSS (sampled every second), and its CPU per reading while draining.
 *
 * Options: --minutes N (default 10), --devices N (default 8), --backlog N (default 1,000,000), --quick (1 minute,
 * 100,000: a smoke run), --only live|backlog (one part), --node-flags="..." (replaces the unit's node options).
 * The hub runs with the node options of the systemd unit's ExecStart= (its heap bounds), as on a Pi; a
 * NODE_OPTIONS given to the benchmark is passed on to the hub as well, for profiling under the same load.
 */
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createDevelopmentPki, type DevelopmentPki } from '../src/pki/index.js';
import { EnvKeyProvider } from '../src/store/keys.js';
import { Store } from '../src/store/store.js';
import { benchDevices } from './support/bench-devices.js';
import { spo2Measurement } from './support/measurements.js';
import { printTable } from './support/table.js';
import { unitNodeFlags } from './support/unit-node-flags.js';

const { values } = parseArgs({
  options: {
    help: { type: 'boolean', short: 'h' },
    minutes: { type: 'string' },
    devices: { type: 'string' },
    backlog: { type: 'string' },
    quick: { type: 'boolean' },
    only: { type: 'string' },
    'node-flags': { type: 'string' },
  },
});

if (values.help) {
  console.log(
    [
      'Usage: npm run bench:runtime [-- options]',
      '  the running hub through the real path: live devices, then a stored backlog drained (docs/runtime.md)',
      '  --minutes 10        length of the live part (the RSS goal is over its last 4 minutes)',
      '  --devices 8         simulated devices, one reading per second each',
      '  --backlog 1000000   stored readings drained by a starting hub',
      '  --quick             a smoke run: 1 minute, 100,000 readings',
      '  --only live|backlog one part only',
      '  --node-flags="..."  node options for the hub instead of those of the systemd unit\'s ExecStart= (with =)',
      "  The hub runs with the unit's node options; a NODE_OPTIONS given here is passed on to it as well.",
    ].join('\n'),
  );
  process.exit(0);
}
const only = values.only;
if (only !== undefined && only !== 'live' && only !== 'backlog') {
  console.error('bench:runtime: --only takes live or backlog');
  process.exit(2);
}
const runLive = only !== 'backlog';
const runBacklog = only !== 'live';
const quick = values.quick === true;
const minutes = Number(values.minutes ?? (quick ? '1' : '10'));
const deviceCount = Number(values.devices ?? '8');
const backlog = Number(values.backlog ?? (quick ? '100000' : '1000000'));
for (const [name, value] of [
  ['--minutes', minutes],
  ['--devices', deviceCount],
  ['--backlog', backlog],
] as const) {
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`bench:runtime: ${name} needs a positive number`);
    process.exit(2);
  }
}

// The hub's node options: the unit's (config/systemd/rpm-gateway.service), or --node-flags for an experiment.
const hubNodeFlags =
  values['node-flags'] === undefined ? unitNodeFlags() : values['node-flags'].split(/\s+/).filter(Boolean);
const here = fileURLToPath(new URL('.', import.meta.url));
const bin = join(here, '../src/cli/bin.js');
const KEY_VARIABLE = 'RPM_BENCH_STORE_KEY';
const STORE_KEY = '5b'.repeat(32);
const TICK = Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim()) || 100;
const MB = 1024 * 1024;

interface Sample {
  readonly at: number;
  readonly cpuMs: number;
  readonly rssBytes: number;
}

/** CPU time (user + system, ms) and resident set of a process, from /proc (proc(5)). */
function sample(pid: number): Sample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14, 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN);
    return { at: performance.now(), cpuMs: (ticks * 1000) / TICK, rssBytes: rssKb * 1024 };
  } catch {
    return undefined;
  }
}

function ask<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (message: { type?: string }) => {
      if (message.type !== type) return;
      child.off('message', on);
      resolve(message as T);
    };
    child.on('message', on);
    child.send({ type });
  });
}

function waitFor<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${type}: the child exited (${code})`)));
    const on = (message: { type?: string }) => {
      if (message.type !== type) return;
      child.off('message', on);
      resolve(message as T);
    };
    child.on('message', on);
  });
}

interface Count {
  readings: number;
  firstAt?: number;
  firstReceivedAt?: string;
}

function writeConfig(dir: string, pki: DevelopmentPki, port: number): string {
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'gateway.yaml');
  writeFileSync(
    file,
    [
      'gateway:',
      `  id: ${pki.gatewayId}`,
      'paths:',
      `  dataDir: ${dataDir}`,
      `  runtimeDir: ${join(dir, 'run')}`,
      'store:',
      `  key: { env: ${KEY_VARIABLE} }`,
      'tls:',
      `  ca: ${pki.files.ca}`,
      `  cert: ${pki.files.gateway}`,
      `  key: { file: ${pki.files.gatewayKey} }`,
      'uplink:',
      '  brokers:',
      `    - url: mqtts://127.0.0.1:${port}`,
      '      servername: localhost',
      'ble:',
      '  backend: sim',
      'clock:',
      '  requireSync: false',
      'log:',
      '  level: info',
    ].join('\n'),
  );
  return file;
}

function hubEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  // A NODE_OPTIONS given to the benchmark goes on to the hub, so a hub can be profiled (e.g.
  // --heapsnapshot-signal) under the same load and with the unit's own options.
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    [KEY_VARIABLE]: STORE_KEY,
    ...(process.env.NODE_OPTIONS === undefined ? {} : { NODE_OPTIONS: process.env.NODE_OPTIONS }),
    ...extra,
  };
}

async function init(file: string): Promise<void> {
  const child = spawn(process.execPath, [...hubNodeFlags, bin, 'init', '--config', file], {
    env: hubEnv(),
    stdio: 'ignore',
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`rpm-gateway init failed (${code})`);
}

function startHub(file: string, env: NodeJS.ProcessEnv = {}): { child: ChildProcess; spawnedAt: number } {
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, [...hubNodeFlags, bin, 'start', '--config', file], {
    env: hubEnv(env),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { child, spawnedAt };
}

async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.connected) child.disconnect();
  else child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Samples a process until `done` says so, every `everyMs` (1 s in the first 10 s). */
async function sampleWhile(pid: number, everyMs: number, done: () => Promise<boolean>): Promise<Sample[]> {
  const samples: Sample[] = [];
  const start = performance.now();
  for (;;) {
    const s = sample(pid);
    if (s) samples.push(s);
    if (await done()) return samples;
    await sleep(performance.now() - start < 10_000 ? 1_000 : everyMs);
  }
}

function slopePerMinute(points: readonly Sample[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const xs = points.map((p) => p.at / 60_000);
  const ys = points.map((p) => p.rssBytes / MB);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    den += ((xs[i] as number) - mx) ** 2;
  }
  return num / den;
}

const mb = (bytes: number) => (bytes / MB).toFixed(1);

/** A. live, then the simulator on its own; prints its table and returns its goals' line. */
async function live(
  dir: string,
  pki: DevelopmentPki,
  port: number,
  children: ChildProcess[],
  count: () => Promise<Count>,
): Promise<string> {
  // ---- A. live ---------------------------------------------------------------------------------------------
  const liveDir = join(dir, 'live');
  const liveConfig = writeConfig(liveDir, pki, port);
  await init(liveConfig);
  const devices = benchDevices(deviceCount);
  const store = await Store.open({
    path: join(liveDir, 'data', 'outbox.db'),
    keys: new EnvKeyProvider(KEY_VARIABLE, { [KEY_VARIABLE]: STORE_KEY }),
    existing: 'must-exist',
  });
  try {
    for (const d of devices)
      store.devices.enrol({ address: d.address, driverId: d.driver, category: d.category, bonded: false });
  } finally {
    store.close();
  }
  const scenarioFile = join(liveDir, 'scenario.json');
  writeFileSync(
    scenarioFile,
    JSON.stringify({
      maxConnections: deviceCount,
      devices: devices.map((d, i) => ({
        driver: d.driver,
        address: d.address,
        seed: i + 1,
        streamEveryMs: d.streamEveryMs,
      })),
    }),
  );
  const runMs = minutes * 60_000;
  const warmupMs = quick ? runMs / 5 : 60_000;
  console.error(`A. live: ${deviceCount} devices for ${minutes} min ...`);
  const live = startHub(liveConfig, { RPM_SIM_SCENARIO: scenarioFile });
  children.push(live.child);
  const liveStart = performance.now();
  let firstAck: Count | undefined;
  let atWarmup: { sample: Sample; readings: number } | undefined;
  const liveSamples = await sampleWhile(live.child.pid as number, 5_000, async () => {
    const c = await count();
    if (firstAck === undefined && c.firstAt !== undefined) firstAck = c;
    const elapsed = performance.now() - liveStart;
    if (atWarmup === undefined && elapsed >= warmupMs) {
      const s = sample(live.child.pid as number);
      if (s) atWarmup = { sample: s, readings: c.readings };
    }
    return elapsed >= runMs;
  });
  const liveEnd = sample(live.child.pid as number) ?? (liveSamples.at(-1) as Sample);
  const liveReadings = (await count()).readings;
  await stop(live.child);
  const warm = atWarmup as { sample: Sample; readings: number } | undefined;
  if (!warm) throw new Error('the live run ended before its warm-up did');

  // ---- the simulator on its own ----------------------------------------------------------------------------
  const baselineMs = Math.min(runMs, 5 * 60_000);
  console.error(`   the simulator alone for ${baselineMs / 60_000} min ...`);
  const baseline = fork(join(here, 'support/sim-baseline.js'), [String(deviceCount)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(baseline);
  await waitFor(baseline, 'ready');
  const baseStart = performance.now();
  let baseWarm: { sample: Sample; notifications: number } | undefined;
  await sampleWhile(baseline.pid as number, 5_000, async () => {
    const elapsed = performance.now() - baseStart;
    if (baseWarm === undefined && elapsed >= warmupMs) {
      const s = sample(baseline.pid as number);
      const { notifications } = await ask<{ notifications: number }>(baseline, 'count');
      if (s) baseWarm = { sample: s, notifications };
    }
    return elapsed >= baselineMs;
  });
  const baseEnd = sample(baseline.pid as number);
  const baseNotifications = (await ask<{ notifications: number }>(baseline, 'count')).notifications;
  await stop(baseline);

  const afterWarm = liveSamples.filter((s) => s.at >= warm.sample.at);
  const postReadings = liveReadings - warm.readings;
  const hubPerReading = ((liveEnd.cpuMs - warm.sample.cpuMs) * 1000) / postReadings;
  const simPerReading =
    baseWarm && baseEnd
      ? ((baseEnd.cpuMs - baseWarm.sample.cpuMs) * 1000) / (baseNotifications - baseWarm.notifications)
      : Number.NaN;
  const lastSpanMs = Math.min(4 * 60_000, liveEnd.at - warm.sample.at);
  const spanStart = afterWarm.find((s) => s.at >= liveEnd.at - lastSpanMs) ?? warm.sample;
  const growth = liveEnd.rssBytes - spanStart.rssBytes;
  const peakRss = Math.max(...liveSamples.map((s) => s.rssBytes));
  const fromSpawn = firstAck?.firstAt === undefined ? Number.NaN : firstAck.firstAt - live.spawnedAt;
  const fromNotification =
    firstAck?.firstAt === undefined || firstAck.firstReceivedAt === undefined
      ? Number.NaN
      : firstAck.firstAt - Date.parse(firstAck.firstReceivedAt);

  console.log(
    `\nA. live: ${deviceCount} devices at 1 Hz for ${minutes} min (warm-up ${(warmupMs / 1000).toFixed(0)} s)`,
  );
  printTable([
    ['measure', 'value', 'goal'],
    ['readings at the clinic', liveReadings.toLocaleString('en'), ''],
    ['readings/s after warm-up', (postReadings / ((liveEnd.at - warm.sample.at) / 1000)).toFixed(2), ''],
    ['hub CPU per reading (µs, simulator included)', hubPerReading.toFixed(0), 'reported'],
    ['simulator alone, CPU per reading (µs)', simPerReading.toFixed(0), ''],
    [
      'hub CPU per reading without the simulator (µs)',
      (hubPerReading - simPerReading).toFixed(0),
      'reported',
    ],
    ['RSS after warm-up (MB)', mb(warm.sample.rssBytes), '< 150'],
    ['RSS peak (MB)', mb(peakRss), '< 150'],
    ['RSS slope after warm-up (MB/min)', slopePerMinute(afterWarm).toFixed(3), 'flat'],
    [`RSS growth over the last ${(lastSpanMs / 60_000).toFixed(1)} min (MB)`, mb(growth), '< 2 (last 4 min)'],
    ['first ack, from process start (ms)', fromSpawn.toFixed(0), ''],
    ['first ack, from its notification (ms)', fromNotification.toFixed(0), '<= 3000'],
  ]);
  return (
    `RSS < 150 MB live ${peakRss < 150 * MB ? 'met' : 'NOT met'}; ` +
    `RSS growth < 2 MB ${growth < 2 * MB ? 'met' : 'NOT met'}${lastSpanMs < 4 * 60_000 ? ' (span shorter than 4 min)' : ''}; ` +
    `first ack <= 3 s after its notification ${fromNotification <= 3000 ? 'met' : 'NOT met'}`
  );
}

/** B. backlog; prints its table and returns its goal's line. */
async function drainBacklog(
  dir: string,
  pki: DevelopmentPki,
  port: number,
  children: ChildProcess[],
  count: () => Promise<Count>,
): Promise<string> {
  // ---- B. backlog ------------------------------------------------------------------------------------------
  console.error(`B. backlog: filling ${backlog.toLocaleString('en')} readings ...`);
  const backlogDir = join(dir, 'backlog');
  const backlogConfig = writeConfig(backlogDir, pki, port);
  await init(backlogConfig);
  const fillStart = performance.now();
  const filled = await Store.open({
    path: join(backlogDir, 'data', 'outbox.db'),
    keys: new EnvKeyProvider(KEY_VARIABLE, { [KEY_VARIABLE]: STORE_KEY }),
    existing: 'must-exist',
  });
  try {
    const chunk = 5_000;
    for (let n = 0; n < backlog; n += chunk) {
      const pending: Promise<unknown>[] = [];
      for (let i = n; i < Math.min(backlog, n + chunk); i++)
        pending.push(filled.outbox.append(spo2Measurement(i), 'backlog'));
      await Promise.all(pending);
    }
  } finally {
    filled.close();
  }
  const fillSeconds = (performance.now() - fillStart) / 1000;
  console.error(`   filled in ${fillSeconds.toFixed(0)} s; draining ...`);
  const before = (await count()).readings;
  const drain = startHub(backlogConfig);
  children.push(drain.child);
  const drainStart = performance.now();
  let drainedAt = Number.NaN;
  const drainSamples = await sampleWhile(drain.child.pid as number, 1_000, async () => {
    const c = await count();
    if (c.readings - before >= backlog) {
      drainedAt = performance.now();
      return true;
    }
    if (performance.now() - drainStart > 30 * 60_000) throw new Error('the backlog did not drain in 30 min');
    return false;
  });
  const drainEnd = sample(drain.child.pid as number) ?? (drainSamples.at(-1) as Sample);
  await stop(drain.child);

  const drainSeconds = (drainedAt - drainStart) / 1000;
  const drainPeak = Math.max(...drainSamples.map((s) => s.rssBytes));
  console.log(`\nB. backlog: ${backlog.toLocaleString('en')} stored readings drained by a starting hub`);
  printTable([
    ['measure', 'value', 'goal'],
    ['fill with Outbox.append, this process (s)', fillSeconds.toFixed(1), ''],
    ['spawn -> all at the clinic (s)', drainSeconds.toFixed(1), ''],
    ['readings/s', Math.round(backlog / drainSeconds).toLocaleString('en'), ''],
    ['hub CPU per reading while draining (µs)', ((drainEnd.cpuMs * 1000) / backlog).toFixed(1), ''],
    ['hub peak RSS (MB, sampled every 1 s)', mb(drainPeak), '< 150'],
  ]);
  return `RSS < 150 MB draining ${drainPeak < 150 * MB ? 'met' : 'NOT met'}`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rpm-bench-runtime-'));
  const children: ChildProcess[] = [];
  const started = performance.now();
  try {
    const pki = await createDevelopmentPki(join(dir, 'tls'));
    const brokerProcess = fork(
      join(here, 'support/broker-process.js'),
      [
        JSON.stringify({
          ca: pki.files.ca,
          broker: pki.files.broker,
          brokerKey: pki.files.brokerKey,
          gateway: pki.files.gateway,
        }),
      ],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    children.push(brokerProcess);
    const { port } = await waitFor<{ port: number }>(brokerProcess, 'ready');
    const count = () => ask<Count>(brokerProcess, 'count');

    const cpu = cpus();
    console.log(
      `runtime benchmark, Node ${process.version}, ${cpu.length} x ${cpu[0]?.model.trim() ?? 'cpu'}, ` +
        `rpm-gateway start (dist/) with the sim backend; broker + clinic receiver in another process; 127.0.0.1, mutual TLS`,
    );
    const goals: string[] = [];
    if (runLive) goals.push(await live(dir, pki, port, children, count));
    if (runBacklog) goals.push(await drainBacklog(dir, pki, port, children, count));
    console.log(`\ngoals: ${goals.join('; ')}`);
    console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    for (const child of children.reverse()) await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
