import type { MderNumber } from '../../gatt/mder-float.js';
import type { MdcCode } from '../../model/codes.js';
import type { Observation } from '../../model/observation.js';
import type { UcumUnit } from '../../model/units.js';

/**
 * Builds an Observation from a decoded SFLOAT/FLOAT: the special values become `value: null` with the reason
 * in `invalid`, as the decode contract asks. `factor` rescales (glucose kg/L -> mg/dL is 100,000) and keeps the
 * result free of binary noise by rounding to the precision the device sent.
 */
export function observe(
  code: MdcCode,
  number: MderNumber,
  unit: UcumUnit,
  options?: { qualifier?: string; factor?: number },
): Observation {
  // Object literals of one shape per branch (no spreads): this runs for every observation of every reading.
  const qualifier = options?.qualifier;
  const raw = number.value;
  if (raw === null) {
    const invalid = number.invalid ?? 'nan';
    return qualifier === undefined
      ? { code, value: null, unit, invalid }
      : { code, value: null, unit, invalid, qualifier };
  }
  const factor = options?.factor;
  const value = factor === undefined ? raw : rescale(raw, factor);
  return qualifier === undefined ? { code, value, unit } : { code, value, unit, qualifier };
}

/** Multiplies and rounds away float noise (11e-6 * 1e5 is 1.0999999999999999 in binary floating point). */
function rescale(value: number, factor: number): number {
  return Number.parseFloat((value * factor).toPrecision(12));
}

/** An observation of a plain integer field (e.g. an 8-bit heart rate): never invalid. */
export function observeInteger(
  code: MdcCode,
  value: number,
  unit: UcumUnit,
  qualifier?: string,
): Observation {
  return qualifier === undefined ? { code, value, unit } : { code, value, unit, qualifier };
}

/**
 * Names of the set bits of a bit field (up to 32 bits), in bit order; unnamed (reserved) bits are ignored, as
 * receivers must. Visits only the set bits: status fields are mostly zero, and this runs on every reading.
 */
export function bitNames(value: number, names: readonly (string | undefined)[]): string[] {
  const set: string[] = [];
  for (let bits = value >>> 0; bits !== 0; bits = (bits & (bits - 1)) >>> 0) {
    const name = names[31 - Math.clz32(bits & -bits)];
    if (name !== undefined) set.push(name);
  }
  return set;
}
