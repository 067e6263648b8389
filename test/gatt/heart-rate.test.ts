import { describe, expect, it } from 'vitest';
import {
  bodySensorLocationDecoder,
  heartRateMeasurementDecoder,
} from '../../src/drivers/sdk/sig/heart-rate.js';
import {
  decodeBodySensorLocation,
  decodeHeartRateMeasurement,
  encodeBodySensorLocation,
  encodeHeartRateControlPoint,
  encodeHeartRateMeasurement,
} from '../../src/gatt/heart-rate.js';
import { parseHex, toHex } from '../../src/gatt/hex.js';
import { decodeError } from '../support/errors.js';

const CTX = { characteristic: '2a37' };

describe('Heart Rate Measurement (0x2A37)', () => {
  it('decodes a uint8 value alone (Nordic vector)', () => {
    expect(decodeHeartRateMeasurement(parseHex('0055'))).toEqual({
      flags: 0,
      heartRate: 85,
      sensorContact: 'not-supported',
      energyExpended: undefined,
      rrIntervals: undefined,
    });
  });

  it('decodes a uint16 value with energy and three RR-intervals (Nordic vector)', () => {
    expect(decodeHeartRateMeasurement(parseHex('1f0101320101000201ffff'))).toEqual({
      flags: 0x1f,
      heartRate: 257,
      sensorContact: 'detected',
      energyExpended: 306,
      rrIntervals: [1, 258, 65535],
    });
  });

  it('decodes the 2-bit sensor contact status', () => {
    const contact = [0x00, 0x02, 0x04, 0x06].map((flags) =>
      decodeHeartRateMeasurement(Uint8Array.of(flags, 60)),
    );
    expect(contact.map((m) => m.sensorContact)).toEqual([
      'not-supported',
      'not-supported',
      'not-detected',
      'detected',
    ]);
  });

  it('decodes each optional field alone', () => {
    expect(decodeHeartRateMeasurement(parseHex('0848ffff')).energyExpended).toBe(65535);
    expect(decodeHeartRateMeasurement(parseHex('105a00080010')).rrIntervals).toEqual([2048, 4096]);
    expect(decodeHeartRateMeasurement(parseHex('01c800')).heartRate).toBe(200);
  });

  it('ignores reserved flag bits', () => {
    expect(decodeHeartRateMeasurement(parseHex('e050'))).toMatchObject({
      heartRate: 80,
      rrIntervals: undefined,
    });
  });

  it('fails on truncation, an odd RR byte and trailing bytes', () => {
    const cases: [string, string, number][] = [
      ['00', 'DECODE_TRUNCATED', 1],
      ['0150', 'DECODE_TRUNCATED', 1],
      ['085001', 'DECODE_TRUNCATED', 2],
      ['170101', 'DECODE_TRUNCATED', 3], // RR flag but no RR-interval (Nordic: invalid)
      ['103c000400', 'DECODE_TRUNCATED', 4], // half an RR-interval
      ['1e553200', 'DECODE_TRUNCATED', 4],
      ['005000', 'DECODE_TRAILING_BYTES', 2],
    ];
    for (const [hex, code, offset] of cases) {
      const error = decodeError(() => decodeHeartRateMeasurement(parseHex(hex)));
      expect([hex, error.code, error.offset]).toEqual([hex, code, offset]);
    }
    expect(decodeError(() => decodeHeartRateMeasurement(new Uint8Array(0))).code).toBe('DECODE_TRUNCATED');
  });

  it('encodes what it decodes', () => {
    expect(toHex(encodeHeartRateMeasurement({ heartRate: 85 }))).toBe('0055');
    expect(
      toHex(
        encodeHeartRateMeasurement({
          heartRate: 257,
          sensorContact: 'detected',
          energyExpended: 306,
          rrIntervals: [1, 258, 65535],
        }),
      ),
    ).toBe('1f0101320101000201ffff');
    expect(
      toHex(encodeHeartRateMeasurement({ heartRate: 72, uint16: true, sensorContact: 'not-detected' })),
    ).toBe('054800');
    expect(
      decodeHeartRateMeasurement(encodeHeartRateMeasurement({ heartRate: 60, energyExpended: 70000 })),
    ).toEqual({
      flags: 0x08,
      heartRate: 60,
      sensorContact: 'not-supported',
      energyExpended: 65535,
      rrIntervals: undefined,
    });
  });
});

