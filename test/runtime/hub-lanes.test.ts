import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimCentral, type SimulatedDevice, simulatedDevice } from '../../src/ble/sim/index.js';
import { statePaths } from '../../src/config/paths.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import type { Measurement } from '../../src/model/measurement.js';
import { checkServerCertificate, createDevelopmentCa, issueClinicCertificate } from '../../src/pki/index.js';
import type { Hub } from '../../src/runtime/hub.js';
import { withinRange } from '../../src/session/racp-download.js';
import type { Lane } from '../../src/store/outbox.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';
import {
  type CommandResult,
  type ConfigValue,
  decodeCommandResult,
  encodeCommand,
  kidForCertificate,
  newCommand,
  verifyEnvelope,
} from '../../src/wire/index.js';
import { until } from '../support/until.js';
import { type Clinic, configOf, enrol, hubWith, LogCapture, startClinic, writeConfig } from './hub-rig.js';

/**
 * The alert lane, the lanes and the RACP resume point through the running hub: simulated devices in virtual
 * time (the rules judge by the readings' own times, so a minute of readings takes a minute of virtual time),
 * real sessions, the real pipeline, a real encrypted store, the real uplink over mutual TLS to the embedded
 * broker, and a clinic receiver that verifies every signed batch and says which topic each reading came on.
 */
let root: string;
let clinic: Clinic;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rpm-hub-lanes-'));
  clinic = await startClinic(root);
});
afterAll(async () => {
  await clinic.stop();
  await rm(root, { recursive: true, force: true });
});

interface Appended {
  readonly measurement: Measurement;
  readonly result: 'stored' | 'duplicate';
  readonly lane: Lane;
}

/** A hub in virtual time, its appends recorded with their lanes. */
function virtualRun(virtual: VirtualScheduler, config: GatewayConfig, devices: readonly SimulatedDevice[]) {
  const appended: Appended[] = [];
  const central = new SimCentral({
    peripherals: devices.map((d) => d.peripheral),
    scheduler: virtual,
    passkeyProvider: () => '123456',
  });
  const hub = hubWith(config, central, new LogCapture(), {
    scheduler: virtual,
    monotonic: { monotonicNow: () => virtual.now() },
    random: () => 0.5,
    onAppended: (measurement, result, lane) => appended.push({ measurement, result, lane }),
  });
  return { hub, appended };
}

/** Moves virtual time on in small steps, letting the real network and the store run in between. */
async function advance(virtual: VirtualScheduler, ms: number, step = 100): Promise<void> {
  for (let t = 0; t < ms; t += step) await virtual.advanceAsync(step);
}

async function started(hub: Hub): Promise<void> {
  await hub.start();
  await until('the uplink to connect', () => hub.status().broker?.state === 'connected', {
    timeoutMs: 15_000,
  });
}

/** Waits until every reading the hub stored for these devices has arrived, verified, at the clinic. */
async function delivered(appended: readonly Appended[], deviceIds: readonly string[]) {
  const ids = new Set(
    appended
      .filter((a) => a.result === 'stored' && deviceIds.includes(a.measurement.deviceId))
      .map((a) => a.measurement.id),
  );
  await until(
    `${ids.size} readings at the clinic`,
    () => clinic.received.filter((r) => ids.has(r.measurement.id)).length === ids.size,
    { timeoutMs: 20_000 },
  );
  return clinic.received.filter((r) => ids.has(r.measurement.id));
}

const observation = (m: Measurement, code: string) => m.observations.find((o) => o.code === code)?.value;

