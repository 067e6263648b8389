import { encodeBciFrame } from '../../../devices/vendor/berrymed-bm1000/bci-protocol.js';
import {
  CONTEC_LIVE_HEADER,
  contecChecksum,
  encodeContecMeasurement,
} from '../../../devices/vendor/contec-cms50d-bt/contec-protocol.js';
import { DecodeError } from '../../errors.js';
import {
  encodeBloodPressureFeature,
  encodeBloodPressureMeasurement,
  encodeIntermediateCuffPressure,
} from '../../gatt/blood-pressure.js';
import { decodeCurrentTime, encodeCurrentTime } from '../../gatt/device-info.js';
import { encodeGlucoseMeasurement, encodeGlucoseMeasurementContext } from '../../gatt/glucose.js';
import { encodeBodySensorLocation, encodeHeartRateMeasurement } from '../../gatt/heart-rate.js';
import { encodeSfloat } from '../../gatt/mder-float.js';
import {
  encodePlxContinuous,
  encodePlxFeatures,
  encodePlxSpotCheck,
  PLX_FEATURE,
} from '../../gatt/pulse-oximetry.js';
import { encodeMeasurementInterval, encodeTemperatureMeasurement } from '../../gatt/thermometer.js';
import { encodeWeightMeasurement, encodeWeightScaleFeature } from '../../gatt/weight-scale.js';
import { realScheduler, type Scheduler, type TimerHandle } from '../../util/scheduler.js';
import { BleError } from '../central.js';
import type { FaultOptions } from './faults.js';
import { CardioProcess, plethAt, Subject, type SubjectProfile } from './physiology.js';
import { RacpServer } from './racp.js';
import { Random } from './random.js';
import {
  type CharacteristicDefinition,
  isoOf,
  type ServiceDefinition,
  VirtualPeripheral,
} from './virtual-peripheral.js';

/** The drivers in devices/ that have a device model. */
export const SIMULATED_DRIVER_IDS = [
  'sig/pulse-oximeter',
  'sig/blood-pressure',
  'sig/thermometer',
  'sig/weight-scale',
  'sig/glucose',
  'sig/heart-rate',
  'vendor/berrymed-bm1000',
  'vendor/contec-cms50d-bt',
] as const;

export type SimulatedDriverId = (typeof SIMULATED_DRIVER_IDS)[number];

/** The glucose model's pairing passkey unless another is given (meters print theirs on a label or screen). */
export const DEFAULT_GLUCOSE_PASSKEY = '123456';

export interface SimulatedDeviceOptions {
  readonly address?: string;
  readonly name?: string;
  /** Seeds the physiology and the fault injection: the same seed gives the same bytes. */
  readonly seed?: number;
  readonly scheduler?: Scheduler;
  /** The device clock is this far off true time (a wrong clock); timestamps in payloads follow it. */
  readonly clockOffsetMs?: number;
  readonly faults?: FaultOptions;
  readonly rssi?: number;
  readonly inRange?: boolean;
  readonly advertiseEveryMs?: number;
  readonly manufacturerData?: ReadonlyMap<number, Uint8Array>;
  readonly subject?: Partial<SubjectProfile>;
  /** The measurement characteristics need a bond (default: the glucose meter only, as GLS requires). */
  readonly requireBonding?: boolean;
  /**
   * Pairing needs this passkey (default: DEFAULT_GLUCOSE_PASSKEY for the glucose meter when it needs a bond,
   * none otherwise). Give `null` for Just Works.
   */
  readonly passkey?: string | null;
  /** Period of a streaming device's notifications (defaults: 1 s; BerryMed 40 ms, four frames each). */
  readonly streamEveryMs?: number;
  /** Historic measurements in the device's memory, `preloadEveryMs` apart, ending now. */
  readonly preload?: number;
  readonly preloadEveryMs?: number;
  /**
   * BerryMed only: notifications are 20-byte slices of the UART stream that do not start on a frame (each
   * carries a 3-byte tail, three frames and a 2-byte head), as some firmware sends them. Default: aligned.
   */
  readonly misalignedStream?: boolean;
  /** Glucose only: the sequence number of the first record (default 1). */
  readonly firstSequenceNumber?: number;
  /**
   * The device's Current Time characteristic (SIG models with a clock): 'writable' (default; the gateway sets
   * the clock), 'read-only' (CTS 1.1 makes Write optional: the clock can be read, not set) or 'none' (no
   * Current Time Service: the gateway can only infer the clock from live readings).
   */
  readonly currentTime?: 'writable' | 'read-only' | 'none';
  /**
   * Spot devices (cuff, scale, thermometer, oximeter spot-checks): end the link this long after handing over
   * the stored records, as devices in transfer mode do. Default: stay connected.
   */
  readonly hangUpAfterTransferMs?: number;
}

