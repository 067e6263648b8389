import { describe, expect, it } from 'vitest';
import {
  weightMeasurementDecoder,
  weightScaleFeatureDecoder,
} from '../../src/drivers/sdk/sig/weight-scale.js';
import { parseHex, toHex } from '../../src/gatt/hex.js';
import {
  decodeWeightMeasurement,
  decodeWeightScaleFeature,
  encodeWeightMeasurement,
  encodeWeightScaleFeature,
  type WeightMeasurementInput,
} from '../../src/gatt/weight-scale.js';
import { decodeError } from '../support/errors.js';

const CTX = { characteristic: '2a9d' };

describe('Weight Measurement (0x2A9D)', () => {
  it('decodes the minimal SI layout', () => {
    expect(decodeWeightMeasurement(parseHex('00b036'))).toEqual({
      flags: 0,
      imperial: false,
      weight: { value: 70 },
      timeStamp: undefined,
      userId: undefined,
      bmi: undefined,
      height: undefined,
    });
  });

  it('decodes every field, SI', () => {
    expect(decodeWeightMeasurement(parseHex('0e1437e8070315080f0001e600d606'))).toEqual({
      flags: 0x0e,
      imperial: false,
      weight: { value: 70.5 },
      timeStamp: { iso: '2024-03-21T08:15:00', valid: true },
      userId: 1,
      bmi: 23,
      height: 1.75,
    });
  });

  it('decodes every field, imperial (bluetooth-sig-python vector; reserved bit 4 ignored)', () => {
    expect(decodeWeightMeasurement(parseHex('1f543de7070c190e1e2d03f500a802'))).toEqual({
      flags: 0x1f,
      imperial: true,
      weight: { value: 157 },
      timeStamp: { iso: '2023-12-25T14:30:45', valid: true },
      userId: 3,
      bmi: 24.5,
      height: 68,
    });
  });

  it('decodes each optional field alone', () => {
    expect(decodeWeightMeasurement(parseHex('02b036e7070c190e1e2d')).timeStamp).toEqual({
      iso: '2023-12-25T14:30:45',
      valid: true,
    });
    expect(decodeWeightMeasurement(parseHex('04b036ff')).userId).toBe(255);
    expect(decodeWeightMeasurement(parseHex('09b43cdf00b702'))).toMatchObject({
      imperial: true,
      weight: { value: 155.4 },
      bmi: 22.3,
      height: 69.5,
    });
  });

  it('keeps values free of binary noise at the field resolution', () => {
    // Every raw value 0..0xFFFE must equal the decimal value parsed from text (the nearest double).
    const noisy: number[] = [];
    for (let raw = 0; raw < 0xffff; raw++) {
      const lo = raw & 0xff;
      const hi = raw >> 8;
      const kg = decodeWeightMeasurement(Uint8Array.of(0x08, lo, hi, lo, hi, lo, hi));
      const lb = decodeWeightMeasurement(Uint8Array.of(0x09, lo, hi, lo, hi, lo, hi));
      if (
        kg.weight.value !== Number.parseFloat((raw * 0.005).toFixed(3)) ||
        kg.height !== Number.parseFloat((raw * 0.001).toFixed(3)) ||
        kg.bmi !== Number.parseFloat((raw * 0.1).toFixed(1)) ||
        lb.weight.value !== Number.parseFloat((raw * 0.01).toFixed(2)) ||
        lb.height !== Number.parseFloat((raw * 0.1).toFixed(1))
      ) {
        noisy.push(raw);
      }
    }
    expect(noisy).toEqual([]);
    expect(decodeWeightMeasurement(parseHex('001437')).weight.value).toBe(70.5);
  });

  it('maps 0xFFFF (Measurement Unsuccessful) to null with invalid nan', () => {
    expect(decodeWeightMeasurement(parseHex('00ffff')).weight).toEqual({ value: null, invalid: 'nan' });
    expect(decodeWeightMeasurement(parseHex('01ffff')).weight).toEqual({ value: null, invalid: 'nan' });
    expect(decodeWeightMeasurement(parseHex('00feff')).weight).toEqual({ value: 327.67 });
  });

  it('reports the clock-not-set time stamp as iso null, and out-of-range as invalid', () => {
    expect(decodeWeightMeasurement(parseHex('027b00000000000d0c0c')).timeStamp).toEqual({
      iso: null,
      valid: true,
    });
    expect(decodeWeightMeasurement(parseHex('02b036e8070d01000000')).timeStamp).toEqual({
      iso: null,
      valid: false,
    });
  });

  it('fails on truncation and trailing bytes with the offset', () => {
    const cases: [string, string, number][] = [
      ['00', 'DECODE_TRUNCATED', 1],
      ['0014', 'DECODE_TRUNCATED', 1],
      ['021437e80703', 'DECODE_TRUNCATED', 3],
      ['041437', 'DECODE_TRUNCATED', 3],
      ['081437e6', 'DECODE_TRUNCATED', 3],
      ['081437e600', 'DECODE_TRUNCATED', 5],
      ['0cb03605f500', 'DECODE_TRUNCATED', 6],
      ['00143700', 'DECODE_TRAILING_BYTES', 3],
      ['10b036d606', 'DECODE_TRAILING_BYTES', 3],
    ];
    for (const [hex, code, offset] of cases) {
      const error = decodeError(() => decodeWeightMeasurement(parseHex(hex)));
      expect([hex, error.code, error.offset]).toEqual([hex, code, offset]);
    }
    expect(decodeError(() => decodeWeightMeasurement(new Uint8Array(0))).code).toBe('DECODE_TRUNCATED');
  });

  it('encodes what it decodes', () => {
    const t = { year: 2024, month: 3, day: 21, hours: 8, minutes: 15, seconds: 0 };
    const vectors: [string, WeightMeasurementInput][] = [
      ['00b036', { imperial: false, weight: 70 }],
      ['01543d', { imperial: true, weight: 157 }],
      [
        '0e1437e8070315080f0001e600d606',
        { imperial: false, weight: 70.5, timeStamp: t, userId: 1, bmi: 23, height: 1.75 },
      ],
      ['09b43cdf00b702', { imperial: true, weight: 155.4, bmi: 22.3, height: 69.5 }],
      ['00ffff', { imperial: false, weight: null }],
    ];
    for (const [hex, input] of vectors) {
      expect(toHex(encodeWeightMeasurement(input))).toBe(hex);
      expect(decodeWeightMeasurement(parseHex(hex)).weight.value).toBe(input.weight);
    }
    expect(() => encodeWeightMeasurement({ imperial: false, weight: 70, bmi: 22 })).toThrow(RangeError);
    expect(() => encodeWeightMeasurement({ imperial: false, weight: 327.675 })).toThrow(RangeError);
  });
});

