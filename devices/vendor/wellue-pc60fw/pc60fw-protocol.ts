/**
 * The frames of the Wellue/Viatom PC-60FW family (Creative Medical's "AP-20"/"PC-60F" protocol: PC-60FW, PC-60F,
 * PC-60E, OxySmart, BabyOximeter, OxyKnight) on the Nordic UART service. Sources (full list in README.md):
 *
 *   - Viatom's Android SDK, viatomEcho/LepuBle: blepro/.../ble/cmd/PC60FwBleResponse.kt (frame classes, the
 *     RtDataParam and RtDataWave layouts), ble/Pc60FwBleInterface.kt `hasResponse` (the stream reassembler:
 *     AA 55, then 4 + length bytes), utils/CrcUtil.java `calCRC8Pc` (CRC-8/MAXIM over the frame before the CRC);
 *   - Creative Medical's iOS SDK, viatom-dev/iOSPC60F: SDK/CRAP20SDK.h `CRAP_20Spo2State` (status bits),
 *     SDK/CRBlueToothManager.m `getServiceIDForPeriName` (names on the Nordic UART service);
 *   - sycophantic/pc60fw_pulseox raw_data.txt and spo2_combined.csv (raw notifications of a PC-60FW).
 *
 *   AA 55 | token | length | type | content[length - 2] | CRC-8/MAXIM
 *     token   0F pulse-oximeter data, F0 equipment information
 *     length  counts type + content + CRC, so the frame is 4 + length bytes
 *     CRC     CRC-8/MAXIM-DOW over every byte from AA to the last content byte
 *
 *   0F 01 parameters, once a second: SpO2 u8 (%), PR u16 LE (/min), PI u8 (0.1 %), status u8, one more byte
 *         (not parsed by either vendor SDK; kept opaque)
 *   0F 02 pulse wave, about ten a second: 5 samples, bits 6-0 the sample, bit 7 a beat marker
 *   0F 21 working status, F0 03 battery level (0-3), F0 01/02/21 replies to info requests: no coded value
 *
 * Pure: no exceptions, no state between calls.
 */
import { crc8Maxim, type FrameFormat } from 'rpm-gateway/sdk';

export const PC60FW_SYNC = [0xaa, 0x55] as const;
/** Token of pulse-oximeter data frames ("PO" in PC60FwBleResponse.kt). */
export const PC60FW_TOKEN_OXIMETER = 0x0f;
/** Token of equipment-information frames ("EPI"): battery, device info, serial number. */
export const PC60FW_TOKEN_DEVICE = 0xf0;
export const PC60FW_TYPE_PARAMETERS = 0x01;
export const PC60FW_TYPE_WAVE = 0x02;
export const PC60FW_TYPE_WORK_STATUS = 0x21;
export const PC60FW_TYPE_BATTERY = 0x03;
/** Content bytes of a parameter frame (length 8: type + 6 + CRC). */
export const PC60FW_PARAMETERS_CONTENT = 6;
/** Samples in a pulse-wave frame (length 7: type + 5 + CRC). */
export const PC60FW_WAVE_SAMPLES = 5;
/** Smallest frame: AA 55 token length type CRC (length 2, no content). */
const MIN_FRAME = 6;

/**
 * The longest frame the hub accepts. The longest frames documented are the device-information replies (version
 * bytes and an ASCII model name: 15 bytes for "PC-60NW" in the PC-60NW capture cited in README.md); 64 leaves room
 * for longer names, while a false AA 55 in noise, whose "length" is any byte, is refused at once instead of
 * holding up to 259 bytes.
 */
export const PC60FW_MAX_FRAME = 64;

/** Status bits of the parameter frame, bit 0 first (CRAP20SDK.h `CRAP_20Spo2State`). */
export const PC60FW_STATUS_BITS: readonly string[] = Object.freeze([
  'probe-disconnected',
  'probe-off',
  'pulse-searching',
  'check-probe',
  'motion',
  'low-perfusion',
]);
/** Status bits with which the numbers are not a measurement (the Lepu SDK reads exactly these two). */
export const PC60FW_STATUS_NO_READING = 0x02 | 0x04;

/**
 * How the stream on 6E400003 is cut into frames: AA 55 sync, the length byte at offset 3 counting the bytes from
 * offset 4 (type) to the end (CRC included), CRC-8/MAXIM over the bytes before it (Pc60FwBleInterface.kt
 * `hasResponse`, CrcUtil.java `calCRC8Pc`).
 */