/** One simulated device: a VirtualPeripheral whose GATT table and bytes follow one driver's device. */
export interface SimulatedDevice {
  readonly driverId: SimulatedDriverId;
  readonly peripheral: VirtualPeripheral;
  readonly subject: Subject;
  /** Where the driver's measurement values arrive. */
  readonly measurement: { readonly service: string; readonly characteristic: string };
  /** Sends values by itself while subscribed (after its start command, for Contec); else measures on demand. */
  readonly streams: boolean;
  /**
   * Takes a measurement now. Spot devices indicate it to a subscribed central or else keep it in memory for
   * the next connection (the glucose meter always keeps it: it is read through RACP); streaming devices send
   * their next frame at once.
   */
  measure(): void;
  /** Adds `count` historic measurements `everyMs` apart, ending now, to the device memory. */
  preload(count: number, everyMs?: number): void;
  /** Glucose only: the meter's record store. */
  readonly racp?: RacpServer;
}

const DEVICE_INFORMATION = '180a';
const BATTERY = '180f';
const CURRENT_TIME = '1805';
const BERRYMED_SERVICE = '49535343-fe7d-4ae5-8fa9-9fafd205e455';
const BERRYMED_TX = '49535343-1e4d-4bd9-ba61-23c647249616';
const BERRYMED_RX = '49535343-8841-43f4-a8d4-ecbe34729bb3';
const CONTEC_SERVICE = 'ff12';
const CONTEC_WRITE = 'ff01';
const CONTEC_NOTIFY = 'ff02';
/** The CMS50D-BT stops streaming when no 9A heartbeat came for this long (pulseoxdl, nringelstein). */
const CONTEC_HEARTBEAT_TIMEOUT_MS = 5_000;

const DEFAULTS: Readonly<Record<SimulatedDriverId, { address: string; name: string }>> = {
  'sig/pulse-oximeter': { address: 'D0:5E:00:00:00:01', name: 'PLX-Sim' },
  'sig/blood-pressure': { address: 'D0:5E:00:00:00:02', name: 'BLESmart_Sim' },
  'sig/thermometer': { address: 'D0:5E:00:00:00:03', name: 'Thermo-Sim' },
  'sig/weight-scale': { address: 'D0:5E:00:00:00:04', name: 'Scale-Sim' },
  'sig/glucose': { address: 'D0:5E:00:00:00:05', name: 'Meter-Sim' },
  'sig/heart-rate': { address: 'D0:5E:00:00:00:06', name: 'HRM-Sim' },
  'vendor/berrymed-bm1000': { address: 'D0:5E:00:00:00:07', name: 'BerryMed' },
  'vendor/contec-cms50d-bt': { address: 'D0:5E:00:00:00:08', name: 'SpO2080971' },
};

/**
 * Builds the simulated device for a driver: the services, characteristics and exact byte layouts of the real
 * device (each model follows one of the driver's captured fixtures, noted at the model), carrying a simulated
 * patient's values over time.
 */
export function simulatedDevice(driverId: string, options: SimulatedDeviceOptions = {}): SimulatedDevice {
  if (!isSimulatedDriverId(driverId)) throw new RangeError(`no device model for driver ${driverId}`);
  const context = new ModelContext(driverId, options);
  const device = MODELS[driverId](context);
  if (options.preload) device.preload(options.preload, options.preloadEveryMs);
  return device;
}

export function isSimulatedDriverId(id: string): id is SimulatedDriverId {
  return (SIMULATED_DRIVER_IDS as readonly string[]).includes(id);
}

/** What every model needs: the options resolved, the generators seeded, helpers for the common services. */
class ModelContext {
  readonly scheduler: Scheduler;
  readonly random: Random;
  readonly subject: Subject;
  readonly bond: boolean;
  readonly passkey: string | undefined;

