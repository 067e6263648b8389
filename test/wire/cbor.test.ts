import { Decoder as CborxDecoder, Encoder as CborxEncoder, decode as cborxDecode } from 'cbor-x';
import { describe, expect, it } from 'vitest';
import { type CborInput, CborTag, decodeCbor, encodeCbor } from '../../src/wire/cbor.js';
import { diagnose } from '../../src/wire/diag.js';
import { expectWireError, hex, prng, toHex } from './support.js';

// RFC 8949 appendix A: values whose JavaScript form encodes to exactly these bytes with preferred serialization.
const APPENDIX_A: [CborInput, string][] = [
  [0, '00'],
  [1, '01'],
  [10, '0a'],
  [23, '17'],
  [24, '1818'],
  [25, '1819'],
  [100, '1864'],
  [1000, '1903e8'],
  [1000000, '1a000f4240'],
  [1000000000000, '1b000000e8d4a51000'],
  [18446744073709551615n, '1bffffffffffffffff'],
  [-18446744073709551616n, '3bffffffffffffffff'],
  [-1, '20'],
  [-10, '29'],
  [-100, '3863'],
  [-1000, '3903e7'],
  [1.1, 'fb3ff199999999999a'],
  [1.5, 'f93e00'],
  [2 ** -24, 'f90001'],
  [0.00006103515625, 'f90400'],
  [-4.1, 'fbc010666666666666'],
  [3.4028234663852886e38, 'fa7f7fffff'],
  [1.0e300, 'fb7e37e43c8800759c'],
  [Number.POSITIVE_INFINITY, 'f97c00'],
  [Number.NaN, 'f97e00'],
  [Number.NEGATIVE_INFINITY, 'f9fc00'],
  [false, 'f4'],
  [true, 'f5'],
  [null, 'f6'],
  [new Uint8Array(0), '40'],
  [Uint8Array.of(1, 2, 3, 4), '4401020304'],
  ['', '60'],
  ['a', '6161'],
  ['IETF', '6449455446'],
  ['"\\', '62225c'],
  ['\u00fc', '62c3bc'],
  ['\u6c34', '63e6b0b4'],
  ['\ud800\udd51', '64f0908591'],
  [[], '80'],
  [[1, 2, 3], '83010203'],
  [[1, [2, 3], [4, 5]], '8301820203820405'],
  [{}, 'a0'],
  [
    new Map([
      [1, 2],
      [3, 4],
    ]),
    'a201020304',
  ],
  [{ a: 1, b: [2, 3] }, 'a26161016162820203'],
  [['a', { b: 'c' }], '826161a161626163'],
  [new CborTag(1, 1363896240), 'c11a514b67b0'],
];

describe('CBOR encoder (RFC 8949 preferred serialization)', () => {
  it.each(APPENDIX_A)('encodes appendix A value %s', (value, bytes) => {
    expect(toHex(encodeCbor(value))).toBe(bytes);
  });

  it('writes epoch-ms times as 64-bit integers, never as floats', () => {
    expect(toHex(encodeCbor(Date.UTC(2026, 10, 28, 12)))).toBe('1b000001a22206ca00');
    expect(toHex(encodeCbor(2 ** 32))).toBe('1b0000000100000000');
    expect(toHex(encodeCbor(2 ** 32 - 1))).toBe('1affffffff');
  });

  it('writes numbers beyond 2^53 as floats, so every number decodes to the same number', () => {
    for (const value of [2 ** 53, -(2 ** 53), 1e16, 2 ** 64, 1e300]) {
      const bytes = encodeCbor(value);
      expect((bytes[0] as number) >> 5).toBe(7); // major type 7: a float, not a (bigint-sized) integer
      expect(decodeCbor(bytes)).toBe(value);
    }
    expect(toHex(encodeCbor(2n ** 53n))).toBe('1b0020000000000000'); // exact integers come as bigint
  });

  it('refuses text with a lone surrogate instead of writing U+FFFD', () => {
    expectWireError(() => encodeCbor('a\uD800'), 'WIRE_INVALID_FIELD');
    expectWireError(() => encodeCbor({ ['k\uDC00']: 1 }), 'WIRE_INVALID_FIELD');
    expect(decodeCbor(encodeCbor('\u{1F600}'))).toBe('\u{1F600}'); // a pair is fine
  });

  it('chooses the shortest exact float and writes -0 as the integer 0', () => {
    expect(toHex(encodeCbor(98.5))).toBe('f95628');
    expect(toHex(encodeCbor(36.6))).toBe('fb40424ccccccccccd');
    expect(toHex(encodeCbor(0.1))).toBe('fb3fb999999999999a');
    expect(toHex(encodeCbor(100000.5))).toBe('fa47c35040');
    expect(toHex(encodeCbor(-0))).toBe('00');
  });

  it('leaves undefined object members out and refuses what CBOR cannot carry', () => {
    expect(toHex(encodeCbor({ a: 1, b: undefined }))).toBe('a1616101');
    expectWireError(() => encodeCbor((() => 1) as unknown as CborInput), 'WIRE_INVALID_FIELD');
    expectWireError(() => encodeCbor(2n ** 64n), 'WIRE_INVALID_FIELD');
  });
});