describe('Body Sensor Location (0x2A38)', () => {
  it('decodes every defined location and keeps reserved values', () => {
    const names = ['other', 'chest', 'wrist', 'finger', 'hand', 'ear-lobe', 'foot', 'reserved', 'reserved'];
    const raws = [0, 1, 2, 3, 4, 5, 6, 7, 255];
    expect(raws.map((raw) => decodeBodySensorLocation(Uint8Array.of(raw)).location)).toEqual(names);
    expect(decodeBodySensorLocation(Uint8Array.of(7))).toEqual({ raw: 7, location: 'reserved' });
    expect(toHex(encodeBodySensorLocation('ear-lobe'))).toBe('05');
  });

  it('must be exactly one byte', () => {
    expect(decodeError(() => decodeBodySensorLocation(new Uint8Array(0)))).toMatchObject({
      code: 'DECODE_TRUNCATED',
      offset: 0,
    });
    expect(decodeError(() => decodeBodySensorLocation(parseHex('0000')))).toMatchObject({
      code: 'DECODE_TRAILING_BYTES',
      offset: 1,
    });
  });
});

describe('Heart Rate Control Point (0x2A39)', () => {
  it('encodes reset energy expended as op code 0x01', () => {
    expect(toHex(encodeHeartRateControlPoint('reset-energy-expended'))).toBe('01');
  });
});

describe('heart rate SDK decoders', () => {
  it('emits the heart rate then one qualified observation per RR-interval, in seconds', () => {
    expect(heartRateMeasurementDecoder(parseHex('1f0101320101000201ffff'), CTX)).toEqual([
      {
        observations: [
          { code: 'MDC_ECG_HEART_RATE', value: 257, unit: '/min' },
          { code: 'MDC_ECG_TIME_PD_RR_GL', value: 0.0009765625, unit: 's', qualifier: 'rr-1' },
          { code: 'MDC_ECG_TIME_PD_RR_GL', value: 0.251953125, unit: 's', qualifier: 'rr-2' },
          { code: 'MDC_ECG_TIME_PD_RR_GL', value: 63.9990234375, unit: 's', qualifier: 'rr-3' },
        ],
        time: null,
        kind: 'measurement',
        details: { sensorContact: 'detected', energyExpended: 306 },
      },
    ]);
  });

  it('qualifies long RR lists beyond the precomputed names', () => {
    const rr = Array.from({ length: 70 }, () => 820);
    const [reading] = heartRateMeasurementDecoder(
      encodeHeartRateMeasurement({ heartRate: 75, rrIntervals: rr }),
      CTX,
    );
    expect(reading?.observations).toHaveLength(71);
    expect(reading?.observations[70]).toEqual({
      code: 'MDC_ECG_TIME_PD_RR_GL',
      value: 0.80078125,
      unit: 's',
      qualifier: 'rr-70',
    });
  });

  it('flags a missing sensor contact and attaches the body sensor location read earlier', () => {
    const location = bodySensorLocationDecoder(parseHex('01'), { characteristic: '2a38' })[0];
    expect(location).toEqual({
      observations: [],
      time: null,
      kind: 'info',
      details: { bodySensorLocation: 'chest', bodySensorLocationCode: 1 },
    });
    const [reading] = heartRateMeasurementDecoder(parseHex('04ff'), {
      characteristic: '2a37',
      deviceState: { '2a38': location },
    });
    expect(reading).toEqual({
      observations: [{ code: 'MDC_ECG_HEART_RATE', value: 255, unit: '/min' }],
      time: null,
      status: ['no-sensor-contact'],
      kind: 'measurement',
      details: { sensorContact: 'not-detected', bodySensorLocation: 'chest' },
    });
  });
});