  constructor(
    readonly driverId: SimulatedDriverId,
    readonly options: SimulatedDeviceOptions,
  ) {
    this.scheduler = options.scheduler ?? realScheduler;
    this.random = new Random(options.seed ?? 42);
    this.subject = new Subject(this.random.fork(1), options.subject);
    this.bond = options.requireBonding ?? driverId === 'sig/glucose';
    const passkey =
      options.passkey === undefined
        ? driverId === 'sig/glucose' && this.bond
          ? DEFAULT_GLUCOSE_PASSKEY
          : null
        : options.passkey;
    this.passkey = passkey ?? undefined;
  }

  peripheral(advertised: readonly string[], gatt: readonly ServiceDefinition[]): VirtualPeripheral {
    const o = this.options;
    const defaults = DEFAULTS[this.driverId];
    return new VirtualPeripheral({
      address: o.address ?? defaults.address,
      name: o.name ?? defaults.name,
      services: advertised,
      gatt,
      scheduler: this.scheduler,
      seed: this.random.int(1, 0x7fffffff),
      ...(o.manufacturerData ? { manufacturerData: o.manufacturerData } : {}),
      ...(o.rssi === undefined ? {} : { rssi: o.rssi }),
      ...(o.inRange === undefined ? {} : { inRange: o.inRange }),
      ...(o.advertiseEveryMs === undefined ? {} : { advertiseEveryMs: o.advertiseEveryMs }),
      ...(o.clockOffsetMs === undefined ? {} : { clockOffsetMs: o.clockOffsetMs }),
      ...(o.hangUpAfterTransferMs === undefined ? {} : { hangUpAfterTransferMs: o.hangUpAfterTransferMs }),
      ...(o.faults ? { faults: o.faults } : {}),
      ...(this.passkey === undefined ? {} : { passkey: this.passkey }),
    });
  }

  /** A measurement characteristic, bonded when the options ask for it. */
  measurementChar(
    uuid: string,
    properties: CharacteristicDefinition['properties'],
    extra: Partial<CharacteristicDefinition> = {},
  ): CharacteristicDefinition {
    return { uuid, properties, ...extra, ...(this.bond ? { requiresBond: true } : {}) };
  }

  /** Device Information, Battery and (for SIG devices with a clock) Current Time, as real devices carry them. */
  commonServices(model: string, clock: () => VirtualPeripheral | undefined): ServiceDefinition[] {
    let battery = 100;
    const services: ServiceDefinition[] = [
      {
        uuid: DEVICE_INFORMATION,
        characteristics: [
          { uuid: '2a29', properties: ['read'], value: utf8('rpm-gateway simulator') },
          { uuid: '2a24', properties: ['read'], value: utf8(model) },
          { uuid: '2a26', properties: ['read'], value: utf8('1.0.0') },
        ],
      },
      {
        uuid: BATTERY,
        characteristics: [
          {
            uuid: '2a19',
            properties: ['read', 'notify'],
            // Drains a little with every read, never below 5 %, so a long run sees a changing value.
            read: () => {
              battery = Math.max(5, battery - 0.01);
              return Uint8Array.of(Math.floor(battery));
            },
          },
        ],
      },
    ];
    const currentTime = this.options.currentTime ?? 'writable';
    if (currentTime === 'none') return services;
    services.push({
      uuid: CURRENT_TIME,
      characteristics: [
        {
          uuid: '2a2b',
          properties: currentTime === 'writable' ? ['read', 'write', 'notify'] : ['read', 'notify'],
          read: () => {
            const p = clock();
            if (!p) return encodeCurrentTime({ year: 0, month: 0, day: 0, hours: 0, minutes: 0, seconds: 0 });
            // Exact Time 256 carries the fraction of the second too (CTS 1.1, 3.1).
            const millis = (((this.scheduler.now() + p.clockOffsetMs) % 1000) + 1000) % 1000;
            return encodeCurrentTime({ ...p.deviceTime(), fractions256: Math.floor((millis * 256) / 1000) });
          },
          onWrite: (value) => {
            const p = clock();
            let fields: ReturnType<typeof decodeCurrentTime>;
            try {
              fields = decodeCurrentTime(value);
            } catch (error) {
              if (error instanceof DecodeError)
                throw new BleError('BLE_NOT_SUPPORTED', 'Current Time value rejected');
              throw error;
            }
            const iso = fields.dateTime.iso;
            if (!p || iso === null) return; // "date unknown" leaves the clock as it is
            p.setDeviceTime({
              year: Number(iso.slice(0, 4)),
              month: Number(iso.slice(5, 7)),
              day: Number(iso.slice(8, 10)),
              hours: Number(iso.slice(11, 13)),
              minutes: Number(iso.slice(14, 16)),
              seconds: Number(iso.slice(17, 19)),
            });
          },
        },
      ],
    });
    return services;
  }

