import { describe, expect, it } from 'vitest';
import {
  decodeFloat,
  decodeSfloat,
  encodeFloat,
  encodeSfloat,
  FLOAT_SPECIAL,
  SFLOAT_SPECIAL,
} from '../../src/gatt/mder-float.js';

// Vectors: IEEE 11073-20601 Annex F.8 (layout, special values) worked by hand, plus the values used in the
// Bluetooth SIG Personal Health Devices Transcoding White Paper examples (e.g. 0xF16C / 0xFF00016C = 36.4).
describe('SFLOAT (IEEE 11073-20601 F.8, 16-bit)', () => {
  it.each(
    [
      [0x0000, 0],
      [0x0072, 114],
      [0x0078, 120],
      [0xf16c, 36.4], // exponent -1 (0xF sign-extended), mantissa 364
      [0xf0e5, 22.9],
      [0xff00, -25.6], // negative mantissa 0xF00 = -256
      [0x2001, 100], // positive exponent
      [0xe3e8, 10], // 1000 * 10^-2
      [0x87ff, 0.00002047], // smallest exponent, largest mantissa
      [0x07fd, 2045], // largest ordinary mantissa at exponent 0
      [0x0803, -2045],
      [0x17ff, 20470], // 0x7FF is NaN only with exponent 0
      [0x1800, -20480],
    ].map(([raw, value]) => [(raw as number).toString(16), raw as number, value as number] as const),
  )('0x%s -> %s', (_hex, raw, value) => {
    expect(decodeSfloat(raw)).toEqual({ value });
  });

  it.each(Object.entries(SFLOAT_SPECIAL))('special %s', (reason, raw) => {
    expect(decodeSfloat(raw)).toEqual({ value: null, invalid: reason });
  });

  it('round-trips every non-special raw value through encodeSfloat', () => {
    for (let raw = 0; raw <= 0xffff; raw++) {
      const decoded = decodeSfloat(raw);
      if (decoded.value === null) continue;
      const exponent = (raw << 16) >> 28;
      const mantissa = (raw << 20) >> 20;
      if (mantissa === 0 || Math.abs(mantissa) > 2045) continue; // zero has many encodings; the encoder keeps clear of special mantissas
      expect(decodeSfloat(encodeSfloat(decoded.value, exponent)).value).toBe(decoded.value);
    }
  });

  it('refuses to encode a mantissa that would collide with a special value', () => {
    expect(() => encodeSfloat(2046, 0)).toThrow(RangeError);
    expect(() => encodeSfloat(-2046, 0)).toThrow(RangeError);
    expect(() => encodeSfloat(1, 8)).toThrow(RangeError);
  });
});

describe('FLOAT (IEEE 11073-20601 F.8, 32-bit)', () => {
  it.each(
    [
      [0x00000000, 0],
      [0xff00016c, 36.4],
      [0xfe000e42, 36.5], // 3650 * 10^-2
      [0x00ffffff, -1], // mantissa sign-extended from 24 bits
      [0x02000001, 100],
      [0xf6000001, 1e-10],
      [0x0080000f, -8388593],
      [0x017fffff, 83886070], // NaN pattern only at exponent 0
    ].map(([raw, value]) => [(raw as number).toString(16), raw as number, value as number] as const),
  )('0x%s -> %s', (_hex, raw, value) => {
    expect(decodeFloat(raw | 0)).toEqual({ value });
  });

  it.each(Object.entries(FLOAT_SPECIAL))('special %s', (reason, raw) => {
    expect(decodeFloat(raw)).toEqual({ value: null, invalid: reason });
  });

  it('encodes what it decodes', () => {
    expect(encodeFloat(36.4, -1)).toBe(0xff00016c);
    expect(decodeFloat(encodeFloat(-40.25, -2)).value).toBe(-40.25);
  });
});
