import { ByteReader } from './byte-reader.js';
import { type DeviceDateTime, encodeDateTime } from './date-time.js';
import { type MderInput, type MderNumber, SFLOAT_SPECIAL, sfloatBits } from './mder-float.js';

// Re-exported: the encoders' callers (simulator, tests) know it from here.
export { sfloatBits };

/**
 * Blood Pressure Service characteristics (Blood Pressure Service 1.1.1, section 3; GATT Specification
 * Supplement, "Blood Pressure Measurement" 0x2A35, "Intermediate Cuff Pressure" 0x2A36 and "Blood Pressure
 * Feature" 0x2A49). Pure codec: bytes in, a struct that mirrors the specification's fields out.
 *
 * Reserved-for-future-use bits (flags bits 5-7, status bits 6-15, feature bits 9-15) are ignored, as the
 * specifications ask of receivers; only a payload whose length disagrees with its flags is an error.
 */

/** Flags field of 0x2A35 and 0x2A36 (GATT Specification Supplement, Blood Pressure Measurement, Flags). */
export const BP_FLAG_UNITS_KPA = 0x01;
export const BP_FLAG_TIMESTAMP = 0x02;
export const BP_FLAG_PULSE_RATE = 0x04;
export const BP_FLAG_USER_ID = 0x08;
export const BP_FLAG_MEASUREMENT_STATUS = 0x10;

/** User ID 0xFF means "unknown user" (GATT Specification Supplement, User ID). */
export const BP_USER_ID_UNKNOWN = 0xff;

export type BloodPressureUnit = 'mmHg' | 'kPa';

/** Measurement Status bits 3-4, a 2-bit field: 0 in range, 1 above the upper limit, 2 below the lower, 3 RFU. */
export type PulseRateRange = 'within-range' | 'exceeds-upper-limit' | 'below-lower-limit' | 'reserved';

const PULSE_RATE_RANGES: readonly PulseRateRange[] = [
  'within-range',
  'exceeds-upper-limit',
  'below-lower-limit',
  'reserved',
];

/** Measurement Status (GATT Specification Supplement, Blood Pressure Measurement, Measurement Status). */
export interface BloodPressureMeasurementStatus {
  /** The raw 16 bits, reserved bits included. */
  readonly raw: number;
  /** Bit 0: body movement detected during the measurement. */
  readonly bodyMovement: boolean;
  /** Bit 1: cuff too loose (0 = cuff fits properly). */
  readonly cuffTooLoose: boolean;
  /** Bit 2: irregular pulse detected. */
  readonly irregularPulse: boolean;
  /** Bits 3-4: pulse rate range detection. */
  readonly pulseRateRange: PulseRateRange;
  /** Bit 5: improper measurement position (0 = proper). */
  readonly improperPosition: boolean;
}

/** Fields both 0x2A35 and 0x2A36 carry after the pressure values, in payload order. */
interface BloodPressureOptionalFields {
  readonly flags: number;
  readonly unit: BloodPressureUnit;
  /** Present when flags bit 1 is set. */
  readonly timestamp: DeviceDateTime | undefined;
  /** Beats per minute; present when flags bit 2 is set. */
  readonly pulseRate: MderNumber | undefined;
  /** 0..254, or 255 = unknown user; present when flags bit 3 is set. */
  readonly userId: number | undefined;
  /** Present when flags bit 4 is set. */
  readonly status: BloodPressureMeasurementStatus | undefined;
}

/** Blood Pressure Measurement (0x2A35, indicated; BLS 1.1.1 3.1). */
export interface BloodPressureMeasurement extends BloodPressureOptionalFields {
  readonly systolic: MderNumber;
  readonly diastolic: MderNumber;
  readonly meanArterialPressure: MderNumber;
}

/**
 * Intermediate Cuff Pressure (0x2A36, notified; BLS 1.1.1 3.2): the same layout as 0x2A35, with the current
 * cuff pressure in the systolic field; the diastolic and mean fields are unused (the server sets them to NaN)
 * and are skipped, whatever they hold.
 */