  streamEvery(fallback: number): number {
    return this.options.streamEveryMs ?? fallback;
  }
}

/** A repeating timer on the scheduler, for streaming devices. */
class Ticker {
  private handle: TimerHandle | undefined;

  constructor(private readonly scheduler: Scheduler) {}

  get running(): boolean {
    return this.handle !== undefined;
  }

  start(everyMs: number, fn: () => void): void {
    if (this.handle !== undefined) return;
    const tick = () => {
      this.handle = this.scheduler.setTimeout(tick, everyMs);
      fn();
    };
    this.handle = this.scheduler.setTimeout(tick, everyMs);
  }

  stop(): void {
    if (this.handle !== undefined) this.scheduler.clearTimeout(this.handle);
    this.handle = undefined;
  }
}

/** Sends `value` to a subscriber, or keeps it for the next connection. */
function sendOrStore(peripheral: VirtualPeripheral, characteristic: string, value: Uint8Array): void {
  if (!peripheral.emit(characteristic, value)) peripheral.storeRecord(characteristic, value);
}

/** Times of `count` historic measurements `everyMs` apart, the last `everyMs` before now, oldest first. */
function pastTimes(now: number, count: number, everyMs: number): number[] {
  return Array.from({ length: count }, (_, i) => now - (count - i) * everyMs);
}

