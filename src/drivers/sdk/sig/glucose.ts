import {
  decodeGlucoseFeature,
  decodeGlucoseMeasurement,
  decodeGlucoseMeasurementContext,
  decodeRacp,
  EXERCISE_DURATION_OVERRUN,
  GLUCOSE_CARBOHYDRATES,
  GLUCOSE_HEALTH,
  GLUCOSE_MEALS,
  GLUCOSE_MEDICATIONS,
  GLUCOSE_SENSOR_STATUS_BITS,
  GLUCOSE_TESTERS,
  type RacpMessage,
  scaleSfloat,
} from '../../../gatt/glucose.js';
import type { MdcCode } from '../../../model/codes.js';
import type { JsonValue, Observation } from '../../../model/observation.js';
import type { CharacteristicSpec, Decoder, Emits } from '../define-driver.js';
import { bitNames, observe } from '../observe.js';

/**
 * The SDK's decoders for the Glucose Service (0x1808, GLS 1.0.1): GATT structs from src/gatt/glucose.ts mapped
 * to IEEE 11073-10101 coded readings (11073-10417 glucose meter terms).
 *
 * - Concentration: GATT carries kg/L or mol/L; readings carry what clinicians read, mg/dL (kg/L x 100,000) or
 *   mmol/L (mol/L x 1,000) (the `decode` output, devices/README.md).
 * - Code: follows the measurement's Type nibble (capillary/venous/arterial/undetermined whole blood or plasma,
 *   interstitial fluid, control solution). A reserved Type value (0, 11-15) falls back to the contract's default
 *   MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD with details.sampleType 'reserved' and the raw nibble in
 *   details.sampleTypeValue, so nothing is lost and a vendor driver can override it with a quirk. (A Glucose
 *   Measurement never has a concentration without a Type: one flag bit announces both.)
 * - time: Base Time + Time Offset (the user-facing time), ISO local time without offset.
 * - details.sequenceNumber: the session pairs 0x2A18 with 0x2A34 by it and resumes RACP downloads after it.
 */

const GLUCOSE_SERVICE = '1808';

/** Type nibble -> 11073-10417 code; index 0 and 11-15 are reserved (see glucoseCode). */
const SAMPLE_TYPE_CODES: readonly (MdcCode | undefined)[] = [
  undefined,
  'MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD', // 1 capillary whole blood
  'MDC_CONC_GLU_CAPILLARY_PLASMA', // 2 capillary plasma
  'MDC_CONC_GLU_VENOUS_WHOLEBLOOD', // 3 venous whole blood
  'MDC_CONC_GLU_VENOUS_PLASMA', // 4 venous plasma
  'MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD', // 5 arterial whole blood
  'MDC_CONC_GLU_ARTERIAL_PLASMA', // 6 arterial plasma
  'MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD', // 7 undetermined whole blood
  'MDC_CONC_GLU_UNDETERMINED_PLASMA', // 8 undetermined plasma
  'MDC_CONC_GLU_ISF', // 9 interstitial fluid
  'MDC_CONC_GLU_CONTROL', // 10 control solution
];

/** The 11073 code for a GLS Type nibble; MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD for reserved values. */
export function glucoseCode(type: number | undefined): MdcCode {
  return (type === undefined ? undefined : SAMPLE_TYPE_CODES[type]) ?? 'MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD';
}

/**
 * Unit conversions as exact decimal shifts of the SFLOAT exponent (scaleSfloat): kg/L -> mg/dL is x10^5, mol/L ->
 * mmol/L x10^3. Same values as observe(..., { factor }) but without its toPrecision() round trip, which alone
 * costs about a microsecond per call.
 */
const MG_PER_DL_SHIFT = 5;
const MMOL_PER_L_SHIFT = 3;

