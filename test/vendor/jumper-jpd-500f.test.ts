import { describe, expect, it } from 'vitest';
import driver from '../../devices/vendor/jumper-jpd-500f/driver.js';
import {
  encodeJumperParameters,
  JUMPER_FRAMING,
  JUMPER_NOTIFY,
  type JumperParameters,
  parseJumperParameters,
} from '../../devices/vendor/jumper-jpd-500f/jumper-protocol.js';
import { createFramer } from '../../src/drivers/sdk/framing.js';
import { DecodeError, type FrameError } from '../../src/errors.js';
import { parseHex, toHex } from '../../src/gatt/hex.js';

const spec = driver.characteristics[0] as (typeof driver.characteristics)[number];
const decode = (bytes: Uint8Array) => spec.decode(bytes, { characteristic: JUMPER_NOTIFY });

/** Notifications of one connection through a fresh framer: the frames (hex) and the errors, in order. */
function scan(notifications: string[]): string[] {
  const framer = createFramer(JUMPER_FRAMING);
  const events = [...notifications.flatMap((n) => framer.push(parseHex(n))), ...framer.end()];
  return events.map((e) => (e.error ? `${e.error.code} ${(e.error as FrameError).bytes}` : toHex(e.frame)));
}

describe('Jumper JPD-500F frames (vendor/jumper-jpd-500f)', () => {
  it('round-trips parameter frames through the encoder, PR above 127 included', () => {
    for (const p of [
      { pulseRate: 56, spo2: 99, perfusionIndex: 68 },
      { pulseRate: 254, spo2: 100, perfusionIndex: 200 },
      { pulseRate: 255, spo2: 127, perfusionIndex: 0 },
    ] satisfies JumperParameters[]) {
      expect(parseJumperParameters(encodeJumperParameters(p))).toEqual(p);
    }
    expect(toHex(encodeJumperParameters({ pulseRate: 56, spo2: 99, perfusionIndex: 68 }))).toBe('81386344');
  });

  it('cuts 0x81 frames out of any notification boundaries and reports the bytes of other frame types', () => {
    // A 0x80 frame (layout undocumented; placeholder bytes) split across notifications between two frames.
    expect(scan(['813863', '4480404a', '5258813962', '45'])).toEqual([
      '81386344',
      'DECODE_FRAME_GARBAGE 3',
      'DECODE_FRAME_GARBAGE 2',
      '81396245',
    ]);
  });

  it('declares its stream framing', () => {
    expect(spec.framing).toBe(JUMPER_FRAMING);
  });

  it('never turns a no-value marker into a number', () => {
    const values = (p: JumperParameters) =>
      decode(encodeJumperParameters(p))[0]?.observations.map((o) => o.value);
    expect(values({ pulseRate: 255, spo2: 127, perfusionIndex: 0 })).toEqual([null, null, null]);
    expect(values({ pulseRate: 0, spo2: 0, perfusionIndex: 0 })).toEqual([null, null, null]);
    expect(values({ pulseRate: 60, spo2: 101, perfusionIndex: 1 })).toEqual([null, 60, 0.1]);
    expect(values({ pulseRate: 254, spo2: 100, perfusionIndex: 255 })).toEqual([100, 254, 25.5]);
  });

  it('refuses anything but one parameter frame', () => {
    for (const hex of ['80404a52', '813863', '8138634481']) {
      expect(() => decode(parseHex(hex))).toThrow(DecodeError);
    }
  });
});