const MODELS: Readonly<Record<SimulatedDriverId, (c: ModelContext) => SimulatedDevice>> = {
  /**
   * Blood pressure cuff. Layout of the Nordic "full" vector in the driver's fixtures (flags 1E: mmHg,
   * timestamp, pulse rate, user id, measurement status); Blood Pressure Feature 03 00 (body movement and cuff
   * fit detection); inflation shown on Intermediate Cuff Pressure when subscribed.
   */
  'sig/blood-pressure': (c) => {
    let peripheral: VirtualPeripheral | undefined;
    const gatt: ServiceDefinition[] = [
      {
        uuid: '1810',
        characteristics: [
          c.measurementChar('2a35', ['indicate']),
          c.measurementChar('2a36', ['notify']),
          { uuid: '2a49', properties: ['read'], value: encodeBloodPressureFeature(0x0003) },
        ],
      },
      ...c.commonServices('BP-Sim', () => peripheral),
    ];
    const p = c.peripheral(['1810'], gatt);
    peripheral = p;
    const encode = (t: number) => {
      const s = c.subject.bloodPressure(t);
      return encodeBloodPressureMeasurement({
        unit: 'mmHg',
        systolic: s.systolic,
        diastolic: s.diastolic,
        meanArterialPressure: s.meanArterialPressure,
        timestamp: p.deviceTime(t),
        pulseRate: s.pulseRate,
        userId: 1,
        status: 0,
      });
    };
    return {
      driverId: c.driverId,
      peripheral: p,
      subject: c.subject,
      measurement: { service: '1810', characteristic: '2a35' },
      streams: false,
      measure: () => {
        const t = c.scheduler.now();
        if (p.isSubscribed('2a36')) {
          // Deflation from above systolic, as a cuff reports it while measuring.
          for (const pressure of [180, 150, 120, 90, 60]) {
            p.emit(
              '2a36',
              encodeIntermediateCuffPressure({
                unit: 'mmHg',
                cuffPressure: pressure,
                timestamp: p.deviceTime(t),
              }),
            );
          }
        }
        sendOrStore(p, '2a35', encode(t));
      },
      preload: (count, everyMs = 6 * 3_600_000) => {
        for (const t of pastTimes(c.scheduler.now(), count, everyMs)) p.storeRecord('2a35', encode(t));
      },
    };
  },

  /**
   * Health thermometer. Layout of the Nordic vector (flags 06: Celsius, timestamp, temperature type; FLOAT
   * mantissa with a negative exponent); type 3 (ear) in every measurement, so no Temperature Type
   * characteristic; a few settling values on Intermediate Temperature when subscribed.
   */
  'sig/thermometer': (c) => {
    let peripheral: VirtualPeripheral | undefined;
    const gatt: ServiceDefinition[] = [
      {
        uuid: '1809',
        characteristics: [
          c.measurementChar('2a1c', ['indicate']),
          c.measurementChar('2a1e', ['notify']),
          { uuid: '2a21', properties: ['read'], value: encodeMeasurementInterval(0) },
        ],
      },
      ...c.commonServices('Thermo-Sim', () => peripheral),
    ];
    const p = c.peripheral(['1809'], gatt);
    peripheral = p;
    const encode = (t: number, temperature = c.subject.temperature(t)) =>
      encodeTemperatureMeasurement({
        unit: 'celsius',
        temperature,
        timestamp: p.deviceTime(t),
        temperatureType: 3,
      });
    return {
      driverId: c.driverId,
      peripheral: p,
      subject: c.subject,
      measurement: { service: '1809', characteristic: '2a1c' },
      streams: false,
      measure: () => {
        const t = c.scheduler.now();
        const final = c.subject.temperature(t);
        if (p.isSubscribed('2a1e')) {
          for (const below of [0.6, 0.3, 0.1]) {
            p.emit(
              '2a1e',
              encodeTemperatureMeasurement({
                unit: 'celsius',
                temperature: Math.round((final - below) * 10) / 10,
              }),
            );
          }
        }
        sendOrStore(p, '2a1c', encode(t, final));
      },
      preload: (count, everyMs = 12 * 3_600_000) => {
        for (const t of pastTimes(c.scheduler.now(), count, everyMs)) p.storeRecord('2a1c', encode(t));
      },
    };
  },

  /**
   * Weight scale. Layout of the "SI every field" vector (flags 0E: kg, timestamp, user id, BMI and height);
   * Weight Scale Feature: timestamp, multiple users, BMI, 0.05 kg and 0.01 m resolution.
   */
  'sig/weight-scale': (c) => {
    let peripheral: VirtualPeripheral | undefined;
    const gatt: ServiceDefinition[] = [
      {
        uuid: '181d',
        characteristics: [
          c.measurementChar('2a9d', ['indicate']),
          {
            uuid: '2a9e',
            properties: ['read'],
            value: encodeWeightScaleFeature({
              timeStampSupported: true,
              multipleUsersSupported: true,
              bmiSupported: true,
              weightResolution: 4,
              heightResolution: 1,
            }),
          },
        ],
      },
      ...c.commonServices('Scale-Sim', () => peripheral),
    ];
    const p = c.peripheral(['181d'], gatt);
    peripheral = p;
    const encode = (t: number) => {
      const weight = c.subject.weight(t);
      return encodeWeightMeasurement({
        imperial: false,
        weight,
        timeStamp: p.deviceTime(t),
        userId: 1,
        bmi: c.subject.bmi(weight),
        height: c.subject.profile.heightM,
      });
    };
    return {
      driverId: c.driverId,
      peripheral: p,
      subject: c.subject,
      measurement: { service: '181d', characteristic: '2a9d' },
      streams: false,
      measure: () => sendOrStore(p, '2a9d', encode(c.scheduler.now())),
      preload: (count, everyMs = 24 * 3_600_000) => {
        for (const t of pastTimes(c.scheduler.now(), count, everyMs)) p.storeRecord('2a9d', encode(t));
      },
    };
  },

  /**
   * Glucose meter. Records in the layout of the Nordic vector (flags 1B: time offset, concentration in kg/L,
   * sensor status, context follows; capillary whole blood at the finger), each followed by a context carrying
   * the meal; read through the RACP. Bonding (with a passkey) is required by default, as GLS requires.
   */
  'sig/glucose': (c) => {
    let peripheral: VirtualPeripheral | undefined;
    let server: RacpServer | undefined;
    const gatt: ServiceDefinition[] = [
      {
        uuid: '1808',
        characteristics: [
          c.measurementChar('2a18', ['notify']),
          c.measurementChar('2a34', ['notify']),
          { uuid: '2a51', properties: ['read'], value: Uint8Array.of(0x03, 0x04) }, // low battery, malfunction, multiple bond
          c.measurementChar('2a52', ['write', 'indicate'], {
            onWrite: (value) => server?.handleWrite(value),
          }),
        ],
      },
      ...c.commonServices('Meter-Sim', () => peripheral),
    ];
    const p = c.peripheral(['1808'], gatt);
    peripheral = p;
    const racp = new RacpServer(p);
    server = racp;
    let sequenceNumber = c.options.firstSequenceNumber ?? 1;
    const record = (t: number) => {
      const s = c.subject.glucose(t);
      const baseTime = p.deviceTime(t);
      const seq = sequenceNumber & 0xffff;
      sequenceNumber++;
      racp.add({
        sequenceNumber: seq,
        measurement: encodeGlucoseMeasurement({
          sequenceNumber: seq,
          baseTime,
          timeOffset: 0,
          concentration: {
            sfloat: encodeSfloat(s.mgPerDl * 1e-5, -5),
            unit: 'kg/L',
            type: 1,
            sampleLocation: 1,
          },
          sensorStatus: 0,
          contextFollows: true,
        }),
        context: encodeGlucoseMeasurementContext({ sequenceNumber: seq, meal: s.meal }),
        userFacingTime: isoOf(baseTime),
      });
    };
    return {
      driverId: c.driverId,
      peripheral: p,
      subject: c.subject,
      measurement: { service: '1808', characteristic: '2a18' },
      streams: false,
      racp,
      measure: () => record(c.scheduler.now()),
      preload: (count, everyMs = 4 * 3_600_000) => {
        for (const t of pastTimes(c.scheduler.now(), count, everyMs)) record(t);
      },
    };
  },

  /**
   * Pulse oximeter (PLXS). Continuous measurement once a second in the layout of the Spezi "status fields and
   * PAI" vector (flags 1C); spot-checks in the layout of the Spezi "all optional fields" vector (flags 0F:
   * timestamp, both status fields, PAI), kept in memory when nobody listens (spot-check storage feature).
   */
  'sig/pulse-oximeter': (c) => {
    let peripheral: VirtualPeripheral | undefined;
    const gatt: ServiceDefinition[] = [
      {
        uuid: '1822',
        characteristics: [
          c.measurementChar('2a5e', ['indicate']),
          c.measurementChar('2a5f', ['notify']),
          {
            uuid: '2a60',
            properties: ['read'],
            value: encodePlxFeatures({
              supportedFeatures:
                PLX_FEATURE.spotCheckMeasurementStorage |
                PLX_FEATURE.spotCheckTimestamp |
                PLX_FEATURE.pulseAmplitudeIndex,
              measurementStatusSupport: 0x00a0, // measurement ongoing, validated data
              deviceAndSensorStatusSupport: 0x002020, // low perfusion, sensor displaced
            }),
          },
        ],
      },
      ...c.commonServices('PLX-Sim', () => peripheral),
    ];
    const p = c.peripheral(['1822'], gatt);
    peripheral = p;
    const cardio = new CardioProcess(c.random.fork(2), c.subject.profile.restingPulse);
    const ticker = new Ticker(c.scheduler);
    const every = c.streamEvery(1_000);
    const lowPerfusion = () => (cardio.perfusionIndex < 1.5 ? 0x000020 : 0);
    const continuous = () =>
      encodePlxContinuous({
        spo2: { value: cardio.spo2 },
        pulseRate: { value: cardio.pulseRate },
        measurementStatus: 0x0020,
        deviceAndSensorStatus: lowPerfusion(),
        pulseAmplitudeIndex: { value: cardio.perfusionIndex },
      });
    const spotCheck = (t: number) =>
      encodePlxSpotCheck({
        spo2: { value: cardio.spo2 },
        pulseRate: { value: cardio.pulseRate },
        timestamp: p.deviceTime(t),
        measurementStatus: 0x0080,
        deviceAndSensorStatus: lowPerfusion(),
        pulseAmplitudeIndex: { value: cardio.perfusionIndex },
      });
    p.addHooks({
      onSubscribe: (char) => {
        if (char === '2a5f')
          ticker.start(every, () => {
            cardio.advance(every);
            p.emit('2a5f', continuous());
          });
      },
      onUnsubscribe: (char) => {
        if (char === '2a5f') ticker.stop();
      },
      onDisconnect: () => ticker.stop(),
    });
    return {
      driverId: c.driverId,
      peripheral: p,
      subject: c.subject,
      measurement: { service: '1822', characteristic: '2a5f' },
      streams: true,
      measure: () => {
        cardio.advance(30_000); // a spot-check takes about half a minute on the finger
        sendOrStore(p, '2a5e', spotCheck(c.scheduler.now()));
      },
      preload: (count, everyMs = 8 * 3_600_000) => {
        for (const t of pastTimes(c.scheduler.now(), count, everyMs)) {
          cardio.advance(30_000);
          p.storeRecord('2a5e', spotCheck(t));
        }
      },
    };
  },

  /**
   * Heart-rate strap. Layout of the Nordic vector "uint8 value, contact, energy, RR" (flags 1E with energy,
   * 16 without): sensor contact detected, the RR intervals of the beats in each second (1/1024 s), energy
   * expended in every tenth notification (HRS 1.0 3.1.1.3); the heart rate is the mean of those RR intervals.
   */
  'sig/heart-rate': (c) => {
    const energyReset = (value: Uint8Array) => {
      if (value.length !== 1 || value[0] !== 0x01) {
        throw new BleError('BLE_NOT_SUPPORTED', 'Heart Rate Control Point: value not supported (ATT 0x80)');
      }
      energy = 0;
    };
    let energy = 0;
    const gatt: ServiceDefinition[] = [
      {
        uuid: '180d',
        characteristics: [
          c.measurementChar('2a37', ['notify']),
          { uuid: '2a38', properties: ['read'], value: encodeBodySensorLocation('chest') },
          { uuid: '2a39', properties: ['write'], onWrite: energyReset },
        ],
      },
      ...c.commonServices('HRM-Sim', () => undefined).filter((s) => s.uuid !== CURRENT_TIME),
    ];
    const p = c.peripheral(['180d'], gatt);
    const cardio = new CardioProcess(c.random.fork(3), c.subject.profile.restingPulse);
    const ticker = new Ticker(c.scheduler);
    const every = c.streamEvery(1_000);
    let count = 0;
    let lastRate = c.subject.profile.restingPulse;
    const next = () => {
      const beats = cardio.advance(every);
      if (beats.length > 0) lastRate = Math.round(60 / (beats.reduce((a, b) => a + b, 0) / beats.length));
      energy += (every / 60_000) * (2 + lastRate * 0.05); // kJ: resting expenditure rising with the rate
      const withEnergy = count++ % 10 === 0;
      return encodeHeartRateMeasurement({
        heartRate: lastRate,
        sensorContact: 'detected',
        ...(withEnergy ? { energyExpended: Math.floor(energy) } : {}),
        rrIntervals: beats.map((rr) => Math.round(rr * 1024)),
      });
    };
    p.addHooks({
      onSubscribe: (char) => {
        if (char === '2a37') ticker.start(every, () => p.emit('2a37', next()));
      },
      onUnsubscribe: (char) => {
        if (char === '2a37') ticker.stop();
      },
      onDisconnect: () => ticker.stop(),
    });
    return {
      driverId: c.driverId,
      peripheral: p,
      subject: c.subject,
      measurement: { service: '180d', characteristic: '2a37' },
      streams: true,
      measure: () => {
        p.emit('2a37', next());
      },
      preload: () => undefined, // a strap keeps no history
    };
  },

  /**
   * BerryMed BM1000 (BCI protocol): 5-byte frames at 100 per second, four per 20-byte notification on the
   * transparent-UART TX characteristic, starting as soon as notifications are on (no setup write). Layout of
   * the atick capture (signal strength, pleth, bar graph, PR, SpO2); the beep bit marks the frame of a beat;
   * the displayed SpO2 and PR change once a second.
   */
  'vendor/berrymed-bm1000': (c) => {
    const gatt: ServiceDefinition[] = [
      {
        uuid: BERRYMED_SERVICE,
        characteristics: [
          c.measurementChar(BERRYMED_TX, ['notify']),
          { uuid: BERRYMED_RX, properties: ['write', 'write-without-response'] },
        ],
      },
    ];
    const p = c.peripheral([BERRYMED_SERVICE], gatt);
    const cardio = new CardioProcess(c.random.fork(4), c.subject.profile.restingPulse);
    const ticker = new Ticker(c.scheduler);
    const every = c.streamEvery(40);
    const framesPerNotification = 4;
    let frameCount = 0;
    let displayed = { spo2: cardio.spo2, pulseRate: cardio.pulseRate };
    let pending: number[] = c.options.misalignedStream ? [0x32, 0x05, 0x48] : [];
    const frame = () => {
      const beat = cardio.advance(10).length > 0;
      if (frameCount++ % 100 === 0) displayed = { spo2: cardio.spo2, pulseRate: cardio.pulseRate };
      const pleth = plethAt(cardio.beatPhase);
      return encodeBciFrame({
        signalStrength: Math.max(1, Math.min(8, Math.round(cardio.perfusionIndex))),
        noSignal: false,
        probeUnplugged: false,
        pulseBeep: beat,
        pleth,
        barGraph: Math.round((pleth * 15) / 100),
        noFinger: false,
        pulseSearching: false,
        pulseRate: displayed.pulseRate,
        spo2: displayed.spo2,
      });
    };
    const next = () => {
      for (let i = 0; i < framesPerNotification; i++) pending.push(...frame());
      const chunk = Uint8Array.from(pending.slice(0, 20));
      pending = pending.slice(20);
      return chunk;
    };
    p.addHooks({
      onSubscribe: (char) => {
        if (char === BERRYMED_TX) ticker.start(every, () => p.emit(BERRYMED_TX, next()));
      },
      onUnsubscribe: (char) => {
        if (char === BERRYMED_TX) ticker.stop();
      },
      onDisconnect: () => ticker.stop(),
    });
    return {
      driverId: c.driverId,
      peripheral: p,
      subject: c.subject,
      measurement: { service: BERRYMED_SERVICE, characteristic: BERRYMED_TX },
      streams: true,
      measure: () => {
        p.emit(BERRYMED_TX, next());
      },
      preload: () => undefined, // live stream only
    };
  },

  /**
   * Contec CMS50D-BT: nothing on ff02 until 9B 01 1C is written to ff01; then an 8-byte EB 01 measurement
   * frame a second (flags 04 as in the OxiVis capture, PI bytes 7F 00: this model measures no PI, PR bit 7 in
   * flags bit 1) for as long as 9A 1A heartbeats keep coming within 5 s; 9B 7F 1A stops it (answer EB 7F 6A).
   */
  'vendor/contec-cms50d-bt': (c) => {
    let onCommand: (value: Uint8Array) => void = () => undefined;
    const gatt: ServiceDefinition[] = [
      {
        uuid: CONTEC_SERVICE,
        characteristics: [
          {
            uuid: CONTEC_WRITE,
            properties: ['write', 'write-without-response'],
            onWrite: (v) => onCommand(v),
          },
          c.measurementChar(CONTEC_NOTIFY, ['notify']),
        ],
      },
    ];
    const p = c.peripheral([CONTEC_SERVICE], gatt);
    const cardio = new CardioProcess(c.random.fork(5), c.subject.profile.restingPulse);
    const ticker = new Ticker(c.scheduler);
    const every = c.streamEvery(1_000);
    let lastHeartbeat = 0;
    const frame = () =>
      encodeContecMeasurement({
        flags: 0x04,
        pulseRate: cardio.pulseRate,
        spo2: cardio.spo2,
        perfusionIndex: undefined,
      });
    const tick = () => {
      if (c.scheduler.now() - lastHeartbeat > CONTEC_HEARTBEAT_TIMEOUT_MS) return ticker.stop();
      cardio.advance(every);
      p.emit(CONTEC_NOTIFY, frame());
    };
    onCommand = (value) => {
      // Commands carry the same 7-bit checksum as frames; the device ignores a command that fails it.
      if (value.length < 2 || contecChecksum(value, 0, value.length - 1) !== value[value.length - 1]) return;
      const [command, argument] = [value[0], value[1]];
      if (command === 0x9a) {
        lastHeartbeat = c.scheduler.now();
      } else if (command === 0x9b && argument === 0x01) {
        lastHeartbeat = c.scheduler.now();
        ticker.start(every, tick);
      } else if (command === 0x9b && argument === 0x7f) {
        ticker.stop();
        p.emit(CONTEC_NOTIFY, Uint8Array.of(CONTEC_LIVE_HEADER, 0x7f, 0x6a));
      }
    };
    p.addHooks({ onDisconnect: () => ticker.stop() });
    return {
      driverId: c.driverId,
      peripheral: p,
      subject: c.subject,
      measurement: { service: CONTEC_SERVICE, characteristic: CONTEC_NOTIFY },
      streams: true,
      measure: () => {
        p.emit(CONTEC_NOTIFY, frame());
      },
      preload: () => undefined, // stored-record download (9F/9C) is not modelled
    };
  },
};

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
