import { decodeBodySensorLocation, decodeHeartRateMeasurement } from '../../../gatt/heart-rate.js';
import type { JsonValue, Observation } from '../../../model/observation.js';
import type { CharacteristicSpec, Decoder } from '../define-driver.js';

export {
  encodeHeartRateControlPoint,
  HEART_RATE_CONTROL_POINT_UUID,
} from '../../../gatt/heart-rate.js';

/**
 * SIG Heart Rate Service 1.0 (0x180D) decoders. The heart rate is MDC_ECG_HEART_RATE in /min; each RR-interval
 * is its own MDC_ECG_TIME_PD_RR_GL observation in seconds, qualified 'rr-1', 'rr-2', ... in payload order
 * (oldest first). RR values are raw / 1024 exactly (a k/1024 fraction has a finite decimal form, so nothing is
 * rounded). Energy expended (kJ, no clinical code) goes to details.
 */
export const HEART_RATE_SERVICE = '180d';

const RR_QUALIFIERS = Array.from({ length: 64 }, (_, i) => `rr-${i + 1}`);
const NO_CONTACT = Object.freeze(['no-sensor-contact']);

/** Heart Rate Measurement (0x2A37, notify). */
export const heartRateMeasurementDecoder: Decoder = (bytes, ctx) => {
  const m = decodeHeartRateMeasurement(bytes);
  const observations: Observation[] = [{ code: 'MDC_ECG_HEART_RATE', value: m.heartRate, unit: '/min' }];
  const rr = m.rrIntervals;
  if (rr !== undefined) {
    for (let i = 0; i < rr.length; i++) {
      observations.push({
        code: 'MDC_ECG_TIME_PD_RR_GL',
        value: (rr[i] as number) / 1024,
        unit: 's',
        qualifier: RR_QUALIFIERS[i] ?? `rr-${i + 1}`,
      });
    }
  }
  const details: { [k: string]: JsonValue } = { sensorContact: m.sensorContact };
  // 0xFFFF means "65535 kJ or more" (HRS 1.0 3.1.1.3): the sensor stops counting until it is reset.
  if (m.energyExpended !== undefined) details['energyExpended'] = m.energyExpended;
  const location = ctx.deviceState?.['2a38']?.details?.['bodySensorLocation'];
  if (location !== undefined) details['bodySensorLocation'] = location;
  // Contact supported but not detected: the value is unreliable, say so where receivers look for quality flags.
  return m.sensorContact === 'not-detected'
    ? [{ observations, time: null, status: NO_CONTACT, kind: 'measurement', details }]
    : [{ observations, time: null, kind: 'measurement', details }];
};

/** Body Sensor Location (0x2A38, read). */
export const bodySensorLocationDecoder: Decoder = (bytes) => {
  const v = decodeBodySensorLocation(bytes);
  return [
    {
      observations: [],
      time: null,
      kind: 'info',
      details: { bodySensorLocation: v.location, bodySensorLocationCode: v.raw },
    },
  ];
};

export const heartRateMeasurementSpec: CharacteristicSpec = {
  uuid: '2a37',
  service: HEART_RATE_SERVICE,
  access: 'notify',
  name: 'Heart Rate Measurement',
  decode: heartRateMeasurementDecoder,
  emits: [
    { code: 'MDC_ECG_HEART_RATE', units: ['/min'] },
    { code: 'MDC_ECG_TIME_PD_RR_GL', units: ['s'] },
  ],
};

export const bodySensorLocationSpec: CharacteristicSpec = {
  uuid: '2a38',
  service: HEART_RATE_SERVICE,
  access: 'read',
  optional: true,
  name: 'Body Sensor Location',
  decode: bodySensorLocationDecoder,
  emits: [],
};

/**
 * The Heart Rate Service characteristics the gateway reads or subscribes to. The Heart Rate Control Point
 * (0x2A39) is write-only: see encodeHeartRateControlPoint.
 */
export const heartRateCharacteristics: readonly CharacteristicSpec[] = Object.freeze([
  heartRateMeasurementSpec,
  bodySensorLocationSpec,
]);
