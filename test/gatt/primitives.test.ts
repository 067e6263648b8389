import { describe, expect, it } from 'vitest';
import { ByteReader } from '../../src/gatt/byte-reader.js';
import { dateTimeFromFields, encodeDateTime } from '../../src/gatt/date-time.js';
import { parseHex, toHex } from '../../src/gatt/hex.js';
import { longUuid, normalizeUuid } from '../../src/gatt/uuid.js';
import { decodeError } from '../support/errors.js';

describe('ByteReader', () => {
  it('reads little-endian integers (Core Vol 3 Part G 3.3)', () => {
    const r = new ByteReader(parseHex('01 3412 563412 78563412 ff fffe'), 't');
    expect([r.u8('a'), r.u16('b'), r.u24('c'), r.u32('d'), r.s8('e'), r.s16('f')]).toEqual([
      1, 0x1234, 0x123456, 0x12345678, -1, -257,
    ]);
    r.end();
  });

  it('reports truncation with the field and the byte offset', () => {
    const error = decodeError(() => {
      const r = new ByteReader(parseHex('0102'), 'Widget');
      r.u8('flags');
      r.u16('value');
    });
    expect(error.code).toBe('DECODE_TRUNCATED');
    expect(error.offset).toBe(1);
    expect(error.message).toContain('Widget: value needs 2 byte(s), 1 left');
  });

  it('reports trailing bytes at the first extra byte', () => {
    const error = decodeError(() => {
      const r = new ByteReader(parseHex('010203'), 'Widget');
      r.u16('value');
      r.end();
    });
    expect(error).toMatchObject({ code: 'DECODE_TRAILING_BYTES', offset: 2 });
  });

  it('reads a 48-bit value beyond 32-bit integer range', () => {
    expect(new ByteReader(parseHex('ffffffffffff'), 't').u48('x')).toBe(2 ** 48 - 1);
  });
});

describe('Date Time (GATT 0x2A08)', () => {
  it('formats ISO-8601 local time without offset', () => {
    const r = new ByteReader(
      encodeDateTime({ year: 2026, month: 2, day: 9, hours: 7, minutes: 5, seconds: 3 }),
      't',
    );
    expect(r.dateTime('ts')).toEqual({ iso: '2026-02-09T07:05:03', valid: true });
  });

  it('treats year, month or day 0 as "clock not set"', () => {
    expect(dateTimeFromFields(0, 1, 1, 0, 0, 0)).toEqual({ iso: null, valid: true });
    expect(dateTimeFromFields(2026, 0, 1, 0, 0, 0)).toEqual({ iso: null, valid: true });
    expect(dateTimeFromFields(2026, 1, 0, 0, 0, 0)).toEqual({ iso: null, valid: true });
  });

  it('flags out-of-range fields instead of inventing a date', () => {
    expect(dateTimeFromFields(2026, 13, 1, 0, 0, 0)).toEqual({ iso: null, valid: false });
    expect(dateTimeFromFields(2026, 2, 29, 0, 0, 0)).toEqual({ iso: null, valid: false });
    expect(dateTimeFromFields(2024, 2, 29, 0, 0, 0).iso).toBe('2024-02-29T00:00:00');
    expect(dateTimeFromFields(1900, 2, 29, 0, 0, 0).valid).toBe(false);
    expect(dateTimeFromFields(2000, 2, 29, 0, 0, 0).valid).toBe(true);
    expect(dateTimeFromFields(2026, 1, 1, 24, 0, 0).valid).toBe(false);
    expect(dateTimeFromFields(1581, 1, 1, 0, 0, 0).valid).toBe(false);
  });
});

describe('UUIDs', () => {
  it.each([
    ['2a35', '2a35'],
    ['0x2A35', '2a35'],
    ['00002A35', '2a35'],
    ['00002a35-0000-1000-8000-00805F9B34FB', '2a35'],
    ['00002a3500001000800000805f9b34fb', '2a35'],
    ['CDEACB80-5235-4C07-8846-93A37EE6B86D', 'cdeacb80-5235-4c07-8846-93a37ee6b86d'],
  ])('%s -> %s', (input, canonical) => {
    expect(normalizeUuid(input)).toBe(canonical);
  });

  it.each(['', '2a3', 'zz35', '2a35-', '0x'])('rejects %j with DECODE_BAD_UUID', (input) => {
    expect(decodeError(() => normalizeUuid(input)).code).toBe('DECODE_BAD_UUID');
  });

  it('expands SIG UUIDs to 128 bits', () => {
    expect(longUuid('2A35')).toBe('00002a35-0000-1000-8000-00805f9b34fb');
  });
});

describe('hex', () => {
  it('accepts spaces, colons and a 0x prefix', () => {
    expect(toHex(parseHex('0x0A 0b:0C'))).toBe('0a0b0c');
  });

  it.each([
    ['', 'DECODE_EMPTY_INPUT'],
    ['   ', 'DECODE_EMPTY_INPUT'],
    ['abc', 'DECODE_BAD_HEX'],
    ['0g', 'DECODE_BAD_HEX'],
    ['12 3', 'DECODE_BAD_HEX'],
  ])('%j -> %s', (input, code) => {
    expect(decodeError(() => parseHex(input)).code).toBe(code);
  });
});

describe('bitNames', () => {
  it('names set bits in bit order and ignores unnamed ones', async () => {
    const { bitNames } = await import('../../src/drivers/sdk/observe.js');
    expect(bitNames(0b1011, ['a', 'b', undefined, 'd'])).toEqual(['a', 'b', 'd']);
    expect(bitNames(0x8000_0001, ['low', ...Array(30).fill(undefined), 'high'])).toEqual(['low', 'high']);
    expect(bitNames(0, ['a'])).toEqual([]);
    expect(bitNames(0b100, ['a'])).toEqual([]); // reserved bit beyond the table
  });
});