describe('Weight Scale Feature (0x2A9E)', () => {
  it('decodes the feature bits and resolution enums', () => {
    expect(decodeWeightScaleFeature(parseHex('8f000000'))).toEqual({
      raw: 0x8f,
      timeStampSupported: true,
      multipleUsersSupported: true,
      bmiSupported: true,
      weightResolution: 1,
      heightResolution: 1,
      weightResolutionKg: 0.5,
      weightResolutionLb: 1,
      heightResolutionM: 0.01,
      heightResolutionIn: 1,
    });
    expect(decodeWeightScaleFeature(parseHex('00000000'))).toMatchObject({
      timeStampSupported: false,
      weightResolutionKg: null,
      heightResolutionM: null,
    });
  });

  it('decodes every resolution enum value', () => {
    const kg = [null, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, null, null, null, null, null, null, null, null];
    const lb = [null, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, null, null, null, null, null, null, null, null];
    for (let code = 0; code < 16; code++) {
      const f = decodeWeightScaleFeature(encodeWeightScaleFeature({ weightResolution: code }));
      expect([code, f.weightResolution, f.weightResolutionKg, f.weightResolutionLb]).toEqual([
        code,
        code,
        kg[code],
        lb[code],
      ]);
    }
    const m = [null, 0.01, 0.005, 0.001, null, null, null, null];
    const inch = [null, 1, 0.5, 0.1, null, null, null, null];
    for (let code = 0; code < 8; code++) {
      const f = decodeWeightScaleFeature(encodeWeightScaleFeature({ heightResolution: code }));
      expect([f.heightResolution, f.heightResolutionM, f.heightResolutionIn]).toEqual([
        code,
        m[code],
        inch[code],
      ]);
    }
  });

  it('ignores reserved bits', () => {
    expect(decodeWeightScaleFeature(parseHex('000000fc'))).toMatchObject({
      timeStampSupported: false,
      multipleUsersSupported: false,
      bmiSupported: false,
      weightResolution: 0,
      heightResolution: 0,
    });
  });

  it('encodes what it decodes (Spezi values: 20 g, 10 mm, BMI + multiple users)', () => {
    const bytes = encodeWeightScaleFeature({
      multipleUsersSupported: true,
      bmiSupported: true,
      weightResolution: 5,
      heightResolution: 1,
    });
    expect(toHex(bytes)).toBe('ae000000');
  });

  it('must be exactly 4 bytes', () => {
    expect(decodeError(() => decodeWeightScaleFeature(parseHex('070000')))).toMatchObject({
      code: 'DECODE_TRUNCATED',
      offset: 0,
    });
    expect(decodeError(() => decodeWeightScaleFeature(parseHex('0700000000')))).toMatchObject({
      code: 'DECODE_TRAILING_BYTES',
      offset: 4,
    });
  });
});

