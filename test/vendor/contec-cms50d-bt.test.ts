import { describe, expect, it } from 'vitest';
import {
  CONTEC_FRAMING,
  CONTEC_MEASUREMENT_LENGTH,
  CONTEC_WAVE_LENGTH,
  type ContecFrame,
  type ContecMeasurementFrame,
  type ContecWaveFrame,
  contecChecksum,
  encodeContecCommand,
  encodeContecMeasurement,
  encodeContecWave,
  isContecFrame,
  parseContecFrame,
} from '../../devices/vendor/contec-cms50d-bt/contec-protocol.js';
import driver from '../../devices/vendor/contec-cms50d-bt/driver.js';
import { createFramer } from '../../src/drivers/sdk/framing.js';
import { DecodeError, type FrameError } from '../../src/errors.js';
import { parseHex, toHex } from '../../src/gatt/hex.js';

/** One notification through a fresh framer, then the end of the stream: the live-data frames and the errors. */
function scan(hex: string): { frames: ContecFrame[]; errors: string[] } {
  const framer = createFramer(CONTEC_FRAMING);
  const events = [...framer.push(parseHex(hex)), ...framer.end()];
  const frames: ContecFrame[] = [];
  const errors: string[] = [];
  for (const event of events) {
    if (event.error) errors.push(`${event.error.code} ${(event.error as FrameError).bytes}`);
    else {
      expect(isContecFrame(event.frame)).toBe(true);
      const frame = parseContecFrame(event.frame);
      if (frame) frames.push(frame);
    }
  }
  return { frames, errors };
}

const measurement = (
  flags: number,
  pulseRate: number,
  spo2: number,
  perfusionIndex?: number,
): ContecMeasurementFrame => ({ type: 'measurement', flags, pulseRate, spo2, perfusionIndex });

describe('Contec live-data frames (vendor/contec-cms50d-bt)', () => {
  it('computes the 7-bit checksum of the public commands and captures', () => {
    // icefest/pulseoxdl src/exchange.h; chenders/emay-sleepo2 SPEC.md command table.
    expect(toHex(encodeContecCommand([0x9b, 0x01]))).toBe('9b011c');
    expect(toHex(encodeContecCommand([0x9b, 0x00]))).toBe('9b001b');
    expect(toHex(encodeContecCommand([0x9b, 0x7f]))).toBe('9b7f1a');
    expect(toHex(encodeContecCommand([0x9a]))).toBe('9a1a');
    expect(toHex(encodeContecCommand([0x81]))).toBe('8101');
    expect(toHex(encodeContecCommand([0x8e, 0x05]))).toBe('8e0513');
    // tobiasisenberg/OxiVis issue #2 capture: the last byte is the checksum of the first seven.
    const capture = parseHex('eb010440637f0012');
    expect(contecChecksum(capture, 0, 7)).toBe(0x12);
  });

  it('decodes the OxiVis CMS50D-BT capture EB 01 04 40 63 7F 00 12', () => {
    expect(scan('eb010440637f0012')).toEqual({ frames: [measurement(4, 64, 99)], errors: [] });
  });

  it('decodes the EMAY SleepO2 captures (flags 05)', () => {
    expect(scan('eb0105445e7f0012').frames).toEqual([measurement(5, 68, 94)]);
    expect(scan('eb01053e5f7f000d').frames).toEqual([measurement(5, 62, 95)]);
  });

  it('takes pulse rate bit 7 from byte 2 bit 1', () => {
    expect(scan('eb01060a617f005c').frames).toEqual([measurement(6, 138, 97)]);
    expect(scan('eb01067f7f7f006f').frames).toEqual([measurement(6, 255, 127)]);
  });

  it('joins the two 7-bit perfusion-index halves and treats 7F 00 as absent', () => {
    expect(scan('eb010448622c0147').frames).toEqual([measurement(4, 72, 98, 172)]);
    expect(scan('eb010448627f132c').frames).toEqual([measurement(4, 72, 98, 2559)]);
    expect(scan('eb0104486200001a').frames).toEqual([measurement(4, 72, 98, 0)]);
    expect(scan('eb010448627f0019').frames).toEqual([measurement(4, 72, 98)]);
  });

  it('decodes pulse-wave frames (oscar-sql contecbleprotocoltests.cpp vector eb 00 05 40 03)', () => {
    const wave: ContecWaveFrame = { type: 'wave', flags: 5, pleth: 0x40, barGraph: 3, fingerOut: false };
    expect(scan('eb0005400333')).toEqual({ frames: [wave], errors: [] });
    expect(scan('eb0005406010').frames).toEqual([
      { type: 'wave', flags: 5, pleth: 0x40, barGraph: 0, fingerOut: true },
    ]);
  });

  it('finds every frame of a 20-byte notification in order', () => {
    const { frames, errors } = scan('eb0005300525eb010448627f0019eb0005320527');
    expect(frames.map((f) => f.type)).toEqual(['wave', 'measurement', 'wave']);
    expect(errors).toEqual([]);
  });

  it('reports stray bytes and replies to other commands as garbage, counting them', () => {
    // oscar-sql: 11 22, an F1 reply of 10 bytes, two wave frames.
    const scanned = scan('1122f1414243444546474815eb0005400333eb0005400333');
    expect(scanned.frames).toHaveLength(2);
    expect(scanned.errors).toEqual(['DECODE_FRAME_GARBAGE 12']);
    // pulseoxdl: EB 7F 6A is the stop acknowledgement: a well-formed frame without live data.
    expect(scan('eb7f6a')).toEqual({ frames: [], errors: [] });
    // EB 02 is an 8-byte type of unknown meaning.
    expect(scan('eb020448627f001a')).toEqual({ frames: [], errors: ['DECODE_FRAME_GARBAGE 8'] });
  });

  it('reports cut, broken and corrupted frames but keeps the next good one', () => {
    expect(scan('eb01044063')).toEqual({ frames: [], errors: ['DECODE_TRUNCATED 5'] });
    expect(scan('eb010440637f00')).toEqual({ frames: [], errors: ['DECODE_TRUNCATED 7'] });
    expect(scan('eb')).toEqual({ frames: [], errors: ['DECODE_TRUNCATED 1'] });
    expect(scan('eb010440637f0013')).toEqual({ frames: [], errors: ['DECODE_CHECKSUM 8'] });
    expect(scan('eb0104c0637f0012eb010440637f0012')).toEqual({
      frames: [measurement(4, 64, 99)],
      errors: ['DECODE_FRAME_GARBAGE 8'],
    });
    expect(scan('7f0012eb01060a617f005c')).toEqual({
      frames: [measurement(6, 138, 97)],
      errors: ['DECODE_FRAME_GARBAGE 3'],
    });
    const framer = createFramer(CONTEC_FRAMING);
    expect([...framer.push(new Uint8Array(0)), ...framer.end()]).toEqual([]);
  });

  it('reassembles a measurement frame split across two notifications', () => {
    const framer = createFramer(CONTEC_FRAMING);
    expect(framer.push(parseHex('eb0104'))).toEqual([]);
    const [event] = framer.push(parseHex('40637f0012'));
    expect(event?.frame && parseContecFrame(event.frame)).toEqual(measurement(4, 64, 99));
  });

  it('round-trips through the encoders', () => {
    for (const f of [measurement(4, 64, 99), measurement(6, 200, 91, 1234), measurement(5, 30, 100, 1)]) {
      const bytes = encodeContecMeasurement(f);
      expect(bytes).toHaveLength(CONTEC_MEASUREMENT_LENGTH);
      expect(parseContecFrame(bytes)).toEqual(f);
    }
    expect(toHex(encodeContecMeasurement(measurement(4, 64, 99)))).toBe('eb010440637f0012');
    expect(toHex(encodeContecMeasurement(measurement(4, 138, 97)))).toBe('eb01060a617f005c');
    const wave = { flags: 5, pleth: 0x40, barGraph: 3, fingerOut: false };
    expect(encodeContecWave(wave)).toHaveLength(CONTEC_WAVE_LENGTH);
    expect(toHex(encodeContecWave(wave))).toBe('eb0005400333');
  });
});