/** 0x2A18 -> one glucose observation (or none when the record carries no concentration). */
export const glucoseMeasurementDecoder: Decoder = (bytes) => {
  const m = decodeGlucoseMeasurement(bytes);
  const observations: Observation[] = [];
  const details: { [k: string]: JsonValue } = { sequenceNumber: m.sequenceNumber };
  if (m.concentration !== undefined) {
    const code = glucoseCode(m.type);
    const raw = m.concentrationSfloat as number;
    observations.push(
      m.unit === 'mol/L'
        ? observe(code, scaleSfloat(raw, MMOL_PER_L_SHIFT), 'mmol/L')
        : observe(code, scaleSfloat(raw, MG_PER_DL_SHIFT), 'mg/dL'),
    );
    details['sampleType'] = m.sampleType ?? 'reserved';
    if (m.sampleType === undefined) details['sampleTypeValue'] = m.type ?? null;
    details['sampleLocation'] = m.sampleLocation ?? 'reserved';
  }
  if (m.timeOffset !== undefined) {
    details['timeOffset'] = m.timeOffset;
    details['baseTime'] = m.baseTime.iso;
  }
  if (m.sensorStatus !== undefined) details['sensorStatus'] = m.sensorStatus;
  details['contextFollows'] = m.contextFollows;
  if (!m.time.valid) details['deviceTimeInvalid'] = true;
  return [
    {
      observations,
      time: m.time.iso,
      status: m.sensorStatus === undefined ? [] : bitNames(m.sensorStatus, GLUCOSE_SENSOR_STATUS_BITS),
      kind: 'measurement',
      details,
    },
  ];
};

function named(table: readonly (string | undefined)[], value: number): string {
  return table[value] ?? 'reserved';
}

/**
 * 0x2A34 -> the context of the measurement with the same sequence number: HbA1c as an observation (MDC_CONC_HBA1C
 * in %), everything else in details (carbohydrate in grams, medication in mg or mL, exercise, meal, tester,
 * health). No time here: the session gives it the device time of the measurement it follows, with the same
 * sequence number (src/session/glucose-context.ts), so its id is stable like the measurement's.
 */
export const glucoseMeasurementContextDecoder: Decoder = (bytes) => {
  const c = decodeGlucoseMeasurementContext(bytes);
  const observations: Observation[] = [];
  const details: { [k: string]: JsonValue } = { sequenceNumber: c.sequenceNumber };
  if (c.extendedFlags !== undefined) details['extendedFlags'] = c.extendedFlags;
  if (c.carbohydrateId !== undefined && c.carbohydrate !== undefined) {
    details['carbohydrateId'] = c.carbohydrateId;
    details['carbohydrate'] = named(GLUCOSE_CARBOHYDRATES, c.carbohydrateId);
    details['carbohydrateGrams'] = scaleSfloat(c.carbohydrateSfloat as number, 3).value; // kg -> g
    if (c.carbohydrate.invalid !== undefined) details['carbohydrateInvalid'] = c.carbohydrate.invalid;
  }
  if (c.meal !== undefined) details['meal'] = named(GLUCOSE_MEALS, c.meal);
  if (c.tester !== undefined && c.health !== undefined) {
    details['tester'] = named(GLUCOSE_TESTERS, c.tester);
    details['health'] = named(GLUCOSE_HEALTH, c.health);
  }
  if (c.exerciseDuration !== undefined && c.exerciseIntensity !== undefined) {
    details['exerciseDurationSeconds'] = c.exerciseDuration;
    if (c.exerciseDuration === EXERCISE_DURATION_OVERRUN) details['exerciseDurationOverrun'] = true;
    details['exerciseIntensityPercent'] = c.exerciseIntensity;
  }
  if (c.medicationId !== undefined && c.medication !== undefined) {
    details['medicationId'] = c.medicationId;
    details['medication'] = named(GLUCOSE_MEDICATIONS, c.medicationId);
    const litres = c.medicationUnit === 'L';
    details['medicationAmount'] = scaleSfloat(c.medicationSfloat as number, litres ? 3 : 6).value; // L -> mL, kg -> mg
    details['medicationUnit'] = litres ? 'mL' : 'mg';
    if (c.medication.invalid !== undefined) details['medicationInvalid'] = c.medication.invalid;
  }
  if (c.hba1c !== undefined) observations.push(observe('MDC_CONC_HBA1C', c.hba1c, '%'));
  return [{ observations, time: null, kind: 'measurement', details }];
};

