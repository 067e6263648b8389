import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BleError, type Connection, type DisconnectReason } from '../../src/ble/central.js';
import { expectedReplay } from '../../src/ble/sim/devices/fixture-replay.js';
import {
  CardioProcess,
  DEFAULT_GLUCOSE_PASSKEY,
  dateTimeFields,
  deviceModelOf,
  isoOf,
  MALFORM_MODES,
  type MalformMode,
  Random,
  SIMULATED_DRIVER_IDS,
  SimCentral,
  type SimulatedDevice,
  type SimulatedDeviceOptions,
  simulatedDevice,
  simulationProblem,
  VirtualPeripheral,
} from '../../src/ble/sim/index.js';
import { checkDeviceModel } from '../../src/ble/sim/model-check.js';
import { CharacteristicStream, type StreamStep } from '../../src/drivers/characteristic-stream.js';
import { BUNDLED_DEVICES_DIR, loadBundledRegistry } from '../../src/drivers/default-registry.js';
import { sourceDirOf } from '../../src/drivers/fixture-paths.js';
import { readFixtureFile } from '../../src/drivers/fixtures.js';
import { loadDriverModules } from '../../src/drivers/loader.js';
import type { DriverRegistry } from '../../src/drivers/registry.js';
import { type Driver, setupValue } from '../../src/drivers/sdk/define-driver.js';
import { DecodeError, FrameError } from '../../src/errors.js';
import { encodeCurrentTime } from '../../src/gatt/device-info.js';
import {
  decodeGlucoseMeasurement,
  decodeRacp,
  encodeRacpAbort,
  encodeRacpReportAll,
  encodeRacpReportFrom,
  encodeRacpReportNumberOfRecords,
} from '../../src/gatt/glucose.js';
import { toHex } from '../../src/gatt/hex.js';
import { normalizeUuid } from '../../src/gatt/uuid.js';
import type { Reading } from '../../src/model/observation.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';
import { CUFF, centralContract, NEIGHBOUR } from './central-contract.js';

// ---- The shared contract --------------------------------------------------------------------------------------

/** The contract's cuff, built directly from VirtualPeripheral exactly as the contract describes it. */
function contractCuff(): VirtualPeripheral {
  return new VirtualPeripheral({
    address: CUFF.address,
    name: CUFF.name,
    services: ['1810'],
    gatt: [
      {
        uuid: '1810',
        characteristics: [
          { uuid: '2a35', properties: ['indicate'] },
          { uuid: '2a49', properties: ['read'], value: Uint8Array.of(0x03, 0x00) },
        ],
      },
      {
        uuid: '1805',
        characteristics: [
          { uuid: '2a2b', properties: ['read', 'write', 'notify'], value: new Uint8Array(10) },
        ],
      },
    ],
  });
}

centralContract('sim', async () => {
  const cuff = contractCuff();
  const neighbour = new VirtualPeripheral({
    address: NEIGHBOUR.address,
    name: NEIGHBOUR.name,
    services: ['180d'],
    gatt: [{ uuid: '180d', characteristics: [{ uuid: '2a37', properties: ['notify'] }] }],
  });
  return {
    central: new SimCentral({ peripherals: [cuff, neighbour] }),
    emit: async (characteristic, value) => {
      cuff.emit(characteristic, value);
    },
    written: (characteristic) => cuff.written(characteristic),
    dropLink: async () => cuff.dropLink(),
    teardown: async () => undefined,
  };
});

// The same contract against the device models (the cuff is the blood-pressure model under the contract's name).
centralContract('sim (device models)', async () => {
  const cuff = simulatedDevice('sig/blood-pressure', { address: CUFF.address, name: CUFF.name, seed: 1 });
  const neighbour = simulatedDevice('sig/heart-rate', { address: NEIGHBOUR.address, name: NEIGHBOUR.name });
  return {
    central: new SimCentral({ peripherals: [cuff.peripheral, neighbour.peripheral] }),
    emit: async (characteristic, value) => {
      cuff.peripheral.emit(characteristic, value);
    },
    written: (characteristic) => cuff.peripheral.written(characteristic),
    dropLink: async () => cuff.peripheral.dropLink(),
    teardown: async () => undefined,
  };
});

// ---- Helpers ----------------------------------------------------------------------------------------------------

let registry: DriverRegistry;

beforeAll(async () => {
  registry = await loadBundledRegistry();
});

interface Payload {
  readonly characteristic: string;
  readonly bytes: Uint8Array;
}

interface Rig {
  readonly scheduler: VirtualScheduler;
  readonly central: SimCentral;
  readonly device: SimulatedDevice;
  readonly driver: Driver;
}

