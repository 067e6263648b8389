/**
 * The special values of the IEEE 11073-20601 SFLOAT and FLOAT types (NaN, NRes "not at this resolution",
 * +INFINITY, -INFINITY, and the reserved value). The same strings as src/model's InvalidReason, which an
 * observation carries; kept here so the codecs depend on nothing above them (src/drivers/sdk maps one to the
 * other; the compiler checks each special value is a reason there).
 */
export type MderSpecial = 'nan' | 'nres' | '+inf' | '-inf' | 'reserved';

/** A number to encode, or the special value to send instead. */
export type MderInput = number | MderSpecial;

/**
 * IEEE 11073-20601 "medical device encoding rules" numbers, as the Bluetooth SIG health profiles carry them
 * (GATT Specification Supplement, section 2.2 "medfloat16"/"medfloat32"; 11073-20601 Annex F.8).
 *
 * SFLOAT: 16 bits = 4-bit exponent, 12-bit mantissa, both two's complement; value = mantissa * 10^exponent.
 * FLOAT:  32 bits = 8-bit exponent, 24-bit mantissa, both two's complement.
 * Special values are whole bit patterns (exponent 0): NaN, NRes, +INF, -INF and one reserved pattern. Several
 * public decoders get this wrong by treating the exponent as unsigned; it must be sign-extended.
 */
export interface MderNumber {
  readonly value: number | null;
  readonly invalid?: MderSpecial;
}

const NAN: MderNumber = Object.freeze({ value: null, invalid: 'nan' });
const NRES: MderNumber = Object.freeze({ value: null, invalid: 'nres' });
const POS_INF: MderNumber = Object.freeze({ value: null, invalid: '+inf' });
const NEG_INF: MderNumber = Object.freeze({ value: null, invalid: '-inf' });
const RESERVED: MderNumber = Object.freeze({ value: null, invalid: 'reserved' });

/** 10^n for n in -128..127, indexed by n + 128; division by 10^-n keeps 36.5 exactly 36.5 (not 36.500000001). */
const POWERS = Array.from({ length: 256 }, (_, i) => 10 ** Math.abs(i - 128));

function scale(mantissa: number, exponent: number): number {
  if (mantissa === 0) return 0;
  const power = POWERS[exponent + 128] as number;
  return exponent < 0 ? mantissa / power : mantissa * power;
}

/** Decodes a raw 16-bit SFLOAT (as read little-endian from the payload). */
export function decodeSfloat(raw: number): MderNumber {
  switch (raw) {
    case 0x07ff:
      return NAN;
    case 0x0800:
      return NRES;
    case 0x07fe:
      return POS_INF;
    case 0x0802:
      return NEG_INF;
    case 0x0801:
      return RESERVED;
  }
  const exponent = (raw << 16) >> 28; // sign-extend bits 15..12
  const mantissa = (raw << 20) >> 20; // sign-extend bits 11..0
  return { value: scale(mantissa, exponent) };
}

/** Decodes a raw 32-bit FLOAT (as read little-endian from the payload). */
export function decodeFloat(raw: number): MderNumber {
  switch (raw >>> 0) {
    case 0x007fffff:
      return NAN;
    case 0x00800000:
      return NRES;
    case 0x007ffffe:
      return POS_INF;
    case 0x00800002:
      return NEG_INF;
    case 0x00800001:
      return RESERVED;
  }
  const exponent = raw >> 24; // arithmetic shift sign-extends bits 31..24
  const mantissa = (raw << 8) >> 8; // sign-extend bits 23..0
  return { value: scale(mantissa, exponent) };
}

/**
 * Encodes a number as SFLOAT with the given exponent (used by the simulator and by fixtures). Throws a
 * RangeError when the mantissa does not fit in 12 bits or would collide with a special value.
 */
export function encodeSfloat(value: number, exponent: number): number {
  if (!Number.isInteger(exponent) || exponent < -8 || exponent > 7)
    throw new RangeError('exponent out of range');
  const mantissa = Math.round(exponent < 0 ? value * 10 ** -exponent : value / 10 ** exponent);
  if (mantissa < -2045 || mantissa > 2045) throw new RangeError('mantissa out of range');
  return ((exponent & 0x0f) << 12) | (mantissa & 0x0fff);
}

/** Encodes a number as FLOAT with the given exponent; see encodeSfloat. */
export function encodeFloat(value: number, exponent: number): number {
  if (!Number.isInteger(exponent) || exponent < -128 || exponent > 127) {
    throw new RangeError('exponent out of range');
  }
  const mantissa = Math.round(exponent < 0 ? value * 10 ** -exponent : value / 10 ** exponent);
  if (mantissa < -8388605 || mantissa > 8388605) throw new RangeError('mantissa out of range');
  return (((exponent & 0xff) << 24) | (mantissa & 0xffffff)) >>> 0;
}

/** Raw special values, for encoders and tests. */
export const SFLOAT_SPECIAL = {
  nan: 0x07ff,
  nres: 0x0800,
  '+inf': 0x07fe,
  '-inf': 0x0802,
  reserved: 0x0801,
} as const;
export const FLOAT_SPECIAL = {
  nan: 0x007fffff,
  nres: 0x00800000,
  '+inf': 0x007ffffe,
  '-inf': 0x00800002,
  reserved: 0x00800001,
} as const;

/**
 * Raw SFLOAT bits for a number or a special value, with the largest exponent in 0..-3 that holds the number
 * exactly (120 -> exponent 0, 18.9 -> -1, 1.25 -> -2): what encoders and the simulator send.
 */
export function sfloatBits(input: MderInput): number {
  if (typeof input === 'string') return SFLOAT_SPECIAL[input];
  return encodeSfloat(input, exactExponent(input, 3, 2045));
}

/** Raw FLOAT bits, likewise with an exponent in 0..-6. */
export function floatBits(input: MderInput): number {
  if (typeof input === 'string') return FLOAT_SPECIAL[input];
  return (encodeFloat(input, exactExponent(input, 6, 8388605)) | 0) >>> 0;
}

function exactExponent(value: number, maxDecimals: number, maxMantissa: number): number {
  for (let exponent = 0; exponent >= -maxDecimals; exponent--) {
    const scaled = value * 10 ** -exponent;
    if (Math.abs(scaled - Math.round(scaled)) < 1e-9 && Math.abs(scaled) <= maxMantissa) return exponent;
  }
  return -maxDecimals;
}