describe('the alert lane through the hub', () => {
  let received: Clinic['received'];
  let appended: Appended[];
  let oxId: string;
  let cuffId: string;

  beforeAll(async () => {
    const virtual = new VirtualScheduler(Date.now());
    const config = configOf(writeConfig(join(root, 'alerts'), clinic));
    // A COPD patient resting at 86 % SpO2 (never reaching the default limit of 90 %), and a cuff whose memory
    // holds ten readings of a patient whose systolic pressure sits around the default limit of 180 mmHg.
    const oximeter = simulatedDevice('sig/pulse-oximeter', {
      seed: 51,
      scheduler: virtual,
      subject: { spo2: 86 },
    });
    const cuff = simulatedDevice('sig/blood-pressure', {
      seed: 52,
      scheduler: virtual,
      subject: { systolic: 180 },
      preload: 10,
      preloadEveryMs: 3 * 3_600_000,
    });
    [oxId, cuffId] = (await enrol(config, [
      {
        address: oximeter.peripheral.address,
        driverId: 'sig/pulse-oximeter',
        category: 'pulse-oximeter',
        bonded: false,
      },
      {
        address: cuff.peripheral.address,
        driverId: 'sig/blood-pressure',
        category: 'blood-pressure',
        bonded: false,
      },
    ])) as [string, string];
    const run = virtualRun(virtual, config, [oximeter, cuff]);
    await started(run.hub);
    try {
      await advance(virtual, 100_000);
      received = await delivered(run.appended, [oxId, cuffId]);
      appended = run.appended;
    } finally {
      await run.hub.stop('test over');
    }
  });

  it('sends SpO2 below the limit on the alert topic, marked with the rule, only once it stayed below for 60 s', () => {
    const readings = received
      .filter(
        (r) =>
          r.measurement.deviceId === oxId && observation(r.measurement, 'MDC_PULS_OXIM_SAT_O2') !== undefined,
      )
      .sort((a, b) => Date.parse(a.measurement.time) - Date.parse(b.measurement.time));
    expect(readings.length).toBeGreaterThan(80);
    for (const r of readings) expect(observation(r.measurement, 'MDC_PULS_OXIM_SAT_O2')).toBeLessThan(90);
    const first = Date.parse((readings[0] as (typeof readings)[number]).measurement.time);
    const early = readings.filter((r) => Date.parse(r.measurement.time) - first < 60_000);
    const late = readings.filter((r) => Date.parse(r.measurement.time) - first >= 60_000);
    expect(early.length).toBeGreaterThan(50);
    expect(late.length).toBeGreaterThan(20);
    for (const r of early) {
      expect(r.measurement.alert).toBeUndefined();
      expect(r.topic).toBe('obs');
    }
    for (const r of late) {
      expect(r.measurement.alert).toEqual({ rule: 'MDC_PULS_OXIM_SAT_O2:below', late: false });
      expect(r.topic).toBe('alert');
    }
  });

  it("sends a stored cuff record above the systolic limit on the alert lane marked late, with its own time, and the cuff's other stored records on the backlog lane", () => {
    const records = received.filter((r) => r.measurement.deviceId === cuffId);
    expect(records).toHaveLength(10);
    const laneOf = (m: Measurement) => appended.find((a) => a.measurement.id === m.id)?.lane;
    const high = records.filter(
      (r) => (observation(r.measurement, 'MDC_PRESS_BLD_NONINV_SYS') as number) > 180,
    );
    const rest = records.filter((r) => !high.includes(r));
    expect(high.length).toBeGreaterThan(0);
    expect(rest.length).toBeGreaterThan(0);
    for (const r of records) {
      expect(r.measurement.stored).toBe(true);
      // Its own time, hours before it reached the hub.
      expect(Date.parse(r.measurement.receivedAt) - Date.parse(r.measurement.time)).toBeGreaterThan(
        3_600_000,
      );
    }
    for (const r of high) {
      expect(r.measurement.alert).toEqual({ rule: 'MDC_PRESS_BLD_NONINV_SYS:above', late: true });
      expect(r.topic).toBe('alert');
      expect(laneOf(r.measurement)).toBe('alert');
    }
    for (const r of rest) {
      expect(r.measurement.alert).toBeUndefined();
      expect(r.topic).toBe('obs');
      expect(laneOf(r.measurement)).toBe('backlog');
    }
  });
});

