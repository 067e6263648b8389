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
  const qualifier = options?.qualifier;
  if (number.value === null) {
    const base = { code, value: null, unit, invalid: number.invalid ?? 'nan' } as const;
    return qualifier === undefined ? base : { ...base, qualifier };
  }
  const factor = options?.factor;
  const value = factor === undefined ? number.value : rescale(number.value, factor);
  return qualifier === undefined ? { code, value, unit } : { code, value, unit, qualifier };
}

/** Multiplies and rounds away float noise (0.000095 * 100000 is 9.499999999999998 in binary floating point). */
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

/** Names of the set bits of a bit field, in bit order; unnamed (reserved) bits are ignored, as receivers must. */
export function bitNames(value: number, names: readonly (string | undefined)[]): string[] {
  const set: string[] = [];
  for (let bit = 0; bit < names.length; bit++) {
    const name = names[bit];
    if (name !== undefined && (value & (2 ** bit)) !== 0) set.push(name);
  }
  return set;
}
