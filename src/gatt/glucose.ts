import { ByteReader } from './byte-reader.js';
import { type DeviceDateTime, dateTimeFromFields, type encodeDateTime } from './date-time.js';
import { decodeSfloat, type MderNumber } from './mder-float.js';

/**
 * Glucose Service (GLS 1.0.1, service 0x1808) characteristics, with field layouts from the GATT Specification
 * Supplement (GSS) entries of the same names: Glucose Measurement (0x2A18; GLS 1.0.1 3.1), Glucose Measurement
 * Context (0x2A34; GLS 3.2), Glucose Feature (0x2A51; GLS 3.3) and the Record Access Control Point (0x2A52;
 * GLS 3.4, which fixes the op codes, operators, filter types and response codes a glucose sensor uses).
 * Pure: bytes in, typed struct out, DecodeError for bad input. Reserved-for-future-use bits and values are
 * ignored (kept raw, never an error); only RACP op codes, operators and filter types the spec does not define
 * are refused, because the operand layout depends on them.
 */

/** Calendar fields of a Date Time (GSS Date Time), as the encoders take them. */
export type DateTimeFields = Parameters<typeof encodeDateTime>[0];

// The Record Access Control Point as the Glucose Service uses it lives in its own module.
export * from './glucose-racp.js';

/** 10^0 .. 10^22: every one an exact double. */
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/**
 * A raw SFLOAT times 10^shift, exactly: the shift is added to the SFLOAT's own exponent and the mantissa is
 * scaled once (division by 10^-e for negative e), so 0xB050 kg/L (80e-5) x 10^5 is exactly 80 mg/dL and
 * 0xC037 mol/L x 10^3 exactly 5.5 mmol/L, with no float noise to round away. Special values pass through.
 * This is how glucose units are converted (kg/L -> mg/dL: shift 5; mol/L -> mmol/L: 3; kg -> g: 3; kg -> mg:
 * 6; L -> mL: 3).
 */