describe("the clinic's alert limits through the signed config command", () => {
  let commander: MqttClient;
  const results: CommandResult[] = [];

  beforeAll(async () => {
    commander = await mqtt.connectAsync({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port: clinic.port,
      servername: 'localhost',
      ca: clinic.pki.pem.ca,
      cert: clinic.pki.pem.clinic,
      key: clinic.pki.pem.clinicKey,
      clientId: 'clinic-test-commander',
      rejectUnauthorized: true,
      checkServerIdentity: checkServerCertificate,
      reconnectPeriod: 0,
    } as mqtt.IClientOptions);
    const gatewayKey = new X509Certificate(clinic.pki.pem.gateway).publicKey;
    commander.on('message', (_topic, payload) => {
      const { payload: result } = verifyEnvelope(new Uint8Array(payload), () => gatewayKey);
      results.push(decodeCommandResult(result, { gatewayId: clinic.pki.gatewayId }));
    });
    await commander.subscribeAsync(`rpm/v1/${clinic.pki.gatewayId}/cmd/res`, { qos: 1 });
  });
  afterAll(async () => {
    await commander.endAsync();
  });

  const clinicSigner = () => ({
    key: createPrivateKey(clinic.pki.pem.clinicKey),
    kid: kidForCertificate(new Uint8Array(new X509Certificate(clinic.pki.pem.clinic).raw)),
  });

  async function sendConfig(
    set: Record<string, ConfigValue>,
    now: number,
    signer = clinicSigner(),
  ): Promise<string> {
    const command = newCommand({ cmd: 'config', args: { set } }, { gatewayId: clinic.pki.gatewayId, now });
    await commander.publishAsync(
      `rpm/v1/${clinic.pki.gatewayId}/cmd`,
      Buffer.from(encodeCommand(command, signer.key, signer.kid)),
      { qos: 1 },
    );
    return command.id;
  }

  const resultOf = async (id: string) => {
    await until('the command result', () => results.some((r) => r.id === id), { timeoutMs: 15_000 });
    return results.find((r) => r.id === id) as CommandResult;
  };

  it('judges later readings by the new limit, keeps it across a restart, and refuses forged or invalid limits', async () => {
    const virtual = new VirtualScheduler(Date.now());
    // The file's limit (70 %) is never reached by this patient (resting at 86 %, never under 74 %).
    const config = configOf(
      writeConfig(
        join(root, 'limits'),
        clinic,
        [
          'alerts:',
          '  rules:',
          '    - { code: MDC_PULS_OXIM_SAT_O2, unit: "%", below: 70, for: 10s, hysteresis: 1 }',
        ].join('\n'),
        { commandSigners: true },
      ),
    );
    const oximeter = () =>
      simulatedDevice('sig/pulse-oximeter', { seed: 61, scheduler: virtual, subject: { spo2: 86 } });
    const device = oximeter();
    const [oxId] = (await enrol(config, [
      {
        address: device.peripheral.address,
        driverId: 'sig/pulse-oximeter',
        category: 'pulse-oximeter',
        bonded: false,
      },
    ])) as [string];
    const spo2Readings = (appended: readonly Appended[]) =>
      appended
        .map((a) => a.measurement)
        .filter((m) => m.deviceId === oxId && observation(m, 'MDC_PULS_OXIM_SAT_O2') !== undefined);
    const RULE = 'MDC_PULS_OXIM_SAT_O2:below';

    const first = virtualRun(virtual, config, [device]);
    await started(first.hub);
    try {
      // Past the hub's replay horizon (start + 60 s: commands issued before it are refused, wire-format 9.4).
      await advance(virtual, 70_000);
      expect(first.hub.status().alertRules).toContainEqual({ id: RULE, source: 'configuration' });

      // Invalid limits: answered with the typed code, nothing changed.
      const invalid = await sendConfig({ 'alerts.MDC_PULS_OXIM_SAT_O2.hysteresis': -1 }, virtual.now());
      expect(await resultOf(invalid)).toMatchObject({ ok: false, error: { code: 'ALERT_LIMITS_INVALID' } });
      // A key outside the whitelist: refused at verification, answered.
      const outside = await sendConfig({ 'log.level': 'debug' }, virtual.now());
      expect(await resultOf(outside)).toMatchObject({ ok: false, error: { code: 'WIRE_CMD_BAD_ARGS' } });
      // Signed by a clinic certificate of another CA: refused, audited, not answered.
      const otherCa = await createDevelopmentCa({ commonName: 'attacker CA' });
      const foreign = await issueClinicCertificate(otherCa, { name: 'clinic-test' });
      const forged = await sendConfig({ 'alerts.MDC_PULS_OXIM_SAT_O2.below': 99 }, virtual.now(), {
        key: createPrivateKey(foreign.privateKeyPem),
        kid: kidForCertificate(new Uint8Array(new X509Certificate(foreign.certificatePem).raw)),
      });
      // The valid one, after the forged one on the same topic: its answer comes after any answer to the forged.
      const valid = await sendConfig(
        { 'alerts.MDC_PULS_OXIM_SAT_O2.below': 90, 'alerts.MDC_PULS_OXIM_SAT_O2.for': '10s' },
        virtual.now(),
      );
      const changedAt = virtual.now();
      expect(await resultOf(valid)).toMatchObject({ ok: true });
      expect(results.some((r) => r.id === forged)).toBe(false);
      expect(first.hub.status().alertRules).toContainEqual({ id: RULE, source: 'clinic' });

      await advance(virtual, 30_000);
      const readings = spo2Readings(first.appended);
      const before = readings.filter((m) => Date.parse(m.time) < changedAt);
      const judgedByNewLimit = readings.filter((m) => Date.parse(m.time) > changedAt + 12_000);
      expect(before.length).toBeGreaterThan(60);
      expect(judgedByNewLimit.length).toBeGreaterThan(15);
      for (const m of before) expect(m.alert).toBeUndefined();
      for (const m of judgedByNewLimit) expect(m.alert).toEqual({ rule: RULE, late: false });

      // Every change audited, with the keys that changed; the forged command as a refusal.
      const audit = readFileSync(statePaths(config.paths.dataDir).auditLog, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { type: string; actor: string; details: Record<string, unknown> });
      expect(audit.filter((e) => e.type === 'alerts.limits-changed')).toEqual([
        expect.objectContaining({
          actor: 'clinic',
          details: expect.objectContaining({
            changed: ['alerts.MDC_PULS_OXIM_SAT_O2.below', 'alerts.MDC_PULS_OXIM_SAT_O2.for'],
          }),
        }),
      ]);
      expect(audit.some((e) => e.type === 'command.refused')).toBe(true);
    } finally {
      await first.hub.stop('restart');
    }

    // The same store after a restart: the clinic's limit is still in force (the file still says 70 %).
    const second = virtualRun(virtual, config, [oximeter()]);
    await started(second.hub);
    try {
      expect(second.hub.status().alertRules).toContainEqual({ id: RULE, source: 'clinic' });
      const restartedAt = virtual.now();
      await advance(virtual, 30_000);
      const after = spo2Readings(second.appended).filter((m) => Date.parse(m.time) > restartedAt + 15_000);
      expect(after.length).toBeGreaterThan(10);
      for (const m of after) expect(m.alert).toEqual({ rule: RULE, late: false });
    } finally {
      await second.hub.stop('test over');
    }
  });
});

