import {
  decodeIntermediateTemperature,
  decodeMeasurementInterval,
  decodeTemperatureMeasurement,
  decodeTemperatureType,
  type TemperatureMeasurement,
  temperatureSite,
} from '../../../gatt/thermometer.js';
import type { MdcCode } from '../../../model/codes.js';
import type { JsonValue, Reading } from '../../../model/observation.js';
import type { UcumUnit } from '../../../model/units.js';
import type { CharacteristicSpec, DecodeContext, Decoder, Emits } from '../define-driver.js';
import { observe } from '../observe.js';

/**
 * The SDK's decoders for the Health Thermometer Service (0x1809, HTS 1.0): GATT structs from src/gatt/thermometer.ts
 * mapped to IEEE 11073-10101 coded readings (11073-10408 thermometer terms). The code follows the measurement
 * site: the Temperature Type field of the measurement when present, else the Temperature Type characteristic
 * (0x2A1D) the session read earlier, else MDC_TEMP_BODY.
 */

const HEALTH_THERMOMETER_SERVICE = '1809';
const TEMPERATURE_TYPE_UUID = '2a1d';
const TEMPERATURE_UNITS: readonly UcumUnit[] = ['Cel', '[degF]'];

/** Temperature Type (GATT 0x2A1D) value -> 11073-10408 site code; index 0 and 10+ are reserved. */
const SITE_CODES: readonly (MdcCode | undefined)[] = [
  undefined,
  'MDC_TEMP_AXILLA', // 1 armpit
  'MDC_TEMP_BODY', // 2 body (general)
  'MDC_TEMP_EAR', // 3 ear (usually earlobe)
  'MDC_TEMP_FINGER', // 4 finger
  'MDC_TEMP_GIT', // 5 gastro-intestinal tract
  'MDC_TEMP_ORAL', // 6 mouth
  'MDC_TEMP_RECT', // 7 rectum
  'MDC_TEMP_TOE', // 8 toe
  'MDC_TEMP_TYMP', // 9 tympanum (ear drum)
];

/** The 11073 code for a Temperature Type value; MDC_TEMP_BODY for reserved values or no type at all. */
export function temperatureCode(type: number | undefined): MdcCode {
  return (type === undefined ? undefined : SITE_CODES[type]) ?? 'MDC_TEMP_BODY';
}

/** The Temperature Type the session read from 0x2A1D, if any (see temperatureTypeDecoder's details). */
function typeFromDeviceState(ctx: DecodeContext | undefined): number | undefined {
  const value = ctx?.deviceState?.[TEMPERATURE_TYPE_UUID]?.details?.['temperatureType'];
  return typeof value === 'number' ? value : undefined;
}

function temperatureReading(
  m: TemperatureMeasurement,
  ctx: DecodeContext | undefined,
  kind: 'measurement' | 'intermediate',
): Reading {
  const type = m.temperatureType ?? typeFromDeviceState(ctx);
  const unit: UcumUnit = m.unit === 'fahrenheit' ? '[degF]' : 'Cel';
  const details: { [k: string]: JsonValue } = {};
  if (type !== undefined) {
    details['temperatureType'] = type;
    const site = temperatureSite(type);
    if (site !== undefined) details['temperatureSite'] = site;
  }
  if (m.timestamp !== undefined && !m.timestamp.valid) details['deviceTimeInvalid'] = true;
  return {
    observations: [observe(temperatureCode(type), m.temperature, unit)],
    time: m.timestamp?.iso ?? null,
    kind,
    details,
  };
}

/** 0x2A1C -> one temperature observation, coded by site. */
export const temperatureMeasurementDecoder: Decoder = (bytes, ctx) => [
  temperatureReading(decodeTemperatureMeasurement(bytes), ctx, 'measurement'),
];

/** 0x2A1E -> one temperature observation while the thermometer settles. */
export const intermediateTemperatureDecoder: Decoder = (bytes, ctx) => [
  temperatureReading(decodeIntermediateTemperature(bytes), ctx, 'intermediate'),
];

/** 0x2A1D -> the fixed measurement site, kept in details.temperatureType for later measurements. */
export const temperatureTypeDecoder: Decoder = (bytes) => {
  const type = decodeTemperatureType(bytes);
  const site = temperatureSite(type);
  const details: { [k: string]: JsonValue } = { temperatureType: type };
  if (site !== undefined) details['temperatureSite'] = site;
  return [{ observations: [], time: null, kind: 'info', details }];
};

/** 0x2A21 -> seconds between periodic measurements (0 = none). */
export const measurementIntervalDecoder: Decoder = (bytes) => {
  const seconds = decodeMeasurementInterval(bytes);
  return [
    {
      observations: [],
      time: null,
      kind: 'info',
      details: { measurementIntervalSeconds: seconds, periodic: seconds !== 0 },
    },
  ];
};

const TEMPERATURE_CODES: readonly MdcCode[] = [
  'MDC_TEMP_BODY',
  'MDC_TEMP_AXILLA',
  'MDC_TEMP_EAR',
  'MDC_TEMP_FINGER',
  'MDC_TEMP_GIT',
  'MDC_TEMP_ORAL',
  'MDC_TEMP_RECT',
  'MDC_TEMP_TOE',
  'MDC_TEMP_TYMP',
];
const TEMPERATURE_EMITS: readonly Emits[] = TEMPERATURE_CODES.map((code) => ({
  code,
  units: TEMPERATURE_UNITS,
}));

/** Temperature Measurement: mandatory, indicated (HTS 1.0 3.1). */
export const temperatureMeasurementSpec: CharacteristicSpec = {
  uuid: '2a1c',
  service: HEALTH_THERMOMETER_SERVICE,
  access: 'indicate',
  name: 'Temperature Measurement',
  decode: temperatureMeasurementDecoder,
  emits: TEMPERATURE_EMITS,
};

/** Temperature Type: optional, read (HTS 1.0 3.2). */
export const temperatureTypeSpec: CharacteristicSpec = {
  uuid: TEMPERATURE_TYPE_UUID,
  service: HEALTH_THERMOMETER_SERVICE,
  access: 'read',
  optional: true,
  name: 'Temperature Type',
  decode: temperatureTypeDecoder,
  emits: [],
};

/** Intermediate Temperature: optional, notified (HTS 1.0 3.3). */
export const intermediateTemperatureSpec: CharacteristicSpec = {
  uuid: '2a1e',
  service: HEALTH_THERMOMETER_SERVICE,
  access: 'notify',
  optional: true,
  name: 'Intermediate Temperature',
  decode: intermediateTemperatureDecoder,
  emits: TEMPERATURE_EMITS,
};

/** Measurement Interval: optional, read here (it may also indicate; HTS 1.0 3.4). */
export const measurementIntervalSpec: CharacteristicSpec = {
  uuid: '2a21',
  service: HEALTH_THERMOMETER_SERVICE,
  access: 'read',
  optional: true,
  name: 'Measurement Interval',
  decode: measurementIntervalDecoder,
  emits: [],
};

export const thermometerCharacteristics: readonly CharacteristicSpec[] = [
  temperatureMeasurementSpec,
  temperatureTypeSpec,
  intermediateTemperatureSpec,
  measurementIntervalSpec,
];
