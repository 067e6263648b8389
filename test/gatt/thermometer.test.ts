import { describe, expect, it } from 'vitest';
import {
  intermediateTemperatureDecoder,
  measurementIntervalDecoder,
  temperatureCode,
  temperatureMeasurementDecoder,
  temperatureTypeDecoder,
} from '../../src/drivers/sdk/sig/thermometer.js';
import { parseHex, toHex } from '../../src/gatt/hex.js';
import {
  decodeIntermediateTemperature,
  decodeMeasurementInterval,
  decodeTemperatureMeasurement,
  decodeTemperatureType,
  encodeMeasurementInterval,
  encodeTemperatureMeasurement,
  encodeTemperatureType,
  floatBits,
  temperatureSite,
} from '../../src/gatt/thermometer.js';
import { MDC_CODES } from '../../src/model/codes.js';
import type { Reading } from '../../src/model/observation.js';
import { decodeError } from '../support/errors.js';

const NORDIC = '06b00e00fedc070c050b321b04'; // 37.60 Cel, 2012-12-05 11:50:27, finger

describe('Temperature Measurement (0x2A1C)', () => {
  it('decodes every field (Nordic vector)', () => {
    expect(decodeTemperatureMeasurement(parseHex(NORDIC))).toEqual({
      flags: 0x06,
      unit: 'celsius',
      temperature: { value: 37.6 },
      timestamp: { iso: '2012-12-05T11:50:27', valid: true },
      temperatureType: 4,
    });
  });

  it('decodes the minimal layout and the Fahrenheit unit', () => {
    expect(decodeTemperatureMeasurement(parseHex('006d0100ff'))).toEqual({
      flags: 0,
      unit: 'celsius',
      temperature: { value: 36.5 },
      timestamp: undefined,
      temperatureType: undefined,
    });
    expect(decodeTemperatureMeasurement(parseHex('01da0300ff'))).toMatchObject({
      unit: 'fahrenheit',
      temperature: { value: 98.6 },
    });
  });

  it('reads the timestamp alone and the type alone', () => {
    const t = decodeTemperatureMeasurement(parseHex('026d0100ffe807021d060708'));
    expect(t.timestamp).toEqual({ iso: '2024-02-29T06:07:08', valid: true });
    expect(t.temperatureType).toBeUndefined();
    const y = decodeTemperatureMeasurement(parseHex('046d0100ff09'));
    expect(y.timestamp).toBeUndefined();
    expect(y.temperatureType).toBe(9);
  });

  it('sign-extends the FLOAT exponent and mantissa', () => {
    expect(decodeTemperatureMeasurement(parseHex('00ccffffff')).temperature).toEqual({ value: -5.2 });
    expect(decodeTemperatureMeasurement(parseHex('001d8d00fd')).temperature).toEqual({ value: 36.125 });
  });

  it.each([
    ['ffff7f00', 'nan'],
    ['00008000', 'nres'],
    ['feff7f00', '+inf'],
    ['02008000', '-inf'],
    ['01008000', 'reserved'],
  ])('keeps the FLOAT special %s as %s', (hex, reason) => {
    expect(decodeTemperatureMeasurement(parseHex(`00${hex}`)).temperature).toEqual({
      value: null,
      invalid: reason,
    });
  });

  it('treats an all-zero timestamp as clock not set and a bad one as invalid', () => {
    expect(decodeTemperatureMeasurement(parseHex('026d0100ff00000000000000')).timestamp).toEqual({
      iso: null,
      valid: true,
    });
    expect(
      decodeTemperatureMeasurement(parseHex('026d0100ffe80701011800 00'.replace(' ', ''))).timestamp,
    ).toEqual({
      iso: null,
      valid: false,
    });
  });

  it('ignores reserved flag bits 3-7', () => {
    const t = decodeTemperatureMeasurement(parseHex('f86d0100ff'));
    expect([t.flags, t.unit, t.temperature.value, t.timestamp, t.temperatureType]).toEqual([
      0xf8,
      'celsius',
      36.5,
      undefined,
      undefined,
    ]);
  });

  it.each([
    ['empty payload', '', 'DECODE_TRUNCATED', 0],
    ['flags only', '00', 'DECODE_TRUNCATED', 1],
    ['temperature cut', '006d0100', 'DECODE_TRUNCATED', 1],
    ['timestamp cut', '026d0100ffe807', 'DECODE_TRUNCATED', 5],
    ['type missing', '046d0100ff', 'DECODE_TRUNCATED', 5],
    ['Nordic vector without its type byte', NORDIC.slice(0, -2), 'DECODE_TRUNCATED', 12],
    ['one extra byte', '006d0100ff00', 'DECODE_TRAILING_BYTES', 5],
  ])('rejects %s with %s at byte %i', (_name, hex, code, offset) => {
    const error = decodeError(() => decodeTemperatureMeasurement(Uint8Array.from(Buffer.from(hex, 'hex'))));
    expect(error.code).toBe(code);
    expect(error.offset).toBe(offset);
    expect(error.message).toContain('Temperature Measurement');
  });

  it('round-trips through the encoder', () => {
    const bytes = encodeTemperatureMeasurement({
      unit: 'fahrenheit',
      temperature: 98.6,
      timestamp: { year: 2023, month: 7, day: 4, hours: 12, minutes: 0, seconds: 0 },
      temperatureType: 3,
    });
    expect(toHex(bytes)).toBe('07da0300ffe70707040c000003');
    expect(decodeTemperatureMeasurement(bytes)).toEqual({
      flags: 7,
      unit: 'fahrenheit',
      temperature: { value: 98.6 },
      timestamp: { iso: '2023-07-04T12:00:00', valid: true },
      temperatureType: 3,
    });
    expect(toHex(encodeTemperatureMeasurement({ unit: 'celsius', temperature: 'nan' }))).toBe('00ffff7f00');
    expect(floatBits(37.6)).toBe(0xff000178);
    expect(floatBits(-5.2)).toBe(0xffffffcc);
  });
});