describe('RACP resume through the hub', () => {
  it("resumes a glucose meter's download interrupted by a hub stop, with no duplicate and no hole", async () => {
    const virtual = new VirtualScheduler(Date.now());
    const config = configOf(writeConfig(join(root, 'racp'), clinic));
    // 40 records numbered 1..40; the hub is stopped after about ten of them.
    const meter = simulatedDevice('sig/glucose', {
      seed: 71,
      scheduler: virtual,
      preload: 40,
      preloadEveryMs: 3_600_000,
    });
    const [meterId] = (await enrol(config, [
      { address: meter.peripheral.address, driverId: 'sig/glucose', category: 'glucose-meter', bonded: true },
    ])) as [string];
    const of = (characteristic: string) => (appended: readonly Appended[]) =>
      appended.filter(
        (a) => a.measurement.deviceId === meterId && a.measurement.characteristic === characteristic,
      );
    const records = of('2a18');
    // Each record's Glucose Measurement Context, which takes its measurement's device time (stable id).
    const contexts = of('2a34');

    const first = virtualRun(virtual, config, [meter]);
    await started(first.hub);
    try {
      for (let t = 0; t < 120_000 && records(first.appended).length < 10; t += 20)
        await virtual.advanceAsync(20);
    } finally {
      await first.hub.stop('interrupted');
    }
    const before = records(first.appended).length;
    expect(before).toBeGreaterThanOrEqual(10);
    expect(before).toBeLessThan(40); // interrupted
    const requestsBefore = meter.peripheral.written('2a52').length;

    const second = virtualRun(virtual, config, [meter]);
    await started(second.hub);
    try {
      for (
        let t = 0;
        t < 120_000 &&
        (records([...first.appended, ...second.appended]).filter((a) => a.result === 'stored').length < 40 ||
          contexts([...first.appended, ...second.appended]).filter((a) => a.result === 'stored').length < 40);
        t += 100
      ) {
        await virtual.advanceAsync(100);
      }
    } finally {
      await second.hub.stop('test over');
    }

    // The first download was a "report all" (the meter's order is its own): cut, it moved no resume point and
    // is asked for again; the records it had delivered come again and are dropped by their ids.
    const resumed = meter.peripheral.written('2a52').slice(requestsBefore);
    expect(resumed.map((r) => [...r])).toEqual([[0x01, 0x01]]);
    const all = records([...first.appended, ...second.appended]);
    const stored = all.filter((a) => a.result === 'stored');
    expect(new Set(stored.map((a) => a.measurement.id)).size).toBe(stored.length);
    expect(records(second.appended).filter((a) => a.result === 'duplicate').length).toBe(before);
    // No hole: 1..40, each once, at the clinic.
    const atClinic = (await delivered(all, [meterId])).map(
      (r) => r.measurement.details.sequenceNumber as number,
    );
    const expected = Array.from({ length: 40 }, (_, i) => i + 1);
    expect([...atClinic].sort((a, b) => a - b)).toEqual(expected);
    // The contexts too: those the cut download had delivered came again and were dropped by id; 1..40 once.
    const contextsBefore = contexts(first.appended).length;
    expect(contextsBefore).toBeGreaterThanOrEqual(10);
    expect(contexts(second.appended).filter((a) => a.result === 'duplicate').length).toBe(contextsBefore);
    const allContexts = contexts([...first.appended, ...second.appended]);
    for (const c of allContexts) {
      const measurement = all.find(
        (a) => a.measurement.details.sequenceNumber === c.measurement.details.sequenceNumber,
      );
      expect(c.measurement.deviceTime).toBe(measurement?.measurement.deviceTime);
    }
    const contextsAtClinic = (await delivered(allContexts, [meterId])).map(
      (r) => r.measurement.details.sequenceNumber as number,
    );
    expect([...contextsAtClinic].sort((a, b) => a - b)).toEqual(expected);

    // The completed download left the resume point at 40 in the store: the next hub asks for what follows it.
    for (let i = 0; i < 3; i++) {
      await virtual.advanceAsync(60_000);
      meter.measure(); // 41..43
    }
    const requestsThen = meter.peripheral.written('2a52').length;
    const third = virtualRun(virtual, config, [meter]);
    await started(third.hub);
    try {
      for (let t = 0; t < 120_000 && records(third.appended).length < 3; t += 100)
        await virtual.advanceAsync(100);
    } finally {
      await third.hub.stop('test over');
    }
    const next = meter.peripheral.written('2a52').slice(requestsThen);
    expect([...(next[0] as Uint8Array)]).toEqual([...withinRange(40, 40 + 0x7fff)]);
    expect(records(third.appended).map((a) => [a.result, a.measurement.details.sequenceNumber])).toEqual([
      ['stored', 41],
      ['stored', 42],
      ['stored', 43],
    ]);
  });
});
