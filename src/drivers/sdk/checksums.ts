/**
 * Checksums vendor protocols put at the end of their frames. Every function takes a byte range
 * (`start` inclusive, `end` exclusive, defaulting to the whole array), so a driver checks a frame's checksum over
 * a slice without copying it.
 *
 * CRCs follow the Rocksoft/Williams parameter model (Ross N. Williams, "A Painless Guide to CRC Error Detection
 * Algorithms", 1993, chapter 15): width, poly, init, refin, refout, xorout. The presets carry the names and the
 * "check" values (the CRC of the ASCII bytes "123456789") of Greg Cook's CRC RevEng catalogue,
 * https://reveng.sourceforge.io/crc-catalogue/ ; the tests compute each preset's check value.
 */

/** A checksum over a byte range, as a frame declaration names it. */
export interface Checksum {
  /** Catalogue name, e.g. "CRC-8/MAXIM-DOW"; used in error messages. */
  readonly name: string;
  /** How many bytes the checksum takes in a frame (1 for 8-bit sums, 2 for CRC-16, ...). */
  readonly bytes: number;
  compute(data: Uint8Array, start?: number, end?: number): number;
}

/** A CRC in the Rocksoft/Williams model. `poly`, `init` and `xorout` are written unreflected, as the catalogue does. */
export interface CrcModel {
  readonly name: string;
  /** 8 to 32 bits. */
  readonly width: number;
  readonly poly: number;
  readonly init: number;
  /** Each input byte is reflected (bit 0 first), as UARTs send them. */
  readonly refin: boolean;
  /** The register is reflected before the final XOR. */
  readonly refout: boolean;
  readonly xorout: number;
  /** The catalogue's CRC of ASCII "123456789", kept with the model so a preset documents itself. */
  readonly check?: number;
}

function reflect(value: number, width: number): number {
  let out = 0;
  for (let i = 0; i < width; i++) if ((value >>> i) & 1) out |= 1 << (width - 1 - i);
  return out >>> 0;
}

/** A range outside the data is a driver bug, not bad bytes from the radio: say so rather than sum undefined. */
function checkRange(data: Uint8Array, start: number, end: number): void {
  if (
    !(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= data.length)
  ) {
    throw new RangeError(`checksum range [${start}, ${end}) is outside the ${data.length} bytes given`);
  }
}

function maskOf(width: number): number {
  return width === 32 ? 0xffffffff : (1 << width) - 1;
}

/**
 * A table-driven CRC for any model of 8 to 32 bits: 256 table entries computed once, one table look-up per byte.
 * A reflected-input model runs the register reflected (Williams, chapter 11 "Reflected" table-driven
 * implementations), so its table and init are reflected too.
 */
export function crc(model: CrcModel): Checksum {
  const { width, refin, refout } = model;
  if (!Number.isInteger(width) || width < 8 || width > 32) {
    throw new RangeError(`${model.name}: CRC width must be 8 to 32 bits`);
  }
  const mask = maskOf(width);
  const poly = model.poly & mask;
  const table = new Uint32Array(256);
  if (refin) {
    const rpoly = reflect(poly, width);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ rpoly : c >>> 1;
      table[i] = c >>> 0;
    }
  } else {
    const top = 2 ** (width - 1);
    for (let i = 0; i < 256; i++) {
      let c = (i * 2 ** (width - 8)) >>> 0;
      for (let k = 0; k < 8; k++) c = (c & top ? ((c << 1) ^ poly) & mask : (c << 1) & mask) >>> 0;
      table[i] = c;
    }
  }
  const init = refin ? reflect(model.init & mask, width) : (model.init & mask) >>> 0;
  const shift = width - 8;
  // The register holds the CRC reflected when refin; refout says how the result is read out.
  const flip = refin !== refout;
  const xorout = (model.xorout & mask) >>> 0;
  const bytes = Math.ceil(width / 8);
  return {
    name: model.name,
    bytes,
    compute(data, start = 0, end = data.length) {
      checkRange(data, start, end);
      let r = init;
      if (refin) {
        for (let i = start; i < end; i++)
          r = ((r >>> 8) ^ (table[(r ^ (data[i] as number)) & 0xff] as number)) >>> 0;
      } else {
        for (let i = start; i < end; i++) {
          r = (((r << 8) & mask) ^ (table[((r >>> shift) ^ (data[i] as number)) & 0xff] as number)) >>> 0;
        }
      }
      if (flip) r = reflect(r, width);
      return (r ^ xorout) >>> 0;
    },
  };
}

