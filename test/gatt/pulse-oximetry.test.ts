import { describe, expect, it } from 'vitest';
import {
  BCI_FRAME_LENGTH,
  BCI_FRAMING,
  type BciFrame,
  encodeBciFrame,
  isBciFrame,
  parseBciFrame,
} from '../../devices/vendor/berrymed-bm1000/bci-protocol.js';
import { createFramer } from '../../src/drivers/sdk/framing.js';
import {
  plxContinuousDecoder,
  plxFeaturesDecoder,
  plxSpotCheckDecoder,
} from '../../src/drivers/sdk/index.js';
import { parseHex, toHex } from '../../src/gatt/hex.js';
import {
  decodePlxContinuous,
  decodePlxFeatures,
  decodePlxSpotCheck,
  encodePlxContinuous,
  encodePlxFeatures,
  encodePlxSpotCheck,
  PLX_DEVICE_AND_SENSOR_STATUS_BITS,
  PLX_MEASUREMENT_STATUS_BITS,
  PLX_SUPPORTED_FEATURE_BITS,
  sfloatFor,
} from '../../src/gatt/pulse-oximetry.js';
import { decodeError } from '../support/errors.js';

// Vectors: StanfordSpezi/SpeziBluetooth Tests/SpeziBluetoothServicesTests/PLXTests.swift ("spezi"), a ChoiceMMed
// capture from Stack Overflow question 71264072 ("capture"), and values hand-computed from PLXS 1.0.1 / the GATT
// Specification Supplement tables ("spec").

const ctx = { characteristic: '2a5e' };