export interface IntermediateCuffPressure extends BloodPressureOptionalFields {
  readonly cuffPressure: MderNumber;
}

/** Blood Pressure Feature (0x2A49, read; BLS 1.1.1 3.3; GATT Specification Supplement, Blood Pressure Feature). */
export interface BloodPressureFeature {
  readonly raw: number;
  /** Bit 0. */
  readonly bodyMovementDetection: boolean;
  /** Bit 1. */
  readonly cuffFitDetection: boolean;
  /** Bit 2. */
  readonly irregularPulseDetection: boolean;
  /** Bit 3. */
  readonly pulseRateRangeDetection: boolean;
  /** Bit 4. */
  readonly measurementPositionDetection: boolean;
  /** Bit 5. */
  readonly multipleBond: boolean;
  /** Bit 6 (BLS 1.1). */
  readonly e2eCrc: boolean;
  /** Bit 7 (BLS 1.1). */
  readonly userDataService: boolean;
  /** Bit 8 (BLS 1.1). */
  readonly userFacingTime: boolean;
}

export function decodeBloodPressureStatus(raw: number): BloodPressureMeasurementStatus {
  return {
    raw,
    bodyMovement: (raw & 0x01) !== 0,
    cuffTooLoose: (raw & 0x02) !== 0,
    irregularPulse: (raw & 0x04) !== 0,
    pulseRateRange: PULSE_RATE_RANGES[(raw >> 3) & 0x03] as PulseRateRange,
    improperPosition: (raw & 0x20) !== 0,
  };
}

/** Decodes 0x2A35. Throws DecodeError (DECODE_TRUNCATED / DECODE_TRAILING_BYTES) on a bad length. */
export function decodeBloodPressureMeasurement(bytes: Uint8Array): BloodPressureMeasurement {
  const r = new ByteReader(bytes, 'Blood Pressure Measurement');
  const flags = r.u8('Flags');
  const systolic = r.sfloat('Systolic');
  const diastolic = r.sfloat('Diastolic');
  const meanArterialPressure = r.sfloat('Mean Arterial Pressure');
  const optional = readOptionalFields(r, flags);
  r.end();
  return { flags, unit: unitOf(flags), systolic, diastolic, meanArterialPressure, ...optional };
}

/**
 * The fields after the pressures, the same in 0x2A35 and 0x2A36 (GATT Specification Supplement 3.31, 3.124):
 * Time Stamp, Pulse Rate, User ID, Measurement Status, each present when its flag bit is set, in this order.
 */
function readOptionalFields(r: ByteReader, flags: number) {
  return {
    timestamp: (flags & BP_FLAG_TIMESTAMP) !== 0 ? r.dateTime('Time Stamp') : undefined,
    pulseRate: (flags & BP_FLAG_PULSE_RATE) !== 0 ? r.sfloat('Pulse Rate') : undefined,
    userId: (flags & BP_FLAG_USER_ID) !== 0 ? r.u8('User ID') : undefined,
    status:
      (flags & BP_FLAG_MEASUREMENT_STATUS) !== 0
        ? decodeBloodPressureStatus(r.u16('Measurement Status'))
        : undefined,
  };
}

function unitOf(flags: number): 'kPa' | 'mmHg' {
  return (flags & BP_FLAG_UNITS_KPA) !== 0 ? 'kPa' : 'mmHg';
}

/** Decodes 0x2A36. Throws DecodeError (DECODE_TRUNCATED / DECODE_TRAILING_BYTES) on a bad length. */
export function decodeIntermediateCuffPressure(bytes: Uint8Array): IntermediateCuffPressure {
  const r = new ByteReader(bytes, 'Intermediate Cuff Pressure');
  const flags = r.u8('Flags');
  const cuffPressure = r.sfloat('Current Cuff Pressure');
  r.u16('Diastolic (unused)');
  r.u16('Mean Arterial Pressure (unused)');
  const optional = readOptionalFields(r, flags);
  r.end();
  return { flags, unit: unitOf(flags), cuffPressure, ...optional };
}