async function rig(driverId: string, options: SimulatedDeviceOptions = {}): Promise<Rig> {
  const scheduler = new VirtualScheduler();
  const device = simulatedDevice(driverId, { scheduler, seed: 11, ...options });
  const central = new SimCentral({
    scheduler,
    peripherals: [device.peripheral],
    passkeyProvider: () => DEFAULT_GLUCOSE_PASSKEY,
  });
  await central.start();
  const driver = registry.get(driverId);
  if (!driver) throw new Error(`no driver ${driverId}`);
  return { scheduler, central, device, driver };
}

/**
 * What a session does: connect, bond when the device asks, read the driver's read characteristics, subscribe
 * to its notify/indicate characteristics, then run the driver's setup writes (repeating those that say so).
 */
async function openSession(r: Rig, payloads: Payload[]): Promise<Connection> {
  const connection = await r.central.connect(r.device.peripheral.address, { timeoutMs: 1_000 });
  const present = new Set(
    (await connection.discover()).flatMap((s) => s.characteristics.map((c) => `${s.uuid}/${c.uuid}`)),
  );
  const declared = r.driver.characteristics.filter((c) =>
    present.has(`${normalizeUuid(c.service)}/${normalizeUuid(c.uuid)}`),
  );
  if (r.device.peripheral.passkey !== undefined) await connection.bond();
  for (const spec of declared) {
    if (spec.access === 'read') {
      const bytes = await connection.read(spec.service, spec.uuid);
      expect(() => spec.decode(bytes, { characteristic: normalizeUuid(spec.uuid) })).not.toThrow();
    } else {
      const characteristic = normalizeUuid(spec.uuid);
      await connection.subscribe(spec.service, spec.uuid, (bytes) =>
        payloads.push({ characteristic, bytes }),
      );
    }
  }
  let ended = false;
  connection.onDisconnect(() => {
    ended = true;
  });
  for (const write of r.driver.setup ?? []) {
    const send = () =>
      connection
        .write(
          write.service,
          write.characteristic,
          setupValue(write, { now: new Date(r.scheduler.now()), utcOffsetMinutes: 0 }),
          { withResponse: write.withResponse ?? true },
        )
        .catch(() => undefined);
    await send();
    const every = write.repeatEveryMs;
    if (every !== undefined) {
      const again = () => {
        if (ended) return; // the session's keep-alive ends with the link
        void send();
        r.scheduler.setTimeout(again, every);
      };
      r.scheduler.setTimeout(again, every);
    }
  }
  return connection;
}

/** Decodes with the driver's own decoder; a DecodeError is returned, anything else thrown is a bug. */
/**
 * Decodes payloads as a session does: through one CharacteristicStream per characteristic (pass the same map
 * for the payloads of one connection), so a framed driver sees whole frames. A decoder that throws anything but
 * a DecodeError throws here.
 */
function decodeSteps(
  driver: Driver,
  payload: Payload,
  streams: Map<string, CharacteristicStream>,
): StreamStep[] {
  let stream = streams.get(payload.characteristic);
  if (!stream) {
    const spec = driver.characteristics.find((c) => normalizeUuid(c.uuid) === payload.characteristic);
    if (!spec) throw new Error(`driver ${driver.id} has no decoder for ${payload.characteristic}`);
    stream = new CharacteristicStream(driver, spec);
    streams.set(payload.characteristic, stream);
  }
  const steps = stream.push(payload.bytes, { characteristic: payload.characteristic });
  for (const step of steps) {
    const cause: unknown = step.error?.cause;
    if (cause !== undefined && !(cause instanceof DecodeError)) throw cause;
  }
  return steps;
}

/** The payload's readings, or its first error. */
function decode(
  driver: Driver,
  payload: Payload,
  streams = new Map<string, CharacteristicStream>(),
): Reading[] | DecodeError {
  const steps = decodeSteps(driver, payload, streams);
  return steps.find((s) => s.error)?.error ?? steps.flatMap((s) => s.readings ?? []);
}

/** Every reading with observations of one connection's payloads; a decode error other than framing throws. */
function measurementReadings(driver: Driver, payloads: readonly Payload[]): Reading[] {
  const readings: Reading[] = [];
  const streams = new Map<string, CharacteristicStream>();
  for (const payload of payloads) {
    for (const step of decodeSteps(driver, payload, streams)) {
      if (step.error && !(step.error instanceof FrameError)) throw step.error;
      readings.push(...(step.readings ?? []).filter((r) => r.observations.length > 0));
    }
  }
  return readings;
}

