import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClinicalBroker } from '../../src/broker/clinical-broker.js';
import { identifyClient } from '../../src/broker/identify.js';
import { GatewayDirectory } from '../../src/clinic/gateway-directory.js';
import { ClinicReceiver } from '../../src/clinic/receiver.js';
import type { Measurement } from '../../src/model/measurement.js';
import { createDevelopmentPki, type DevelopmentPki } from '../../src/pki/index.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Store } from '../../src/store/store.js';
import { configOf, KEY_VARIABLE, STORE_KEY, writeConfig } from '../runtime/hub-rig.js';
import { type CliProcess, spawnCli } from '../support/cli-process.js';
import { until } from '../support/until.js';

/**
 * The whole path end to end, as it runs in service: `rpm-gateway start` (the built dist/) as a child process,
 * its real encrypted SQLite store, mutual TLS to the embedded clinical broker, signed envelopes verified by the
 * clinic receiver.
 *
 * What "simulated radio in another process" means here: the simulated radio (src/ble/sim) is the hub's `sim`
 * backend, so it runs inside the hub's process: a process other than the broker's and the clinic's (this
 * test's). It dies with the hub, so the devices are described by a scenario file ($RPM_SIM_SCENARIO,
 * src/ble/sim/scenario.ts) that re-creates their memory byte for byte at each start, as real devices keep
 * their records while a hub restarts; a later scenario models what a device gained (or lost, in a reset)
 * while the hub was down. It follows that no live reading is produced while the hub is dead: there is nothing
 * of that kind to leave out of the count.
 *
 * The clinic receiver is fed in process by the broker (ClinicReceiver.handle), subscribed from the moment each
 * broker instance starts: aedes runs in-process subscribers before it acknowledges a QoS 1 publish, so a
 * reading the hub saw acknowledged has reached the clinic, and a broker restart cannot lose one in the gap
 * before a network subscriber would have reconnected.
 *
 * The story:
 * 1. run 1: live streams (oximeter, heart-rate strap) and stored records (a cuff, a scale, and a glucose meter
 *    over RACP, sequence numbers 65532-65535) reach the clinic.
 * 2. The broker stops for a minute. The hub keeps reading into its store; half-way through it is SIGKILLed.
 * 3. run 2 starts while the broker is still down: the meter now holds 3 more records, across the 16-bit wrap
 *    (0, 1, 2); the cuff 2 new ones. The broker comes back; everything drains. SIGTERM.
 * 4. run 3: the meter's memory was reset (new records numbered from 1); the streaming devices are gone, so once
 *    the meter's records and the backlog are delivered nothing more is appended. SIGTERM.
 * Then: every reading whose append resolved (the hub's `reading.appended` debug line, written after the
 * commit; a measurement id is an opaque hash, src/model/ids.ts, allowed in logs by src/runtime/log.ts) was
 * delivered to the clinic, each stored record exactly once (by its own device time: no hole, no second copy
 * under another id), and the store holds nothing left to send.
 */
const _bin = join(import.meta.dirname, '../../dist/src/cli/bin.js');
const HOUR = 3_600_000;
const OUTAGE_MS = 60_000;
// Stored records are in the past: two days ago, on the hour.
const END = Math.floor((Date.now() - 2 * 24 * HOUR) / HOUR) * HOUR;

const DEVICES = {
  oximeter: { address: 'D0:5E:00:00:00:01', driverId: 'sig/pulse-oximeter', category: 'pulse-oximeter' },
  cuff: { address: 'D0:5E:00:00:00:02', driverId: 'sig/blood-pressure', category: 'blood-pressure' },
  scale: { address: 'D0:5E:00:00:00:04', driverId: 'sig/weight-scale', category: 'weight-scale' },
  meter: { address: 'D0:5E:00:00:00:05', driverId: 'sig/glucose', category: 'glucose' },
  strap: { address: 'D0:5E:00:00:00:06', driverId: 'sig/heart-rate', category: 'heart-rate' },
} as const;
type Name = keyof typeof DEVICES;