/** Decodes 0x2A49 (a 16-bit field). */
export function decodeBloodPressureFeature(bytes: Uint8Array): BloodPressureFeature {
  const r = new ByteReader(bytes, 'Blood Pressure Feature');
  const raw = r.u16('Blood Pressure Feature');
  r.end();
  return {
    raw,
    bodyMovementDetection: (raw & 0x0001) !== 0,
    cuffFitDetection: (raw & 0x0002) !== 0,
    irregularPulseDetection: (raw & 0x0004) !== 0,
    pulseRateRangeDetection: (raw & 0x0008) !== 0,
    measurementPositionDetection: (raw & 0x0010) !== 0,
    multipleBond: (raw & 0x0020) !== 0,
    e2eCrc: (raw & 0x0040) !== 0,
    userDataService: (raw & 0x0080) !== 0,
    userFacingTime: (raw & 0x0100) !== 0,
  };
}

// ---- Encoders (for the simulator and round-trip tests) -------------------------------------------------------

/** A number to encode as SFLOAT (the smallest exponent that represents it, down to 10^-3), or a special value. */
export type SfloatInput = MderInput;

export interface DateTimeInput {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hours: number;
  readonly minutes: number;
  readonly seconds: number;
}

interface BloodPressureOptionalInput {
  readonly unit: BloodPressureUnit;
  readonly timestamp?: DateTimeInput;
  readonly pulseRate?: SfloatInput;
  readonly userId?: number;
  /** Raw 16-bit Measurement Status. */
  readonly status?: number;
}

export interface BloodPressureMeasurementInput extends BloodPressureOptionalInput {
  readonly systolic: SfloatInput;
  readonly diastolic: SfloatInput;
  readonly meanArterialPressure: SfloatInput;
}

export interface IntermediateCuffPressureInput extends BloodPressureOptionalInput {
  readonly cuffPressure: SfloatInput;
}

function encodeBloodPressure(
  input: BloodPressureOptionalInput,
  first: number,
  second: number,
  third: number,
) {
  let flags = input.unit === 'kPa' ? BP_FLAG_UNITS_KPA : 0;
  const out: number[] = [0, first & 0xff, first >> 8, second & 0xff, second >> 8, third & 0xff, third >> 8];
  if (input.timestamp !== undefined) {
    flags |= BP_FLAG_TIMESTAMP;
    out.push(...encodeDateTime(input.timestamp));
  }
  if (input.pulseRate !== undefined) {
    flags |= BP_FLAG_PULSE_RATE;
    const bits = sfloatBits(input.pulseRate);
    out.push(bits & 0xff, bits >> 8);
  }
  if (input.userId !== undefined) {
    flags |= BP_FLAG_USER_ID;
    out.push(input.userId & 0xff);
  }
  if (input.status !== undefined) {
    flags |= BP_FLAG_MEASUREMENT_STATUS;
    out.push(input.status & 0xff, (input.status >> 8) & 0xff);
  }
  out[0] = flags;
  return Uint8Array.from(out);
}

export function encodeBloodPressureMeasurement(input: BloodPressureMeasurementInput): Uint8Array {
  return encodeBloodPressure(
    input,
    sfloatBits(input.systolic),
    sfloatBits(input.diastolic),
    sfloatBits(input.meanArterialPressure),
  );
}

/** The unused diastolic and mean fields are sent as NaN, as BLS 1.1.1 3.2 asks of a server. */
export function encodeIntermediateCuffPressure(input: IntermediateCuffPressureInput): Uint8Array {
  return encodeBloodPressure(input, sfloatBits(input.cuffPressure), SFLOAT_SPECIAL.nan, SFLOAT_SPECIAL.nan);
}

export function encodeBloodPressureFeature(raw: number): Uint8Array {
  return Uint8Array.of(raw & 0xff, (raw >> 8) & 0xff);
}
