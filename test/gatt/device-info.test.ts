import { describe, expect, it } from 'vitest';
import {
  batteryLevelDecoder,
  currentTimeDecoder,
  deviceInformationCharacteristics,
  pnpIdDecoder,
  serialNumberDecoder,
} from '../../src/drivers/sdk/sig/device-info.js';
import {
  decodeBatteryLevel,
  decodeCurrentTime,
  decodeLocalTimeInformation,
  decodePnpId,
  decodeRegulatoryCertificationDataList,
  decodeSystemId,
  decodeUtf8String,
  encodeCurrentTime,
  encodeLocalTimeInformation,
  pnpProductVersionText,
} from '../../src/gatt/device-info.js';
import { parseHex, toHex } from '../../src/gatt/hex.js';
import { normalizeUuid } from '../../src/gatt/uuid.js';
import { decodeError } from '../support/errors.js';

const utf8 = (text: string) => new TextEncoder().encode(text);

describe('Battery Level (0x2A19)', () => {
  it('decodes 0..100 % and maps reserved 101..255 to null', () => {
    expect(decodeBatteryLevel(parseHex('64'))).toEqual({ raw: 100, percent: 100 });
    expect(decodeBatteryLevel(parseHex('00'))).toEqual({ raw: 0, percent: 0 });
    expect(decodeBatteryLevel(parseHex('65'))).toEqual({ raw: 101, percent: null });
    expect(decodeBatteryLevel(parseHex('ff'))).toEqual({ raw: 255, percent: null });
  });

  it('is an info reading with MDC_ATTR_VAL_BATT_CHARGE', () => {
    expect(batteryLevelDecoder(parseHex('0f'), { characteristic: '2a19' })).toEqual([
      {
        observations: [{ code: 'MDC_ATTR_VAL_BATT_CHARGE', value: 15, unit: '%' }],
        time: null,
        kind: 'info',
      },
    ]);
    expect(batteryLevelDecoder(parseHex('c8'), { characteristic: '2a19' })[0]?.observations).toEqual([
      { code: 'MDC_ATTR_VAL_BATT_CHARGE', value: null, unit: '%', invalid: 'reserved' },
    ]);
  });

  it('must be exactly one byte', () => {
    expect(decodeError(() => decodeBatteryLevel(parseHex('6400')))).toMatchObject({
      code: 'DECODE_TRAILING_BYTES',
      offset: 1,
    });
    expect(decodeError(() => decodeBatteryLevel(new Uint8Array(0)))).toMatchObject({
      code: 'DECODE_TRUNCATED',
      offset: 0,
    });
  });
});

describe('DIS strings', () => {
  it('decodes UTF-8 and ends the text at the first NUL', () => {
    expect(decodeUtf8String(utf8('Apple Inc.'), 'x')).toBe('Apple Inc.');
    expect(decodeUtf8String(utf8('Müller'), 'x')).toBe('Müller');
    expect(decodeUtf8String(parseHex('41264400000000'), 'x')).toBe('A&D');
    expect(decodeUtf8String(utf8('Test\0Extra'), 'x')).toBe('Test');
    expect(decodeUtf8String(new Uint8Array(0), 'x')).toBe('');
  });

  it('refuses bytes that are not UTF-8', () => {
    const error = decodeError(() => decodeUtf8String(parseHex('fffefd'), 'Manufacturer Name String'));
    expect(error.code).toBe('DECODE_INVALID_FIELD');
    expect(error.message).toContain('Manufacturer Name String');
  });

  it('puts the serial number in details under its own key', () => {
    expect(serialNumberDecoder(utf8('TEST-1'), { characteristic: '2a25' })).toEqual([
      { observations: [], time: null, kind: 'info', details: { serialNumber: 'TEST-1' } },
    ]);
  });
});