export const PC60FW_FRAMING: FrameFormat = {
  sync: [...PC60FW_SYNC],
  length: { field: { offset: 3, width: 1, counts: { from: 4 } } },
  checksum: { algorithm: 'crc8-maxim' },
  maxLength: PC60FW_MAX_FRAME,
};

/** One parameter frame (0F 01), raw numbers; the driver maps the "no value" cases. */
export interface Pc60fwParameters {
  readonly spo2: number;
  readonly pulseRate: number;
  /** Perfusion index in tenths of a percent. */
  readonly perfusionIndex: number;
  readonly status: number;
  /** The sixth content byte (c0 or 80 in the PC-60FW captures, 38 or 18 on the PC-60NW); meaning not published. */
  readonly extra: number;
}

/** One pulse-wave frame (0F 02). */
export interface Pc60fwWave {
  /** Samples 0-127 (bits 6-0). */
  readonly samples: readonly number[];
  /** Per sample, whether bit 7 (the beat marker) was set. */
  readonly beats: readonly boolean[];
}

/** Why `b` is not one whole, checksum-valid frame, or undefined when it is one. */
export function pc60fwFrameProblem(b: Uint8Array): string | undefined {
  if (b.length < MIN_FRAME) return `a frame has at least ${MIN_FRAME} bytes, got ${b.length}`;
  if (b[0] !== PC60FW_SYNC[0] || b[1] !== PC60FW_SYNC[1]) return 'a frame starts with AA 55';
  const length = b[3] as number;
  if (b.length !== 4 + length) return `the length byte announces ${4 + length} bytes, got ${b.length}`;
  if (crc8Maxim(b, 0, b.length - 1) !== b[b.length - 1]) return 'the CRC-8/MAXIM does not match';
  return undefined;
}

/** The frame's token and type bytes. */
export function frameKind(b: Uint8Array): { token: number; type: number } {
  return { token: b[2] as number, type: b[4] as number };
}

/** The parameter content of a 0F 01 frame, or undefined when its content is not the 6 bytes documented. */
export function parseParameters(b: Uint8Array): Pc60fwParameters | undefined {
  if (b.length !== MIN_FRAME + PC60FW_PARAMETERS_CONTENT) return undefined;
  return {
    spo2: b[5] as number,
    pulseRate: (b[6] as number) | ((b[7] as number) << 8),
    perfusionIndex: b[8] as number,
    status: b[9] as number,
    extra: b[10] as number,
  };
}

/** The samples of a 0F 02 frame, or undefined when it does not carry 5 of them. */
export function parseWave(b: Uint8Array): Pc60fwWave | undefined {
  if (b.length !== MIN_FRAME + PC60FW_WAVE_SAMPLES) return undefined;
  const raw = [...b.subarray(5, 5 + PC60FW_WAVE_SAMPLES)];
  return { samples: raw.map((v) => v & 0x7f), beats: raw.map((v) => (v & 0x80) !== 0) };
}

/** A whole frame: AA 55 token length type content CRC (simulator, tests, host commands). */
export function encodePc60fwFrame(token: number, type: number, content: readonly number[]): Uint8Array {
  const out = new Uint8Array(MIN_FRAME + content.length);
  out.set([PC60FW_SYNC[0], PC60FW_SYNC[1], token & 0xff, (content.length + 2) & 0xff, type & 0xff], 0);
  out.set(
    content.map((v) => v & 0xff),
    5,
  );
  out[out.length - 1] = crc8Maxim(out, 0, out.length - 1);
  return out;
}

export function encodeParameters(p: Pc60fwParameters): Uint8Array {
  return encodePc60fwFrame(PC60FW_TOKEN_OXIMETER, PC60FW_TYPE_PARAMETERS, [
    p.spo2,
    p.pulseRate & 0xff,
    (p.pulseRate >> 8) & 0xff,
    p.perfusionIndex,
    p.status,
    p.extra,
  ]);
}

export function encodeWave(w: Pc60fwWave): Uint8Array {
  return encodePc60fwFrame(
    PC60FW_TOKEN_OXIMETER,
    PC60FW_TYPE_WAVE,
    w.samples.map((s, i) => (s & 0x7f) | (w.beats[i] ? 0x80 : 0)),
  );
}
