import { ByteReader } from './byte-reader.js';
import { type DeviceDateTime, encodeDateTime } from './date-time.js';
import { encodeSfloat, type MderNumber, SFLOAT_SPECIAL } from './mder-float.js';

/**
 * Pulse Oximeter Service (0x1822) characteristics: PLX Spot-Check Measurement (0x2A5E), PLX Continuous
 * Measurement (0x2A5F) and PLX Features (0x2A60).
 *
 * Sources: Bluetooth SIG "Pulse Oximeter Service" PLXS v1.0.1, section 3 (characteristic behaviour), and the
 * GATT Specification Supplement (GSS) sections "PLX Spot-Check Measurement", "PLX Continuous Measurement" and
 * "PLX Features" (field layouts and bit tables). All multi-byte fields are little-endian; SpO2, PR and the
 * Pulse Amplitude Index are medfloat16 (SFLOAT). Reserved-for-future-use bits are ignored, as the
 * specifications ask of receivers.
 */

// ---- Bit tables ------------------------------------------------------------------------------------------

/** PLX Spot-Check Measurement Flags (GSS "PLX Spot-Check Measurement", Flags field; bits 5-7 RFU). */
export const PLX_SPOT_CHECK_FLAG = {
  timestampPresent: 0x01,
  measurementStatusPresent: 0x02,
  deviceAndSensorStatusPresent: 0x04,
  pulseAmplitudeIndexPresent: 0x08,
  deviceClockNotSet: 0x10,
} as const;

/** PLX Continuous Measurement Flags (GSS "PLX Continuous Measurement", Flags field; bits 5-7 RFU). */
export const PLX_CONTINUOUS_FLAG = {
  spo2prFastPresent: 0x01,
  spo2prSlowPresent: 0x02,
  measurementStatusPresent: 0x04,
  deviceAndSensorStatusPresent: 0x08,
  pulseAmplitudeIndexPresent: 0x10,
} as const;

/** PLX Features Supported Features bits (GSS "PLX Features"; bits 8-15 RFU). */
export const PLX_FEATURE = {
  measurementStatusSupport: 0x0001,
  deviceAndSensorStatusSupport: 0x0002,
  spotCheckMeasurementStorage: 0x0004,
  spotCheckTimestamp: 0x0008,
  spo2prFast: 0x0010,
  spo2prSlow: 0x0020,
  pulseAmplitudeIndex: 0x0040,
  multipleBonds: 0x0080,
} as const;

/**
 * Measurement Status (16 bits), indexed by bit: bits 0-4 are RFU. Used by both measurements and, as
 * "Measurement Status Support", by PLX Features (a set bit there means the device can report that status).
 */
export const PLX_MEASUREMENT_STATUS_BITS: readonly (string | undefined)[] = Object.freeze([
  undefined,
  undefined,
  undefined,
  undefined,
  undefined,
  'measurement-ongoing',
  'early-estimated-data',
  'validated-data',
  'fully-qualified-data',
  'data-from-measurement-storage',
  'data-for-demonstration',
  'data-for-testing',
  'calibration-ongoing',
  'measurement-unavailable',
  'questionable-measurement-detected',
  'invalid-measurement-detected',
]);

/** Device and Sensor Status (24 bits), indexed by bit: bits 16-23 are RFU. Also the layout of its Support field. */
export const PLX_DEVICE_AND_SENSOR_STATUS_BITS: readonly (string | undefined)[] = Object.freeze([
  'extended-display-update-ongoing',
  'equipment-malfunction-detected',
  'signal-processing-irregularity-detected',
  'inadequate-signal-detected',
  'poor-signal-detected',
  'low-perfusion-detected',
  'erratic-signal-detected',
  'nonpulsatile-signal-detected',
  'questionable-pulse-detected',
  'signal-analysis-ongoing',
  'sensor-interference-detected',
  'sensor-unconnected-to-user',
  'unknown-sensor-connected',
  'sensor-displaced',
  'sensor-malfunctioning',
  'sensor-disconnected',
]);

/** Supported Features bits of PLX Features, indexed by bit, in kebab-case. */
export const PLX_SUPPORTED_FEATURE_BITS: readonly (string | undefined)[] = Object.freeze([
  'measurement-status-support',
  'device-and-sensor-status-support',
  'spot-check-measurement-storage',
  'spot-check-timestamp',
  'spo2pr-fast',
  'spo2pr-slow',
  'pulse-amplitude-index',
  'multiple-bonds',
]);

// ---- Structs ----------------------------------------------------------------------------------------------