/** 0x2A51 -> the supported features as named booleans (details.features). */
export const glucoseFeatureDecoder: Decoder = (bytes) => {
  const f = decodeGlucoseFeature(bytes);
  return [{ observations: [], time: null, kind: 'info', details: { features: { ...f.supported } } }];
};

function racpDetails(m: RacpMessage): { [k: string]: JsonValue } {
  switch (m.opCode) {
    case 'number-of-stored-records-response':
      return { opCode: m.opCode, numberOfRecords: m.numberOfRecords };
    case 'response-code':
      return {
        opCode: m.opCode,
        requestOpCode: m.requestOpCodeName ?? m.requestOpCode,
        responseCode: m.responseCodeName,
        responseCodeValue: m.responseCode,
        success: m.responseCode === 1,
      };
    default: {
      const details: { [k: string]: JsonValue } = { opCode: m.opCode, operator: m.operator };
      const f = m.filter;
      if (f !== undefined) {
        details['filterType'] = f.type;
        if (f.type === 'sequence-number') {
          if (f.min !== undefined) details['min'] = f.min;
          if (f.max !== undefined) details['max'] = f.max;
        } else {
          if (f.min !== undefined) details['min'] = f.min.iso;
          if (f.max !== undefined) details['max'] = f.max.iso;
        }
      }
      return details;
    }
  }
}

/**
 * 0x2A52 -> the RACP message (an indication from the meter, or a request echoed for logging): op code, operator,
 * filter, number of records or response code, in details. The session uses decodeRacp from the codec directly.
 */
export const glucoseRacpDecoder: Decoder = (bytes) => [
  { observations: [], time: null, kind: 'info', details: racpDetails(decodeRacp(bytes)) },
];

const GLUCOSE_EMITS: readonly Emits[] = SAMPLE_TYPE_CODES.filter(
  (code): code is MdcCode => code !== undefined,
).map((code) => ({ code, units: ['mg/dL', 'mmol/L'] }));

/** Glucose Measurement: mandatory, notified (GLS 1.0.1 3.1). */
export const glucoseMeasurementSpec: CharacteristicSpec = {
  uuid: '2a18',
  service: GLUCOSE_SERVICE,
  access: 'notify',
  name: 'Glucose Measurement',
  decode: glucoseMeasurementDecoder,
  emits: GLUCOSE_EMITS,
};

/** Glucose Measurement Context: optional, notified (GLS 1.0.1 3.2). */
export const glucoseMeasurementContextSpec: CharacteristicSpec = {
  uuid: '2a34',
  service: GLUCOSE_SERVICE,
  access: 'notify',
  optional: true,
  name: 'Glucose Measurement Context',
  decode: glucoseMeasurementContextDecoder,
  emits: [{ code: 'MDC_CONC_HBA1C', units: ['%'] }],
};

/** Glucose Feature: mandatory, read (GLS 1.0.1 3.3). */
export const glucoseFeatureSpec: CharacteristicSpec = {
  uuid: '2a51',
  service: GLUCOSE_SERVICE,
  access: 'read',
  name: 'Glucose Feature',
  decode: glucoseFeatureDecoder,
  emits: [],
};

/** Record Access Control Point: mandatory, written and indicated (GLS 1.0.1 3.4). */
export const glucoseRacpSpec: CharacteristicSpec = {
  uuid: '2a52',
  service: GLUCOSE_SERVICE,
  access: 'indicate',
  name: 'Record Access Control Point',
  decode: glucoseRacpDecoder,
  emits: [],
};

export const glucoseCharacteristics: readonly CharacteristicSpec[] = Object.freeze([
  glucoseMeasurementSpec,
  glucoseMeasurementContextSpec,
  glucoseFeatureSpec,
  glucoseRacpSpec,
]);
