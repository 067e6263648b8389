import type { MdcCode } from './codes.js';
import type { UcumUnit } from './units.js';

/**
 * Why an IEEE 11073-20601 SFLOAT/FLOAT carries no number (20601 section F.8 / Annex A.3):
 * NaN (not a number: the device has no value), NRes (not at this resolution), +INF, -INF, or a reserved
 * special value.
 */
export type InvalidReason = 'nan' | 'nres' | '+inf' | '-inf' | 'reserved';

/** One coded value. `value` is null exactly when `invalid` says why. */
export interface Observation {
  readonly code: MdcCode;
  readonly value: number | null;
  readonly unit: UcumUnit;
  readonly invalid?: InvalidReason;
  /**
   * Tells apart two observations with the same code in one reading, e.g. the PLX Continuous "fast" and "slow"
   * averaged SpO2 (GATT PLXS 3.2.1.2) or the successive RR-intervals of a heart-rate notification.
   */
  readonly qualifier?: string;
}

/** JSON-safe values a decoder may put in `Reading.details`. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | readonly JsonValue[]
  | { readonly [k: string]: JsonValue };

/**
 * What a driver decoder returns for one notification, indication or read: pure data decoded from the bytes,
 * before the gateway stamps it (ids, receipt time, device) into a Measurement.
 */
export interface Reading {
  /** Coded clinical values. Empty for characteristics that describe the device (features, battery info...). */
  readonly observations: readonly Observation[];
  /**
   * The device's own timestamp as ISO-8601 local time without offset (GATT Date Time has none), or null when
   * the payload has none or the device says its clock is not set.
   */
  readonly time: string | null;
  /** Named status flags the device set (e.g. 'irregular-pulse', 'cuff-fit-loose'), sorted by bit position. */
  readonly status?: readonly string[];
  /**
   * 'measurement' is a stored or final value, 'intermediate' a live in-progress one (cuff pressure while
   * inflating, a thermometer settling), 'info' anything that describes the device or the link.
   */
  readonly kind?: 'measurement' | 'intermediate' | 'info';
  /** Everything else the characteristic carries (user id, sequence number, sensor location, features...). */
  readonly details?: { readonly [k: string]: JsonValue };
}