/** PLX Spot-Check Measurement (0x2A5E), field by field. */
export interface PlxSpotCheckMeasurement {
  readonly flags: number;
  /** SpO2PR-Spot-Check - SpO2, percent. */
  readonly spo2: MderNumber;
  /** SpO2PR-Spot-Check - PR, beats per minute. */
  readonly pulseRate: MderNumber;
  /** Present when flags bit 0 is set. Not meaningful when `deviceClockNotSet` (flags bit 4) is true. */
  readonly timestamp: DeviceDateTime | undefined;
  /** Raw 16-bit Measurement Status, present when flags bit 1 is set (names: PLX_MEASUREMENT_STATUS_BITS). */
  readonly measurementStatus: number | undefined;
  /** Raw 24-bit Device and Sensor Status, present when flags bit 2 is set. */
  readonly deviceAndSensorStatus: number | undefined;
  /** Pulse Amplitude Index, percent; present when flags bit 3 is set. */
  readonly pulseAmplitudeIndex: MderNumber | undefined;
  /** Flags bit 4: the device's clock is not set, so any timestamp is not a real time. */
  readonly deviceClockNotSet: boolean;
}

/** PLX Continuous Measurement (0x2A5F), field by field. */
export interface PlxContinuousMeasurement {
  readonly flags: number;
  /** SpO2PR-Normal. */
  readonly spo2: MderNumber;
  readonly pulseRate: MderNumber;
  /** SpO2PR-Fast, present when flags bit 0 is set. */
  readonly spo2Fast: MderNumber | undefined;
  readonly pulseRateFast: MderNumber | undefined;
  /** SpO2PR-Slow, present when flags bit 1 is set. */
  readonly spo2Slow: MderNumber | undefined;
  readonly pulseRateSlow: MderNumber | undefined;
  /** Raw 16-bit Measurement Status, present when flags bit 2 is set. */
  readonly measurementStatus: number | undefined;
  /** Raw 24-bit Device and Sensor Status, present when flags bit 3 is set. */
  readonly deviceAndSensorStatus: number | undefined;
  /** Pulse Amplitude Index, percent; present when flags bit 4 is set. */
  readonly pulseAmplitudeIndex: MderNumber | undefined;
}

/** PLX Features (0x2A60), field by field. */
export interface PlxFeatures {
  /** Raw 16-bit Supported Features (names: PLX_SUPPORTED_FEATURE_BITS). */
  readonly supportedFeatures: number;
  /** Raw 16-bit Measurement Status Support, present when Supported Features bit 0 is set. */
  readonly measurementStatusSupport: number | undefined;
  /** Raw 24-bit Device and Sensor Status Support, present when Supported Features bit 1 is set. */
  readonly deviceAndSensorStatusSupport: number | undefined;
}

// ---- Decoders ---------------------------------------------------------------------------------------------

/** Decodes PLX Spot-Check Measurement (GSS "PLX Spot-Check Measurement"; PLXS 1.0.1 3.1). */
export function decodePlxSpotCheck(bytes: Uint8Array): PlxSpotCheckMeasurement {
  const r = new ByteReader(bytes, 'PLX Spot-Check Measurement');
  const flags = r.u8('Flags');
  const spo2 = r.sfloat('SpO2PR-Spot-Check - SpO2');
  const pulseRate = r.sfloat('SpO2PR-Spot-Check - PR');
  const timestamp = flags & PLX_SPOT_CHECK_FLAG.timestampPresent ? r.dateTime('Timestamp') : undefined;
  const measurementStatus =
    flags & PLX_SPOT_CHECK_FLAG.measurementStatusPresent ? r.u16('Measurement Status') : undefined;
  const deviceAndSensorStatus =
    flags & PLX_SPOT_CHECK_FLAG.deviceAndSensorStatusPresent ? r.u24('Device and Sensor Status') : undefined;
  const pulseAmplitudeIndex =
    flags & PLX_SPOT_CHECK_FLAG.pulseAmplitudeIndexPresent ? r.sfloat('Pulse Amplitude Index') : undefined;
  r.end();
  return {
    flags,
    spo2,
    pulseRate,
    timestamp,
    measurementStatus,
    deviceAndSensorStatus,
    pulseAmplitudeIndex,
    deviceClockNotSet: (flags & PLX_SPOT_CHECK_FLAG.deviceClockNotSet) !== 0,
  };
}

