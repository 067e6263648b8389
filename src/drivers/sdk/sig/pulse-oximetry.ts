import {
  decodePlxContinuous,
  decodePlxFeatures,
  decodePlxSpotCheck,
  PLX_DEVICE_AND_SENSOR_STATUS_BITS,
  PLX_FEATURE,
  PLX_MEASUREMENT_STATUS_BITS,
} from '../../../gatt/pulse-oximetry.js';
import type { JsonValue, Observation, Reading } from '../../../model/observation.js';
import type { CharacteristicSpec, Decoder } from '../define-driver.js';
import { bitNames, observe } from '../observe.js';

/**
 * SIG Pulse Oximeter Service (0x1822, PLXS 1.0.1) decoders for the SDK: PLX Spot-Check Measurement (0x2A5E),
 * PLX Continuous Measurement (0x2A5F) and PLX Features (0x2A60). The byte layouts live in
 * src/gatt/pulse-oximetry.ts; this module maps them to coded observations (IEEE 11073-10404 terms):
 * SpO2 -> MDC_PULS_OXIM_SAT_O2 (%), PR -> MDC_PULS_OXIM_PULS_RATE (/min), Pulse Amplitude Index ->
 * MDC_PULS_OXIM_PERF_REL (%). The continuous SpO2PR-Fast and -Slow pairs carry the qualifiers 'fast' and
 * 'slow'; SpO2PR-Normal has none.
 */
export const PULSE_OXIMETER_SERVICE = '1822';
export const PLX_SPOT_CHECK_MEASUREMENT = '2a5e';
export const PLX_CONTINUOUS_MEASUREMENT = '2a5f';
export const PLX_FEATURES = '2a60';

const FAST = { qualifier: 'fast' } as const;
const SLOW = { qualifier: 'slow' } as const;

/** Adds the named status bits to `status` and the per-field lists to `details` (only for fields present). */
function addStatus(
  measurementStatus: number | undefined,
  deviceAndSensorStatus: number | undefined,
  details: Record<string, JsonValue>,
): string[] {
  if (measurementStatus === undefined && deviceAndSensorStatus === undefined) return [];
  const measurement =
    measurementStatus === undefined ? [] : bitNames(measurementStatus, PLX_MEASUREMENT_STATUS_BITS);
  const device =
    deviceAndSensorStatus === undefined
      ? []
      : bitNames(deviceAndSensorStatus, PLX_DEVICE_AND_SENSOR_STATUS_BITS);
  if (measurementStatus !== undefined) details.measurementStatus = measurement;
  if (deviceAndSensorStatus !== undefined) details.deviceAndSensorStatus = device;
  return device.length === 0 ? measurement : measurement.length === 0 ? device : measurement.concat(device);
}

/**
 * PLX Spot-Check Measurement -> one reading. `time` is the Timestamp field, or null when it is absent, when
 * the Date Time says "unknown" (year/month/day 0), or when flags bit 4 says the device clock is not set
 * (details.deviceClockNotSet); an out-of-range Date Time gives null and details.deviceTimeInvalid.
 */
export const plxSpotCheckDecoder: Decoder = (bytes) => {
  const m = decodePlxSpotCheck(bytes);
  const observations: Observation[] = [
    observe('MDC_PULS_OXIM_SAT_O2', m.spo2, '%'),
    observe('MDC_PULS_OXIM_PULS_RATE', m.pulseRate, '/min'),
  ];
  if (m.pulseAmplitudeIndex !== undefined) {
    observations.push(observe('MDC_PULS_OXIM_PERF_REL', m.pulseAmplitudeIndex, '%'));
  }
  const details: Record<string, JsonValue> = {};
  let time: string | null = null;
  if (m.deviceClockNotSet) {
    details.deviceClockNotSet = true;
  } else if (m.timestamp !== undefined) {
    if (m.timestamp.valid) time = m.timestamp.iso;
    else details.deviceTimeInvalid = true;
  }
  const status = addStatus(m.measurementStatus, m.deviceAndSensorStatus, details);
  return [{ observations, time, status, kind: 'measurement', details }];
};

