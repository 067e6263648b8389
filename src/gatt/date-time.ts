/**
 * GATT Date Time (org.bluetooth.characteristic.date_time, 0x2A08; GATT Specification Supplement 3.70):
 * year uint16 (1582..9999, 0 = unknown), month uint8 (1..12, 0 = unknown), day uint8 (1..31, 0 = unknown),
 * hours 0..23, minutes 0..59, seconds 0..59. Seven bytes, no time zone: it is the device's local wall clock.
 */
export const DATE_TIME_LENGTH = 7;

export interface DeviceDateTime {
  /** ISO-8601 local time without offset, or null when the device says it does not know the date. */
  readonly iso: string | null;
  /** False when a field is outside its range (the reading is kept, its device time is not trusted). */
  readonly valid: boolean;
}

const UNKNOWN: DeviceDateTime = Object.freeze({ iso: null, valid: true });
const INVALID: DeviceDateTime = Object.freeze({ iso: null, valid: false });

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/** Builds the ISO string from already-read fields; see module comment for the ranges. */
export function dateTimeFromFields(
  year: number,
  month: number,
  day: number,
  hours: number,
  minutes: number,
  seconds: number,
): DeviceDateTime {
  // 0 in year, month or day is the specification's "not known": the device's clock is not set.
  if (year === 0 || month === 0 || day === 0) return UNKNOWN;
  if (year < 1582 || year > 9999 || month > 12 || hours > 23 || minutes > 59 || seconds > 59) return INVALID;
  const monthDays = month === 2 && isLeapYear(year) ? 29 : (DAYS_IN_MONTH[month - 1] as number);
  if (day > monthDays) return INVALID;
  return {
    iso: `${year}-${pad2(month)}-${pad2(day)}T${pad2(hours)}:${pad2(minutes)}:${pad2(seconds)}`,
    valid: true,
  };
}

/** Encodes a local wall-clock time as the 7 Date Time bytes (for Current Time writes and the simulator). */
export function encodeDateTime(fields: {
  year: number;
  month: number;
  day: number;
  hours: number;
  minutes: number;
  seconds: number;
}): Uint8Array {
  return Uint8Array.of(
    fields.year & 0xff,
    fields.year >> 8,
    fields.month,
    fields.day,
    fields.hours,
    fields.minutes,
    fields.seconds,
  );
}
