import { ByteReader } from './byte-reader.js';
import { type DeviceDateTime, encodeDateTime } from './date-time.js';
import { floatBits, type MderInput, type MderNumber } from './mder-float.js';

export { floatBits };

/**
 * Health Thermometer Service characteristics (Health Thermometer Service 1.0, section 3; GATT Specification
 * Supplement, "Temperature Measurement" 0x2A1C, "Temperature Type" 0x2A1D, "Intermediate Temperature" 0x2A1E
 * and "Measurement Interval" 0x2A21). Pure codec: bytes in, a struct that mirrors the specification's fields out.
 *
 * Reserved-for-future-use flag bits (3-7) are ignored, as the specifications ask of receivers; a reserved
 * Temperature Type value is kept as its number, not refused.
 */

/** Flags field of 0x2A1C and 0x2A1E (GATT Specification Supplement, Temperature Measurement, Flags). */
export const HT_FLAG_FAHRENHEIT = 0x01;
export const HT_FLAG_TIMESTAMP = 0x02;
export const HT_FLAG_TEMPERATURE_TYPE = 0x04;

export type TemperatureUnit = 'celsius' | 'fahrenheit';

/**
 * Temperature Type (0x2A1D; GATT Specification Supplement, Temperature Type): 1 armpit, 2 body (general),
 * 3 ear (usually earlobe), 4 finger, 5 gastro-intestinal tract, 6 mouth, 7 rectum, 8 toe, 9 tympanum (ear
 * drum); 0 and 10-255 are reserved for future use.
 */
export type TemperatureSite =
  | 'armpit'
  | 'body'
  | 'ear'
  | 'finger'
  | 'gastro-intestinal-tract'
  | 'mouth'
  | 'rectum'
  | 'toe'
  | 'tympanum';

const SITES: readonly (TemperatureSite | undefined)[] = [
  undefined,
  'armpit',
  'body',
  'ear',
  'finger',
  'gastro-intestinal-tract',
  'mouth',
  'rectum',
  'toe',
  'tympanum',
];

/** The named site of a Temperature Type value, or undefined for a reserved value. */
export function temperatureSite(type: number): TemperatureSite | undefined {
  return SITES[type];
}

/** Temperature Measurement (0x2A1C, indicated; HTS 1.0 3.1) and Intermediate Temperature (0x2A1E, notified; 3.3). */
export interface TemperatureMeasurement {
  readonly flags: number;
  readonly unit: TemperatureUnit;
  /** IEEE 11073-20601 FLOAT (medfloat32). */
  readonly temperature: MderNumber;
  /** Present when flags bit 1 is set. */
  readonly timestamp: DeviceDateTime | undefined;
  /** The raw Temperature Type value; present when flags bit 2 is set. */
  readonly temperatureType: number | undefined;
}

/** Decodes 0x2A1C; `what` names the characteristic in error messages (0x2A1E has the same format). */
export function decodeTemperatureMeasurement(
  bytes: Uint8Array,
  what = 'Temperature Measurement',
): TemperatureMeasurement {
  const r = new ByteReader(bytes, what);
  const flags = r.u8('Flags');
  const temperature = r.float('Temperature Measurement Value');
  const timestamp = (flags & HT_FLAG_TIMESTAMP) !== 0 ? r.dateTime('Time Stamp') : undefined;
  const temperatureType = (flags & HT_FLAG_TEMPERATURE_TYPE) !== 0 ? r.u8('Temperature Type') : undefined;
  r.end();
  return {
    flags,
    unit: (flags & HT_FLAG_FAHRENHEIT) !== 0 ? 'fahrenheit' : 'celsius',
    temperature,
    timestamp,
    temperatureType,
  };
}

/** Decodes 0x2A1E (same format as 0x2A1C; HTS 1.0 3.3). */
export function decodeIntermediateTemperature(bytes: Uint8Array): TemperatureMeasurement {
  return decodeTemperatureMeasurement(bytes, 'Intermediate Temperature');
}

/** Decodes 0x2A1D: one uint8 (HTS 1.0 3.2). */
export function decodeTemperatureType(bytes: Uint8Array): number {
  const r = new ByteReader(bytes, 'Temperature Type');
  const type = r.u8('Temperature Type');
  r.end();
  return type;
}

/** Decodes 0x2A21: uint16 seconds between measurements, 0 = no periodic measurement (HTS 1.0 3.4). */
export function decodeMeasurementInterval(bytes: Uint8Array): number {
  const r = new ByteReader(bytes, 'Measurement Interval');
  const seconds = r.u16('Measurement Interval');
  r.end();
  return seconds;
}

// ---- Encoders (for the simulator and round-trip tests) -------------------------------------------------------

/** A number to encode as FLOAT (the smallest exponent that represents it, down to 10^-6), or a special value. */
export type FloatInput = MderInput;

export interface TemperatureMeasurementInput {
  readonly unit: TemperatureUnit;
  readonly temperature: FloatInput;
  readonly timestamp?: {
    readonly year: number;
    readonly month: number;
    readonly day: number;
    readonly hours: number;
    readonly minutes: number;
    readonly seconds: number;
  };
  readonly temperatureType?: number;
}

/** Encodes 0x2A1C / 0x2A1E. */
export function encodeTemperatureMeasurement(input: TemperatureMeasurementInput): Uint8Array {
  let flags = input.unit === 'fahrenheit' ? HT_FLAG_FAHRENHEIT : 0;
  const bits = floatBits(input.temperature);
  const out: number[] = [0, bits & 0xff, (bits >>> 8) & 0xff, (bits >>> 16) & 0xff, bits >>> 24];
  if (input.timestamp !== undefined) {
    flags |= HT_FLAG_TIMESTAMP;
    out.push(...encodeDateTime(input.timestamp));
  }
  if (input.temperatureType !== undefined) {
    flags |= HT_FLAG_TEMPERATURE_TYPE;
    out.push(input.temperatureType & 0xff);
  }
  out[0] = flags;
  return Uint8Array.from(out);
}

export function encodeTemperatureType(type: number): Uint8Array {
  return Uint8Array.of(type & 0xff);
}

export function encodeMeasurementInterval(seconds: number): Uint8Array {
  return Uint8Array.of(seconds & 0xff, (seconds >> 8) & 0xff);
}