describe('weight scale SDK decoders', () => {
  it('emits weight, BMI, height in payload order with units of the device system', () => {
    expect(weightMeasurementDecoder(parseHex('0e1437e8070315080f0001e600d606'), CTX)).toEqual([
      {
        observations: [
          { code: 'MDC_MASS_BODY_ACTUAL', value: 70.5, unit: 'kg' },
          { code: 'MDC_RATIO_MASS_BODY_LEN_SQ', value: 23, unit: 'kg/m2' },
          { code: 'MDC_LEN_BODY_ACTUAL', value: 1.75, unit: 'm' },
        ],
        time: '2024-03-21T08:15:00',
        kind: 'measurement',
        details: { unitSystem: 'si', userId: 1 },
      },
    ]);
    const [imperial] = weightMeasurementDecoder(parseHex('09b43cdf00b702'), CTX);
    expect(imperial?.observations.map((o) => o.unit)).toEqual(['[lb_av]', 'kg/m2', '[in_i]']);
  });

  it('reports an unsuccessful measurement and an invalid device time', () => {
    expect(weightMeasurementDecoder(parseHex('00ffff'), CTX)[0]).toEqual({
      observations: [{ code: 'MDC_MASS_BODY_ACTUAL', value: null, unit: 'kg', invalid: 'nan' }],
      time: null,
      kind: 'measurement',
      details: { unitSystem: 'si', measurementUnsuccessful: true },
    });
    expect(weightMeasurementDecoder(parseHex('02b036e8070d01000000'), CTX)[0]?.details).toEqual({
      unitSystem: 'si',
      deviceTimeInvalid: true,
    });
  });

  it('describes the features as an info reading', () => {
    expect(weightScaleFeatureDecoder(parseHex('2c010000'), { characteristic: '2a9e' })).toEqual([
      {
        observations: [],
        time: null,
        kind: 'info',
        details: {
          timeStampSupported: false,
          multipleUsersSupported: false,
          bmiSupported: true,
          weightResolutionKg: 0.02,
          weightResolutionLb: 0.05,
          heightResolutionM: 0.005,
          heightResolutionIn: 0.5,
        },
      },
    ]);
  });
});
