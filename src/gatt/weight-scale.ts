import { ByteReader } from './byte-reader.js';
import { type DeviceDateTime, encodeDateTime } from './date-time.js';
import type { MderNumber } from './mder-float.js';

/**
 * Weight Scale Service 1.0 (WSS, service 0x181D): Weight Measurement (0x2A9D, indicate) and Weight Scale Feature
 * (0x2A9E, read). Field layouts from WSS 1.0 section 3.1 (Weight Scale Feature) and 3.2 (Weight Measurement),
 * and the GATT Specification Supplement entries for the same two characteristics. Every field is a plain unsigned integer in a fixed
 * resolution (no SFLOAT), so values are computed as integer / power of ten: the result is the double nearest to
 * the decimal value (70.5 kg stays 70.5, never 70.50000000000001).
 */

/** Weight Measurement flags (WSS 1.0, 3.2, Flags field). Bits 4-7 are reserved for future use and ignored. */
export const WEIGHT_FLAG_IMPERIAL = 0x01;
export const WEIGHT_FLAG_TIME_STAMP = 0x02;
export const WEIGHT_FLAG_USER_ID = 0x04;
export const WEIGHT_FLAG_BMI_AND_HEIGHT = 0x08;

/** WSS 1.0, 3.2 (Weight field): a value of 0xFFFF means "Measurement Unsuccessful". */
export const WEIGHT_MEASUREMENT_UNSUCCESSFUL = 0xffff;

/** User ID 0xFF means "unknown user" (GATT Specification Supplement, Weight Measurement, User ID field). */
export const WEIGHT_UNKNOWN_USER = 0xff;

const MEASUREMENT_UNSUCCESSFUL: MderNumber = Object.freeze({ value: null, invalid: 'nan' });

export interface WeightMeasurementValue {
  /** The raw flags byte, reserved bits included. */
  readonly flags: number;
  /** Flags bit 0: imperial units (lb, in) instead of SI (kg, m). */
  readonly imperial: boolean;
  /**
   * kg (resolution 0.005) or lb (resolution 0.01). `value: null, invalid: 'nan'` when the scale reports
   * "Measurement Unsuccessful" (0xFFFF).
   */
  readonly weight: MderNumber;
  /** Flags bit 1. */
  readonly timeStamp: DeviceDateTime | undefined;
  /** Flags bit 2; 0xFF = unknown user. */
  readonly userId: number | undefined;
  /** Flags bit 3 (BMI and height come together): kg/m2, resolution 0.1. */
  readonly bmi: number | undefined;
  /** Flags bit 3: m (resolution 0.001) or in (resolution 0.1). */
  readonly height: number | undefined;
}

/** Decodes Weight Measurement (0x2A9D), WSS 1.0 section 3.2. */
export function decodeWeightMeasurement(bytes: Uint8Array): WeightMeasurementValue {
  const r = new ByteReader(bytes, 'Weight Measurement');
  const flags = r.u8('Flags');
  const imperial = (flags & WEIGHT_FLAG_IMPERIAL) !== 0;
  const rawWeight = r.u16('Weight');
  let weight: MderNumber;
  if (rawWeight === WEIGHT_MEASUREMENT_UNSUCCESSFUL) weight = MEASUREMENT_UNSUCCESSFUL;
  else weight = { value: imperial ? rawWeight / 100 : (rawWeight * 5) / 1000 };
  const timeStamp = (flags & WEIGHT_FLAG_TIME_STAMP) !== 0 ? r.dateTime('Time Stamp') : undefined;
  const userId = (flags & WEIGHT_FLAG_USER_ID) !== 0 ? r.u8('User ID') : undefined;
  let bmi: number | undefined;
  let height: number | undefined;
  if ((flags & WEIGHT_FLAG_BMI_AND_HEIGHT) !== 0) {
    bmi = r.u16('BMI') / 10;
    const rawHeight = r.u16('Height');
    height = imperial ? rawHeight / 10 : rawHeight / 1000;
  }
  r.end();
  return { flags, imperial, weight, timeStamp, userId, bmi, height };
}

/** Input of encodeWeightMeasurement: the decoded struct, or just the fields a simulator sets. */
export interface WeightMeasurementInput {
  readonly imperial: boolean;
  /** kg or lb; null encodes "Measurement Unsuccessful" (0xFFFF). */
  readonly weight: number | null;
  readonly timeStamp?: {
    readonly year: number;
    readonly month: number;
    readonly day: number;
    readonly hours: number;
    readonly minutes: number;
    readonly seconds: number;
  };
  readonly userId?: number;
  /** BMI and height are sent together (flags bit 3): give both or neither. */
  readonly bmi?: number;
  readonly height?: number;
}