/**
 * Makes the device produce measurements until `count` payloads of its measurement characteristic arrived; with
 * `frames`, whole frames on a framed characteristic (a frame may take two notifications).
 */
async function produce(r: Rig, payloads: Payload[], count: number, wholeFrames = false): Promise<void> {
  const target = normalizeUuid(r.device.measurement.characteristic);
  const spec = r.driver.characteristics.find((c) => normalizeUuid(c.uuid) === target);
  const streams = new Map<string, CharacteristicStream>();
  let seen = 0;
  let frames = 0;
  const have = () => {
    if (!wholeFrames || spec?.framing === undefined)
      return payloads.filter((p) => p.characteristic === target).length;
    for (; seen < payloads.length; seen++) {
      const payload = payloads[seen] as Payload;
      if (payload.characteristic !== target) continue;
      frames += decodeSteps(r.driver, payload, streams).filter((step) => !step.error).length;
    }
    return frames;
  };
  if (r.device.racp) {
    r.device.preload(count, 30 * 60_000);
    const connection = await openSession(r, payloads);
    await connection.write('1808', '2a52', encodeRacpReportAll());
    await r.scheduler.advanceAsync(count * 20 + 1_000);
    return;
  }
  await openSession(r, payloads);
  for (let guard = 0; have() < count && guard < count * 10; guard++) {
    if (r.device.streams) await r.scheduler.advanceAsync(1_000);
    else {
      r.device.measure();
      await r.scheduler.advanceAsync(7 * 60_000);
    }
  }
}

/** Plausible ranges per code for final measurements (intermediate values may sit outside). */
const RANGES: Readonly<Record<string, readonly [number, number]>> = {
  MDC_PULS_OXIM_SAT_O2: [85, 100],
  MDC_PULS_OXIM_PULS_RATE: [45, 130],
  MDC_PULS_OXIM_PERF_REL: [0.5, 20],
  MDC_PRESS_BLD_NONINV_SYS: [90, 160],
  MDC_PRESS_BLD_NONINV_DIA: [50, 110],
  MDC_PRESS_BLD_NONINV_MEAN: [60, 130],
  MDC_PULS_RATE_NON_INV: [55, 95],
  MDC_PRESS_CUFF: [0, 300],
  MDC_TEMP_EAR: [36.4, 37.2],
  MDC_MASS_BODY_ACTUAL: [74.7, 75.3],
  MDC_LEN_BODY_ACTUAL: [1.76, 1.76],
  MDC_RATIO_MASS_BODY_LEN_SQ: [24, 24.5],
  // vendor/medisana-bs44x: its sim.ts derives body composition from the 75 kg, 1.76 m subject.
  MDC_BODY_FAT: [22, 27],
  MDC_BODY_WATER: [53, 57],
  MDC_BODY_MUSCLE: [36, 39.5],
  MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD: [80, 160],
  MDC_ECG_HEART_RATE: [45, 130],
  MDC_ECG_TIME_PD_RR_GL: [0.45, 1.3],
};

// ---- Device models ----------------------------------------------------------------------------------------------