describe('vendor/contec-cms50d-bt driver', () => {
  const decode = (hex: string) =>
    (driver.characteristics[0] as (typeof driver.characteristics)[number]).decode(parseHex(hex), {
      characteristic: '0000ff02-0000-1000-8000-00805f9b34fb',
    });

  it('reports PR, SpO2 and PI in payload order', () => {
    expect(decode('eb010448622c0147')).toEqual([
      {
        observations: [
          { code: 'MDC_PULS_OXIM_PULS_RATE', value: 72, unit: '/min' },
          { code: 'MDC_PULS_OXIM_SAT_O2', value: 98, unit: '%' },
          { code: 'MDC_PULS_OXIM_PERF_REL', value: 1.72, unit: '%' },
        ],
        time: null,
        status: [],
        kind: 'measurement',
        details: { flags: 4 },
      },
    ]);
  });

  it('maps finger-out and no-value sentinels to null with a reason', () => {
    const [reading] = decode('eb01067f7f7f006f');
    expect(reading?.observations).toEqual([
      { code: 'MDC_PULS_OXIM_PULS_RATE', value: null, unit: '/min', invalid: 'nan' },
      { code: 'MDC_PULS_OXIM_SAT_O2', value: null, unit: '%', invalid: 'nan' },
    ]);
    expect(reading?.status).toEqual(['no-finger']);
  });

  it('gives no reading for wave frames and the stop acknowledgement, and refuses what is not one frame', () => {
    expect(decode('eb0005400333')).toEqual([]);
    expect(decode('eb7f6a')).toEqual([]);
    for (const hex of ['0b010440637f0012', 'eb010440637f0013', 'eb010440637f0012eb', 'eb0104c0637f0012']) {
      expect(() => decode(hex), hex).toThrow(DecodeError);
    }
  });

  it('declares its stream framing', () => {
    expect(driver.characteristics[0]?.framing).toBe(CONTEC_FRAMING);
  });

  it('asks for the measurement stream once and repeats the heartbeat inside the 5 s the device waits', () => {
    // The stream stops unless 9A 1A arrives about every 5 s (pulseoxdl; nringelstein/CMS50D-BT): the start
    // command is written once, the heartbeat repeated at a shorter period, and the quirk says why.
    expect(
      driver.setup?.map((w) => ({
        value: w.value instanceof Uint8Array ? toHex(w.value) : 'computed',
        repeatEveryMs: w.repeatEveryMs,
      })),
    ).toStrictEqual([
      { value: '9b011c', repeatEveryMs: undefined },
      { value: '9a1a', repeatEveryMs: 4_000 },
    ]);
    expect(driver.quirks?.heartbeatRequired?.reason).toMatch(/9A 1A/);
  });
});
