import { ByteReader } from './byte-reader.js';

/**
 * Heart Rate Service 1.0 (HRS, service 0x180D): Heart Rate Measurement (0x2A37, notify), Body Sensor Location
 * (0x2A38, read) and Heart Rate Control Point (0x2A39, write). Layouts from HRS 1.0 section 3.1-3.3 and the GATT
 * Specification Supplement entries for the same characteristics.
 */

/** Heart Rate Measurement flags (HRS 1.0, 3.1.1.1). Bits 5-7 are reserved for future use and ignored. */
export const HR_FLAG_VALUE_UINT16 = 0x01;
/** Bits 1-2: Sensor Contact Status (0 and 1: not supported, 2: supported/not detected, 3: detected). */
export const HR_FLAG_SENSOR_CONTACT_MASK = 0x06;
export const HR_FLAG_ENERGY_EXPENDED = 0x08;
export const HR_FLAG_RR_INTERVALS = 0x10;

export type SensorContact = 'not-supported' | 'not-detected' | 'detected';

const SENSOR_CONTACT: readonly SensorContact[] = [
  'not-supported',
  'not-supported',
  'not-detected',
  'detected',
];

export interface HeartRateMeasurementValue {
  /** The raw flags byte, reserved bits included. */
  readonly flags: number;
  /** Beats per minute, from a uint8 or uint16 field (flags bit 0). */
  readonly heartRate: number;
  readonly sensorContact: SensorContact;
  /** Flags bit 3: kilojoules since the last reset, uint16; 0xFFFF means "at least 65535" (HRS 1.0, 3.1.1.3). */
  readonly energyExpended: number | undefined;
  /**
   * Flags bit 4: RR-intervals in units of 1/1024 s (raw uint16 values, oldest first, HRS 1.0 3.1.1.4).
   * Undefined when the flag is clear; never empty when present.
   */
  readonly rrIntervals: readonly number[] | undefined;
}

/**
 * Decodes Heart Rate Measurement (0x2A37), HRS 1.0 3.1.1. The RR-Interval field is a list of uint16 values that
 * runs to the end of the payload. Choices where the specification leaves the receiver to decide:
 * - RR flag set but no byte left: DECODE_TRUNCATED (the flags promise at least one RR-interval).
 * - An odd number of bytes left for the RR-intervals: DECODE_TRUNCATED at the offset of the lone byte. That byte
 *   is the first half of an RR-interval whose second half never arrived (a cut notification), not a field of
 *   its own; reporting the completed intervals and silently dropping half a value would hide a broken link.
 */
export function decodeHeartRateMeasurement(bytes: Uint8Array): HeartRateMeasurementValue {
  const r = new ByteReader(bytes, 'Heart Rate Measurement');
  const flags = r.u8('Flags');
  const heartRate =
    (flags & HR_FLAG_VALUE_UINT16) !== 0 ? r.u16('Heart Rate Value') : r.u8('Heart Rate Value');
  const sensorContact = SENSOR_CONTACT[(flags & HR_FLAG_SENSOR_CONTACT_MASK) >> 1] as SensorContact;
  const energyExpended = (flags & HR_FLAG_ENERGY_EXPENDED) !== 0 ? r.u16('Energy Expended') : undefined;
  let rrIntervals: number[] | undefined;
  if ((flags & HR_FLAG_RR_INTERVALS) !== 0) {
    rrIntervals = [r.u16('RR-Interval')];
    while (r.remaining > 0) rrIntervals.push(r.u16('RR-Interval'));
  }
  r.end();
  return { flags, heartRate, sensorContact, energyExpended, rrIntervals };
}

/** Input of encodeHeartRateMeasurement (the simulator's view). */
export interface HeartRateMeasurementInput {
  readonly heartRate: number;
  /** Force the uint16 format even for values below 256. */
  readonly uint16?: boolean;
  readonly sensorContact?: SensorContact;
  readonly energyExpended?: number;
  /** Raw values in 1/1024 s. */
  readonly rrIntervals?: readonly number[];
}

/** Encodes Heart Rate Measurement (0x2A37) for the simulator. */
export function encodeHeartRateMeasurement(value: HeartRateMeasurementInput): Uint8Array {
  const wide = value.uint16 === true || value.heartRate > 0xff;
  const rr = value.rrIntervals ?? [];
  let flags = wide ? HR_FLAG_VALUE_UINT16 : 0;
  if (value.sensorContact === 'not-detected') flags |= 0x04;
  else if (value.sensorContact === 'detected') flags |= 0x06;
  if (value.energyExpended !== undefined) flags |= HR_FLAG_ENERGY_EXPENDED;
  if (rr.length > 0) flags |= HR_FLAG_RR_INTERVALS;
  const out = new Uint8Array(
    2 + (wide ? 1 : 0) + (value.energyExpended !== undefined ? 2 : 0) + rr.length * 2,
  );
  out[0] = flags;
  let at = 1;
  if (wide) at = put16(out, at, value.heartRate);
  else out[at++] = value.heartRate;
  if (value.energyExpended !== undefined) at = put16(out, at, Math.min(value.energyExpended, 0xffff));
  for (const interval of rr) at = put16(out, at, interval);
  return out;
}

/** Body Sensor Location (0x2A38), HRS 1.0 3.2: index = value; 7-255 are reserved for future use. */
export type BodySensorLocation =
  | 'other'
  | 'chest'
  | 'wrist'
  | 'finger'
  | 'hand'
  | 'ear-lobe'
  | 'foot'
  | 'reserved';

const BODY_SENSOR_LOCATIONS: readonly BodySensorLocation[] = [
  'other',
  'chest',
  'wrist',
  'finger',
  'hand',
  'ear-lobe',
  'foot',
];

export interface BodySensorLocationValue {
  readonly raw: number;
  /** 'reserved' for values the specification reserves (kept, never an error). */
  readonly location: BodySensorLocation;
}

export function decodeBodySensorLocation(bytes: Uint8Array): BodySensorLocationValue {
  const r = new ByteReader(bytes, 'Body Sensor Location');
  const raw = r.u8('Body Sensor Location');
  r.end();
  return { raw, location: BODY_SENSOR_LOCATIONS[raw] ?? 'reserved' };
}

export function encodeBodySensorLocation(location: Exclude<BodySensorLocation, 'reserved'>): Uint8Array {
  return Uint8Array.of(BODY_SENSOR_LOCATIONS.indexOf(location));
}

/** The Heart Rate Control Point characteristic (written, never read or notified). */
export const HEART_RATE_CONTROL_POINT_UUID = '2a39';

/** HRS 1.0 3.3.1: op code 0x01 "Reset Energy Expended" (the only defined command; 0x00, 0x02-0xFF reserved). */
export const HR_CONTROL_RESET_ENERGY_EXPENDED = 0x01;

/**
 * Encodes a Heart Rate Control Point write. Only "reset energy expended" exists; a sensor without Energy
 * Expended support answers the write with ATT error 0x80 "Control Point Not Supported" (HRS 1.0, application error codes).
 */
export function encodeHeartRateControlPoint(command: 'reset-energy-expended'): Uint8Array {
  if (command !== 'reset-energy-expended') throw new RangeError('unknown Heart Rate Control Point command');
  return Uint8Array.of(HR_CONTROL_RESET_ENERGY_EXPENDED);
}

function put16(out: Uint8Array, at: number, value: number): number {
  out[at] = value & 0xff;
  out[at + 1] = (value >>> 8) & 0xff;
  return at + 2;
}