/** Times of `count` records `every` apart, the last `every` before `end` (src/ble/sim/devices pastTimes). */
const times = (end: number, count: number, every: number) =>
  Array.from({ length: count }, (_, i) => end - (count - i) * every);

const CUFF_EVERY = 6 * HOUR; // the models' default spacing of preloaded records
const SCALE_EVERY = 24 * HOUR;
const streaming = [
  { driver: 'sig/pulse-oximeter', seed: 1, streamEveryMs: 1000 },
  { driver: 'sig/heart-rate', seed: 6, streamEveryMs: 1000 },
];
const iso = (ms: number) => new Date(ms).toISOString();
const RUNS = {
  first: {
    devices: [
      ...streaming,
      { driver: 'sig/blood-pressure', seed: 2, preload: 4, preloadEndingAt: iso(END) },
      { driver: 'sig/weight-scale', seed: 4, preload: 3, preloadEndingAt: iso(END) },
      meter({ preload: 4, end: END, first: 65532 }),
    ],
  },
  // The meter kept its 4 records and took 3 more (65535 -> 0, 1, 2); the cuff handed its 4 over and took 2.
  second: {
    devices: [
      ...streaming,
      { driver: 'sig/blood-pressure', seed: 3, preload: 2, preloadEndingAt: iso(END + 12 * HOUR) },
      meter({ preload: 7, end: END + 3 * HOUR, first: 65532 }),
    ],
  },
  // The meter's memory was reset: two new records, numbered from 1. Nothing streams.
  third: { devices: [meter({ preload: 2, end: END + 10 * HOUR, first: 1, seed: 9 })] },
};
const EXPECTED_STORED: Record<'cuff' | 'scale' | 'meter', number[]> = {
  cuff: [...times(END, 4, CUFF_EVERY), ...times(END + 12 * HOUR, 2, CUFF_EVERY)],
  scale: times(END, 3, SCALE_EVERY),
  meter: [...times(END + 3 * HOUR, 7, HOUR), ...times(END + 10 * HOUR, 2, HOUR)],
};

let outcome: { meterReadings: number; meterRecords: number; meterAppends: number } | undefined;

const isGlucose = (m: Measurement) => m.observations.some((o) => o.code.startsWith('MDC_CONC_GLU'));

function meter(o: { preload: number; end: number; first: number; seed?: number }) {
  return {
    driver: 'sig/glucose',
    seed: o.seed ?? 5,
    preload: o.preload,
    preloadEveryMs: HOUR,
    preloadEndingAt: iso(o.end),
    firstSequenceNumber: o.first,
    bonded: true, // enrolled with a bond (below), which the meter keeps across the hub's restarts
  };
}

// ---- the clinic side: broker (restartable on its port) and receiver --------------------------------------

let root: string;
let pki: DevelopmentPki;
let broker: ClinicalBroker | undefined;
let port = 0;
const received: Measurement[] = [];
let receiver: ClinicReceiver;

async function startBroker(): Promise<void> {
  const b = new ClinicalBroker({
    ca: pki.pem.ca,
    cert: pki.pem.broker,
    key: pki.pem.brokerKey,
    identify: identifyClient,
    port,
  });
  port = (await b.start()).port;
  // Subscribed before anything else runs on this broker (see the file comment).
  for (const topic of ['rpm/v1/+/obs', 'rpm/v1/+/alert']) {
    b.mqtt.subscribe(
      topic,
      (packet, done) => {
        receiver.handle(packet.topic, new Uint8Array(packet.payload as Buffer));
        done();
      },
      () => undefined,
    );
  }
  broker = b;
}

interface Run extends CliProcess {
  readonly name: string;
}
const runs: Run[] = [];

function spawnHub(name: string, args: string[], scenario?: object): Run {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: root, [KEY_VARIABLE]: STORE_KEY };
  if (scenario) {
    const file = join(root, `scenario-${name}.json`);
    writeFileSync(file, JSON.stringify(scenario));
    env.RPM_SIM_SCENARIO = file;
  }
  const run: Run = Object.assign(spawnCli(args, env), { name });
  runs.push(run);
  return run;
}