describe('System ID (0x2A23)', () => {
  it('splits the 40-bit manufacturer identifier and the 24-bit OUI, most significant digit first', () => {
    expect(decodeSystemId(parseHex('0102030405060708'))).toEqual({
      manufacturerIdentifier: '0504030201',
      organizationallyUniqueIdentifier: '080706',
    });
    // DIS 1.1 example: OUI 0x123456, company-assigned 0x9ABCDE -> System ID 0x123456FFFE9ABCDE.
    expect(decodeSystemId(parseHex('debc9afeff563412'))).toEqual({
      manufacturerIdentifier: 'fffe9abcde',
      organizationallyUniqueIdentifier: '123456',
    });
  });

  it('must be exactly 8 bytes', () => {
    expect(decodeError(() => decodeSystemId(parseHex('01020304050607')))).toMatchObject({
      code: 'DECODE_TRUNCATED',
      offset: 5,
    });
    expect(decodeError(() => decodeSystemId(parseHex('0102')))).toMatchObject({
      code: 'DECODE_TRUNCATED',
      offset: 0,
    });
    expect(decodeError(() => decodeSystemId(parseHex('010203040506070809')))).toMatchObject({
      code: 'DECODE_TRAILING_BYTES',
      offset: 8,
    });
  });
});

describe('IEEE 11073-20601 Regulatory Certification Data List (0x2A2A)', () => {
  it('keeps the opaque structure as hex', () => {
    expect(decodeRegulatoryCertificationDataList(parseHex('00ff00ff00'))).toEqual({ hex: '00ff00ff00' });
  });
});

describe('PnP ID (0x2A50)', () => {
  it('decodes the vendor id source, ids and version', () => {
    expect(decodePnpId(parseHex('010a000b000100'))).toEqual({
      vendorIdSource: 1,
      vendorIdSourceName: 'bluetooth-sig',
      vendorId: 10,
      productId: 11,
      productVersion: 1,
    });
    expect(decodePnpId(parseHex('02ac0520020100'))).toMatchObject({
      vendorIdSourceName: 'usb-if',
      vendorId: 0x05ac,
      productId: 0x0220,
    });
    expect(decodePnpId(parseHex('17180001003800')).vendorIdSourceName).toBe('reserved');
    expect(pnpProductVersionText(0x0213)).toBe('2.1.3');
    expect(pnpIdDecoder(parseHex('01180001003800'), { characteristic: '2a50' })[0]?.details).toEqual({
      vendorIdSource: 'bluetooth-sig',
      vendorIdSourceCode: 1,
      vendorId: 24,
      productId: 1,
      productVersion: 56,
      productVersionText: '0.3.8',
    });
  });

  it('must be exactly 7 bytes', () => {
    expect(decodeError(() => decodePnpId(parseHex('010a000b0001')))).toMatchObject({
      code: 'DECODE_TRUNCATED',
      offset: 5,
    });
    expect(decodeError(() => decodePnpId(parseHex('010a000b00010000')))).toMatchObject({
      code: 'DECODE_TRAILING_BYTES',
      offset: 7,
    });
  });
});