/** Decodes PLX Continuous Measurement (GSS "PLX Continuous Measurement"; PLXS 1.0.1 3.2). */
export function decodePlxContinuous(bytes: Uint8Array): PlxContinuousMeasurement {
  const r = new ByteReader(bytes, 'PLX Continuous Measurement');
  const flags = r.u8('Flags');
  const spo2 = r.sfloat('SpO2PR-Normal - SpO2');
  const pulseRate = r.sfloat('SpO2PR-Normal - PR');
  let spo2Fast: MderNumber | undefined;
  let pulseRateFast: MderNumber | undefined;
  if (flags & PLX_CONTINUOUS_FLAG.spo2prFastPresent) {
    spo2Fast = r.sfloat('SpO2PR-Fast - SpO2');
    pulseRateFast = r.sfloat('SpO2PR-Fast - PR');
  }
  let spo2Slow: MderNumber | undefined;
  let pulseRateSlow: MderNumber | undefined;
  if (flags & PLX_CONTINUOUS_FLAG.spo2prSlowPresent) {
    spo2Slow = r.sfloat('SpO2PR-Slow - SpO2');
    pulseRateSlow = r.sfloat('SpO2PR-Slow - PR');
  }
  const measurementStatus =
    flags & PLX_CONTINUOUS_FLAG.measurementStatusPresent ? r.u16('Measurement Status') : undefined;
  const deviceAndSensorStatus =
    flags & PLX_CONTINUOUS_FLAG.deviceAndSensorStatusPresent ? r.u24('Device and Sensor Status') : undefined;
  const pulseAmplitudeIndex =
    flags & PLX_CONTINUOUS_FLAG.pulseAmplitudeIndexPresent ? r.sfloat('Pulse Amplitude Index') : undefined;
  r.end();
  return {
    flags,
    spo2,
    pulseRate,
    spo2Fast,
    pulseRateFast,
    spo2Slow,
    pulseRateSlow,
    measurementStatus,
    deviceAndSensorStatus,
    pulseAmplitudeIndex,
  };
}

/** Decodes PLX Features (GSS "PLX Features"; PLXS 1.0.1 3.3). */
export function decodePlxFeatures(bytes: Uint8Array): PlxFeatures {
  const r = new ByteReader(bytes, 'PLX Features');
  const supportedFeatures = r.u16('Supported Features');
  const measurementStatusSupport =
    supportedFeatures & PLX_FEATURE.measurementStatusSupport
      ? r.u16('Measurement Status Support')
      : undefined;
  const deviceAndSensorStatusSupport =
    supportedFeatures & PLX_FEATURE.deviceAndSensorStatusSupport
      ? r.u24('Device and Sensor Status Support')
      : undefined;
  r.end();
  return { supportedFeatures, measurementStatusSupport, deviceAndSensorStatusSupport };
}

// ---- Encoders (simulator, round-trip tests) ---------------------------------------------------------------

/** Local wall-clock fields of a GATT Date Time, as encodeDateTime takes them. */
export interface DateTimeFields {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hours: number;
  readonly minutes: number;
  readonly seconds: number;
}

export interface PlxSpotCheckInput {
  readonly spo2: MderNumber;
  readonly pulseRate: MderNumber;
  readonly timestamp?: DateTimeFields;
  readonly measurementStatus?: number;
  readonly deviceAndSensorStatus?: number;
  readonly pulseAmplitudeIndex?: MderNumber;
  readonly deviceClockNotSet?: boolean;
}

export interface PlxContinuousInput {
  readonly spo2: MderNumber;
  readonly pulseRate: MderNumber;
  readonly fast?: { readonly spo2: MderNumber; readonly pulseRate: MderNumber };
  readonly slow?: { readonly spo2: MderNumber; readonly pulseRate: MderNumber };
  readonly measurementStatus?: number;
  readonly deviceAndSensorStatus?: number;
  readonly pulseAmplitudeIndex?: MderNumber;
}

export interface PlxFeaturesInput {
  /** Bits 0 and 1 are set or cleared from the presence of the two support fields. */
  readonly supportedFeatures: number;
  readonly measurementStatusSupport?: number;
  readonly deviceAndSensorStatusSupport?: number;
}

/** Encodes PLX Spot-Check Measurement; flags follow the fields given. Throws RangeError for unencodable values. */
export function encodePlxSpotCheck(value: PlxSpotCheckInput): Uint8Array {
  const out = new Writer();
  let flags = 0;
  if (value.timestamp) flags |= PLX_SPOT_CHECK_FLAG.timestampPresent;
  if (value.measurementStatus !== undefined) flags |= PLX_SPOT_CHECK_FLAG.measurementStatusPresent;
  if (value.deviceAndSensorStatus !== undefined) flags |= PLX_SPOT_CHECK_FLAG.deviceAndSensorStatusPresent;
  if (value.pulseAmplitudeIndex) flags |= PLX_SPOT_CHECK_FLAG.pulseAmplitudeIndexPresent;
  if (value.deviceClockNotSet) flags |= PLX_SPOT_CHECK_FLAG.deviceClockNotSet;
  out.u8(flags);
  out.sfloat(value.spo2);
  out.sfloat(value.pulseRate);
  if (value.timestamp) out.bytes(encodeDateTime(value.timestamp));
  if (value.measurementStatus !== undefined) out.u16(value.measurementStatus);
  if (value.deviceAndSensorStatus !== undefined) out.u24(value.deviceAndSensorStatus);
  if (value.pulseAmplitudeIndex) out.sfloat(value.pulseAmplitudeIndex);
  return out.finish();
}