/** PLX Continuous Measurement -> one reading (the payload carries no timestamp, so `time` is null). */
export const plxContinuousDecoder: Decoder = (bytes) => {
  const m = decodePlxContinuous(bytes);
  const observations: Observation[] = [
    observe('MDC_PULS_OXIM_SAT_O2', m.spo2, '%'),
    observe('MDC_PULS_OXIM_PULS_RATE', m.pulseRate, '/min'),
  ];
  if (m.spo2Fast !== undefined && m.pulseRateFast !== undefined) {
    observations.push(
      observe('MDC_PULS_OXIM_SAT_O2', m.spo2Fast, '%', FAST),
      observe('MDC_PULS_OXIM_PULS_RATE', m.pulseRateFast, '/min', FAST),
    );
  }
  if (m.spo2Slow !== undefined && m.pulseRateSlow !== undefined) {
    observations.push(
      observe('MDC_PULS_OXIM_SAT_O2', m.spo2Slow, '%', SLOW),
      observe('MDC_PULS_OXIM_PULS_RATE', m.pulseRateSlow, '/min', SLOW),
    );
  }
  if (m.pulseAmplitudeIndex !== undefined) {
    observations.push(observe('MDC_PULS_OXIM_PERF_REL', m.pulseAmplitudeIndex, '%'));
  }
  const details: Record<string, JsonValue> = {};
  const status = addStatus(m.measurementStatus, m.deviceAndSensorStatus, details);
  return [{ observations, time: null, status, kind: 'measurement', details }];
};

/**
 * PLX Features -> one 'info' reading: details.features holds the eight Supported Features as named booleans;
 * details.supportedMeasurementStatus / supportedDeviceAndSensorStatus list the status bits the device can
 * report (present only when the feature bits announce those fields).
 */
export const plxFeaturesDecoder: Decoder = (bytes) => {
  const f = decodePlxFeatures(bytes);
  const s = f.supportedFeatures;
  const details: Record<string, JsonValue> = {
    features: {
      measurementStatusSupport: (s & PLX_FEATURE.measurementStatusSupport) !== 0,
      deviceAndSensorStatusSupport: (s & PLX_FEATURE.deviceAndSensorStatusSupport) !== 0,
      spotCheckMeasurementStorage: (s & PLX_FEATURE.spotCheckMeasurementStorage) !== 0,
      spotCheckTimestamp: (s & PLX_FEATURE.spotCheckTimestamp) !== 0,
      spo2prFast: (s & PLX_FEATURE.spo2prFast) !== 0,
      spo2prSlow: (s & PLX_FEATURE.spo2prSlow) !== 0,
      pulseAmplitudeIndex: (s & PLX_FEATURE.pulseAmplitudeIndex) !== 0,
      multipleBonds: (s & PLX_FEATURE.multipleBonds) !== 0,
    },
  };
  if (f.measurementStatusSupport !== undefined) {
    details.supportedMeasurementStatus = bitNames(f.measurementStatusSupport, PLX_MEASUREMENT_STATUS_BITS);
  }
  if (f.deviceAndSensorStatusSupport !== undefined) {
    details.supportedDeviceAndSensorStatus = bitNames(
      f.deviceAndSensorStatusSupport,
      PLX_DEVICE_AND_SENSOR_STATUS_BITS,
    );
  }
  const reading: Reading = { observations: [], time: null, kind: 'info', details };
  return [reading];
};

const OXIMETRY_EMITS = [
  { code: 'MDC_PULS_OXIM_SAT_O2', units: ['%'] },
  { code: 'MDC_PULS_OXIM_PULS_RATE', units: ['/min'] },
  { code: 'MDC_PULS_OXIM_PERF_REL', units: ['%'] },
] as const;

/** PLXS 1.0.1 3.1: indicated; mandatory unless the continuous measurement is supported (C.1). */
export const plxSpotCheckSpec: CharacteristicSpec = {
  uuid: PLX_SPOT_CHECK_MEASUREMENT,
  service: PULSE_OXIMETER_SERVICE,
  access: 'indicate',
  optional: true,
  name: 'PLX Spot-Check Measurement',
  decode: plxSpotCheckDecoder,
  emits: OXIMETRY_EMITS,
};

/** PLXS 1.0.1 3.2: notified; mandatory unless the spot-check measurement is supported (C.1). */
export const plxContinuousSpec: CharacteristicSpec = {
  uuid: PLX_CONTINUOUS_MEASUREMENT,
  service: PULSE_OXIMETER_SERVICE,
  access: 'notify',
  optional: true,
  name: 'PLX Continuous Measurement',
  decode: plxContinuousDecoder,
  emits: OXIMETRY_EMITS,
};

/** PLXS 1.0.1 3.3: mandatory, read. */
export const plxFeaturesSpec: CharacteristicSpec = {
  uuid: PLX_FEATURES,
  service: PULSE_OXIMETER_SERVICE,
  access: 'read',
  name: 'PLX Features',
  decode: plxFeaturesDecoder,
  emits: [],
};

/** The three PLXS characteristics, ready for a driver's `characteristics`. */
export const pulseOximetryCharacteristics: readonly CharacteristicSpec[] = [
  plxFeaturesSpec,
  plxSpotCheckSpec,
  plxContinuousSpec,
];
