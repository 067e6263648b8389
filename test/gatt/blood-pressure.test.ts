import { describe, expect, it } from 'vitest';
import {
  bloodPressureFeatureDecoder,
  bloodPressureMeasurementDecoder,
  intermediateCuffPressureDecoder,
} from '../../src/drivers/sdk/sig/blood-pressure.js';
import {
  type BloodPressureMeasurementInput,
  decodeBloodPressureFeature,
  decodeBloodPressureMeasurement,
  decodeBloodPressureStatus,
  decodeIntermediateCuffPressure,
  encodeBloodPressureFeature,
  encodeBloodPressureMeasurement,
  encodeIntermediateCuffPressure,
  sfloatBits,
} from '../../src/gatt/blood-pressure.js';
import { parseHex, toHex } from '../../src/gatt/hex.js';
import { MDC_CODES } from '../../src/model/codes.js';
import { decodeError } from '../support/errors.js';

const ctx = { characteristic: '2a35' };

describe('Blood Pressure Measurement (0x2A35)', () => {
  it('decodes the minimal layout: flags + three SFLOATs, mmHg (Nordic vector)', () => {
    const m = decodeBloodPressureMeasurement(parseHex('00bdf00b009ff0'));
    expect(m).toEqual({
      flags: 0,
      unit: 'mmHg',
      systolic: { value: 18.9 },
      diastolic: { value: 11 },
      meanArterialPressure: { value: 15.9 },
      timestamp: undefined,
      pulseRate: undefined,
      userId: undefined,
      status: undefined,
    });
  });

  it('decodes every optional field in spec order (Nordic "full" vector)', () => {
    const m = decodeBloodPressureMeasurement(parseHex('1e8a00580078000000041114293b3c00012700'));
    expect(m.unit).toBe('mmHg');
    expect([m.systolic.value, m.diastolic.value, m.meanArterialPressure.value]).toEqual([138, 88, 120]);
    expect(m.timestamp).toEqual({ iso: null, valid: true }); // year 0: the clock is not set
    expect(m.pulseRate).toEqual({ value: 60 });
    expect(m.userId).toBe(1);
    expect(m.status).toEqual({
      raw: 0x27,
      bodyMovement: true,
      cuffTooLoose: true,
      irregularPulse: true,
      pulseRateRange: 'within-range',
      improperPosition: true,
    });
  });

  it('uses kPa when flags bit 0 is set', () => {
    expect(decodeBloodPressureMeasurement(parseHex('01780050005d00')).unit).toBe('kPa');
  });

  it.each([
    ['timestamp', '02780050005d00e807030f0e1e2d', 'timestamp', { iso: '2024-03-15T14:30:45', valid: true }],
    ['pulse rate', '04780050005d004800', 'pulseRate', { value: 72 }],
    ['user id', '08780050005d0005', 'userId', 5],
  ] as const)('reads the %s alone when only its flag is set', (_name, hex, key, expected) => {
    const m = decodeBloodPressureMeasurement(parseHex(hex));
    expect(m[key]).toEqual(expected);
  });

  it('decodes the 2-bit pulse rate range field and every status bit', () => {
    expect(decodeBloodPressureStatus(0x0000).pulseRateRange).toBe('within-range');
    expect(decodeBloodPressureStatus(0x0008).pulseRateRange).toBe('exceeds-upper-limit');
    expect(decodeBloodPressureStatus(0x0010).pulseRateRange).toBe('below-lower-limit');
    expect(decodeBloodPressureStatus(0x0018).pulseRateRange).toBe('reserved');
    expect(decodeBloodPressureStatus(0x0001).bodyMovement).toBe(true);
    expect(decodeBloodPressureStatus(0x0002).cuffTooLoose).toBe(true);
    expect(decodeBloodPressureStatus(0x0004).irregularPulse).toBe(true);
    expect(decodeBloodPressureStatus(0x0020).improperPosition).toBe(true);
    // Reserved bits 6-15 change nothing but the raw value.
    expect({ ...decodeBloodPressureStatus(0xffc0), raw: 0 }).toEqual({
      ...decodeBloodPressureStatus(0),
      raw: 0,
    });
  });

  it('ignores reserved flag bits 5-7', () => {
    const m = decodeBloodPressureMeasurement(parseHex('e0780050005d00'));
    expect(m.flags).toBe(0xe0);
    expect(m.systolic.value).toBe(120);
    expect(m.timestamp).toBeUndefined();
  });

  it('keeps SFLOAT special values as invalid reasons', () => {
    const m = decodeBloodPressureMeasurement(parseHex('04ff070008fe070208'));
    expect([m.systolic, m.diastolic, m.meanArterialPressure, m.pulseRate]).toEqual([
      { value: null, invalid: 'nan' },
      { value: null, invalid: 'nres' },
      { value: null, invalid: '+inf' },
      { value: null, invalid: '-inf' },
    ]);
    expect(decodeBloodPressureMeasurement(parseHex('00780050000108')).meanArterialPressure.invalid).toBe(
      'reserved',
    );
  });

  it.each([
    ['empty payload', '', 'DECODE_TRUNCATED', 0],
    ['flags only', '00', 'DECODE_TRUNCATED', 1],
    ['diastolic cut', '00780050', 'DECODE_TRUNCATED', 3],
    ['Nordic too short', '010203040506', 'DECODE_TRUNCATED', 5],
    ['timestamp missing', '03020304050607', 'DECODE_TRUNCATED', 7],
    ['timestamp cut', '02780050005d00e80703', 'DECODE_TRUNCATED', 7],
    ['pulse rate missing', '04780050005d00', 'DECODE_TRUNCATED', 7],
    ['user id missing', '08780050005d00', 'DECODE_TRUNCATED', 7],
    ['status cut', '10780050005d0000', 'DECODE_TRUNCATED', 7],
    ['all flags, status cut', '1e780050005d00e807030f0e1e2d48000100', 'DECODE_TRUNCATED', 17],
    ['one extra byte', '00780050005d0000', 'DECODE_TRAILING_BYTES', 7],
    ['extra byte after all fields', '1e8a00580078000000041114293b3c0001270000', 'DECODE_TRAILING_BYTES', 19],
  ])('rejects %s with %s at byte %i', (_name, hex, code, offset) => {
    const error = decodeError(() => decodeBloodPressureMeasurement(Uint8Array.from(Buffer.from(hex, 'hex'))));
    expect(error.code).toBe(code);
    expect(error.offset).toBe(offset);
    expect(error.message).toContain('Blood Pressure Measurement');
  });

  it('round-trips through the encoder', () => {
    const input: BloodPressureMeasurementInput = {
      unit: 'kPa',
      systolic: 16,
      diastolic: 10.7,
      meanArterialPressure: 'nan',
      timestamp: { year: 2023, month: 12, day: 25, hours: 8, minutes: 5, seconds: 9 },
      pulseRate: 66,
      userId: 2,
      status: 0x0004,
    };
    const bytes = encodeBloodPressureMeasurement(input);
    expect(toHex(bytes)).toBe('1f1000' + '6bf0' + 'ff07' + 'e7070c19080509' + '4200' + '02' + '0400');
    const m = decodeBloodPressureMeasurement(bytes);
    expect(m.unit).toBe('kPa');
    expect([m.systolic.value, m.diastolic.value, m.meanArterialPressure.invalid]).toEqual([16, 10.7, 'nan']);
    expect(m.timestamp?.iso).toBe('2023-12-25T08:05:09');
    expect([m.pulseRate?.value, m.userId, m.status?.irregularPulse]).toEqual([66, 2, true]);
    expect(
      toHex(
        encodeBloodPressureMeasurement({
          unit: 'mmHg',
          systolic: 120,
          diastolic: 80,
          meanArterialPressure: 93,
        }),
      ),
    ).toBe('00780050005d00');
  });

  it('encodes SFLOAT with the smallest exponent that holds the value', () => {
    expect(sfloatBits(120)).toBe(0x0078);
    expect(sfloatBits(18.9)).toBe(0xf0bd);
    expect(sfloatBits(1.25)).toBe(0xe07d);
    expect(sfloatBits('nres')).toBe(0x0800);
  });
});