describe('CBOR decoder', () => {
  it.each(APPENDIX_A.filter(([value]) => typeof value !== 'number' || !Number.isNaN(value)))(
    'decodes appendix A bytes of %s',
    (value, bytes) => {
      const decoded = decodeCbor(hex(bytes));
      if (value instanceof Map || value instanceof CborTag || value instanceof Uint8Array) {
        expect(decoded).toEqual(value);
      } else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        expect(decoded).toEqual(new Map(Object.entries(value)));
      } else if (Array.isArray(value) && value.some((v) => typeof v === 'object' && !Array.isArray(v))) {
        expect(decoded).toEqual(['a', new Map([['b', 'c']])]);
      } else {
        expect(decoded).toEqual(value);
      }
    },
  );

  it('decodes every float width and non-preferred heads', () => {
    expect(decodeCbor(hex('f90000'))).toBe(0);
    expect(Object.is(decodeCbor(hex('f98000')), -0)).toBe(true);
    expect(decodeCbor(hex('f93c00'))).toBe(1);
    expect(decodeCbor(hex('f97bff'))).toBe(65504);
    expect(decodeCbor(hex('fa47c35000'))).toBe(100000);
    expect(Number.isNaN(decodeCbor(hex('f97e00')))).toBe(true);
    expect(decodeCbor(hex('1800'))).toBe(0);
    expect(decodeCbor(hex('1b0000000000000001'))).toBe(1);
  });

  it('keeps integers beyond the safe range exact, as bigint', () => {
    expect(decodeCbor(hex('1b0020000000000000'))).toBe(2n ** 53n);
    expect(decodeCbor(hex('1b001fffffffffffff'))).toBe(Number.MAX_SAFE_INTEGER);
    expect(decodeCbor(hex('3b001ffffffffffffe'))).toBe(-Number.MAX_SAFE_INTEGER);
    expect(decodeCbor(hex('3b001fffffffffffff'))).toBe(-(2n ** 53n));
  });

  it('keeps integer and text map keys apart', () => {
    const map = decodeCbor(hex('a2 01 6161 6161 6162')) as Map<unknown, unknown>;
    expect(map.get(1)).toBe('a');
    expect(map.get('a')).toBe('b');
    expect(map.get('1')).toBeUndefined();
  });

  it.each([
    ['empty input', ''],
    ['truncated integer', '19 01'],
    ['truncated text', '63 6161'],
    ['truncated array', '83 0102'],
    ['truncated map', 'a2 0102 03'],
    ['bytes after the item', '01 01'],
    ['duplicate map key', 'a2 6161 01 6161 02'],
    ['duplicate integer key', 'a2 01 01 01 02'],
    ['indefinite-length array', '9f 01 ff'],
    ['indefinite-length byte string', '5f 41 01 ff'],
    ['indefinite-length map', 'bf ff'],
    ['lone break', 'ff'],
    ['reserved additional information', '1c'],
    ['reserved additional information in a simple value', 'fc'],
    ['two-byte simple value below 32 (not well-formed)', 'f8 10'],
    ['unassigned simple value', 'f0'],
    ['invalid UTF-8', '62 c328'],
    ['UTF-8 surrogate', '63 eda080'],
    ['array as map key', 'a1 80 01'],
    ['byte string as map key', 'a1 41 00 01'],
    ['float map key equal to an integer (1.0 as float16)', 'a1 f93c00 26'],
    ['float map key equal to an integer (1.0 as float64)', 'a1 fb3ff0000000000000 26'],
    ['float map key', 'a1 f93e00 26'],
    ['integer map key beyond 2^53', 'a1 1b0020000000000000 26'],
    ['tagged map key', 'a1 c1 01 26'],
    ['simple value as map key', 'a1 f5 26'],
    ['count larger than the data', '9a ffffffff'],
    ['byte length larger than the data', '5b 0000000100000000'],
    ['length beyond 2^53', '7b ffffffffffffffff'],
    ['map count larger than the data', 'ba 00010000 01 02'],
    ['nesting deeper than 32', `${'81'.repeat(40)}00`],
    ['tag nesting deeper than 32', `${'c1'.repeat(40)}00`],
  ])('refuses %s as WIRE_MALFORMED', (_name, bytes) => {
    const error = expectWireError(() => decodeCbor(hex(bytes)), 'WIRE_MALFORMED');
    expect(error.offset).toBeTypeOf('number');
  });

  it('reports a float map key at the key, also beside an integer key it would have equalled', () => {
    expect(expectWireError(() => decodeCbor(hex('a1 f93c00 26')), 'WIRE_MALFORMED').offset).toBe(1);
    expect(expectWireError(() => decodeCbor(hex('a2 01 26 f93c00 26')), 'WIRE_MALFORMED').offset).toBe(3);
    expect(decodeCbor(hex('a1 01 26'))).toEqual(new Map([[1, -7]]));
  });

  it('reports the byte offset of the problem', () => {
    expect(expectWireError(() => decodeCbor(hex('a2 6161 01 6161 02')), 'WIRE_MALFORMED').offset).toBe(4);
    expect(expectWireError(() => decodeCbor(hex('83 01 02')), 'WIRE_MALFORMED').offset).toBe(3);
  });
});

