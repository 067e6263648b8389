import { DecodeError } from '../errors.js';
import { ByteReader } from './byte-reader.js';
import { type DeviceDateTime, encodeDateTime } from './date-time.js';
import { toHex } from './hex.js';

/**
 * Characteristics every device carries besides its health profile:
 * - Battery Service 1.0 (BAS, 0x180F): Battery Level (0x2A19).
 * - Device Information Service 1.1 (DIS, 0x180A): the strings 0x2A29/0x2A24/0x2A25/0x2A27/0x2A26/0x2A28, System ID
 *   (0x2A23), IEEE 11073-20601 Regulatory Certification Data List (0x2A2A), PnP ID (0x2A50).
 * - Current Time Service 1.1 (CTS, 0x1805): Current Time (0x2A2B), Local Time Information (0x2A0F).
 * Layouts from those specifications and the GATT Specification Supplement entries of the same names.
 */

// ---------------------------------------------------------------------------------------------------------------
// Battery Level (BAS 1.0, 3.1)

export interface BatteryLevelValue {
  readonly raw: number;
  /** 0..100 %; null when the device sends a reserved value (101-255). */
  readonly percent: number | null;
}

export function decodeBatteryLevel(bytes: Uint8Array): BatteryLevelValue {
  const r = new ByteReader(bytes, 'Battery Level');
  const raw = r.u8('Battery Level');
  r.end();
  return { raw, percent: raw <= 100 ? raw : null };
}

// ---------------------------------------------------------------------------------------------------------------
// DIS strings (DIS 1.1, 3.1-3.6): UTF-8 "utf8s" without a length or terminator of their own.

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes a DIS string characteristic. Many firmwares send a C string (a NUL terminator, or a fixed-size buffer
 * padded with NULs), so the text ends at the first NUL: trailing NULs, and anything a padded buffer holds after
 * them, are dropped. Bytes that are not UTF-8 are DECODE_INVALID_FIELD (the specification says UTF-8; guessing
 * another encoding could turn two different serial numbers into the same text).
 */