describe('Intermediate Cuff Pressure (0x2A36)', () => {
  it('takes the current cuff pressure from the systolic field and skips the unused fields', () => {
    const m = decodeIntermediateCuffPressure(parseHex('00d7f000000000'));
    expect(m).toEqual({
      flags: 0,
      unit: 'mmHg',
      cuffPressure: { value: 21.5 },
      timestamp: undefined,
      pulseRate: undefined,
      userId: undefined,
      status: undefined,
    });
    expect(decodeIntermediateCuffPressure(parseHex('009600ff07ff07')).cuffPressure).toEqual({ value: 150 });
  });

  it('decodes the optional fields like 0x2A35 (Nordic "some" vector)', () => {
    const m = decodeIntermediateCuffPressure(parseHex('156ff0000000003c001200'));
    expect(m.unit).toBe('kPa');
    expect(m.cuffPressure.value).toBe(11.1);
    expect(m.pulseRate?.value).toBe(60);
    expect(m.status?.cuffTooLoose).toBe(true);
    expect(m.status?.pulseRateRange).toBe('below-lower-limit');
  });

  it.each([
    ['flags only', '00', 'DECODE_TRUNCATED', 1],
    ['unused diastolic cut', '009600ff', 'DECODE_TRUNCATED', 3],
    ['Nordic too short', '010203040506', 'DECODE_TRUNCATED', 5],
    ['timestamp missing', '03020304050607', 'DECODE_TRUNCATED', 7],
    ['one extra byte', '009600ff07ff0700', 'DECODE_TRAILING_BYTES', 7],
  ])('rejects %s with %s at byte %i', (_name, hex, code, offset) => {
    const error = decodeError(() => decodeIntermediateCuffPressure(parseHex(hex)));
    expect(error.code).toBe(code);
    expect(error.offset).toBe(offset);
    expect(error.message).toContain('Intermediate Cuff Pressure');
  });

  it('encodes the unused fields as NaN and round-trips', () => {
    const bytes = encodeIntermediateCuffPressure({
      unit: 'mmHg',
      cuffPressure: 150,
      userId: 0xff,
      status: 1,
    });
    expect(toHex(bytes)).toBe('189600ff07ff07ff0100');
    const m = decodeIntermediateCuffPressure(bytes);
    expect([m.cuffPressure.value, m.userId, m.status?.bodyMovement]).toEqual([150, 0xff, true]);
  });
});

