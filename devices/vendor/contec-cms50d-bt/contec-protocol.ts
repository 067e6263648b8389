/**
 * Contec CMS50 "live data" frames as the CMS50D-BT streams them on its vendor BLE service (ff12, notify ff02).
 * Contec publishes no document for this generation; the layout below is pieced together from independent
 * public reverse-engineering work (full list in README.md):
 *
 *   - icefest/pulseoxdl README.md and src/pulseoxdl.c `process_live()` (Contec CMS50E over USB HID, same
 *     command set): byte meanings of the 6- and 8-byte live commands, pulse rate bit 7, PI, checksum;
 *   - tobiasisenberg/OxiVis issue #2 and nringelstein/CMS50D-BT cms50d_bt_driver.py (CMS50D-BT over BLE):
 *     characteristics ff01/ff02, the start command, a captured measurement frame;
 *   - SemenKeyzer/oscar-sql oscar/SleepLib/loader_plugins/contec_ble_protocol.{h,cpp} (Contec BLE family,
 *     from the vendor app): service ff12, frame lengths by header, the 7-bit checksum;
 *   - chenders/emay-sleepo2 SPEC.md (EMAY SleepO2, same "S50" frames on the same service): captured frames.
 *
 * Every frame starts with a header byte that has bit 7 set; every other byte, the checksum included, is 7-bit.
 * The last byte is the checksum: the sum of all the frame's other bytes, masked with 0x7F.
 *
 *   Measurement (type 01, 8 bytes, about once a second):
 *     EB 01 flags PR SpO2 PI-lo PI-hi checksum
 *       flags  bit 1: pulse rate bit 7 (0x04 below 128 /min, 0x06 from 128 /min); other bits not understood
 *       PR     pulse rate bits 6-0 (/min)
 *       SpO2   0-100 %, 0x7F when the finger is out
 *       PI     perfusion index in 0.01 %, lo | hi << 7; 7F 00 on models that have no PI
 *   Pulse wave (type 00, 6 bytes, 60 a second when requested):
 *     EB 00 flags pleth bar checksum
 *       pleth  plethysmogram sample 0-127 (0x40 when the finger is out)
 *       bar    pulse bar graph 0-15 in bits 3-0 (the byte is 0x60 when the finger is out)
 *
 * Pure and allocation-light: no exceptions, no regular expressions, no state between calls.
 */
import { type FrameFormat, sum7 } from 'rpm-gateway/sdk';

/** Header byte of every live-data frame ("EB" command). */
export const CONTEC_LIVE_HEADER = 0xeb;
/** Frame type of the pulse-wave frame and its length in bytes. */
export const CONTEC_WAVE_TYPE = 0x00;
export const CONTEC_WAVE_LENGTH = 6;
/** Frame type of the measurement frame and its length in bytes. */
export const CONTEC_MEASUREMENT_TYPE = 0x01;
export const CONTEC_MEASUREMENT_LENGTH = 8;
/** SpO2 byte value sent while the finger is out of the probe. */
export const CONTEC_SPO2_FINGER_OUT = 0x7f;
/** Byte 2 bit that carries pulse rate bit 7. */
export const CONTEC_PR_HIGH_BIT_FLAG = 0x02;

/** One pulse-wave frame (EB 00). */
export interface ContecWaveFrame {
  readonly type: 'wave';
  /** Byte 2 as sent (meaning not established; 0x05 in the public test vector). */
  readonly flags: number;
  /** Byte 3: one plethysmogram sample, 0-127. */
  readonly pleth: number;
  /** Byte 4 bits 3-0: pulse bar graph, 0-15. */
  readonly barGraph: number;
  /** Byte 4 equals 0x60, which pulseoxdl reads as "finger out". */
  readonly fingerOut: boolean;
}

/** One measurement frame (EB 01). Values are the raw numbers; the driver maps the sentinels. */
export interface ContecMeasurementFrame {
  readonly type: 'measurement';
  /** Byte 2 as sent (7 bits). Bit 1 is pulse rate bit 7 and is already folded into `pulseRate`. */
  readonly flags: number;
  /** Pulse rate 0-255 /min: byte 3 plus byte 2 bit 1 as bit 7. */
  readonly pulseRate: number;
  /** Byte 4: SpO2 0-127 (%, 127 = finger out). */
  readonly spo2: number;
  /** Perfusion index in hundredths of a percent (bytes 5-6, 7 bits each, low first), or undefined for 7F 00. */
  readonly perfusionIndex: number | undefined;
}

export type ContecFrame = ContecWaveFrame | ContecMeasurementFrame;

/** The protocol's checksum: the sum of bytes [start, end) masked to 7 bits (the SDK's sum7). */
export function contecChecksum(bytes: Uint8Array, start: number, end: number): number {
  return sum7(bytes, start, end);
}