describe('Current Time (0x2A2B)', () => {
  it('decodes Exact Time 256 and the adjust reason', () => {
    expect(decodeCurrentTime(parseHex('e907010f0e1e2d032101'))).toEqual({
      dateTime: { iso: '2025-01-15T14:30:45', valid: true },
      dayOfWeek: 3,
      fractions256: 33,
      adjustReason: 1,
    });
  });

  it('maps the reading: device clock as time, names in details, reserved bits ignored', () => {
    expect(currentTimeDecoder(parseHex('e9070c1f173b3b07fff6'), { characteristic: '2a2b' })).toEqual([
      {
        observations: [],
        time: '2025-12-31T23:59:59',
        kind: 'info',
        details: {
          dayOfWeek: 'sunday',
          fractions256: 255,
          adjustReason: ['external-reference-time-update', 'change-of-time-zone'],
        },
      },
    ]);
    const unknown = currentTimeDecoder(parseHex('000000000c1e00010000'), { characteristic: '2a2b' })[0];
    expect(unknown?.time).toBeNull();
    expect(unknown?.details?.['deviceTimeInvalid']).toBeUndefined();
    const invalid = currentTimeDecoder(parseHex('e9070d01000000080000'), { characteristic: '2a2b' })[0];
    expect(invalid?.time).toBeNull();
    expect(invalid?.details).toMatchObject({ deviceTimeInvalid: true, dayOfWeek: 'reserved' });
  });

  it('fails on a wrong length', () => {
    expect(decodeError(() => decodeCurrentTime(parseHex('e90701010000000100')))).toMatchObject({
      code: 'DECODE_TRUNCATED',
      offset: 9,
    });
    expect(decodeError(() => decodeCurrentTime(parseHex('e907010100000001000000')))).toMatchObject({
      code: 'DECODE_TRAILING_BYTES',
      offset: 10,
    });
  });

  it('encodes the clock write, computing the day of week', () => {
    const time = { year: 2024, month: 6, day: 6, hours: 12, minutes: 4, seconds: 44, fractions256: 128 };
    expect(toHex(encodeCurrentTime(time))).toBe('e80706060c042c048000');
    expect(toHex(encodeCurrentTime(time, ['external-reference-time-update']))).toBe('e80706060c042c048002');
    expect(toHex(encodeCurrentTime({ ...time, dayOfWeek: 0 }, 0x05))).toBe('e80706060c042c008005');
    // 2000-01-02 was a Sunday (7); an unknown date has an unknown day of week (0).
    expect(encodeCurrentTime({ year: 2000, month: 1, day: 2, hours: 0, minutes: 0, seconds: 0 })[7]).toBe(7);
    expect(encodeCurrentTime({ year: 0, month: 0, day: 0, hours: 0, minutes: 0, seconds: 0 })[7]).toBe(0);
    const back = decodeCurrentTime(encodeCurrentTime(time, ['manual-time-update', 'change-of-dst']));
    expect(back).toEqual({
      dateTime: { iso: '2024-06-06T12:04:44', valid: true },
      dayOfWeek: 4,
      fractions256: 128,
      adjustReason: 0x09,
    });
  });
});

describe('Local Time Information (0x2A0F)', () => {
  it('decodes offsets in minutes; unknown and reserved are null', () => {
    expect(decodeLocalTimeInformation(parseHex('fc00'))).toEqual({
      timeZone: -4,
      dstOffset: 0,
      timeZoneMinutes: -60,
      dstOffsetMinutes: 0,
    });
    expect(decodeLocalTimeInformation(parseHex('0102'))).toMatchObject({
      timeZoneMinutes: 15,
      dstOffsetMinutes: 30,
    });
    expect(decodeLocalTimeInformation(parseHex('80ff'))).toMatchObject({
      timeZoneMinutes: null,
      dstOffsetMinutes: null,
    });
    expect(decodeLocalTimeInformation(parseHex('3c11'))).toMatchObject({
      timeZoneMinutes: null,
      dstOffsetMinutes: null,
    });
  });

  it('encodes what it decodes', () => {
    expect(toHex(encodeLocalTimeInformation(60, 60))).toBe('0404');
    expect(toHex(encodeLocalTimeInformation(-720, 120))).toBe('d008');
    expect(toHex(encodeLocalTimeInformation(null, null))).toBe('80ff');
    expect(() => encodeLocalTimeInformation(15 * 57, 0)).toThrow(RangeError);
    expect(() => encodeLocalTimeInformation(0, 45)).toThrow(RangeError);
  });

  it('must be exactly 2 bytes', () => {
    expect(decodeError(() => decodeLocalTimeInformation(parseHex('04')))).toMatchObject({
      code: 'DECODE_TRUNCATED',
      offset: 1,
    });
  });
});

describe('deviceInformationCharacteristics', () => {
  it('lists battery, DIS and CTS characteristics, all optional reads', () => {
    expect(deviceInformationCharacteristics.map((c) => normalizeUuid(c.uuid))).toEqual([
      '2a19',
      '2a29',
      '2a24',
      '2a25',
      '2a27',
      '2a26',
      '2a28',
      '2a23',
      '2a2a',
      '2a50',
      '2a2b',
      '2a0f',
    ]);
    expect(deviceInformationCharacteristics.every((c) => c.optional === true && c.access === 'read')).toBe(
      true,
    );
    expect(new Set(deviceInformationCharacteristics.map((c) => c.service))).toEqual(
      new Set(['180f', '180a', '1805']),
    );
  });
});