describe('Blood Pressure Feature (0x2A49)', () => {
  it('names bits 0-8 and ignores reserved bits 9-15', () => {
    const all = decodeBloodPressureFeature(parseHex('ff01'));
    expect(Object.values({ ...all, raw: true }).every((v) => v === true)).toBe(true);
    const none = decodeBloodPressureFeature(parseHex('00fe'));
    expect(none.raw).toBe(0xfe00);
    expect(Object.entries(none).filter(([k, v]) => k !== 'raw' && v === true)).toEqual([]);
    const some = decodeBloodPressureFeature(parseHex('4200'));
    expect([some.cuffFitDetection, some.e2eCrc, some.bodyMovementDetection]).toEqual([true, true, false]);
  });

  it('needs exactly two bytes', () => {
    expect(decodeError(() => decodeBloodPressureFeature(parseHex('01')))).toMatchObject({
      code: 'DECODE_TRUNCATED',
      offset: 0,
    });
    expect(decodeError(() => decodeBloodPressureFeature(parseHex('010000')))).toMatchObject({
      code: 'DECODE_TRAILING_BYTES',
      offset: 2,
    });
    expect(toHex(encodeBloodPressureFeature(0x01ff))).toBe('ff01');
  });
});

describe('SDK decoders (readings)', () => {
  it('maps 0x2A35 to coded observations in payload order, status names in bit order', () => {
    const [reading] = bloodPressureMeasurementDecoder(
      parseHex('1e8a00580078000000041114293b3c00012700'),
      ctx,
    );
    expect(reading).toEqual({
      observations: [
        { code: 'MDC_PRESS_BLD_NONINV_SYS', value: 138, unit: 'mm[Hg]' },
        { code: 'MDC_PRESS_BLD_NONINV_DIA', value: 88, unit: 'mm[Hg]' },
        { code: 'MDC_PRESS_BLD_NONINV_MEAN', value: 120, unit: 'mm[Hg]' },
        { code: 'MDC_PULS_RATE_NON_INV', value: 60, unit: '/min' },
      ],
      time: null,
      status: ['body-movement', 'cuff-fit-loose', 'irregular-pulse', 'improper-measurement-position'],
      kind: 'measurement',
      details: {
        userId: 1,
        measurementStatus: {
          bodyMovement: true,
          cuffTooLoose: true,
          irregularPulse: true,
          pulseRateRange: 'within-range',
          improperMeasurementPosition: true,
        },
      },
    });
  });

  it('reports an unknown user as null and an untrusted device clock', () => {
    const [reading] = bloodPressureMeasurementDecoder(parseHex('0a780050005d00e8070d01000000ff'), ctx);
    expect(reading?.time).toBeNull();
    expect(reading?.details).toEqual({ userId: null, deviceTimeInvalid: true });
  });

  it('maps 0x2A36 to MDC_PRESS_CUFF only, kind intermediate', () => {
    const [reading] = intermediateCuffPressureDecoder(parseHex('156ff0000000003c001200'), ctx);
    expect(reading?.observations).toEqual([
      { code: 'MDC_PRESS_CUFF', value: 11.1, unit: 'kPa' },
      { code: 'MDC_PULS_RATE_NON_INV', value: 60, unit: '/min' },
    ]);
    expect(reading?.kind).toBe('intermediate');
    expect(reading?.status).toEqual(['cuff-fit-loose', 'pulse-rate-below-lower-limit']);
  });

  it('maps 0x2A49 to named feature booleans', () => {
    const [reading] = bloodPressureFeatureDecoder(parseHex('0300'), ctx);
    expect(reading?.kind).toBe('info');
    expect(reading?.observations).toEqual([]);
    expect(reading?.details?.['features']).toMatchObject({
      bodyMovementDetection: true,
      cuffFitDetection: true,
      e2eCrc: false,
    });
  });

  it('uses the 11073-10101 codes (partition 2 * 65536 + term code; sources in src/model/codes.ts)', () => {
    expect(MDC_CODES.MDC_PRESS_BLD_NONINV_SYS).toBe(2 * 65536 + 18949);
    expect(MDC_CODES.MDC_PRESS_BLD_NONINV_DIA).toBe(2 * 65536 + 18950);
    expect(MDC_CODES.MDC_PRESS_BLD_NONINV_MEAN).toBe(2 * 65536 + 18951);
    expect(MDC_CODES.MDC_PULS_RATE_NON_INV).toBe(2 * 65536 + 18474);
    expect(MDC_CODES.MDC_PRESS_CUFF).toBe(2 * 65536 + 19228);
  });
});
