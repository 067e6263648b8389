import { decodeWeightMeasurement, decodeWeightScaleFeature } from '../../../gatt/weight-scale.js';
import type { JsonValue, Observation } from '../../../model/observation.js';
import type { CharacteristicSpec, Decoder } from '../define-driver.js';
import { observe } from '../observe.js';

/**
 * SIG Weight Scale Service 1.0 (0x181D) decoders. Values stay in the unit system the scale chose (kg and m, or
 * [lb_av] and [in_i]); BMI is always kg/m2. Observations follow the payload order: weight, BMI, height.
 */
export const WEIGHT_SCALE_SERVICE = '181d';

/** Weight Measurement (0x2A9D, indicate): one reading per indication. */
export const weightMeasurementDecoder: Decoder = (bytes) => {
  const m = decodeWeightMeasurement(bytes);
  const observations: Observation[] = [
    observe('MDC_MASS_BODY_ACTUAL', m.weight, m.imperial ? '[lb_av]' : 'kg'),
  ];
  if (m.bmi !== undefined)
    observations.push({ code: 'MDC_RATIO_MASS_BODY_LEN_SQ', value: m.bmi, unit: 'kg/m2' });
  if (m.height !== undefined) {
    observations.push({ code: 'MDC_LEN_BODY_ACTUAL', value: m.height, unit: m.imperial ? '[in_i]' : 'm' });
  }
  const details: { [k: string]: JsonValue } = { unitSystem: m.imperial ? 'imperial' : 'si' };
  // 0xFFFF: the scale could not weigh (WSS 1.0 3.2); the weight observation is null with invalid 'nan'.
  if (m.weight.value === null) details['measurementUnsuccessful'] = true;
  // 255 is "unknown user" (kept as sent; the receiver decides how to attribute the reading).
  // 0xFF is "unknown user" (WSS 1.0, 3.2.1.3), reported as null as the blood pressure decoder does.
  if (m.userId !== undefined) details['userId'] = m.userId === 0xff ? null : m.userId;
  if (m.timeStamp !== undefined && !m.timeStamp.valid) details['deviceTimeInvalid'] = true;
  return [{ observations, time: m.timeStamp?.iso ?? null, kind: 'measurement', details }];
};

/** Weight Scale Feature (0x2A9E, read): what the scale supports and its resolutions. */
export const weightScaleFeatureDecoder: Decoder = (bytes) => {
  const f = decodeWeightScaleFeature(bytes);
  return [
    {
      observations: [],
      time: null,
      kind: 'info',
      details: {
        timeStampSupported: f.timeStampSupported,
        multipleUsersSupported: f.multipleUsersSupported,
        bmiSupported: f.bmiSupported,
        weightResolutionKg: f.weightResolutionKg,
        weightResolutionLb: f.weightResolutionLb,
        heightResolutionM: f.heightResolutionM,
        heightResolutionIn: f.heightResolutionIn,
      },
    },
  ];
};

export const weightMeasurementSpec: CharacteristicSpec = {
  uuid: '2a9d',
  service: WEIGHT_SCALE_SERVICE,
  access: 'indicate',
  name: 'Weight Measurement',
  decode: weightMeasurementDecoder,
  emits: [
    { code: 'MDC_MASS_BODY_ACTUAL', units: ['kg', '[lb_av]'] },
    { code: 'MDC_RATIO_MASS_BODY_LEN_SQ', units: ['kg/m2'] },
    { code: 'MDC_LEN_BODY_ACTUAL', units: ['m', '[in_i]'] },
  ],
};

export const weightScaleFeatureSpec: CharacteristicSpec = {
  uuid: '2a9e',
  service: WEIGHT_SCALE_SERVICE,
  access: 'read',
  name: 'Weight Scale Feature',
  decode: weightScaleFeatureDecoder,
  emits: [],
};

/** The Weight Scale Service characteristics (both mandatory in WSS 1.0). */
export const weightScaleCharacteristics: readonly CharacteristicSpec[] = Object.freeze([
  weightMeasurementSpec,
  weightScaleFeatureSpec,
]);