/** Encodes PLX Continuous Measurement; flags follow the fields given. Throws RangeError for unencodable values. */
export function encodePlxContinuous(value: PlxContinuousInput): Uint8Array {
  const out = new Writer();
  let flags = 0;
  if (value.fast) flags |= PLX_CONTINUOUS_FLAG.spo2prFastPresent;
  if (value.slow) flags |= PLX_CONTINUOUS_FLAG.spo2prSlowPresent;
  if (value.measurementStatus !== undefined) flags |= PLX_CONTINUOUS_FLAG.measurementStatusPresent;
  if (value.deviceAndSensorStatus !== undefined) flags |= PLX_CONTINUOUS_FLAG.deviceAndSensorStatusPresent;
  if (value.pulseAmplitudeIndex) flags |= PLX_CONTINUOUS_FLAG.pulseAmplitudeIndexPresent;
  out.u8(flags);
  out.sfloat(value.spo2);
  out.sfloat(value.pulseRate);
  if (value.fast) {
    out.sfloat(value.fast.spo2);
    out.sfloat(value.fast.pulseRate);
  }
  if (value.slow) {
    out.sfloat(value.slow.spo2);
    out.sfloat(value.slow.pulseRate);
  }
  if (value.measurementStatus !== undefined) out.u16(value.measurementStatus);
  if (value.deviceAndSensorStatus !== undefined) out.u24(value.deviceAndSensorStatus);
  if (value.pulseAmplitudeIndex) out.sfloat(value.pulseAmplitudeIndex);
  return out.finish();
}

/** Encodes PLX Features. */
export function encodePlxFeatures(value: PlxFeaturesInput): Uint8Array {
  const out = new Writer();
  let features =
    value.supportedFeatures &
    ~(PLX_FEATURE.measurementStatusSupport | PLX_FEATURE.deviceAndSensorStatusSupport);
  if (value.measurementStatusSupport !== undefined) features |= PLX_FEATURE.measurementStatusSupport;
  if (value.deviceAndSensorStatusSupport !== undefined) features |= PLX_FEATURE.deviceAndSensorStatusSupport;
  out.u16(features);
  if (value.measurementStatusSupport !== undefined) out.u16(value.measurementStatusSupport);
  if (value.deviceAndSensorStatusSupport !== undefined) out.u24(value.deviceAndSensorStatusSupport);
  return out.finish();
}

/**
 * Picks the SFLOAT exponent that carries the value exactly (0 first, then -1..-8 for decimals, then 1..7 for
 * large values); a special value encodes as its reserved pattern. Mantissas stay within -2045..2045: -2046 with
 * exponent 0 would be the -INF pattern 0x0802.
 */
export function sfloatFor(number: MderNumber): number {
  if (number.value === null) return SFLOAT_SPECIAL[number.invalid ?? 'nan'];
  const value = number.value;
  for (let exponent = 0; exponent >= -8; exponent--) {
    const mantissa = value * 10 ** -exponent;
    const rounded = Math.round(mantissa);
    if (Math.abs(mantissa - rounded) < 1e-6 && rounded >= -2045 && rounded <= 2045) {
      return encodeSfloat(value, exponent);
    }
  }
  for (let exponent = 1; exponent <= 7; exponent++) {
    const mantissa = value / 10 ** exponent;
    const rounded = Math.round(mantissa);
    if (Math.abs(mantissa - rounded) < 1e-6 && Math.abs(rounded) <= 2045)
      return encodeSfloat(value, exponent);
  }
  throw new RangeError(`${value} cannot be carried by an SFLOAT`);
}

/** A small little-endian byte writer for the encoders. */
class Writer {
  private readonly buf: number[] = [];

  u8(v: number): void {
    this.buf.push(v & 0xff);
  }

  u16(v: number): void {
    this.buf.push(v & 0xff, (v >>> 8) & 0xff);
  }

  u24(v: number): void {
    this.buf.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff);
  }

  sfloat(n: MderNumber): void {
    this.u16(sfloatFor(n));
  }

  bytes(b: Uint8Array): void {
    for (const v of b) this.buf.push(v);
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.buf);
  }
}