describe('Intermediate Temperature (0x2A1E)', () => {
  it('has the Temperature Measurement format and names itself in errors', () => {
    expect(decodeIntermediateTemperature(parseHex(NORDIC))).toEqual(
      decodeTemperatureMeasurement(parseHex(NORDIC)),
    );
    const error = decodeError(() => decodeIntermediateTemperature(parseHex('017101')));
    expect([error.code, error.offset]).toEqual(['DECODE_TRUNCATED', 1]);
    expect(error.message).toContain('Intermediate Temperature');
  });
});

describe('Temperature Type (0x2A1D) and Measurement Interval (0x2A21)', () => {
  it('decodes one byte of Temperature Type, reserved values included', () => {
    expect(decodeTemperatureType(parseHex('03'))).toBe(3);
    expect(decodeTemperatureType(parseHex('ff'))).toBe(255);
    expect(decodeError(() => decodeTemperatureType(parseHex('0300')))).toMatchObject({
      code: 'DECODE_TRAILING_BYTES',
      offset: 1,
    });
    expect(toHex(encodeTemperatureType(9))).toBe('09');
  });

  it('names the sites 1-9 and no others', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(temperatureSite)).toEqual([
      undefined,
      'armpit',
      'body',
      'ear',
      'finger',
      'gastro-intestinal-tract',
      'mouth',
      'rectum',
      'toe',
      'tympanum',
      undefined,
    ]);
  });

  it('decodes the Measurement Interval as uint16 seconds', () => {
    expect(decodeMeasurementInterval(parseHex('3c00'))).toBe(60);
    expect(decodeMeasurementInterval(parseHex('ffff'))).toBe(65535);
    expect(decodeError(() => decodeMeasurementInterval(parseHex('3c')))).toMatchObject({
      code: 'DECODE_TRUNCATED',
      offset: 0,
    });
    expect(decodeError(() => decodeMeasurementInterval(parseHex('3c0000')))).toMatchObject({
      code: 'DECODE_TRAILING_BYTES',
      offset: 2,
    });
    expect(toHex(encodeMeasurementInterval(300))).toBe('2c01');
  });
});