describe('interoperability with a generic CBOR library (cbor-x)', () => {
  function randomValue(random: () => number, depth: number): CborInput {
    const pick = Math.floor(random() * (depth > 3 ? 6 : 9));
    switch (pick) {
      case 0:
        return Math.floor(random() * 2 ** (random() * 53)) * (random() < 0.3 ? -1 : 1);
      case 1:
        return Math.fround(random() * 1000) / 8;
      case 2:
        return random() * 1e6;
      case 3:
        return String.fromCodePoint(
          ...Array.from({ length: Math.floor(random() * 12) }, () => 32 + Math.floor(random() * 2000)),
        );
      case 4:
        return random() < 0.5;
      case 5:
        return null;
      case 6:
        return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
      case 7: {
        const object: Record<string, CborInput> = {};
        for (let i = Math.floor(random() * 4); i > 0; i--)
          object[`k${Math.floor(random() * 100)}`] = randomValue(random, depth + 1);
        return object;
      }
      default:
        return Uint8Array.from({ length: Math.floor(random() * 8) }, () => Math.floor(random() * 256));
    }
  }

  function plain(value: unknown): unknown {
    if (typeof value === 'bigint') return Number(value);
    if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), plain(v)]));
    if (value instanceof Uint8Array) return toHex(value);
    if (Array.isArray(value)) return value.map(plain);
    if (typeof value === 'object' && value !== null) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
    }
    return value;
  }

  it('cbor-x reads what we write, and we read what cbor-x writes (2,000 random values)', () => {
    const random = prng(8949);
    const cborx = new CborxEncoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
    const generic = new CborxDecoder({ useRecords: false, mapsAsObjects: false });
    for (let i = 0; i < 2000; i++) {
      const value = randomValue(random, 0);
      const ours = encodeCbor(value);
      expect(plain(generic.decode(ours))).toEqual(plain(value));
      expect(plain(decodeCbor(cborx.encode(value)))).toEqual(plain(value));
    }
  });

  it('cbor-x decodes a tagged structure we write, and the diagnostic notation shows floats as floats', () => {
    const bytes = encodeCbor(
      new CborTag(18, [Uint8Array.of(0xa1, 0x01, 0x26), new Map([[4, Uint8Array.of(1)]]), 98.5, 2]),
    );
    const decoded = cborxDecode(bytes) as { tag: number; value: unknown[] };
    expect(decoded.tag).toBe(18);
    expect(diagnose(bytes)).toBe("18([h'a10126', {4: h'01'}, 98.5, 2])");
    expect(diagnose(bytes, { embedded: (path) => path.length === 1 && path[0] === 0 })).toBe(
      "18([<< {1: -7} >>, {4: h'01'}, 98.5, 2])",
    );
    expect(diagnose(encodeCbor([1.0, 1.5, -0.5, Number.NaN]))).toBe('[1, 1.5, -0.5, NaN]');
    expect(diagnose(hex('f93c00'))).toBe('1.0');
  });
});