type LogEvent = { event: string; [k: string]: unknown };
const events = (run: Run): LogEvent[] => run.lines.map((l) => JSON.parse(l) as LogEvent);
const logged = (run: Run, event: string) => events(run).some((e) => e.event === event);
/** The ids of every append that resolved, in every run so far (status stored or duplicate). */
const appendedIds = () =>
  runs
    .filter((r) => r.name !== 'init')
    .flatMap((r) => events(r).filter((e) => e.event === 'reading.appended'))
    .map((e) => e.measurementId as string);
const receivedIds = () => new Set(received.map((m) => m.id));
const allDelivered = () => {
  const got = receivedIds();
  return appendedIds().every((id) => got.has(id));
};

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rpm-e2e-'));
  pki = await createDevelopmentPki(join(root, 'tls'));
  const directory = new GatewayDirectory(pki.pem.ca);
  directory.add(pki.pem.gateway);
  receiver = new ClinicReceiver({
    broker: { host: '127.0.0.1', port: 1, servername: 'localhost' }, // fed in process, never connects
    tls: { ca: pki.pem.ca, cert: pki.pem.clinic, key: pki.pem.clinicKey },
    clientId: 'clinic-e2e',
    directory,
    onMeasurement: (_gatewayId, measurement) => received.push(measurement),
  });
  await startBroker();
});

