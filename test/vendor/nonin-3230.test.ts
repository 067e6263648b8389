import { describe, expect, it } from 'vitest';
import driver from '../../devices/vendor/nonin-3230/driver.js';
import {
  encodeNoninFrame,
  NONIN_PULSE_MISSING,
  NONIN_SPO2_MISSING,
  NONIN_STATUS,
  type NoninFrame,
  parseNoninFrame,
} from '../../devices/vendor/nonin-3230/nonin-protocol.js';
import { DecodeError } from '../../src/errors.js';
import { parseHex, toHex } from '../../src/gatt/hex.js';

const decode = (bytes: Uint8Array) =>
  (driver.characteristics[0] as (typeof driver.characteristics)[number]).decode(bytes, {
    characteristic: '0aad7ea0-0d60-11e2-8e3c-0002a5d5c51b',
  });

const frame = (over: Partial<NoninFrame> = {}): NoninFrame => ({
  status: NONIN_STATUS.correctCheck,
  batteryDecivolts: 30,
  pai: 400,
  counter: 1,
  spo2: 97,
  pulseRate: 72,
  ...over,
});

describe('Nonin Continuous Oximetry (vendor/nonin-3230)', () => {
  it('reads every multi-byte field big-endian', () => {
    // 0x0102 = 258 read little-endian would be 513; each field is placed so that the byte order matters.
    const f = parseNoninFrame(parseHex('0a101e010200037f0102'));
    expect(f).toEqual({
      status: 0x10,
      batteryDecivolts: 30,
      pai: 258,
      counter: 3,
      spo2: 127,
      pulseRate: 258,
    });
  });

  it('round-trips through the encoder at the edges of every field', () => {
    for (const f of [
      frame(),
      frame({ pulseRate: 325, spo2: 100, pai: 10_000, counter: 65_535 }),
      frame({ pulseRate: NONIN_PULSE_MISSING, spo2: NONIN_SPO2_MISSING, pai: 0, status: 0x7f }),
      frame({ pulseRate: 256, counter: 256, pai: 255 }),
    ]) {
      expect(parseNoninFrame(encodeNoninFrame(f))).toEqual(f);
    }
    expect(toHex(encodeNoninFrame(frame()))).toBe('0a101e01900001610048');
  });

  it('never turns a missing marker or an out-of-range value into a number', () => {
    const values = (f: NoninFrame) => decode(encodeNoninFrame(f))[0]?.observations.map((o) => o.value);
    expect(values(frame({ spo2: NONIN_SPO2_MISSING, pulseRate: NONIN_PULSE_MISSING }))).toEqual([
      null,
      null,
      4,
    ]);
    expect(values(frame({ spo2: 0, pulseRate: 0, pai: 0 }))).toEqual([null, null, null]);
    expect(values(frame({ spo2: 101, pulseRate: 326, pai: 10_001 }))).toEqual([null, null, null]);
    expect(values(frame({ spo2: 1, pulseRate: 325, pai: 1 }))).toEqual([1, 325, 0.01]);
  });

  it('names the problem bits and reports a finger not placed correctly (CorrectCheck clear)', () => {
    const status = (s: number) => decode(encodeNoninFrame(frame({ status: s })))[0]?.status;
    expect(status(NONIN_STATUS.correctCheck | NONIN_STATUS.smartPoint | NONIN_STATUS.displaySync)).toEqual(
      [],
    );
    expect(status(0)).toEqual(['no-finger']);
    expect(status(0x7f)).toEqual(['weak-signal', 'pulse-searching', 'low-battery']);
  });

  it('refuses a value whose length byte disagrees, naming no measured value', () => {
    const bytes = encodeNoninFrame(frame());
    bytes[0] = 11;
    let error: unknown;
    try {
      decode(bytes);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DecodeError);
    expect((error as DecodeError).code).toBe('DECODE_INVALID_FIELD');
    expect((error as DecodeError).message).not.toMatch(/\b97\b|\b72\b/);
  });
});
