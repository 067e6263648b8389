import { describe, expect, it } from 'vitest';
import { crc8Maxim, crc16Modbus, sum7 } from '../../src/drivers/sdk/checksums.js';
import {
  createFramer,
  type FrameEvent,
  type FrameFormat,
  type Framer,
  framingProblems,
  type StreamDecoder,
} from '../../src/drivers/sdk/framing.js';
import { DecodeError, FrameError } from '../../src/errors.js';

/**
 * The SDK's framer: frames split across notifications, merged into one, garbage between them, bad checksums,
 * oversized lengths, the buffer bound. Property tests use a seeded xorshift generator, so every run feeds the
 * same bytes and a failure can be replayed.
 */

function xorshift(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const frames = (events: FrameEvent[]) => events.flatMap((e) => (e.frame ? [hex(e.frame)] : []));
const errors = (events: FrameEvent[]) =>
  events.flatMap((e) => (e.error ? [{ code: e.error.code, bytes: (e.error as FrameError).bytes }] : []));

function feed(framer: Framer, chunks: readonly Uint8Array[], options?: { bound?: number }): FrameEvent[] {
  const out: FrameEvent[] = [];
  for (const chunk of chunks) {
    out.push(...framer.push(chunk));
    if (options?.bound !== undefined) expect(framer.pending).toBeLessThanOrEqual(options.bound);
  }
  out.push(...framer.end());
  return out;
}

function cut(stream: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < stream.length; i += size) out.push(stream.slice(i, i + size));
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

/**
 * A frame shaped like the ones issue 13 describes for the Wellue PC-60FW family: AA 55 | token | length | type |
 * payload | CRC-8/MAXIM, the length counting type, payload and CRC. Used here as a test format only.
 */
const AA55: FrameFormat = {
  sync: [0xaa, 0x55],
  length: { field: { offset: 3, width: 1, counts: { from: 4 } } },
  checksum: { algorithm: 'crc8-maxim' },
  maxLength: 64,
};

function aa55(token: number, type: number, payload: readonly number[]): Uint8Array {
  const body = [0xaa, 0x55, token, payload.length + 2, type, ...payload];
  const bytes = Uint8Array.from([...body, 0]);
  bytes[bytes.length - 1] = crc8Maxim(bytes, 0, body.length);
  return bytes;
}

/** BerryMed BCI: 5-byte frames, bit 7 set on the first byte only, no checksum. */
const BCI: FrameFormat = { highBitSync: true, length: { fixed: 5 } };

/** Contec live data: EB header, length by type byte, 7-bit bytes, last byte sum & 0x7F. */
const CONTEC: FrameFormat = {
  sync: [0xeb],
  highBitSync: true,
  length: { byType: { offset: 1, lengths: { 0: 6, 1: 8, 127: 3 } } },
  checksum: { algorithm: 'sum7' },
};

describe('declarative frame format', () => {
  const params = aa55(0x0f, 0x01, [98, 72, 0, 30, 0, 0]);
  const wave = aa55(0x0f, 0x02, [10, 20, 30, 40, 50]);

  it('hands out a whole frame sent in one notification', () => {
    const events = createFramer(AA55).push(params);
    expect(frames(events)).toEqual([hex(params)]);
    expect(errors(events)).toEqual([]);
  });

  it('reassembles a frame split at every possible point', () => {
    for (let at = 1; at < params.length; at++) {
      const framer = createFramer(AA55);
      expect(framer.push(params.subarray(0, at))).toEqual([]);
      expect(framer.pending).toBe(at);
      expect(frames(framer.push(params.subarray(at)))).toEqual([hex(params)]);
      expect(framer.pending).toBe(0);
    }
  });

  it('splits several frames merged into one notification, in order', () => {
    const events = createFramer(AA55).push(concat([params, wave, wave, params]));
    expect(frames(events)).toEqual([hex(params), hex(wave), hex(wave), hex(params)]);
    expect(errors(events)).toEqual([]);
  });

  it('reports garbage between frames once, with its byte count, and keeps the frames around it', () => {
    const events = createFramer(AA55).push(concat([params, Uint8Array.of(1, 2, 3, 0xaa), wave]));
    expect(events.map((e) => (e.frame ? 'frame' : e.error?.code))).toEqual([
      'frame',
      'DECODE_FRAME_GARBAGE',
      'frame',
    ]);
    expect(errors(events)).toEqual([{ code: 'DECODE_FRAME_GARBAGE', bytes: 4 }]);
    const garbage = events[1]?.error as FrameError;
    expect(garbage).toBeInstanceOf(FrameError);
    expect(garbage.offset).toBe(params.length);
    expect(garbage.toJSON()).toMatchObject({ code: 'DECODE_FRAME_GARBAGE', bytes: 4, offset: params.length });
  });

  it('reports a bad checksum as DECODE_CHECKSUM with the frame size, and decodes the next frame', () => {
    const bad = params.slice();
    bad[6] = (bad[6] as number) ^ 0x01;
    const events = createFramer(AA55).push(concat([bad, wave]));
    expect(events.map((e) => (e.frame ? 'frame' : e.error?.code))).toEqual(['DECODE_CHECKSUM', 'frame']);
    expect(errors(events)).toEqual([{ code: 'DECODE_CHECKSUM', bytes: params.length }]);
    expect(events[0]?.error?.message).toBe(
      'a 12-byte frame fails its CRC-8/MAXIM-DOW checksum and is dropped (at byte 0)',
    );
    expect(frames(events)).toEqual([hex(wave)]);
  });

  it('does not let a false sync inside garbage swallow the real frame behind it', () => {
    // AA 55 xx 09 in the noise announces a 13-byte frame that would run into the real one; its checksum fails
    // and the framer resumes at the real frame's sync, inside the rejected bytes.
    const noise = Uint8Array.of(0xaa, 0x55, 0x00, 0x09, 0x01);
    const events = createFramer(AA55).push(concat([noise, params]));
    expect(frames(events)).toEqual([hex(params)]);
    expect(errors(events)).toEqual([{ code: 'DECODE_CHECKSUM', bytes: noise.length }]);
  });

  it('refuses a length above maxLength (DECODE_FRAME_TOO_LONG) and resyncs on the next frame', () => {
    const events = createFramer(AA55).push(concat([Uint8Array.of(0xaa, 0x55, 0x0f, 0xf0, 0x01), params]));
    expect(errors(events)).toEqual([{ code: 'DECODE_FRAME_TOO_LONG', bytes: 5 }]);
    expect(frames(events)).toEqual([hex(params)]);
  });

  it('never holds more than maxLength bytes, whatever arrives', () => {
    const framer = createFramer(AA55);
    const random = xorshift(0xb0_0d);
    for (let n = 0; n < 2_000; n++) {
      const chunk = Uint8Array.from({ length: 1 + Math.floor(random() * 40) }, () =>
        random() < 0.2 ? 0xaa : random() < 0.25 ? 0x55 : Math.floor(random() * 256),
      );
      framer.push(chunk);
      expect(framer.pending).toBeLessThan(64);
    }
  });

  it('reports an unfinished frame at the end of the stream as DECODE_TRUNCATED', () => {
    const framer = createFramer(AA55);
    framer.push(params.subarray(0, 7));
    expect(errors(framer.end())).toEqual([{ code: 'DECODE_TRUNCATED', bytes: 7 }]);
    expect(framer.pending).toBe(0);
    expect(framer.end()).toEqual([]);
  });

  it('at the end of the stream, still hands out whole frames held behind a false sync', () => {
    // AA 55 55 37 in the noise announces a 59-byte frame; the stream ends before 59 bytes arrive.
    const framer = createFramer(AA55);
    expect(framer.push(concat([Uint8Array.of(0xaa, 0x55, 0x55, 0x37), params, wave]))).toEqual([]);
    const events = framer.end();
    expect(errors(events)).toEqual([{ code: 'DECODE_TRUNCATED', bytes: 4 }]);
    expect(frames(events)).toEqual([hex(params), hex(wave)]);
  });

  it('reads 2-byte little-endian lengths and a little-endian CRC-16/MODBUS', () => {
    const format: FrameFormat = {
      sync: [0x7e],
      length: { field: { offset: 1, width: 2, endian: 'little' } },
      checksum: { algorithm: 'crc16-modbus', from: 1, endian: 'little' },
      maxLength: 300,
    };
    // Payload bytes stay below 0x7e: a sync byte inside would be a candidate the framer resyncs to after a bad CRC.
    const body = [0x7e, 0, 0, ...Array.from({ length: 260 }, (_, i) => i % 0x7e)];
    const total = body.length + 2;
    body[1] = total & 0xff;
    body[2] = total >> 8;
    const frame = Uint8Array.from([...body, 0, 0]);
    const crc = crc16Modbus(frame, 1, body.length);
    frame[body.length] = crc & 0xff;
    frame[body.length + 1] = crc >> 8;
    expect(frames(feed(createFramer(format), cut(frame, 20)))).toEqual([hex(frame)]);
    const swapped = frame.slice();
    swapped[body.length] = crc >> 8;
    swapped[body.length + 1] = crc & 0xff;
    expect(errors(createFramer(format).push(swapped))).toEqual([{ code: 'DECODE_CHECKSUM', bytes: total }]);
  });

  it('applies the 7-bit rule: a byte with bit 7 set inside a frame breaks it there', () => {
    const events = createFramer(BCI).push(
      Uint8Array.of(0x87, 0xb2, 0x05, 0x48, 0x62, 0x87, 0x32, 0x05, 0x48, 0x62),
    );
    // 87 is broken by b2, b2 05 48 62 by the next 87: five bytes of garbage, then the whole frame.
    expect(errors(events)).toEqual([{ code: 'DECODE_FRAME_GARBAGE', bytes: 5 }]);
    expect(frames(events)).toEqual(['8732054862']);
  });

  it('takes the length from a type byte, and an unknown type starts no frame', () => {
    const framer = createFramer(CONTEC);
    const events = framer.push(
      Uint8Array.of(0xeb, 0x02, 0x04, 0xeb, 0x7f, 0x6a, 0xeb, 0x00, 0x05, 0x40, 0x03, 0x33),
    );
    expect(frames(events)).toEqual(['eb7f6a', 'eb0005400333']);
    expect(errors(events)).toEqual([{ code: 'DECODE_FRAME_GARBAGE', bytes: 3 }]);
    expect(sum7(Uint8Array.of(0xeb, 0x00, 0x05, 0x40, 0x03))).toBe(0x33);
  });
});

describe('framer properties (seeded)', () => {
  const formats: {
    name: string;
    format: FrameFormat;
    make: (r: () => number) => Uint8Array;
    noise: (r: () => number) => number;
  }[] = [
    {
      name: 'AA 55 + length + CRC-8/MAXIM',
      format: AA55,
      make: (r) =>
        aa55(
          0x0f,
          1 + Math.floor(r() * 2),
          Array.from({ length: Math.floor(r() * 20) }, () => Math.floor(r() * 256)),
        ),
      // Noise without the first sync byte: it cannot pose as a frame start.
      noise: (r) => {
        const b = Math.floor(r() * 255);
        return b >= 0xaa ? b + 1 : b;
      },
    },
    {
      name: 'BCI 7-bit, fixed 5',
      format: BCI,
      make: (r) =>
        Uint8Array.of(
          0x80 | Math.floor(r() * 128),
          ...Array.from({ length: 4 }, () => Math.floor(r() * 128)),
        ),
      noise: (r) => Math.floor(r() * 128),
    },
    {
      name: 'Contec by type + sum7',
      format: CONTEC,
      make: (r) => {
        const type = r() < 0.5 ? 0x00 : 0x01;
        const body = [0xeb, type, ...Array.from({ length: type === 0 ? 3 : 5 }, () => Math.floor(r() * 128))];
        return Uint8Array.from([...body, sum7(Uint8Array.from(body))]);
      },
      noise: (r) => Math.floor(r() * 128),
    },
  ];

  for (const { name, format, make, noise } of formats) {
    it(`${name}: random cut points yield exactly the frames sent whole`, () => {
      const random = xorshift(0x1234_5678);
      for (let run = 0; run < 200; run++) {
        const sent = Array.from({ length: 1 + Math.floor(random() * 30) }, () => make(random));
        const stream = concat(sent);
        const chunks: Uint8Array[] = [];
        for (let i = 0; i < stream.length; ) {
          const size = 1 + Math.floor(random() * 70);
          chunks.push(stream.slice(i, i + size));
          i += size;
        }
        const events = feed(createFramer(format), chunks, { bound: 64 });
        expect(errors(events), `run ${run}`).toEqual([]);
        expect(frames(events), `run ${run}`).toEqual(sent.map(hex));
      }
    });

    it(`${name}: garbage between frames yields the same frames plus garbage errors covering it exactly`, () => {
      const random = xorshift(0x0bad_f00d);
      for (let run = 0; run < 200; run++) {
        const sent = Array.from({ length: 1 + Math.floor(random() * 30) }, () => make(random));
        let garbageBytes = 0;
        const parts: Uint8Array[] = [];
        for (const frame of sent) {
          if (random() < 0.3) {
            const g = Uint8Array.from({ length: 1 + Math.floor(random() * 12) }, () => noise(random));
            garbageBytes += g.length;
            parts.push(g);
          }
          parts.push(frame);
        }
        const events = feed(createFramer(format), cut(concat(parts), 1 + Math.floor(random() * 64)));
        expect(frames(events), `run ${run}`).toEqual(sent.map(hex));
        const errs = errors(events);
        expect(
          errs.every((e) => e.code === 'DECODE_FRAME_GARBAGE'),
          `run ${run}`,
        ).toBe(true);
        expect(
          errs.reduce((sum, e) => sum + e.bytes, 0),
          `run ${run}`,
        ).toBe(garbageBytes);
      }
    });
  }

  it('AA 55: noise rich in sync bytes loses a good frame only to a false frame that passed CRC-8 by chance', () => {
    const random = xorshift(0x5eed);
    const make = formats[0]?.make as (r: () => number) => Uint8Array;
    let insertions = 0;
    let forgedTotal = 0;
    for (let run = 0; run < 300; run++) {
      const sent = Array.from({ length: 1 + Math.floor(random() * 20) }, () => make(random));
      let noiseBytes = 0;
      const parts: Uint8Array[] = [];
      for (const frame of sent) {
        if (random() < 0.5) {
          const g = Uint8Array.from({ length: 1 + Math.floor(random() * 4) }, () =>
            random() < 0.5 ? (random() < 0.5 ? 0xaa : 0x55) : Math.floor(random() * 256),
          );
          insertions++;
          noiseBytes += g.length;
          parts.push(g);
        }
        parts.push(frame);
      }
      const events = feed(createFramer(AA55), cut(concat(parts), 20), { bound: 64 });
      const got = frames(events);
      // Greedy in-order matching of the sent frames against what came out.
      let at = 0;
      let found = 0;
      for (const f of sent.map(hex)) {
        const next = got.indexOf(f, at);
        if (next >= 0) {
          found++;
          at = next + 1;
        }
      }
      const lost = sent.length - found;
      const forged = got.length - found;
      forgedTotal += forged;
      expect(lost, `run ${run}`).toBeLessThanOrEqual(forged);
      if (forged === 0) {
        const reported = errors(events).reduce((sum, e) => sum + e.bytes, 0);
        expect(reported, `run ${run}`).toBe(noiseBytes);
      }
    }
    // A false frame needs a sync pair, a plausible length and a 1-in-256 CRC match.
    expect(forgedTotal).toBeLessThan(insertions / 50);
  });
});

describe('stateful stream decoders', () => {
  /** Newline-delimited text records: a protocol a FrameFormat cannot express. */
  const lines = () => {
    let held: number[] = [];
    const decoder: StreamDecoder = {
      push(bytes) {
        const out: FrameEvent[] = [];
        for (const b of bytes) {
          if (b === 0x0a) {
            out.push({ frame: Uint8Array.from(held) });
            held = [];
          } else if (b === 0xff) {
            throw new Error('boom');
          } else held.push(b);
        }
        return out;
      },
      get pending() {
        return held.length;
      },
    };
    return decoder;
  };

  it('runs the driver decoder per connection and hands its frames out', () => {
    const framer = createFramer({ stream: lines, maxLength: 16 });
    expect(frames(framer.push(Uint8Array.of(0x41, 0x42)))).toEqual([]);
    expect(frames(framer.push(Uint8Array.of(0x43, 0x0a, 0x44, 0x0a)))).toEqual(['414243', '44']);
  });

  it('bounds it: holding more than maxLength is DECODE_FRAME_TOO_LONG and a fresh decoder', () => {
    const framer = createFramer({ stream: lines, maxLength: 16 });
    expect(errors(framer.push(new Uint8Array(20).fill(0x41)))).toEqual([
      { code: 'DECODE_FRAME_TOO_LONG', bytes: 20 },
    ]);
    expect(framer.pending).toBe(0);
    expect(frames(framer.push(Uint8Array.of(0x45, 0x0a)))).toEqual(['45']);
  });

  it('turns a decoder that throws (a driver bug) into one error and a fresh decoder', () => {
    const framer = createFramer({ stream: lines, maxLength: 16 });
    const events = framer.push(Uint8Array.of(0x41, 0xff, 0x42));
    expect(errors(events)).toEqual([{ code: 'DECODE_INVALID_FIELD', bytes: 3 }]);
    expect(events[0]?.error).toBeInstanceOf(DecodeError);
    expect(events[0]?.error?.message).not.toContain('boom');
    expect(frames(framer.push(Uint8Array.of(0x43, 0x0a)))).toEqual(['43']);
  });

  it('reports an unfinished record at the end of the stream', () => {
    const framer = createFramer({ stream: lines, maxLength: 16 });
    framer.push(Uint8Array.of(0x41));
    expect(errors(framer.end())).toEqual([{ code: 'DECODE_TRUNCATED', bytes: 1 }]);
  });
});

describe('framing declarations', () => {
  it('refuses what it cannot run', () => {
    expect(framingProblems({ length: { fixed: 5 } })).toEqual([
      'a frame format needs sync bytes or highBitSync (use a stream decoder otherwise)',
    ]);
    expect(framingProblems({ sync: [0xaa], length: { field: { offset: 1, width: 1 } } })).toEqual([
      'a length field needs maxLength (it bounds the buffer)',
    ]);
    expect(
      framingProblems({ sync: [0xaa], length: { field: { offset: 1, width: 2 } }, maxLength: 10 }),
    ).toEqual(["a 2-byte length field needs endian 'little' or 'big'"]);
    expect(
      framingProblems({ sync: [0xaa], length: { fixed: 4 }, checksum: { algorithm: 'crc16-modbus' } }),
    ).toEqual(["a 2-byte checksum needs endian 'little' or 'big'"]);
    expect(framingProblems({ highBitSync: true, sync: [0x12], length: { fixed: 4 } })).toEqual([
      'sync[0] breaks the highBitSync rule (bit 7 set on the first byte only)',
    ]);
    expect(framingProblems({ sync: [0xaa], length: { fixed: 10 }, maxLength: 5 })).toEqual([
      'maxLength is below the longest frame',
    ]);
    expect(framingProblems({ stream: lines0, maxLength: 0 })).toEqual([
      'maxLength must be an integer from 1 to 65536',
    ]);
    expect(() => createFramer({ length: { fixed: 5 } })).toThrow(TypeError);
    expect(framingProblems(AA55)).toEqual([]);
    expect(framingProblems(BCI)).toEqual([]);
    expect(framingProblems(CONTEC)).toEqual([]);
  });
});

function lines0(): StreamDecoder {
  return { push: () => [], pending: 0 };
}