/** CRC-8/MAXIM-DOW (Dallas/Maxim 1-Wire, "CRC-8/MAXIM"): x^8+x^5+x^4+1 reflected. Check 0xA1. */
export const CRC8_MAXIM_DOW: CrcModel = Object.freeze({
  name: 'CRC-8/MAXIM-DOW',
  width: 8,
  poly: 0x31,
  init: 0x00,
  refin: true,
  refout: true,
  xorout: 0x00,
  check: 0xa1,
});

/** CRC-8/SMBUS, the plain "CRC-8" (poly 0x07, System Management Bus PEC). Check 0xF4. */
export const CRC8_SMBUS: CrcModel = Object.freeze({
  name: 'CRC-8/SMBUS',
  width: 8,
  poly: 0x07,
  init: 0x00,
  refin: false,
  refout: false,
  xorout: 0x00,
  check: 0xf4,
});

/** CRC-16/IBM-3740, better known as CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF. Check 0x29B1. */
export const CRC16_IBM_3740: CrcModel = Object.freeze({
  name: 'CRC-16/IBM-3740',
  width: 16,
  poly: 0x1021,
  init: 0xffff,
  refin: false,
  refout: false,
  xorout: 0x0000,
  check: 0x29b1,
});

/** CRC-16/MODBUS (Modbus over Serial Line V1.02, 6.2.2): poly 0x8005 reflected, init 0xFFFF. Check 0x4B37. */
export const CRC16_MODBUS: CrcModel = Object.freeze({
  name: 'CRC-16/MODBUS',
  width: 16,
  poly: 0x8005,
  init: 0xffff,
  refin: true,
  refout: true,
  xorout: 0x0000,
  check: 0x4b37,
});

const CRC8_MAXIM_DOW_TABLE = crc(CRC8_MAXIM_DOW);
const CRC8_SMBUS_TABLE = crc(CRC8_SMBUS);
const CRC16_IBM_3740_TABLE = crc(CRC16_IBM_3740);
const CRC16_MODBUS_TABLE = crc(CRC16_MODBUS);

/** CRC-8/MAXIM-DOW of data[start, end). */
export function crc8Maxim(data: Uint8Array, start = 0, end = data.length): number {
  return CRC8_MAXIM_DOW_TABLE.compute(data, start, end);
}

/** CRC-8/SMBUS (poly 0x07) of data[start, end). */
export function crc8(data: Uint8Array, start = 0, end = data.length): number {
  return CRC8_SMBUS_TABLE.compute(data, start, end);
}

/** CRC-16/CCITT-FALSE (CRC-16/IBM-3740) of data[start, end). */
export function crc16CcittFalse(data: Uint8Array, start = 0, end = data.length): number {
  return CRC16_IBM_3740_TABLE.compute(data, start, end);
}

/** CRC-16/MODBUS of data[start, end). Modbus sends it low byte first. */
export function crc16Modbus(data: Uint8Array, start = 0, end = data.length): number {
  return CRC16_MODBUS_TABLE.compute(data, start, end);
}

/** XOR of the bytes data[start, end) (the "BCC" many serial protocols end with). */
export function xor8(data: Uint8Array, start = 0, end = data.length): number {
  checkRange(data, start, end);
  let x = 0;
  for (let i = start; i < end; i++) x ^= data[i] as number;
  return x;
}

/** Sum of the bytes data[start, end) masked to 7 bits: the checksum of 7-bit protocols (e.g. Contec's). */
export function sum7(data: Uint8Array, start = 0, end = data.length): number {
  checkRange(data, start, end);
  let s = 0;
  for (let i = start; i < end; i++) s += data[i] as number;
  return s & 0x7f;
}

/** The checksums a frame declaration can name by string; a driver may also pass any Checksum (e.g. crc(model)). */
export const CHECKSUMS = Object.freeze({
  'crc8-maxim': CRC8_MAXIM_DOW_TABLE,
  crc8: CRC8_SMBUS_TABLE,
  'crc16-ccitt-false': CRC16_IBM_3740_TABLE,
  'crc16-modbus': CRC16_MODBUS_TABLE,
  xor8: { name: 'XOR', bytes: 1, compute: xor8 } satisfies Checksum,
  sum7: { name: 'sum & 0x7F', bytes: 1, compute: sum7 } satisfies Checksum,
});

export type ChecksumName = keyof typeof CHECKSUMS;