describe('SDK decoders (readings)', () => {
  it('codes the temperature by site, MDC_TEMP_BODY for reserved or missing types', () => {
    expect([undefined, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255].map(temperatureCode)).toEqual([
      'MDC_TEMP_BODY',
      'MDC_TEMP_BODY',
      'MDC_TEMP_AXILLA',
      'MDC_TEMP_BODY',
      'MDC_TEMP_EAR',
      'MDC_TEMP_FINGER',
      'MDC_TEMP_GIT',
      'MDC_TEMP_ORAL',
      'MDC_TEMP_RECT',
      'MDC_TEMP_TOE',
      'MDC_TEMP_TYMP',
      'MDC_TEMP_BODY',
      'MDC_TEMP_BODY',
    ]);
  });

  it('maps the Nordic vector to a finger temperature reading', () => {
    expect(temperatureMeasurementDecoder(parseHex(NORDIC), { characteristic: '2a1c' })).toEqual([
      {
        observations: [{ code: 'MDC_TEMP_FINGER', value: 37.6, unit: 'Cel' }],
        time: '2012-12-05T11:50:27',
        kind: 'measurement',
        details: { temperatureType: 4, temperatureSite: 'finger' },
      },
    ]);
  });

  it('falls back to the Temperature Type characteristic read earlier, the measurement field wins', () => {
    const [typeReading] = temperatureTypeDecoder(parseHex('06'), { characteristic: '2a1d' });
    const ctx = { characteristic: '2a1c', deviceState: { '2a1d': typeReading as Reading } };
    expect(temperatureMeasurementDecoder(parseHex('006d0100ff'), ctx)[0]?.observations[0]?.code).toBe(
      'MDC_TEMP_ORAL',
    );
    expect(temperatureMeasurementDecoder(parseHex('046d0100ff07'), ctx)[0]?.observations[0]?.code).toBe(
      'MDC_TEMP_RECT',
    );
    expect(intermediateTemperatureDecoder(parseHex('01da0300ff'), ctx)[0]).toEqual({
      observations: [{ code: 'MDC_TEMP_ORAL', value: 98.6, unit: '[degF]' }],
      time: null,
      kind: 'intermediate',
      details: { temperatureType: 6, temperatureSite: 'mouth' },
    });
  });

  it('keeps a reserved type number in details and flags an untrusted device clock', () => {
    const [reading] = temperatureMeasurementDecoder(parseHex('066d0100ffe8070101180000' + '0a'), {
      characteristic: '2a1c',
    });
    expect(reading?.observations[0]?.code).toBe('MDC_TEMP_BODY');
    expect(reading?.time).toBeNull();
    expect(reading?.details).toEqual({ temperatureType: 10, deviceTimeInvalid: true });
  });

  it('reports the Measurement Interval as info', () => {
    expect(measurementIntervalDecoder(parseHex('0000'), { characteristic: '2a21' })).toEqual([
      {
        observations: [],
        time: null,
        kind: 'info',
        details: { measurementIntervalSeconds: 0, periodic: false },
      },
    ]);
  });

  it('uses the 11073-10101 site codes (2::57348.. per 11073-10408)', () => {
    // Context-free code = partition 2 (SCADA) * 65536 + term code; see src/model/codes.ts for the sources.
    expect(MDC_CODES.MDC_TEMP_RECT).toBe(2 * 65536 + 57348);
    expect(MDC_CODES.MDC_TEMP_ORAL).toBe(2 * 65536 + 57352);
    expect(MDC_CODES.MDC_TEMP_EAR).toBe(2 * 65536 + 57356);
    expect(MDC_CODES.MDC_TEMP_FINGER).toBe(2 * 65536 + 57360);
    expect(MDC_CODES.MDC_TEMP_TOE).toBe(2 * 65536 + 57376);
    expect(MDC_CODES.MDC_TEMP_AXILLA).toBe(2 * 65536 + 57380);
    expect(MDC_CODES.MDC_TEMP_GIT).toBe(2 * 65536 + 57384);
    expect(MDC_CODES.MDC_TEMP_TYMP).toBe(2 * 65536 + 19320);
    expect(MDC_CODES.MDC_TEMP_BODY).toBe(2 * 65536 + 19292);
  });
});