describe('PLX bit tables (GSS)', () => {
  it('Measurement Status: bits 0-4 RFU, 5-15 named', () => {
    expect(PLX_MEASUREMENT_STATUS_BITS.slice(0, 5)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(PLX_MEASUREMENT_STATUS_BITS[5]).toBe('measurement-ongoing');
    expect(PLX_MEASUREMENT_STATUS_BITS[9]).toBe('data-from-measurement-storage');
    expect(PLX_MEASUREMENT_STATUS_BITS[15]).toBe('invalid-measurement-detected');
    expect(PLX_MEASUREMENT_STATUS_BITS).toHaveLength(16);
  });

  it('Device and Sensor Status: bits 0-15 named, 16-23 RFU', () => {
    expect(PLX_DEVICE_AND_SENSOR_STATUS_BITS[0]).toBe('extended-display-update-ongoing');
    expect(PLX_DEVICE_AND_SENSOR_STATUS_BITS[5]).toBe('low-perfusion-detected');
    expect(PLX_DEVICE_AND_SENSOR_STATUS_BITS[15]).toBe('sensor-disconnected');
    expect(PLX_DEVICE_AND_SENSOR_STATUS_BITS).toHaveLength(16);
  });

  it('Supported Features: bits 0-7 named', () => {
    expect(PLX_SUPPORTED_FEATURE_BITS).toEqual([
      'measurement-status-support',
      'device-and-sensor-status-support',
      'spot-check-measurement-storage',
      'spot-check-timestamp',
      'spo2pr-fast',
      'spo2pr-slow',
      'pulse-amplitude-index',
      'multiple-bonds',
    ]);
  });
});

describe('PLX Spot-Check Measurement (0x2A5E)', () => {
  it('decodes every optional field (spezi testSpotCheckMeasurementCoding)', () => {
    const m = decodePlxSpotCheck(parseHex('0facf3bef5e8070b1d170839204022000066e3'));
    expect(m).toEqual({
      flags: 0x0f,
      spo2: { value: 94 },
      pulseRate: { value: 147 },
      timestamp: { iso: '2024-11-29T23:08:57', valid: true },
      measurementStatus: 0x4020,
      deviceAndSensorStatus: 0x000022,
      pulseAmplitudeIndex: { value: 8.7 },
      deviceClockNotSet: false,
    });
  });

  it('decodes the minimal layout with every optional field undefined', () => {
    const m = decodePlxSpotCheck(parseHex('0061004800'));
    expect(m.spo2).toEqual({ value: 97 });
    expect(m.pulseRate).toEqual({ value: 72 });
    expect([m.timestamp, m.measurementStatus, m.deviceAndSensorStatus, m.pulseAmplitudeIndex]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(m.deviceClockNotSet).toBe(false);
  });

  it.each([
    ['timestamp', '0162004800e907030e081e00', 'timestamp'],
    ['measurement status', '02620048008000', 'measurementStatus'],
    ['device and sensor status', '04620048000080ff', 'deviceAndSensorStatus'],
    ['pulse amplitude index', '08610048002df0', 'pulseAmplitudeIndex'],
  ] as const)('reads %s alone', (_name, hex, field) => {
    const m = decodePlxSpotCheck(parseHex(hex));
    const present = ['timestamp', 'measurementStatus', 'deviceAndSensorStatus', 'pulseAmplitudeIndex'].filter(
      (key) => m[key as keyof typeof m] !== undefined,
    );
    expect(present).toEqual([field]);
  });

  it('keeps the raw status words, RFU bits included, for the SDK to name', () => {
    expect(decodePlxSpotCheck(parseHex('04620048000080ff')).deviceAndSensorStatus).toBe(0xff8000);
    expect(decodePlxSpotCheck(parseHex('0262004800ffff')).measurementStatus).toBe(0xffff);
  });

  it('reports the device-clock-not-set flag (capture, flags 0x17)', () => {
    const m = decodePlxSpotCheck(parseHex('176100600' + '0e10701010122132000200000'));
    expect(m.deviceClockNotSet).toBe(true);
    expect(m.timestamp).toEqual({ iso: '2017-01-01T01:34:19', valid: true });
    expect(m.spo2.value).toBe(97);
    expect(m.pulseRate.value).toBe(96);
  });

  it('ignores reserved flag bits 5-7', () => {
    expect(decodePlxSpotCheck(parseHex('e062004800')).spo2).toEqual({ value: 98 });
  });

  it('carries SFLOAT special values', () => {
    const m = decodePlxSpotCheck(parseHex('08ff070008fe07'));
    expect([m.spo2.invalid, m.pulseRate.invalid, m.pulseAmplitudeIndex?.invalid]).toEqual([
      'nan',
      'nres',
      '+inf',
    ]);
    const n = decodePlxSpotCheck(parseHex('0002080108'));
    expect([n.spo2.invalid, n.pulseRate.invalid]).toEqual(['-inf', 'reserved']);
  });

  it.each([
    ['00', 'DECODE_TRUNCATED', 1],
    ['0facf3be', 'DECODE_TRUNCATED', 3],
    ['0162004800e90703', 'DECODE_TRUNCATED', 5],
    ['0262004800', 'DECODE_TRUNCATED', 5],
    ['04620048000080', 'DECODE_TRUNCATED', 5],
    ['0facf3bef5e8070b1d170839204022000066', 'DECODE_TRUNCATED', 17],
    ['006200480000', 'DECODE_TRAILING_BYTES', 5],
    ['0facf3bef5e8070b1d170839204022000066e300', 'DECODE_TRAILING_BYTES', 19],
  ] as const)('%s -> %s at %d', (hex, code, offset) => {
    const error = decodeError(() => decodePlxSpotCheck(parseHex(hex)));
    expect([error.code, error.offset]).toEqual([code, offset]);
    expect(error.message).toContain('PLX Spot-Check Measurement');
  });

  it('names the missing field in the message', () => {
    expect(decodeError(() => decodePlxSpotCheck(parseHex('0162004800e90703'))).message).toContain(
      'Timestamp',
    );
  });

  it('round-trips through the encoder', () => {
    const bytes = encodePlxSpotCheck({
      spo2: { value: 94 },
      pulseRate: { value: 147 },
      timestamp: { year: 2024, month: 11, day: 29, hours: 23, minutes: 8, seconds: 57 },
      measurementStatus: 0x4020,
      deviceAndSensorStatus: 0x22,
      pulseAmplitudeIndex: { value: 8.7 },
    });
    expect(toHex(bytes)).toBe('0f5e009300e8070b1d1708392040220000 57f0'.replace(' ', ''));
    expect(decodePlxSpotCheck(bytes)).toMatchObject({
      spo2: { value: 94 },
      pulseRate: { value: 147 },
      timestamp: { iso: '2024-11-29T23:08:57' },
      pulseAmplitudeIndex: { value: 8.7 },
    });
    const clock = encodePlxSpotCheck({
      spo2: { value: null, invalid: 'nan' },
      pulseRate: { value: 60 },
      deviceClockNotSet: true,
    });
    expect(toHex(clock)).toBe('10ff073c00');
  });
});

describe('PLX Continuous Measurement (0x2A5F)', () => {
  it('decodes SpO2PR-Normal only (spezi, exponent -1 and 0)', () => {
    for (const hex of ['00e8f384f3', '0064005a00']) {
      const m = decodePlxContinuous(parseHex(hex));
      expect([m.spo2.value, m.pulseRate.value]).toEqual([100, 90]);
      expect([
        m.spo2Fast,
        m.spo2Slow,
        m.measurementStatus,
        m.deviceAndSensorStatus,
        m.pulseAmplitudeIndex,
      ]).toEqual([undefined, undefined, undefined, undefined, undefined]);
    }
  });

  it('decodes every field (spezi testFullMeasurementCoding)', () => {
    expect(decodePlxContinuous(parseHex('1fdef3caf3caf35af5d4f3b2f220010000007ae3'))).toEqual({
      flags: 0x1f,
      spo2: { value: 99 },
      pulseRate: { value: 97 },
      spo2Fast: { value: 97 },
      pulseRateFast: { value: 137 },
      spo2Slow: { value: 98 },
      pulseRateSlow: { value: 69 },
      measurementStatus: 0x0120,
      deviceAndSensorStatus: 0,
      pulseAmplitudeIndex: { value: 8.9 },
    });
  });

  it('reads the fast and the slow pair each alone', () => {
    const fast = decodePlxContinuous(parseHex('01620048006100' + '4b00'));
    expect([fast.spo2Fast?.value, fast.pulseRateFast?.value, fast.spo2Slow]).toEqual([97, 75, undefined]);
    const slow = decodePlxContinuous(parseHex('026200480063004600'));
    expect([slow.spo2Slow?.value, slow.pulseRateSlow?.value, slow.spo2Fast]).toEqual([99, 70, undefined]);
  });

  it('reads status fields and PAI (spezi testSimpleMeasurementCoding, capture)', () => {
    const m = decodePlxContinuous(parseHex('1c5f005a00200000000057f0'));
    expect([m.measurementStatus, m.deviceAndSensorStatus, m.pulseAmplitudeIndex]).toEqual([
      0x20,
      0,
      { value: 8.7 },
    ]);
    const c = decodePlxContinuous(parseHex('0c62004e00200000000' + '0'));
    expect([c.spo2.value, c.pulseRate.value, c.measurementStatus]).toEqual([98, 78, 0x20]);
  });

  it('ignores reserved flag bits 5-7', () => {
    expect(decodePlxContinuous(parseHex('e062004800')).pulseRate).toEqual({ value: 72 });
  });

  it.each([
    ['00', 'DECODE_TRUNCATED', 1],
    ['00620048', 'DECODE_TRUNCATED', 3],
    ['01620048006100', 'DECODE_TRUNCATED', 7],
    ['0262004800', 'DECODE_TRUNCATED', 5],
    ['0c6200480020000000', 'DECODE_TRUNCATED', 7],
    ['1062004800', 'DECODE_TRUNCATED', 5],
    ['1fdef3caf3caf35af5d4f3b2f220010000007a', 'DECODE_TRUNCATED', 18],
    ['00620048000000', 'DECODE_TRAILING_BYTES', 5],
  ] as const)('%s -> %s at %d', (hex, code, offset) => {
    const error = decodeError(() => decodePlxContinuous(parseHex(hex)));
    expect([error.code, error.offset]).toEqual([code, offset]);
  });

  it('round-trips through the encoder', () => {
    const input = {
      spo2: { value: 99 },
      pulseRate: { value: 97 },
      fast: { spo2: { value: 97 }, pulseRate: { value: 137 } },
      slow: { spo2: { value: 98.5 }, pulseRate: { value: null, invalid: 'nres' as const } },
      measurementStatus: 0x0120,
      deviceAndSensorStatus: 0x800001,
      pulseAmplitudeIndex: { value: 0.05 },
    };
    const m = decodePlxContinuous(encodePlxContinuous(input));
    expect(m).toEqual({
      flags: 0x1f,
      spo2: { value: 99 },
      pulseRate: { value: 97 },
      spo2Fast: { value: 97 },
      pulseRateFast: { value: 137 },
      spo2Slow: { value: 98.5 },
      pulseRateSlow: { value: null, invalid: 'nres' },
      measurementStatus: 0x0120,
      deviceAndSensorStatus: 0x800001,
      pulseAmplitudeIndex: { value: 0.05 },
    });
  });
});

describe('PLX Features (0x2A60)', () => {
  it('reads both support fields when bits 0 and 1 say so (spezi testPLXFeaturesCoding)', () => {
    expect(decodePlxFeatures(parseHex('a30040108001' + '00'))).toEqual({
      supportedFeatures: 0x00a3,
      measurementStatusSupport: 0x1040,
      deviceAndSensorStatusSupport: 0x000180,
    });
  });

  it('reads only the word when bits 0 and 1 are clear, RFU bits kept raw', () => {
    expect(decodePlxFeatures(parseHex('5cff'))).toEqual({
      supportedFeatures: 0xff5c,
      measurementStatusSupport: undefined,
      deviceAndSensorStatusSupport: undefined,
    });
  });

  it.each([
    ['00', 'DECODE_TRUNCATED', 0],
    ['0100', 'DECODE_TRUNCATED', 2],
    ['0200ffff', 'DECODE_TRUNCATED', 2],
    ['0300e0ff0000', 'DECODE_TRUNCATED', 4],
    ['000000', 'DECODE_TRAILING_BYTES', 2],
  ] as const)('%s -> %s at %d', (hex, code, offset) => {
    const error = decodeError(() => decodePlxFeatures(parseHex(hex)));
    expect([error.code, error.offset]).toEqual([code, offset]);
  });

  it('round-trips, deriving bits 0 and 1 from the fields given', () => {
    const bytes = encodePlxFeatures({
      supportedFeatures: 0x00a0,
      measurementStatusSupport: 0x1040,
      deviceAndSensorStatusSupport: 0x180,
    });
    expect(toHex(bytes)).toBe('a30040108001' + '00');
    expect(toHex(encodePlxFeatures({ supportedFeatures: 0x0003 }))).toBe('0000');
  });
});

describe('sfloatFor (encoder helper)', () => {
  it.each([
    [98, 0x0062],
    [97.5, 0xf3cf],
    [8.7, 0xf057],
    [1.23, 0xe07b],
    [-12, 0x0ff4],
    [30000, 0x212c],
  ])('%s -> 0x%s', (value, raw) => {
    expect(sfloatFor({ value })).toBe(raw);
  });

  it('encodes specials as their patterns and refuses what SFLOAT cannot carry', () => {
    expect(sfloatFor({ value: null, invalid: '-inf' })).toBe(0x0802);
    expect(sfloatFor({ value: null })).toBe(0x07ff);
    expect(() => sfloatFor({ value: 12345 })).toThrow(RangeError);
    expect(sfloatFor({ value: -2045 })).toBe(0x0803);
  });
});

describe('SDK mapping of PLX readings', () => {
  it('spot-check: observations in payload order, status names, device time', () => {
    const [reading] = plxSpotCheckDecoder(parseHex('0facf3bef5e8070b1d170839204022000066e3'), ctx);
    expect(reading).toEqual({
      observations: [
        { code: 'MDC_PULS_OXIM_SAT_O2', value: 94, unit: '%' },
        { code: 'MDC_PULS_OXIM_PULS_RATE', value: 147, unit: '/min' },
        { code: 'MDC_PULS_OXIM_PERF_REL', value: 8.7, unit: '%' },
      ],
      time: '2024-11-29T23:08:57',
      status: [
        'measurement-ongoing',
        'questionable-measurement-detected',
        'equipment-malfunction-detected',
        'low-perfusion-detected',
      ],
      kind: 'measurement',
      details: {
        measurementStatus: ['measurement-ongoing', 'questionable-measurement-detected'],
        deviceAndSensorStatus: ['equipment-malfunction-detected', 'low-perfusion-detected'],
      },
    });
  });

  it('spot-check: clock not set gives time null; invalid date gives deviceTimeInvalid', () => {
    const [notSet] = plxSpotCheckDecoder(parseHex('17610060' + '00e10701010122132000200000'), ctx);
    expect([notSet?.time, notSet?.details?.deviceClockNotSet]).toEqual([null, true]);
    const [invalid] = plxSpotCheckDecoder(parseHex('0162004800e9070d01000000'), ctx);
    expect([invalid?.time, invalid?.details?.deviceTimeInvalid]).toEqual([null, true]);
    const [unknown] = plxSpotCheckDecoder(parseHex('016200480000000000000000'), ctx);
    expect([unknown?.time, unknown?.details]).toEqual([null, {}]);
  });

  it('continuous: fast and slow qualifiers, specials as null + invalid', () => {
    const [reading] = plxContinuousDecoder(parseHex('0362004800ff070008fe070208'), ctx);
    expect(reading?.observations).toEqual([
      { code: 'MDC_PULS_OXIM_SAT_O2', value: 98, unit: '%' },
      { code: 'MDC_PULS_OXIM_PULS_RATE', value: 72, unit: '/min' },
      { code: 'MDC_PULS_OXIM_SAT_O2', value: null, unit: '%', invalid: 'nan', qualifier: 'fast' },
      { code: 'MDC_PULS_OXIM_PULS_RATE', value: null, unit: '/min', invalid: 'nres', qualifier: 'fast' },
      { code: 'MDC_PULS_OXIM_SAT_O2', value: null, unit: '%', invalid: '+inf', qualifier: 'slow' },
      { code: 'MDC_PULS_OXIM_PULS_RATE', value: null, unit: '/min', invalid: '-inf', qualifier: 'slow' },
    ]);
    expect([reading?.time, reading?.status, reading?.kind]).toEqual([null, [], 'measurement']);
  });

  it('features: named booleans and supported status names', () => {
    const [reading] = plxFeaturesDecoder(parseHex('a30040108001' + '00'), ctx);
    expect(reading).toEqual({
      observations: [],
      time: null,
      kind: 'info',
      details: {
        features: {
          measurementStatusSupport: true,
          deviceAndSensorStatusSupport: true,
          spotCheckMeasurementStorage: false,
          spotCheckTimestamp: false,
          spo2prFast: false,
          spo2prSlow: true,
          pulseAmplitudeIndex: false,
          multipleBonds: true,
        },
        supportedMeasurementStatus: ['early-estimated-data', 'calibration-ongoing'],
        supportedDeviceAndSensorStatus: ['nonpulsatile-signal-detected', 'questionable-pulse-detected'],
      },
    });
  });
});

describe('BerryMed BCI frames (vendor/berrymed-bm1000)', () => {
  const frame: BciFrame = {
    signalStrength: 7,
    noSignal: false,
    probeUnplugged: false,
    pulseBeep: false,
    pleth: 50,
    barGraph: 5,
    noFinger: false,
    pulseSearching: false,
    pulseRate: 72,
    spo2: 98,
  };

  it('decodes the atick-faisal/berry-oximeter vector 87 32 05 48 62', () => {
    expect(isBciFrame(parseHex('8732054862'))).toBe(true);
    expect(parseBciFrame(parseHex('8732054862'))).toEqual(frame);
  });

  it('takes pulse rate bit 7 from byte 2 bit 6 and every flag from its bit', () => {
    expect(parseBciFrame(parseHex('ff7f7f7f7f'))).toEqual({
      signalStrength: 15,
      noSignal: true,
      probeUnplugged: true,
      pulseBeep: true,
      pleth: 127,
      barGraph: 15,
      noFinger: true,
      pulseSearching: true,
      pulseRate: 255,
      spo2: 127,
    });
  });

  it('is framed by the sync-bit rule: fragments and broken frames are garbage, whole frames come out', () => {
    const skipped = (hex: string) => {
      const framer = createFramer(BCI_FRAMING);
      const events = [...framer.push(parseHex(hex)), ...framer.end()];
      return {
        frames: events.flatMap((e) => (e.frame ? [parseBciFrame(e.frame)] : [])),
        errors: events.flatMap((e) =>
          e.error ? [`${e.error.code} ${(e.error as { bytes?: number }).bytes}`] : [],
        ),
      };
    };
    expect(skipped('0548628732054862874006')).toEqual({
      frames: [frame],
      errors: ['DECODE_FRAME_GARBAGE 3', 'DECODE_TRUNCATED 3'],
    });
    expect(skipped('87b2054862')).toEqual({
      frames: [],
      errors: ['DECODE_FRAME_GARBAGE 1', 'DECODE_TRUNCATED 4'],
    });
    expect(skipped('873205486201')).toEqual({ frames: [frame], errors: ['DECODE_FRAME_GARBAGE 1'] });
    expect(isBciFrame(parseHex('87b2054862'))).toBe(false);
    expect(isBciFrame(parseHex('87320548'))).toBe(false);
    expect(isBciFrame(parseHex('0732054862'))).toBe(false);
  });

  it('round-trips through the encoder', () => {
    const beat = { ...frame, pulseBeep: true, pulseRate: 150, pulseSearching: true };
    const bytes = encodeBciFrame(beat);
    expect(bytes).toHaveLength(BCI_FRAME_LENGTH);
    expect(toHex(bytes)).toBe('c732651662');
    expect(parseBciFrame(bytes)).toEqual(beat);
  });
});