afterAll(async () => {
  for (const run of runs)
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
  await broker?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('end to end: a broker outage of a minute with a hub SIGKILL in the middle, then RACP resume', () => {
  it('delivers every resolved append and every stored record exactly once, with no hole', async () => {
    // A store made by `rpm-gateway init`, the five devices enrolled in it.
    const file = writeConfig(join(root, 'svc'), { pki, port }, 'log:\n  level: debug');
    const init = spawnHub('init', ['init', '--config', file]);
    expect((await init.exited).code).toBe(0);
    const config = configOf(file);
    const keys = new EnvKeyProvider(KEY_VARIABLE, { [KEY_VARIABLE]: STORE_KEY });
    const storePath = join(config.paths.dataDir, 'outbox.db');
    const ids = {} as Record<Name, string>;
    {
      const store = await Store.open({ path: storePath, keys, existing: 'must-exist' });
      try {
        for (const [name, d] of Object.entries(DEVICES) as [Name, (typeof DEVICES)[Name]][]) {
          ids[name] = store.devices.enrol({ ...d, bonded: name === 'meter' }).device.id;
        }
      } finally {
        store.close();
      }
    }
    const of = (name: Name) => received.filter((m) => m.deviceId === ids[name]);
    const storedTimes = (name: Name) => new Set(of(name).map((m) => Date.parse(m.time)));
    const hasAll = (name: 'cuff' | 'scale' | 'meter', expected: number[]) =>
      expected.every((t) => storedTimes(name).has(t));

    // 1. Run 1, broker up: stored records and live streams arrive.
    const first = spawnHub('first', ['start', '--config', file], RUNS.first);
    await until(
      'run 1: stored records of the cuff, scale and meter, and live readings, at the clinic',
      () =>
        hasAll('cuff', EXPECTED_STORED.cuff.slice(0, 4)) &&
        hasAll('scale', EXPECTED_STORED.scale) &&
        hasAll('meter', EXPECTED_STORED.meter.slice(0, 4)) &&
        of('oximeter').length >= 3 &&
        of('strap').length >= 3,
      { timeoutMs: 60_000, intervalMs: 100 },
    );

    // 2. The broker goes away for a minute; the hub reads on into its store, and is killed half-way.
    await broker?.stop();
    broker = undefined;
    const outageStart = Date.now();
    await until('run 1 to notice the broker is gone', () => logged(first, 'uplink.disconnected'), {
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    const beforeKill = appendedIds().length;
    await until('half of the outage', () => Date.now() - outageStart >= OUTAGE_MS / 2, {
      timeoutMs: OUTAGE_MS,
      intervalMs: 250,
    });
    expect(appendedIds().length).toBeGreaterThan(beforeKill + 10); // readings kept while the broker was away
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');

    // 3. Run 2 while the broker is still down: the meter gained 3 records across the wrap, the cuff 2.
    const second = spawnHub('second', ['start', '--config', file], RUNS.second);
    await until('run 2 to start', () => logged(second, 'hub.started'), { timeoutMs: 30_000, intervalMs: 50 });
    await until('the rest of the outage', () => Date.now() - outageStart >= OUTAGE_MS, {
      timeoutMs: OUTAGE_MS,
      intervalMs: 250,
    });
    await startBroker();
    await until(
      'run 2: everything appended so far, and the new stored records, at the clinic',
      () =>
        hasAll('cuff', EXPECTED_STORED.cuff) &&
        hasAll('meter', EXPECTED_STORED.meter.slice(0, 7)) &&
        allDelivered(),
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);

    // 4. Run 3: the meter was reset. Nothing streams, so the appends end once its records are in.
    const third = spawnHub('third', ['start', '--config', file], RUNS.third);
    await until(
      "run 3: the reset meter's records and every resolved append at the clinic",
      () => hasAll('meter', EXPECTED_STORED.meter) && allDelivered(),
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    third.child.kill('SIGTERM');
    expect((await third.exited).code).toBe(0);
    for (const run of [first, second, third]) expect(run.stderr).toBe('');

    // Every resolved append delivered; nothing delivered that the clinic got twice.
    const appended = appendedIds();
    const got = receivedIds();
    expect(appended.filter((id) => !got.has(id))).toEqual([]);
    expect(received.length).toBe(got.size);
    // Each stored record exactly once: every expected device time, no other, one measurement each. (A glucose
    // record's context, 0x2A34, carries no time of its own and travels as a reading of its own: the RACP test
    // below counts those.)
    for (const name of ['cuff', 'scale', 'meter'] as const) {
      const records = of(name).filter((m) => name !== 'meter' || isGlucose(m));
      const byTime = new Map<number, number>();
      for (const m of records) byTime.set(Date.parse(m.time), (byTime.get(Date.parse(m.time)) ?? 0) + 1);
      expect(
        [...byTime.keys()].sort((x, y) => x - y),
        name,
      ).toEqual([...EXPECTED_STORED[name]].sort((x, y) => x - y));
      expect(
        [...byTime.values()].every((n) => n === 1),
        name,
      ).toBe(true);
      expect(
        records.every((m) => m.stored === true),
        name,
      ).toBe(true);
    }
    outcome = {
      meterReadings: of('meter').length,
      meterRecords: EXPECTED_STORED.meter.length,
      meterAppends: runs
        .filter((r) => r.name !== 'init')
        .flatMap((r) => events(r))
        .filter((e) => e.event === 'reading.appended' && e.deviceId === ids.meter && e.status === 'stored')
        .length,
    };
    // Live readings of both streaming devices from runs 1 and 2 (before and after the kill).
    expect(of('oximeter').length).toBeGreaterThan(30);
    expect(of('strap').length).toBeGreaterThan(30);

    // Nothing is left to send: the store holds no pending row.
    const store = await Store.open({ path: storePath, keys, existing: 'must-exist' });
    try {
      expect(store.outbox.lease({ maxRows: 1_000_000 }).records.map((r) => r.id)).toEqual([]);
    } finally {
      store.close();
    }
    console.info(
      `e2e: ${appended.length} resolved appends over 3 runs, ${got.size} measurements delivered, ` +
        `${receiver.duplicates} duplicate(s) dropped by the receiver`,
    );
  }, 240_000);

  /**
   * RACP resume through the hub: after a restart the meter is asked only for the records after the last one the
   * store committed (across the wrap, and from the start after a reset), so no record is downloaded twice: each
   * of the 9 records is appended once with its context, 18 readings at the clinic.
   */
  it('downloads no RACP record twice across restarts, the 16-bit wrap and a meter reset', () => {
    expect(outcome).toBeDefined();
    expect(outcome?.meterAppends).toBe(2 * (outcome?.meterRecords ?? 0));
    expect(outcome?.meterReadings).toBe(2 * (outcome?.meterRecords ?? 0));
  });
});