describe('simulated devices', () => {
  it('cover every bundled driver', () => {
    expect(new Set(SIMULATED_DRIVER_IDS)).toEqual(new Set(registry.drivers.map((d) => d.id)));
    for (const { id } of registry.drivers) expect(simulationProblem(id), id).toBeUndefined();
  });

  it.each(SIMULATED_DRIVER_IDS)(
    '%s: 1,000 samples decode without error, with plausible values',
    async (id) => {
      if (deviceModelOf(id)?.origin === 'fixtures') {
        // A fixture replay sends the driver's fixtures, not physiology: they must decode as the fixtures say.
        const driver = registry.get(id) as Driver;
        const module = (await loadDriverModules(BUNDLED_DEVICES_DIR)).find((m) => m.driver.id === id);
        const file = await readFixtureFile(join(sourceDirOf(module?.dir as string), 'fixtures.json'));
        const device = simulatedDevice(id);
        const check = await checkDeviceModel(driver, (options) => simulatedDevice(id, options), {
          payloads: 1_000,
          registry,
          expected: expectedReplay(file, device.measurement.characteristic),
        });
        expect(check.problems).toEqual([]);
        return;
      }
      const r = await rig(id);
      // The advertisement alone picks this driver.
      const ads: { services: readonly string[]; name?: string }[] = [];
      const scan = r.central.scan({ durationMs: 500 }, (ad) => ads.push(ad));
      await r.scheduler.advanceAsync(500);
      await scan;
      expect(ads.length).toBeGreaterThan(0);
      expect(registry.match(ads[0] as { services: readonly string[]; name?: string })?.id).toBe(id);

      const payloads: Payload[] = [];
      await produce(r, payloads, 1_000, true);
      const finalsOf = () =>
        measurementReadings(r.driver, payloads).filter((reading) => reading.kind !== 'intermediate');
      let finals = finalsOf();
      // A framed stream can take many notifications per reading (a PC-60FW sends ten pulse-wave frames, which
      // give none, per parameter frame, in 20-byte notifications): a streaming device streams on to 1,000.
      for (let guard = 0; r.device.streams && finals.length < 1_000 && guard < 100; guard++) {
        await r.scheduler.advanceAsync(60_000);
        finals = finalsOf();
      }
      expect(finals.length).toBeGreaterThanOrEqual(1_000);
      for (const reading of finals) {
        for (const o of reading.observations) {
          const range = RANGES[o.code];
          expect(range, `range for ${o.code}`).toBeDefined();
          expect(o.value, `${o.code} is a number`).not.toBeNull();
          const [min, max] = range as readonly [number, number];
          expect(o.value as number, o.code).toBeGreaterThanOrEqual(min);
          expect(o.value as number, o.code).toBeLessThanOrEqual(max);
        }
      }
    },
  );

  it('heart rate agrees with the RR intervals it carries', async () => {
    const r = await rig('sig/heart-rate');
    const payloads: Payload[] = [];
    await produce(r, payloads, 300);
    for (const reading of measurementReadings(r.driver, payloads)) {
      const rate = reading.observations.find((o) => o.code === 'MDC_ECG_HEART_RATE')?.value as number;
      const rr = reading.observations
        .filter((o) => o.code === 'MDC_ECG_TIME_PD_RR_GL')
        .map((o) => o.value as number);
      if (rr.length === 0) continue;
      const mean = rr.reduce((a, b) => a + b, 0) / rr.length;
      expect(Math.abs(rate - 60 / mean)).toBeLessThanOrEqual(1.5);
    }
  });

  it('oximeter SpO2 drifts slowly and pulse varies beat to beat', async () => {
    const r = await rig('sig/pulse-oximeter');
    const payloads: Payload[] = [];
    await produce(r, payloads, 600);
    const spo2 = measurementReadings(r.driver, payloads).map(
      (reading) => reading.observations.find((o) => o.code === 'MDC_PULS_OXIM_SAT_O2')?.value as number,
    );
    const steps = spo2.slice(1).map((v, i) => Math.abs(v - (spo2[i] as number)));
    expect(Math.max(...steps)).toBeLessThanOrEqual(2); // no jumps from one second to the next
    expect(new Set(spo2).size).toBeGreaterThan(1);
  });

  it('desaturation dips are rare, short and bounded', () => {
    const cardio = new CardioProcess(new Random(9));
    const spo2 = Array.from({ length: 2 * 3_600 }, () => {
      cardio.advance(1_000);
      return cardio.spo2;
    });
    const below = spo2.filter((v) => v < 94).length;
    expect(below).toBeGreaterThan(0);
    expect(below / spo2.length).toBeLessThan(0.1);
    expect(Math.min(...spo2)).toBeGreaterThanOrEqual(85);
    expect(spo2.filter((v) => v >= 94 && v <= 99).length / spo2.length).toBeGreaterThan(0.9);
  });

  it('a seeded run is reproducible, another seed differs', async () => {
    const run = async (seed: number) => {
      const r = await rig('vendor/berrymed-bm1000', { seed });
      const payloads: Payload[] = [];
      await produce(r, payloads, 100);
      return payloads.map((p) => toHex(p.bytes)).join(' ');
    };
    const first = await run(5);
    expect(await run(5)).toBe(first);
    expect(await run(6)).not.toBe(first);
  });

  it('virtual time runs six hours of a heart-rate strap in well under a second', async () => {
    const r = await rig('sig/heart-rate');
    const payloads: Payload[] = [];
    await openSession(r, payloads);
    const started = Date.now();
    r.scheduler.advance(6 * 3_600_000);
    expect(payloads.length).toBe(6 * 3_600);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

// ---- Fault injection --------------------------------------------------------------------------------------------

describe('malformed frames', () => {
  const cases = SIMULATED_DRIVER_IDS.flatMap((id) => MALFORM_MODES.map((mode) => [id, mode] as const));

  it.each(cases)('%s, %s: decoders fail with DecodeError only', async (id, mode: MalformMode) => {
    const r = await rig(id);
    r.device.peripheral.malformNext(mode, 40);
    const payloads: Payload[] = [];
    await produce(r, payloads, 40);
    const malformed = payloads.slice(0, 40);
    expect(malformed.length).toBe(40);
    let errors = 0;
    const streams = new Map<string, CharacteristicStream>();
    for (const payload of malformed) {
      const result = decode(r.driver, payload, streams); // throws if a decoder throws anything but DecodeError
      if (result instanceof DecodeError) errors++;
    }
    // SIG layouts are length-checked: a cut or padded payload is always an error, except that the Heart Rate
    // Measurement ends in an open-ended RR list, so two appended bytes read as one more interval. Vendor stream
    // streams are framed: what cannot be framed is a frame error for the whole stream, not one per payload.
    const openEnded = id === 'sig/heart-rate' && mode === 'append';
    if (id.startsWith('sig/') && mode !== 'flip-flags' && !openEnded) expect(errors).toBe(40);
    if (openEnded) expect(errors).toBeGreaterThan(0);
  });

  it('drops the link at random with the configured probability, reproducibly', async () => {
    const drops = async () => {
      const r = await rig('sig/heart-rate', { faults: { disconnectProbability: 0.05 } });
      const payloads: Payload[] = [];
      const reasons: DisconnectReason[] = [];
      let connection = await openSession(r, payloads);
      for (let second = 0; second < 600; second++) {
        if (!r.device.peripheral.connected) {
          connection = await openSession(r, payloads);
        }
        connection.onDisconnect((reason) => reasons.push(reason));
        await r.scheduler.advanceAsync(1_000);
      }
      return { reasons, received: payloads.length };
    };
    const a = await drops();
    expect(a.reasons.length).toBeGreaterThan(5);
    expect(new Set(a.reasons)).toEqual(new Set(['link-loss']));
    expect(await drops()).toEqual(a);
  });
});

// ---- Stored records ---------------------------------------------------------------------------------------------

describe('stored records', () => {
  async function cuffSession(r: Rig, got: string[]): Promise<Connection> {
    const connection = await r.central.connect(r.device.peripheral.address, { timeoutMs: 1_000 });
    await connection.subscribe('1810', '2a35', (v) => got.push(toHex(v)));
    return connection;
  }

  it('are handed over once, on the next connection, including ones taken while disconnected', async () => {
    const r = await rig('sig/blood-pressure', { preload: 3 });
    r.device.measure(); // nobody connected: kept
    expect(r.device.peripheral.storedRecords('2a35')).toHaveLength(4);
    const first: string[] = [];
    const c1 = await cuffSession(r, first);
    await r.scheduler.advanceAsync(1_000);
    expect(first).toHaveLength(4);
    expect(new Set(first).size).toBe(4);
    await c1.disconnect();
    const second: string[] = [];
    await cuffSession(r, second);
    await r.scheduler.advanceAsync(1_000);
    expect(second).toEqual([]);
    r.device.measure(); // connected and subscribed: sent at once
    expect(second).toHaveLength(1);
  });

  it('survive a link lost in the middle of the handover, without duplicates', async () => {
    const r = await rig('sig/weight-scale', { preload: 6 });
    const got: string[] = [];
    const c1 = await r.central.connect(r.device.peripheral.address, { timeoutMs: 1_000 });
    await c1.subscribe('181d', '2a9d', (v) => got.push(toHex(v)));
    await r.scheduler.advanceAsync(50); // two records at 20 ms spacing
    r.device.peripheral.dropLink();
    expect(got).toHaveLength(2);
    const c2 = await r.central.connect(r.device.peripheral.address, { timeoutMs: 1_000 });
    await c2.subscribe('181d', '2a9d', (v) => got.push(toHex(v)));
    await r.scheduler.advanceAsync(1_000);
    expect(got).toHaveLength(6);
    expect(new Set(got).size).toBe(6);
  });
});

// ---- Glucose: RACP and bonding ----------------------------------------------------------------------------------

describe('glucose meter', () => {
  async function meterSession(r: Rig, records: number[], racp: Uint8Array[]): Promise<Connection> {
    const connection = await r.central.connect(r.device.peripheral.address, { timeoutMs: 1_000 });
    if (!connection.bonded) await connection.bond();
    await connection.subscribe('1808', '2a18', (v) =>
      records.push(decodeGlucoseMeasurement(v).sequenceNumber),
    );
    await connection.subscribe('1808', '2a34', () => undefined);
    await connection.subscribe('1808', '2a52', (v) => racp.push(v));
    return connection;
  }

  it('needs a bond with the right passkey before its records can be subscribed', async () => {
    const scheduler = new VirtualScheduler();
    const device = simulatedDevice('sig/glucose', { scheduler });
    const central = new SimCentral({
      scheduler,
      peripherals: [device.peripheral],
      passkeyProvider: () => '000000',
    });
    await central.start();
    const connection = await central.connect(device.peripheral.address, { timeoutMs: 1_000 });
    await expect(connection.subscribe('1808', '2a18', () => undefined)).rejects.toMatchObject({
      code: 'BLE_AUTH_FAILED',
    });
    await expect(connection.bond()).rejects.toMatchObject({ code: 'BLE_AUTH_FAILED' });
    expect(connection.bonded).toBe(false);
    const noProvider = new SimCentral({ scheduler, peripherals: [device.peripheral], id: 'other' });
    await noProvider.start();
    await connection.disconnect();
    const other = await noProvider.connect(device.peripheral.address, { timeoutMs: 1_000 });
    await expect(other.bond()).rejects.toMatchObject({ code: 'BLE_AUTH_FAILED' });
    await other.disconnect();

    const r = await rig('sig/glucose');
    const c = await r.central.connect(r.device.peripheral.address, { timeoutMs: 1_000 });
    await c.bond();
    expect(c.bonded).toBe(true);
    await c.subscribe('1808', '2a18', () => undefined);
    await c.disconnect();
    // The bond outlives the link, until the device forgets it.
    const again = await r.central.connect(r.device.peripheral.address, { timeoutMs: 1_000 });
    expect(again.bonded).toBe(true);
    await again.disconnect();
    r.device.peripheral.forgetBonds();
    const after = await r.central.connect(r.device.peripheral.address, { timeoutMs: 1_000 });
    await expect(after.subscribe('1808', '2a18', () => undefined)).rejects.toMatchObject({
      code: 'BLE_AUTH_FAILED',
    });
  });

  it('reports the number of records, and resumes with "greater or equal to N" without duplicates', async () => {
    const r = await rig('sig/glucose', { preload: 20 });
    const records: number[] = [];
    const racp: Uint8Array[] = [];
    const c1 = await meterSession(r, records, racp);
    await c1.write('1808', '2a52', encodeRacpReportNumberOfRecords());
    expect(decodeRacp(racp.at(-1) as Uint8Array)).toMatchObject({ numberOfRecords: 20 });
    await c1.write('1808', '2a52', encodeRacpReportAll());
    await r.scheduler.advanceAsync(150); // 7 records at 20 ms spacing
    r.device.peripheral.dropLink();
    await r.scheduler.advanceAsync(1_000);
    expect(records).toHaveLength(7);

    const c2 = await meterSession(r, records, racp);
    const last = Math.max(...records);
    await c2.write('1808', '2a52', encodeRacpReportNumberOfRecords(last + 1));
    expect(decodeRacp(racp.at(-1) as Uint8Array)).toMatchObject({ numberOfRecords: 13 });
    await c2.write('1808', '2a52', encodeRacpReportFrom(last + 1));
    await r.scheduler.advanceAsync(1_000);
    expect(records).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(decodeRacp(racp.at(-1) as Uint8Array)).toMatchObject({
      opCode: 'response-code',
      requestOpCode: 1,
      responseCode: 1,
    });
    // Nothing newer: "no records found".
    await c2.write('1808', '2a52', encodeRacpReportFrom(21));
    expect(decodeRacp(racp.at(-1) as Uint8Array)).toMatchObject({ responseCode: 6 });
  });

  it('aborts a report', async () => {
    const r = await rig('sig/glucose', { preload: 50 });
    const records: number[] = [];
    const racp: Uint8Array[] = [];
    const c = await meterSession(r, records, racp);
    await c.write('1808', '2a52', encodeRacpReportAll());
    await r.scheduler.advanceAsync(100);
    await expect(c.write('1808', '2a52', encodeRacpReportAll())).rejects.toMatchObject({
      code: 'BLE_NOT_SUPPORTED', // procedure already in progress
    });
    await c.write('1808', '2a52', encodeRacpAbort());
    const count = records.length;
    await r.scheduler.advanceAsync(2_000);
    expect(records.length).toBe(count);
    expect(count).toBeLessThan(50);
    expect(decodeRacp(racp.at(-1) as Uint8Array)).toMatchObject({ requestOpCode: 3, responseCode: 1 });
  });

  it('refuses a RACP write before its indications are enabled', async () => {
    const r = await rig('sig/glucose', { preload: 2 });
    const c = await r.central.connect(r.device.peripheral.address, { timeoutMs: 1_000 });
    await c.bond();
    await expect(c.write('1808', '2a52', encodeRacpReportAll())).rejects.toBeInstanceOf(BleError);
  });
});

// ---- Device clock -----------------------------------------------------------------------------------------------

describe('device clock', () => {
  it('a wrong clock shows in the decoded device time; a Current Time write sets it', async () => {
    const offset = -(3 * 86_400_000 + 2 * 3_600_000 + 17 * 60_000);
    const r = await rig('sig/thermometer', { clockOffsetMs: offset });
    const payloads: Payload[] = [];
    const connection = await openSession(r, payloads);
    r.device.measure();
    const [reading] = measurementReadings(r.driver, payloads).filter((x) => x.kind === 'measurement');
    expect(reading?.time).toBe(isoOf(dateTimeFields(r.scheduler.now() + offset)));

    await connection.write('1805', '2a2b', encodeCurrentTime(dateTimeFields(r.scheduler.now())));
    await r.scheduler.advanceAsync(60_000);
    payloads.length = 0;
    r.device.measure();
    const [corrected] = measurementReadings(r.driver, payloads).filter((x) => x.kind === 'measurement');
    expect(corrected?.time).toBe(isoOf(dateTimeFields(r.scheduler.now())));
    const clock = await connection.read('1805', '2a2b');
    expect(toHex(clock.slice(0, 7))).toBe(
      toHex(encodeCurrentTime(dateTimeFields(r.scheduler.now())).slice(0, 7)),
    );
  });

  it('glucose records carry the wrong clock too', async () => {
    const offset = 365 * 86_400_000;
    const r = await rig('sig/glucose', { clockOffsetMs: offset });
    r.device.measure();
    const record = r.device.racp?.stored[0];
    expect(record?.userFacingTime).toBe(isoOf(dateTimeFields(r.scheduler.now() + offset)));
    expect(decodeGlucoseMeasurement(record?.measurement as Uint8Array).time.iso).toBe(record?.userFacingTime);
  });
});

// ---- Central behaviour ------------------------------------------------------------------------------------------

describe('SimCentral', () => {
  it('filters scans by service and RSSI, and does not see devices out of range', async () => {
    const scheduler = new VirtualScheduler();
    const near = simulatedDevice('sig/thermometer', { scheduler, rssi: -50 });
    const far = simulatedDevice('sig/weight-scale', { scheduler, rssi: -95 });
    const away = simulatedDevice('sig/glucose', { scheduler, inRange: false });
    const central = new SimCentral({
      scheduler,
      peripherals: [near.peripheral, far.peripheral, away.peripheral],
    });
    await central.start();
    const scan = async (options: { services?: string[]; minRssi?: number }) => {
      const seen: string[] = [];
      const done = central.scan({ durationMs: 1_000, ...options }, (ad) => seen.push(ad.address));
      await scheduler.advanceAsync(1_000);
      await done;
      return seen;
    };
    const all = await scan({});
    expect(new Set(all)).toEqual(new Set([near.peripheral.address, far.peripheral.address]));
    // Advertisements repeat every advertiseEveryMs (100 ms): about ten per device in a second.
    expect(all.filter((a) => a === near.peripheral.address).length).toBeGreaterThanOrEqual(9);
    expect(new Set(await scan({ minRssi: -70 }))).toEqual(new Set([near.peripheral.address]));
    expect(new Set(await scan({ services: ['181D'] }))).toEqual(new Set([far.peripheral.address]));
    away.peripheral.setInRange(true);
    expect(new Set(await scan({ services: ['1808'] }))).toEqual(new Set([away.peripheral.address]));
  });

  it('stops a scan on abort, in virtual time', async () => {
    const r = await rig('sig/heart-rate');
    const controller = new AbortController();
    let seen = 0;
    const done = r.central.scan({ durationMs: 60_000, signal: controller.signal }, () => seen++);
    await r.scheduler.advanceAsync(250);
    controller.abort();
    await done;
    const before = seen;
    await r.scheduler.advanceAsync(1_000);
    expect(seen).toBe(before);
    expect(r.scheduler.pending).toBe(0);
  });

  it('connect: unknown device is gone, an out-of-range one times out or connects when it comes back', async () => {
    const r = await rig('sig/weight-scale', { inRange: false });
    await expect(r.central.connect('00:11:22:33:44:55', { timeoutMs: 1_000 })).rejects.toMatchObject({
      code: 'BLE_DEVICE_GONE',
    });
    const timedOut = r.central.connect(r.device.peripheral.address, { timeoutMs: 2_000 });
    const assertion = expect(timedOut).rejects.toMatchObject({ code: 'BLE_TIMEOUT' });
    await r.scheduler.advanceAsync(2_000);
    await assertion;
    const pending = r.central.connect(r.device.peripheral.address, { timeoutMs: 5_000 });
    await r.scheduler.advanceAsync(1_000);
    r.device.peripheral.setInRange(true);
    const connection = await pending;
    expect(connection.address).toBe(r.device.peripheral.address);
  });

  it('typed errors: write without the property, closed link, unresponsive device, adapter off', async () => {
    const r = await rig('sig/blood-pressure');
    await expect(r.central.connect(r.device.peripheral.address, { timeoutMs: 10 })).resolves.toMatchObject({
      address: r.device.peripheral.address,
    });
    const c = (await r.central
      .connect(r.device.peripheral.address, { timeoutMs: 10 })
      .catch((e) => e)) as BleError;
    expect(c.code).toBe('BLE_NO_SLOTS'); // the cuff takes one link
    await r.central.powerCycle();
    const connection = await r.central.connect(r.device.peripheral.address, { timeoutMs: 10 });
    await expect(connection.write('1810', '2a49', Uint8Array.of(1))).rejects.toMatchObject({
      code: 'BLE_NOT_SUPPORTED',
    });
    await expect(connection.read('1810', '2a35')).rejects.toMatchObject({ code: 'BLE_NOT_SUPPORTED' });
    r.device.peripheral.setResponsive(false);
    const hung = connection.read('1810', '2a49');
    const assertion = expect(hung).rejects.toMatchObject({ code: 'BLE_TIMEOUT' });
    await r.scheduler.advanceAsync(5_000);
    await assertion;
    r.device.peripheral.setResponsive(true);
    await connection.disconnect();
    await expect(connection.read('1810', '2a49')).rejects.toMatchObject({ code: 'BLE_DEVICE_GONE' });
    await r.central.stop();
    await expect(r.central.connect(r.device.peripheral.address, { timeoutMs: 10 })).rejects.toMatchObject({
      code: 'BLE_ADAPTER',
    });
  });

  it('powerCycle drops every link once, with reason adapter, and listeners do not survive it', async () => {
    const r = await rig('sig/heart-rate');
    const payloads: Payload[] = [];
    const connection = await openSession(r, payloads);
    const reasons: DisconnectReason[] = [];
    connection.onDisconnect((reason) => reasons.push(reason));
    await r.scheduler.advanceAsync(3_000);
    await r.central.powerCycle();
    await connection.disconnect();
    expect(reasons).toEqual(['adapter']);
    const count = payloads.length;
    const fresh: Payload[] = [];
    await openSession(r, fresh);
    await r.scheduler.advanceAsync(3_000);
    expect(payloads.length).toBe(count);
    expect(fresh.length).toBe(3);
    // A listener added after the end still hears about it, once.
    const late: DisconnectReason[] = [];
    connection.onDisconnect((reason) => late.push(reason));
    await Promise.resolve();
    expect(late).toEqual(['adapter']);
  });

  it('Contec streams only after its start command, and stops without heartbeats', async () => {
    const r = await rig('vendor/contec-cms50d-bt');
    const connection = await r.central.connect(r.device.peripheral.address, { timeoutMs: 1_000 });
    const got: string[] = [];
    await connection.subscribe('ff12', 'ff02', (v) => got.push(toHex(v)));
    await r.scheduler.advanceAsync(5_000);
    expect(got).toEqual([]);
    await connection.write('ff12', 'ff01', Uint8Array.of(0x9b, 0x01, 0x1c));
    await r.scheduler.advanceAsync(3_000);
    expect(got).toHaveLength(3);
    expect(got.every((hex) => hex.startsWith('eb01') && hex.length === 16)).toBe(true);
    await r.scheduler.advanceAsync(10_000); // no 9A heartbeat: the stream stops after 5 s
    expect(got.length).toBeLessThanOrEqual(6);
    const stopped = got.length;
    await r.scheduler.advanceAsync(5_000);
    expect(got.length).toBe(stopped);
    expect(r.device.peripheral.written('ff01').map(toHex)).toEqual(['9b011c']);
  });

  it('BerryMed can send frames that straddle notifications, and the framed driver reads every one', async () => {
    const r = await rig('vendor/berrymed-bm1000', { misalignedStream: true });
    const payloads: Payload[] = [];
    await produce(r, payloads, 100);
    expect(payloads.every((p) => p.bytes.length === 20)).toBe(true);
    const readings = measurementReadings(r.driver, payloads);
    // A 3-byte tail before the first frame, then four frames per notification, the last one still unfinished.
    expect(readings.length).toBe(payloads.length * 4 - 1);
  });
});
