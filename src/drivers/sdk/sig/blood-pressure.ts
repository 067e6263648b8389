import {
  type BloodPressureMeasurementStatus,
  type BloodPressureUnit,
  BP_USER_ID_UNKNOWN,
  decodeBloodPressureFeature,
  decodeBloodPressureMeasurement,
  decodeIntermediateCuffPressure,
} from '../../../gatt/blood-pressure.js';
import type { DeviceDateTime } from '../../../gatt/date-time.js';
import type { JsonValue, Observation, Reading } from '../../../model/observation.js';
import type { UcumUnit } from '../../../model/units.js';
import type { CharacteristicSpec, Decoder } from '../define-driver.js';
import { observe } from '../observe.js';

/**
 * The SDK's decoders for the Blood Pressure Service (0x1810, BLS 1.1.1): GATT structs from src/gatt/blood-pressure.ts
 * mapped to IEEE 11073-10101 coded readings (11073-10407 blood pressure monitor terms).
 */

const BLOOD_PRESSURE_SERVICE = '1810';
const PRESSURE_UNITS: readonly UcumUnit[] = ['mm[Hg]', 'kPa'];

function ucumPressure(unit: BloodPressureUnit): UcumUnit {
  return unit === 'kPa' ? 'kPa' : 'mm[Hg]';
}

/** Status names in bit order; bits 3-4 are one 2-bit field, of which only values 1 and 2 are named. */
function statusNames(status: BloodPressureMeasurementStatus | undefined): string[] {
  const names: string[] = [];
  if (status === undefined) return names;
  if (status.bodyMovement) names.push('body-movement');
  if (status.cuffTooLoose) names.push('cuff-fit-loose');
  if (status.irregularPulse) names.push('irregular-pulse');
  if (status.pulseRateRange === 'exceeds-upper-limit') names.push('pulse-rate-exceeds-upper-limit');
  else if (status.pulseRateRange === 'below-lower-limit') names.push('pulse-rate-below-lower-limit');
  if (status.improperPosition) names.push('improper-measurement-position');
  return names;
}

/** User ID, Measurement Status and an untrusted device clock; keys only for fields the payload carries. */
function bloodPressureDetails(
  timestamp: DeviceDateTime | undefined,
  userId: number | undefined,
  status: BloodPressureMeasurementStatus | undefined,
): { [k: string]: JsonValue } {
  const details: { [k: string]: JsonValue } = {};
  // 0xFF is "unknown user" (GATT Specification Supplement, User ID): null, as opposed to an absent key.
  if (userId !== undefined) details['userId'] = userId === BP_USER_ID_UNKNOWN ? null : userId;
  if (status !== undefined) {
    details['measurementStatus'] = {
      bodyMovement: status.bodyMovement,
      cuffTooLoose: status.cuffTooLoose,
      irregularPulse: status.irregularPulse,
      pulseRateRange: status.pulseRateRange,
      improperMeasurementPosition: status.improperPosition,
    };
  }
  if (timestamp !== undefined && !timestamp.valid) details['deviceTimeInvalid'] = true;
  return details;
}

/** 0x2A35 -> systolic, diastolic, mean (and pulse rate), in the unit the cuff chose. */
export const bloodPressureMeasurementDecoder: Decoder = (bytes) => {
  const m = decodeBloodPressureMeasurement(bytes);
  const unit = ucumPressure(m.unit);
  const observations: Observation[] = [
    observe('MDC_PRESS_BLD_NONINV_SYS', m.systolic, unit),
    observe('MDC_PRESS_BLD_NONINV_DIA', m.diastolic, unit),
    observe('MDC_PRESS_BLD_NONINV_MEAN', m.meanArterialPressure, unit),
  ];
  if (m.pulseRate !== undefined) observations.push(observe('MDC_PULS_RATE_NON_INV', m.pulseRate, '/min'));
  const reading: Reading = {
    observations,
    time: m.timestamp?.iso ?? null,
    status: statusNames(m.status),
    kind: 'measurement',
    details: bloodPressureDetails(m.timestamp, m.userId, m.status),
  };
  return [reading];
};

/** 0x2A36 -> the current cuff pressure only (the unused diastolic and mean fields give no observation). */
export const intermediateCuffPressureDecoder: Decoder = (bytes) => {
  const m = decodeIntermediateCuffPressure(bytes);
  const observations: Observation[] = [observe('MDC_PRESS_CUFF', m.cuffPressure, ucumPressure(m.unit))];
  if (m.pulseRate !== undefined) observations.push(observe('MDC_PULS_RATE_NON_INV', m.pulseRate, '/min'));
  const reading: Reading = {
    observations,
    time: m.timestamp?.iso ?? null,
    status: statusNames(m.status),
    kind: 'intermediate',
    details: bloodPressureDetails(m.timestamp, m.userId, m.status),
  };
  return [reading];
};

/** 0x2A49 -> which status bits and features the monitor supports, as named booleans. */
export const bloodPressureFeatureDecoder: Decoder = (bytes) => {
  const f = decodeBloodPressureFeature(bytes);
  const reading: Reading = {
    observations: [],
    time: null,
    kind: 'info',
    details: {
      features: {
        bodyMovementDetection: f.bodyMovementDetection,
        cuffFitDetection: f.cuffFitDetection,
        irregularPulseDetection: f.irregularPulseDetection,
        pulseRateRangeDetection: f.pulseRateRangeDetection,
        measurementPositionDetection: f.measurementPositionDetection,
        multipleBond: f.multipleBond,
        e2eCrc: f.e2eCrc,
        userDataService: f.userDataService,
        userFacingTime: f.userFacingTime,
      },
    },
  };
  return [reading];
};

/** Blood Pressure Measurement: mandatory, indicated (BLS 1.1.1 3.1). */
export const bloodPressureMeasurementSpec: CharacteristicSpec = {
  uuid: '2a35',
  service: BLOOD_PRESSURE_SERVICE,
  access: 'indicate',
  name: 'Blood Pressure Measurement',
  decode: bloodPressureMeasurementDecoder,
  emits: [
    { code: 'MDC_PRESS_BLD_NONINV_SYS', units: PRESSURE_UNITS },
    { code: 'MDC_PRESS_BLD_NONINV_DIA', units: PRESSURE_UNITS },
    { code: 'MDC_PRESS_BLD_NONINV_MEAN', units: PRESSURE_UNITS },
    { code: 'MDC_PULS_RATE_NON_INV', units: ['/min'] },
  ],
};

/** Intermediate Cuff Pressure: optional, notified (BLS 1.1.1 3.2). */
export const intermediateCuffPressureSpec: CharacteristicSpec = {
  uuid: '2a36',
  service: BLOOD_PRESSURE_SERVICE,
  access: 'notify',
  optional: true,
  name: 'Intermediate Cuff Pressure',
  decode: intermediateCuffPressureDecoder,
  emits: [
    { code: 'MDC_PRESS_CUFF', units: PRESSURE_UNITS },
    { code: 'MDC_PULS_RATE_NON_INV', units: ['/min'] },
  ],
};

/** Blood Pressure Feature: mandatory, read (BLS 1.1.1 3.3). */
export const bloodPressureFeatureSpec: CharacteristicSpec = {
  uuid: '2a49',
  service: BLOOD_PRESSURE_SERVICE,
  access: 'read',
  name: 'Blood Pressure Feature',
  decode: bloodPressureFeatureDecoder,
  emits: [],
};

export const bloodPressureCharacteristics: readonly CharacteristicSpec[] = [
  bloodPressureMeasurementSpec,
  intermediateCuffPressureSpec,
  bloodPressureFeatureSpec,
];