function measurementAt(b: Uint8Array, at: number): ContecMeasurementFrame {
  const flags = b[at + 2] as number;
  const piLo = b[at + 5] as number;
  const piHi = b[at + 6] as number;
  return {
    type: 'measurement',
    flags,
    pulseRate: (b[at + 3] as number) | ((flags & CONTEC_PR_HIGH_BIT_FLAG) << 6),
    spo2: b[at + 4] as number,
    perfusionIndex: piLo === 0x7f && piHi === 0 ? undefined : piLo | (piHi << 7),
  };
}

function waveAt(b: Uint8Array, at: number): ContecWaveFrame {
  const bar = b[at + 4] as number;
  return {
    type: 'wave',
    flags: b[at + 2] as number,
    pleth: b[at + 3] as number,
    barGraph: bar & 0x0f,
    fingerOut: bar === 0x60,
  };
}

/** Reply to "stop live data" (9B 7F 1A): EB 7F 6A (icefest/pulseoxdl src/exchange.h). */
export const CONTEC_STOP_ACK_TYPE = 0x7f;
export const CONTEC_STOP_ACK_LENGTH = 3;

/**
 * How the byte stream on ff02 is cut into frames: an EB header (the only byte with bit 7 set), the type byte
 * giving the length (EB 00: 6, EB 01: 8, EB 7F: 3), the last byte the 7-bit sum of the others. The SDK framer
 * reassembles frames split across notifications, and reports a frame whose checksum fails as DECODE_CHECKSUM
 * and anything else (replies to other commands such as F0/F1/F2, unknown EB types) as DECODE_FRAME_GARBAGE.
 */
export const CONTEC_FRAMING: FrameFormat = {
  sync: [CONTEC_LIVE_HEADER],
  highBitSync: true,
  length: {
    byType: {
      offset: 1,
      lengths: {
        [CONTEC_WAVE_TYPE]: CONTEC_WAVE_LENGTH,
        [CONTEC_MEASUREMENT_TYPE]: CONTEC_MEASUREMENT_LENGTH,
        [CONTEC_STOP_ACK_TYPE]: CONTEC_STOP_ACK_LENGTH,
      },
    },
  },
  checksum: { algorithm: 'sum7' },
};

/** True when `b` is exactly one well-formed frame of CONTEC_FRAMING (header, length by type, 7-bit, checksum). */
export function isContecFrame(b: Uint8Array): boolean {
  const n = b.length;
  if (n < 3 || b[0] !== CONTEC_LIVE_HEADER) return false;
  const type = b[1] as number;
  const length =
    type === CONTEC_MEASUREMENT_TYPE
      ? CONTEC_MEASUREMENT_LENGTH
      : type === CONTEC_WAVE_TYPE
        ? CONTEC_WAVE_LENGTH
        : type === CONTEC_STOP_ACK_TYPE
          ? CONTEC_STOP_ACK_LENGTH
          : 0;
  if (n !== length) return false;
  for (let i = 1; i < n; i++) if (((b[i] as number) & 0x80) !== 0) return false;
  return sum7(b, 0, n - 1) === b[n - 1];
}

/** The live-data frame in `b` (checked with isContecFrame), or undefined for the stop acknowledgement. */
export function parseContecFrame(b: Uint8Array): ContecFrame | undefined {
  const type = b[1];
  if (type === CONTEC_MEASUREMENT_TYPE) return measurementAt(b, 0);
  if (type === CONTEC_WAVE_TYPE) return waveAt(b, 0);
  return undefined;
}

/** A host-to-device command: the payload followed by its checksum (e.g. [0x9b, 0x01] -> 9B 01 1C). */
export function encodeContecCommand(payload: readonly number[]): Uint8Array {
  const out = new Uint8Array(payload.length + 1);
  let sum = 0;
  for (let i = 0; i < payload.length; i++) {
    const b = (payload[i] as number) & 0xff;
    out[i] = b;
    sum += b;
  }
  out[payload.length] = sum & 0x7f;
  return out;
}

/** Encodes a measurement frame (simulator and tests). Fields are masked to their bit widths. */
export function encodeContecMeasurement(frame: Omit<ContecMeasurementFrame, 'type'>): Uint8Array {
  const pr = frame.pulseRate & 0xff;
  const flags = (frame.flags & ~CONTEC_PR_HIGH_BIT_FLAG & 0x7f) | ((pr & 0x80) >> 6);
  const pi = frame.perfusionIndex;
  return encodeContecCommand([
    CONTEC_LIVE_HEADER,
    CONTEC_MEASUREMENT_TYPE,
    flags,
    pr & 0x7f,
    frame.spo2 & 0x7f,
    pi === undefined ? 0x7f : pi & 0x7f,
    pi === undefined ? 0 : (pi >> 7) & 0x7f,
  ]);
}

/** Encodes a pulse-wave frame (simulator and tests). `fingerOut` sends the 0x60 bar byte. */
export function encodeContecWave(frame: Omit<ContecWaveFrame, 'type'>): Uint8Array {
  return encodeContecCommand([
    CONTEC_LIVE_HEADER,
    CONTEC_WAVE_TYPE,
    frame.flags & 0x7f,
    frame.pleth & 0x7f,
    frame.fingerOut ? 0x60 : frame.barGraph & 0x0f,
  ]);
}