export function decodeUtf8String(bytes: Uint8Array, what: string): string {
  const nul = bytes.indexOf(0);
  const text = nul === -1 ? bytes : bytes.subarray(0, nul);
  try {
    return UTF8.decode(text);
  } catch (cause) {
    throw new DecodeError('DECODE_INVALID_FIELD', `${what}: not UTF-8 text`, undefined, { cause });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// System ID (DIS 1.1, 3.7): a 64-bit value, little-endian: the 40-bit Manufacturer Identifier in the low part,
// the 24-bit Organizationally Unique Identifier (IEEE OUI) in the high part. When it is derived from a public
// Bluetooth address the DIS example gives OUI 0x123456 + company-assigned 0x9ABCDE -> 0x123456FFFE9ABCDE.

export interface SystemIdValue {
  /** 40-bit Manufacturer Identifier as 10 lowercase hex digits (most significant first). */
  readonly manufacturerIdentifier: string;
  /** 24-bit OUI as 6 lowercase hex digits (most significant first). */
  readonly organizationallyUniqueIdentifier: string;
}

export function decodeSystemId(bytes: Uint8Array): SystemIdValue {
  const r = new ByteReader(bytes, 'System ID');
  const manufacturer = r.take(5, 'Manufacturer Identifier');
  const oui = r.take(3, 'Organizationally Unique Identifier');
  r.end();
  return {
    manufacturerIdentifier: hexMsbFirst(manufacturer),
    organizationallyUniqueIdentifier: hexMsbFirst(oui),
  };
}

const HEX_DIGITS = '0123456789abcdef';

/** Hex of a little-endian field, most significant byte first (how the number is written). */
function hexMsbFirst(bytes: Uint8Array): string {
  let text = '';
  for (let i = bytes.length - 1; i >= 0; i--) {
    const b = bytes[i] as number;
    text += (HEX_DIGITS[b >> 4] as string) + (HEX_DIGITS[b & 0x0f] as string);
  }
  return text;
}

// ---------------------------------------------------------------------------------------------------------------
// IEEE 11073-20601 Regulatory Certification Data List (DIS 1.1, 3.8): an opaque 20601 structure (continua
// certification data), kept as hex; nothing in the gateway interprets it.

export function decodeRegulatoryCertificationDataList(bytes: Uint8Array): { readonly hex: string } {
  return { hex: toHex(bytes) };
}

// ---------------------------------------------------------------------------------------------------------------
// PnP ID (DIS 1.1, 3.9)

export type VendorIdSource = 'bluetooth-sig' | 'usb-if' | 'reserved';

export interface PnpIdValue {
  /** Raw Vendor ID Source: 1 = Bluetooth SIG company identifier, 2 = USB Implementer's Forum; others reserved. */
  readonly vendorIdSource: number;
  readonly vendorIdSourceName: VendorIdSource;
  readonly vendorId: number;
  readonly productId: number;
  /** 0xJJMN: major JJ, minor M, sub-minor N. */
  readonly productVersion: number;
}

export function decodePnpId(bytes: Uint8Array): PnpIdValue {
  const r = new ByteReader(bytes, 'PnP ID');
  const vendorIdSource = r.u8('Vendor ID Source');
  const vendorId = r.u16('Vendor ID');
  const productId = r.u16('Product ID');
  const productVersion = r.u16('Product Version');
  r.end();
  const vendorIdSourceName =
    vendorIdSource === 1 ? 'bluetooth-sig' : vendorIdSource === 2 ? 'usb-if' : 'reserved';
  return { vendorIdSource, vendorIdSourceName, vendorId, productId, productVersion };
}

/** "major.minor.subminor" of a PnP ID product version (0xJJMN). */
export function pnpProductVersionText(version: number): string {
  return `${version >> 8}.${(version >> 4) & 0x0f}.${version & 0x0f}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Current Time (CTS 1.1, 3.1): Exact Time 256 (Day Date Time = Date Time + Day of Week; Fractions256) + Adjust Reason.

/** Day of Week (GATT Specification Supplement, Day of Week): 0 = unknown, 1 = Monday ... 7 = Sunday, 8-255 reserved. */
export type DayOfWeek =
  | 'unknown'
  | 'monday'
  | 'tuesday'
  | 'wednesday'
  | 'thursday'
  | 'friday'
  | 'saturday'
  | 'sunday'
  | 'reserved';

const DAYS: readonly DayOfWeek[] = [
  'unknown',
  'monday',
  'tuesday',
  'wednesday',
  'thursday',
  'friday',
  'saturday',
  'sunday',
];

export function dayOfWeekName(raw: number): DayOfWeek {
  return DAYS[raw] ?? 'reserved';
}

/** Adjust Reason bits (CTS 1.1, 3.1, Adjust Reason field); bits 4-7 reserved. Names in bit order, for bitNames(). */
export const ADJUST_REASON_NAMES = [
  'manual-time-update',
  'external-reference-time-update',
  'change-of-time-zone',
  'change-of-dst',
] as const;

export type AdjustReasonName = (typeof ADJUST_REASON_NAMES)[number];

export interface CurrentTimeValue {
  /** The device's wall clock (no time zone); iso null when the device says the date is unknown (0). */
  readonly dateTime: DeviceDateTime;
  /** Raw Day of Week (see dayOfWeekName). */
  readonly dayOfWeek: number;
  /** 1/256 s fractions of the second. */
  readonly fractions256: number;
  /** Raw Adjust Reason bit field, reserved bits included. */
  readonly adjustReason: number;
}

export function decodeCurrentTime(bytes: Uint8Array): CurrentTimeValue {
  const r = new ByteReader(bytes, 'Current Time');
  const dateTime = r.dateTime('Date Time');
  const dayOfWeek = r.u8('Day of Week');
  const fractions256 = r.u8('Fractions256');
  const adjustReason = r.u8('Adjust Reason');
  r.end();
  return { dateTime, dayOfWeek, fractions256, adjustReason };
}

export interface CurrentTimeFields {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hours: number;
  readonly minutes: number;
  readonly seconds: number;
  /** 1 = Monday ... 7 = Sunday, 0 = unknown; computed from the date when omitted. */
  readonly dayOfWeek?: number;
  /** 1/256 s; 0 when omitted. */
  readonly fractions256?: number;
}

/**
 * Encodes the 10-byte Current Time value a session writes to set the device clock (CTS 1.1, 3.1: the client
 * writes Exact Time 256 + Adjust Reason). `adjustReason` is the raw bit field or the list of reason names; a
 * gateway setting the clock from its NTP-disciplined clock normally says 'external-reference-time-update'.
 */
export function encodeCurrentTime(
  time: CurrentTimeFields,
  adjustReason: number | readonly AdjustReasonName[] = 0,
): Uint8Array {
  const out = new Uint8Array(10);
  out.set(encodeDateTime(time), 0);
  out[7] = time.dayOfWeek ?? isoDayOfWeek(time.year, time.month, time.day);
  out[8] = time.fractions256 ?? 0;
  out[9] = typeof adjustReason === 'number' ? adjustReason & 0xff : adjustReasonBits(adjustReason);
  return out;
}

function adjustReasonBits(names: readonly AdjustReasonName[]): number {
  let bits = 0;
  for (const name of names) {
    const bit = ADJUST_REASON_NAMES.indexOf(name);
    if (bit < 0) throw new RangeError(`unknown adjust reason ${String(name)}`);
    bits |= 1 << bit;
  }
  return bits;
}

/** 1 = Monday ... 7 = Sunday for a proleptic Gregorian date; 0 (unknown) when the date is not known. */
function isoDayOfWeek(year: number, month: number, day: number): number {
  if (year === 0 || month === 0 || day === 0) return 0;
  const sundayZero = new Date(Date.UTC(year, month - 1, day)).getUTCDay();
  return sundayZero === 0 ? 7 : sundayZero;
}

// ---------------------------------------------------------------------------------------------------------------
// Local Time Information (CTS 1.1, 3.2): Time Zone (sint8, 15-minute steps, -48..+56, -128 = unknown) and DST
// Offset (uint8: 0 standard, 2 +0.5 h, 4 +1 h, 8 +2 h, 255 unknown).

export interface LocalTimeInformationValue {
  readonly timeZone: number;
  readonly dstOffset: number;
  /** Offset of standard time from UTC in minutes; null when unknown (-128) or reserved. */
  readonly timeZoneMinutes: number | null;
  /** Daylight-saving offset in minutes; null when unknown (255) or reserved. */
  readonly dstOffsetMinutes: number | null;
}

export function decodeLocalTimeInformation(bytes: Uint8Array): LocalTimeInformationValue {
  const r = new ByteReader(bytes, 'Local Time Information');
  const timeZone = r.s8('Time Zone');
  const dstOffset = r.u8('DST Offset');
  r.end();
  return {
    timeZone,
    dstOffset,
    timeZoneMinutes: timeZone >= -48 && timeZone <= 56 ? timeZone * 15 : null,
    dstOffsetMinutes:
      dstOffset === 0 || dstOffset === 2 || dstOffset === 4 || dstOffset === 8 ? dstOffset * 15 : null,
  };
}

/** Encodes Local Time Information for a clock-setting session (CTS 1.1 allows writing it). */
export function encodeLocalTimeInformation(
  timeZoneMinutes: number | null,
  dstOffsetMinutes: number | null,
): Uint8Array {
  const zone = timeZoneMinutes === null ? -128 : Math.round(timeZoneMinutes / 15);
  if (zone !== -128 && (zone < -48 || zone > 56))
    throw new RangeError('time zone out of range (-12 h .. +14 h)');
  const dst = dstOffsetMinutes === null ? 255 : dstOffsetMinutes / 15;
  if (dst !== 255 && dst !== 0 && dst !== 2 && dst !== 4 && dst !== 8)
    throw new RangeError('DST offset not 0/30/60/120');
  return Uint8Array.of(zone & 0xff, dst);
}