/** Encodes Weight Measurement (0x2A9D) for the simulator; values are rounded to the field resolution. */
export function encodeWeightMeasurement(value: WeightMeasurementInput): Uint8Array {
  const hasBmi = value.bmi !== undefined && value.height !== undefined;
  if ((value.bmi === undefined) !== (value.height === undefined)) {
    throw new RangeError('Weight Measurement carries BMI and height together: give both or neither');
  }
  let flags = value.imperial ? WEIGHT_FLAG_IMPERIAL : 0;
  if (value.timeStamp) flags |= WEIGHT_FLAG_TIME_STAMP;
  if (value.userId !== undefined) flags |= WEIGHT_FLAG_USER_ID;
  if (hasBmi) flags |= WEIGHT_FLAG_BMI_AND_HEIGHT;
  const out = new Uint8Array(
    3 + (value.timeStamp ? 7 : 0) + (value.userId !== undefined ? 1 : 0) + (hasBmi ? 4 : 0),
  );
  out[0] = flags;
  const weight =
    value.weight === null
      ? WEIGHT_MEASUREMENT_UNSUCCESSFUL
      : uint16(Math.round(value.imperial ? value.weight * 100 : value.weight * 200), 'weight', 0xfffe);
  let at = put16(out, 1, weight);
  if (value.timeStamp) {
    out.set(encodeDateTime(value.timeStamp), at);
    at += 7;
  }
  if (value.userId !== undefined) out[at++] = value.userId & 0xff;
  if (hasBmi) {
    at = put16(out, at, uint16(Math.round((value.bmi as number) * 10), 'BMI'));
    const height = value.height as number;
    put16(out, at, uint16(Math.round(value.imperial ? height * 10 : height * 1000), 'height'));
  }
  return out;
}

/** Weight Scale Feature bits (WSS 1.0, 3.1; GATT Specification Supplement, Weight Scale Feature). Bits 10-31 reserved. */
export const WSF_TIME_STAMP_SUPPORTED = 0x01;
export const WSF_MULTIPLE_USERS_SUPPORTED = 0x02;
export const WSF_BMI_SUPPORTED = 0x04;

/** Weight Measurement Resolution (bits 3-6): index = enum value; 0 = not specified, 8-15 reserved. */
const WEIGHT_RESOLUTION_KG = [null, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005] as const;
const WEIGHT_RESOLUTION_LB = [null, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01] as const;
/** Height Measurement Resolution (bits 7-9): 0 = not specified, 4-7 reserved. */
const HEIGHT_RESOLUTION_M = [null, 0.01, 0.005, 0.001] as const;
const HEIGHT_RESOLUTION_IN = [null, 1, 0.5, 0.1] as const;

export interface WeightScaleFeatureValue {
  /** The raw 32-bit field, reserved bits included. */
  readonly raw: number;
  readonly timeStampSupported: boolean;
  readonly multipleUsersSupported: boolean;
  readonly bmiSupported: boolean;
  /** The Weight Measurement Resolution enum value (bits 3-6). */
  readonly weightResolution: number;
  /** The Height Measurement Resolution enum value (bits 7-9). */
  readonly heightResolution: number;
  /** The scale's weight resolution in kg (SI) and lb (imperial); null when not specified or reserved. */
  readonly weightResolutionKg: number | null;
  readonly weightResolutionLb: number | null;
  /** The scale's height resolution in m and in; null when not specified or reserved. */
  readonly heightResolutionM: number | null;
  readonly heightResolutionIn: number | null;
}

/** Decodes Weight Scale Feature (0x2A9E), WSS 1.0 section 3.1: one 32-bit field. */
export function decodeWeightScaleFeature(bytes: Uint8Array): WeightScaleFeatureValue {
  const r = new ByteReader(bytes, 'Weight Scale Feature');
  const raw = r.u32('Weight Scale Feature');
  r.end();
  const weightResolution = (raw >>> 3) & 0x0f;
  const heightResolution = (raw >>> 7) & 0x07;
  return {
    raw,
    timeStampSupported: (raw & WSF_TIME_STAMP_SUPPORTED) !== 0,
    multipleUsersSupported: (raw & WSF_MULTIPLE_USERS_SUPPORTED) !== 0,
    bmiSupported: (raw & WSF_BMI_SUPPORTED) !== 0,
    weightResolution,
    heightResolution,
    weightResolutionKg: WEIGHT_RESOLUTION_KG[weightResolution] ?? null,
    weightResolutionLb: WEIGHT_RESOLUTION_LB[weightResolution] ?? null,
    heightResolutionM: HEIGHT_RESOLUTION_M[heightResolution] ?? null,
    heightResolutionIn: HEIGHT_RESOLUTION_IN[heightResolution] ?? null,
  };
}

/** Encodes Weight Scale Feature (0x2A9E) for the simulator. */
export function encodeWeightScaleFeature(value: {
  readonly timeStampSupported?: boolean;
  readonly multipleUsersSupported?: boolean;
  readonly bmiSupported?: boolean;
  readonly weightResolution?: number;
  readonly heightResolution?: number;
}): Uint8Array {
  const raw =
    (value.timeStampSupported ? WSF_TIME_STAMP_SUPPORTED : 0) |
    (value.multipleUsersSupported ? WSF_MULTIPLE_USERS_SUPPORTED : 0) |
    (value.bmiSupported ? WSF_BMI_SUPPORTED : 0) |
    (((value.weightResolution ?? 0) & 0x0f) << 3) |
    (((value.heightResolution ?? 0) & 0x07) << 7);
  return Uint8Array.of(raw & 0xff, (raw >>> 8) & 0xff, 0, 0);
}

function uint16(value: number, field: string, max = 0xffff): number {
  if (!(value >= 0 && value <= max)) throw new RangeError(`${field} out of range for a uint16 field`);
  return value;
}

function put16(out: Uint8Array, at: number, value: number): number {
  out[at] = value & 0xff;
  out[at + 1] = value >>> 8;
  return at + 2;
}