export function scaleSfloat(raw: number, shift: number): MderNumber {
  const n = decodeSfloat(raw);
  if (n.value === null || n.value === 0) return n;
  const exponent = ((raw << 16) >> 28) + shift;
  const mantissa = (raw << 20) >> 20;
  return {
    value: exponent < 0 ? mantissa / (POW10[-exponent] as number) : mantissa * (POW10[exponent] as number),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Glucose Measurement (0x2A18)
// ---------------------------------------------------------------------------------------------------------------

/** Glucose Measurement Flags (GSS Glucose Measurement); bits 5-7 are reserved for future use. */
export const GLUCOSE_MEASUREMENT_FLAGS = {
  timeOffset: 0x01,
  /** Glucose Concentration, Type and Sample Location present (one flag for the three fields). */
  concentration: 0x02,
  /** Concentration units: 0 = kg/L, 1 = mol/L. */
  molPerLitre: 0x04,
  sensorStatus: 0x08,
  contextFollows: 0x10,
} as const;

/** Type nibble (GSS Glucose Measurement, Type-Sample Location), indexed by value; 0 and 11-15 are reserved. */
export const GLUCOSE_SAMPLE_TYPES = [
  undefined,
  'capillary-whole-blood',
  'capillary-plasma',
  'venous-whole-blood',
  'venous-plasma',
  'arterial-whole-blood',
  'arterial-plasma',
  'undetermined-whole-blood',
  'undetermined-plasma',
  'interstitial-fluid',
  'control-solution',
] as const;

export type GlucoseSampleType = Exclude<(typeof GLUCOSE_SAMPLE_TYPES)[number], undefined>;

/** Sample Location nibble (GSS Glucose Measurement); 0 and 5-14 are reserved, 15 = "not available". */
export const GLUCOSE_SAMPLE_LOCATIONS: readonly (string | undefined)[] = nibbleTable(
  ['finger', 'alternate-site-test', 'earlobe', 'control-solution'],
  'not-available',
);

/** Sensor Status Annunciation bits (GSS Glucose Measurement), by bit position; bits 12-15 are reserved. */
export const GLUCOSE_SENSOR_STATUS_BITS = [
  'battery-low',
  'sensor-malfunction',
  'sample-size-insufficient',
  'strip-insertion-error',
  'strip-type-incorrect',
  'result-too-high',
  'result-too-low',
  'temperature-too-high',
  'temperature-too-low',
  'read-interrupted',
  'general-device-fault',
  'time-fault',
] as const;

export interface GlucoseMeasurement {
  readonly flags: number;
  readonly sequenceNumber: number;
  /** The Base Time field as sent. */
  readonly baseTime: DeviceDateTime;
  /** Time Offset in minutes (sint16), when present. */
  readonly timeOffset: number | undefined;
  /**
   * The reading's user-facing time: Base Time + Time Offset (GLS 1.0.1 3.1), or the Base Time when there
   * is no offset. Unknown when the base time is unknown; invalid when the base time is, or when the sum leaves
   * the Date Time range (years 1582-9999).
   */
  readonly time: DeviceDateTime;
  /** Glucose concentration in kg/L or mol/L (see `unit`); undefined when flag bit 1 is clear. */
  readonly concentration: MderNumber | undefined;
  /** The concentration's raw 16-bit SFLOAT, for exact unit scaling (scaleSfloat) and re-encoding. */
  readonly concentrationSfloat: number | undefined;
  readonly unit: 'kg/L' | 'mol/L' | undefined;
  /** Raw Type nibble (low nibble of the Type-Sample Location byte). */
  readonly type: number | undefined;
  /** Named Type, undefined for a reserved value. */
  readonly sampleType: GlucoseSampleType | undefined;
  /** Raw Sample Location nibble (high nibble). */
  readonly sampleLocationValue: number | undefined;
  /** Named Sample Location, undefined for a reserved value. */
  readonly sampleLocation: string | undefined;
  /** Sensor Status Annunciation bits as sent (names: GLUCOSE_SENSOR_STATUS_BITS). */
  readonly sensorStatus: number | undefined;
  /** A Glucose Measurement Context with the same sequence number follows. */
  readonly contextFollows: boolean;
}

/** GSS Glucose Measurement: flags, sequence number, base time, then the fields the flags announce. */
export function decodeGlucoseMeasurement(bytes: Uint8Array): GlucoseMeasurement {
  const r: ByteReader = new ByteReader(bytes, 'Glucose Measurement');
  const flags = r.u8('Flags');
  const sequenceNumber = r.u16('Sequence Number');
  // Base Time (Date Time, 7 bytes), read in place: take() would allocate a view per record.
  if (r.remaining < 7) r.take(7, 'Base Time'); // throws DECODE_TRUNCATED at the field's first byte
  const at = r.offset;
  r.offset = at + 7;
  const year = (bytes[at] as number) | ((bytes[at + 1] as number) << 8);
  const month = bytes[at + 2] as number;
  const day = bytes[at + 3] as number;
  const hours = bytes[at + 4] as number;
  const minutes = bytes[at + 5] as number;
  const seconds = bytes[at + 6] as number;
  const baseTime = dateTimeFromFields(year, month, day, hours, minutes, seconds);
  let timeOffset: number | undefined;
  let time = baseTime;
  if (flags & GLUCOSE_MEASUREMENT_FLAGS.timeOffset) {
    timeOffset = r.s16('Time Offset');
    if (baseTime.iso !== null) time = addMinutes(year, month, day, hours, minutes, seconds, timeOffset);
  }
  let concentration: MderNumber | undefined;
  let concentrationSfloat: number | undefined;
  let unit: 'kg/L' | 'mol/L' | undefined;
  let type: number | undefined;
  let sampleLocationValue: number | undefined;
  if (flags & GLUCOSE_MEASUREMENT_FLAGS.concentration) {
    concentrationSfloat = r.u16('Glucose Concentration');
    concentration = decodeSfloat(concentrationSfloat);
    unit = flags & GLUCOSE_MEASUREMENT_FLAGS.molPerLitre ? 'mol/L' : 'kg/L';
    const typeLocation = r.u8('Type-Sample Location');
    type = typeLocation & 0x0f;
    sampleLocationValue = typeLocation >> 4;
  }
  const sensorStatus =
    flags & GLUCOSE_MEASUREMENT_FLAGS.sensorStatus ? r.u16('Sensor Status Annunciation') : undefined;
  r.end();
  return {
    flags,
    sequenceNumber,
    baseTime,
    timeOffset,
    time,
    concentration,
    concentrationSfloat,
    unit,
    type,
    sampleType: type === undefined ? undefined : GLUCOSE_SAMPLE_TYPES[type],
    sampleLocationValue,
    sampleLocation:
      sampleLocationValue === undefined ? undefined : GLUCOSE_SAMPLE_LOCATIONS[sampleLocationValue],
    sensorStatus,
    contextFollows: (flags & GLUCOSE_MEASUREMENT_FLAGS.contextFollows) !== 0,
  };
}

/**
 * Base Time + offset minutes as a Date Time. Calendar arithmetic in UTC (Date.UTC composes and normalises the
 * fields, the civil-from-days algorithm splits the sum again), so the host's time zone and its daylight-saving
 * rules never shift the result: both ends are the device's wall clock. No Date object is allocated.
 */
function addMinutes(
  year: number,
  month: number,
  day: number,
  hours: number,
  minutes: number,
  seconds: number,
  offset: number,
): DeviceDateTime {
  // year >= 1582 here (the base time is valid), so Date.UTC's 0-99 => 1900-1999 mapping never applies.
  const ms = Date.UTC(year, month - 1, day, hours, minutes + offset, seconds);
  const days = Math.floor(ms / 86_400_000);
  const secondOfDay = (ms - days * 86_400_000) / 1000;
  const minuteOfDay = Math.floor(secondOfDay / 60);
  // Civil-from-days (proleptic Gregorian, H. Hinnant's algorithm): days since 1970-01-01 -> y/m/d.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return dateTimeFromFields(y, m, d, Math.floor(minuteOfDay / 60), minuteOfDay % 60, secondOfDay % 60);
}

/** What encodeGlucoseMeasurement writes (for the simulator and round-trip tests). */
export interface GlucoseMeasurementInit {
  readonly sequenceNumber: number;
  readonly baseTime: DateTimeFields;
  readonly timeOffset?: number;
  /** Raw SFLOAT (see encodeSfloat / SFLOAT_SPECIAL) with its unit, Type and Sample Location nibbles. */
  readonly concentration?: {
    readonly sfloat: number;
    readonly unit: 'kg/L' | 'mol/L';
    readonly type: number;
    readonly sampleLocation: number;
  };
  readonly sensorStatus?: number;
  readonly contextFollows?: boolean;
}

export function encodeGlucoseMeasurement(init: GlucoseMeasurementInit): Uint8Array {
  const out: number[] = [];
  const c = init.concentration;
  let flags = 0;
  if (init.timeOffset !== undefined) flags |= GLUCOSE_MEASUREMENT_FLAGS.timeOffset;
  if (c) flags |= GLUCOSE_MEASUREMENT_FLAGS.concentration;
  if (c?.unit === 'mol/L') flags |= GLUCOSE_MEASUREMENT_FLAGS.molPerLitre;
  if (init.sensorStatus !== undefined) flags |= GLUCOSE_MEASUREMENT_FLAGS.sensorStatus;
  if (init.contextFollows) flags |= GLUCOSE_MEASUREMENT_FLAGS.contextFollows;
  out.push(flags);
  pushU16(out, init.sequenceNumber);
  pushDateTime(out, init.baseTime);
  if (init.timeOffset !== undefined) pushU16(out, init.timeOffset & 0xffff);
  if (c) {
    pushU16(out, c.sfloat);
    out.push((c.type & 0x0f) | ((c.sampleLocation & 0x0f) << 4));
  }
  if (init.sensorStatus !== undefined) pushU16(out, init.sensorStatus);
  return Uint8Array.from(out);
}

// ---------------------------------------------------------------------------------------------------------------
// Glucose Measurement Context (0x2A34)
// ---------------------------------------------------------------------------------------------------------------

/** Glucose Measurement Context Flags (GSS Glucose Measurement Context). */
export const GLUCOSE_CONTEXT_FLAGS = {
  carbohydrate: 0x01,
  meal: 0x02,
  testerHealth: 0x04,
  exercise: 0x08,
  medication: 0x10,
  /** Medication units: 0 = kilograms, 1 = litres. */
  medicationLitres: 0x20,
  hba1c: 0x40,
  extendedFlags: 0x80,
} as const;

/** Carbohydrate ID (GSS Glucose Measurement Context); 0 and 8-255 reserved. */
export const GLUCOSE_CARBOHYDRATES: readonly (string | undefined)[] = [
  undefined,
  'breakfast',
  'lunch',
  'dinner',
  'snack',
  'drink',
  'supper',
  'brunch',
];

/** Meal (GSS Glucose Measurement Context); 0 and 6-255 reserved. */
export const GLUCOSE_MEALS: readonly (string | undefined)[] = [
  undefined,
  'preprandial',
  'postprandial',
  'fasting',
  'casual',
  'bedtime',
];

/** Tester nibble (GSS Glucose Measurement Context); 0, 4-14 reserved; 15 = not available. */
export const GLUCOSE_TESTERS: readonly (string | undefined)[] = nibbleTable(
  ['self', 'health-care-professional', 'lab-test'],
  'not-available',
);

/** Health nibble (GSS Glucose Measurement Context); 0, 6-14 reserved; 15 = not available. */
export const GLUCOSE_HEALTH: readonly (string | undefined)[] = nibbleTable(
  ['minor-health-issues', 'major-health-issues', 'during-menses', 'under-stress', 'no-health-issues'],
  'not-available',
);

/** Medication ID (GSS Glucose Measurement Context); 0 and 6-255 reserved. */
export const GLUCOSE_MEDICATIONS: readonly (string | undefined)[] = [
  undefined,
  'rapid-acting-insulin',
  'short-acting-insulin',
  'intermediate-acting-insulin',
  'long-acting-insulin',
  'pre-mixed-insulin',
];

/** Exercise Duration value meaning "overrun" (GSS Glucose Measurement Context). */
export const EXERCISE_DURATION_OVERRUN = 0xffff;

export interface GlucoseMeasurementContext {
  readonly flags: number;
  /** Pairs this context with the Glucose Measurement of the same sequence number. */
  readonly sequenceNumber: number;
  /** Extended Flags byte (all bits reserved in GLS 1.0.1), when present. */
  readonly extendedFlags: number | undefined;
  readonly carbohydrateId: number | undefined;
  /** Carbohydrate amount in kilograms. */
  readonly carbohydrate: MderNumber | undefined;
  /** Its raw SFLOAT (for exact scaling to grams with scaleSfloat). */
  readonly carbohydrateSfloat: number | undefined;
  readonly meal: number | undefined;
  readonly tester: number | undefined;
  readonly health: number | undefined;
  /** Seconds; 65535 = overrun. */
  readonly exerciseDuration: number | undefined;
  /** Percent. */
  readonly exerciseIntensity: number | undefined;
  readonly medicationId: number | undefined;
  /** Medication amount in kilograms or litres (see `medicationUnit`). */
  readonly medication: MderNumber | undefined;
  /** Its raw SFLOAT (for exact scaling to mg or mL with scaleSfloat). */
  readonly medicationSfloat: number | undefined;
  readonly medicationUnit: 'kg' | 'L' | undefined;
  /** HbA1c in percent. */
  readonly hba1c: MderNumber | undefined;
}

/** GSS Glucose Measurement Context: the fields the flags announce, in flag-bit order. */
export function decodeGlucoseMeasurementContext(bytes: Uint8Array): GlucoseMeasurementContext {
  const r: ByteReader = new ByteReader(bytes, 'Glucose Measurement Context');
  const flags = r.u8('Flags');
  const sequenceNumber = r.u16('Sequence Number');
  const extendedFlags = flags & GLUCOSE_CONTEXT_FLAGS.extendedFlags ? r.u8('Extended Flags') : undefined;
  let carbohydrateId: number | undefined;
  let carbohydrate: MderNumber | undefined;
  let carbohydrateSfloat: number | undefined;
  if (flags & GLUCOSE_CONTEXT_FLAGS.carbohydrate) {
    carbohydrateId = r.u8('Carbohydrate ID');
    carbohydrateSfloat = r.u16('Carbohydrate');
    carbohydrate = decodeSfloat(carbohydrateSfloat);
  }
  const meal = flags & GLUCOSE_CONTEXT_FLAGS.meal ? r.u8('Meal') : undefined;
  let tester: number | undefined;
  let health: number | undefined;
  if (flags & GLUCOSE_CONTEXT_FLAGS.testerHealth) {
    const testerHealth = r.u8('Tester-Health');
    tester = testerHealth & 0x0f;
    health = testerHealth >> 4;
  }
  let exerciseDuration: number | undefined;
  let exerciseIntensity: number | undefined;
  if (flags & GLUCOSE_CONTEXT_FLAGS.exercise) {
    exerciseDuration = r.u16('Exercise Duration');
    exerciseIntensity = r.u8('Exercise Intensity');
  }
  let medicationId: number | undefined;
  let medication: MderNumber | undefined;
  let medicationSfloat: number | undefined;
  let medicationUnit: 'kg' | 'L' | undefined;
  if (flags & GLUCOSE_CONTEXT_FLAGS.medication) {
    medicationId = r.u8('Medication ID');
    medicationSfloat = r.u16('Medication');
    medication = decodeSfloat(medicationSfloat);
    medicationUnit = flags & GLUCOSE_CONTEXT_FLAGS.medicationLitres ? 'L' : 'kg';
  }
  const hba1c = flags & GLUCOSE_CONTEXT_FLAGS.hba1c ? r.sfloat('HbA1c') : undefined;
  r.end();
  return {
    flags,
    sequenceNumber,
    extendedFlags,
    carbohydrateId,
    carbohydrate,
    carbohydrateSfloat,
    meal,
    tester,
    health,
    exerciseDuration,
    exerciseIntensity,
    medicationId,
    medication,
    medicationSfloat,
    medicationUnit,
    hba1c,
  };
}

/** What encodeGlucoseMeasurementContext writes; SFLOAT fields are raw 16-bit values. */
export interface GlucoseMeasurementContextInit {
  readonly sequenceNumber: number;
  readonly extendedFlags?: number;
  readonly carbohydrate?: { readonly id: number; readonly sfloat: number };
  readonly meal?: number;
  readonly testerHealth?: { readonly tester: number; readonly health: number };
  readonly exercise?: { readonly duration: number; readonly intensity: number };
  readonly medication?: { readonly id: number; readonly sfloat: number; readonly unit: 'kg' | 'L' };
  readonly hba1c?: number;
}

export function encodeGlucoseMeasurementContext(init: GlucoseMeasurementContextInit): Uint8Array {
  const F = GLUCOSE_CONTEXT_FLAGS;
  let flags = 0;
  if (init.carbohydrate) flags |= F.carbohydrate;
  if (init.meal !== undefined) flags |= F.meal;
  if (init.testerHealth) flags |= F.testerHealth;
  if (init.exercise) flags |= F.exercise;
  if (init.medication) flags |= F.medication;
  if (init.medication?.unit === 'L') flags |= F.medicationLitres;
  if (init.hba1c !== undefined) flags |= F.hba1c;
  if (init.extendedFlags !== undefined) flags |= F.extendedFlags;
  const out: number[] = [flags];
  pushU16(out, init.sequenceNumber);
  if (init.extendedFlags !== undefined) out.push(init.extendedFlags & 0xff);
  if (init.carbohydrate) {
    out.push(init.carbohydrate.id & 0xff);
    pushU16(out, init.carbohydrate.sfloat);
  }
  if (init.meal !== undefined) out.push(init.meal & 0xff);
  if (init.testerHealth)
    out.push((init.testerHealth.tester & 0x0f) | ((init.testerHealth.health & 0x0f) << 4));
  if (init.exercise) {
    pushU16(out, init.exercise.duration);
    out.push(init.exercise.intensity & 0xff);
  }
  if (init.medication) {
    out.push(init.medication.id & 0xff);
    pushU16(out, init.medication.sfloat);
  }
  if (init.hba1c !== undefined) pushU16(out, init.hba1c);
  return Uint8Array.from(out);
}

// ---------------------------------------------------------------------------------------------------------------
// Glucose Feature (0x2A51)
// ---------------------------------------------------------------------------------------------------------------

/** Glucose Feature bits (GSS Glucose Feature), by bit position, as camelCase names; bits 11-15 are reserved. */
export const GLUCOSE_FEATURE_BITS = [
  'lowBatteryDetection',
  'sensorMalfunctionDetection',
  'sensorSampleSize',
  'sensorStripInsertionErrorDetection',
  'sensorStripTypeErrorDetection',
  'sensorResultHighLowDetection',
  'sensorTemperatureHighLowDetection',
  'sensorReadInterruptDetection',
  'generalDeviceFault',
  'timeFault',
  'multipleBond',
] as const;

export type GlucoseFeatureName = (typeof GLUCOSE_FEATURE_BITS)[number];

export interface GlucoseFeature {
  readonly raw: number;
  readonly supported: { readonly [K in GlucoseFeatureName]: boolean };
}

/** GSS Glucose Feature: one 16-bit field. */
export function decodeGlucoseFeature(bytes: Uint8Array): GlucoseFeature {
  const r = new ByteReader(bytes, 'Glucose Feature');
  const raw = r.u16('Glucose Feature');
  r.end();
  return {
    raw,
    supported: {
      lowBatteryDetection: (raw & 0x0001) !== 0,
      sensorMalfunctionDetection: (raw & 0x0002) !== 0,
      sensorSampleSize: (raw & 0x0004) !== 0,
      sensorStripInsertionErrorDetection: (raw & 0x0008) !== 0,
      sensorStripTypeErrorDetection: (raw & 0x0010) !== 0,
      sensorResultHighLowDetection: (raw & 0x0020) !== 0,
      sensorTemperatureHighLowDetection: (raw & 0x0040) !== 0,
      sensorReadInterruptDetection: (raw & 0x0080) !== 0,
      generalDeviceFault: (raw & 0x0100) !== 0,
      timeFault: (raw & 0x0200) !== 0,
      multipleBond: (raw & 0x0400) !== 0,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------

function pushU16(out: number[], value: number): void {
  out.push(value & 0xff, (value >> 8) & 0xff);
}

function pushDateTime(out: number[], f: DateTimeFields): void {
  out.push(f.year & 0xff, (f.year >> 8) & 0xff, f.month, f.day, f.hours, f.minutes, f.seconds);
}

function nibbleTable(names: readonly string[], fifteen: string): (string | undefined)[] {
  const table: (string | undefined)[] = new Array(16).fill(undefined);
  names.forEach((name, i) => {
    table[i + 1] = name;
  });
  table[15] = fifteen;
  return table;
}
