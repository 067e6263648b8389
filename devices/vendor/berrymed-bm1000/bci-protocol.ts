/**
 * BerryMed "BCI" oximeter protocol, 5-byte frames (the "ordinary" variant, as published by Shanghai Berry
 * Electronic Tech: BCI Protocol V1.2 in github.com/zh2x/BCI_Protocol, V1.4 with its demo app
 * zh2x/SpO2-BLE-for-Android). Frames arrive as a byte stream on the transparent-UART notify characteristic;
 * only the first byte of a frame has bit 7 set, which is how a receiver finds frame starts (BCI_FRAMING).
 *
 *   byte 0: bit 7 sync (1) | bit 6 pulse beep | bit 5 probe unplugged | bit 4 no signal | bits 3-0 signal strength
 *   byte 1: bit 7 0 | bits 6-0 plethysmogram sample (0-100)
 *   byte 2: bit 7 0 | bit 6 pulse rate bit 7 | bit 5 pulse searching | bit 4 no finger | bits 3-0 bar graph
 *   byte 3: bit 7 0 | bits 6-0 pulse rate bits 6-0 (255 = no value)
 *   byte 4: bit 7 0 | bits 6-0 SpO2 % (127 = no value)
 *
 * Pure: no exceptions, no regular expressions.
 */
import type { FrameFormat } from 'rpm-gateway/sdk';

export const BCI_FRAME_LENGTH = 5;
/** SpO2 byte value meaning "no value" (no finger, searching). */
export const BCI_SPO2_NO_VALUE = 127;
/** Pulse rate value meaning "no value". */
export const BCI_PULSE_RATE_NO_VALUE = 255;

export interface BciFrame {
  /** Byte 0 bits 3-0: pulse signal strength 0-8 (15 while no finger is in). */
  readonly signalStrength: number;
  /** Byte 0 bit 4. */
  readonly noSignal: boolean;
  /** Byte 0 bit 5. */
  readonly probeUnplugged: boolean;
  /** Byte 0 bit 6: set on the frame where a pulse beat is detected. */
  readonly pulseBeep: boolean;
  /** Byte 1: one plethysmogram sample, 0-100. */
  readonly pleth: number;
  /** Byte 2 bits 3-0: pulse-intensity bar graph, 0-15. */
  readonly barGraph: number;
  /** Byte 2 bit 4. */
  readonly noFinger: boolean;
  /** Byte 2 bit 5: the device is searching for a pulse. */
  readonly pulseSearching: boolean;
  /** Byte 3 plus byte 2 bit 6 as bit 7: 0-255, 255 = no value. */
  readonly pulseRate: number;
  /** Byte 4: 0-100 %, 127 = no value. */
  readonly spo2: number;
}

/**
 * How the byte stream is cut into frames (BCI Protocol V1.4, "data format": bit 7 is set in the first byte of a
 * frame only). The SDK's framer reassembles a frame split across notifications, splits merged ones, and reports
 * bytes that start no frame (the tail of a frame begun before the subscription, a frame broken by an early sync
 * byte, the extra bytes of a longer BCI variant) as DECODE_FRAME_GARBAGE. The protocol has no checksum.
 */
export const BCI_FRAMING: FrameFormat = { highBitSync: true, length: { fixed: BCI_FRAME_LENGTH } };

/** True when `b` is exactly one frame: five bytes, bit 7 set in the first only. */
export function isBciFrame(b: Uint8Array): boolean {
  if (b.length !== BCI_FRAME_LENGTH || ((b[0] as number) & 0x80) === 0) return false;
  for (let i = 1; i < BCI_FRAME_LENGTH; i++) if (((b[i] as number) & 0x80) !== 0) return false;
  return true;
}

/** Reads one frame; the caller has checked it with isBciFrame. */
export function parseBciFrame(b: Uint8Array): BciFrame {
  const b0 = b[0] as number;
  const b2 = b[2] as number;
  return {
    signalStrength: b0 & 0x0f,
    noSignal: (b0 & 0x10) !== 0,
    probeUnplugged: (b0 & 0x20) !== 0,
    pulseBeep: (b0 & 0x40) !== 0,
    pleth: (b[1] as number) & 0x7f,
    barGraph: b2 & 0x0f,
    noFinger: (b2 & 0x10) !== 0,
    pulseSearching: (b2 & 0x20) !== 0,
    pulseRate: ((b[3] as number) & 0x7f) | ((b2 & 0x40) << 1),
    spo2: (b[4] as number) & 0x7f,
  };
}

/** Encodes one frame (simulator and tests). Values are masked to their bit widths. */
export function encodeBciFrame(frame: BciFrame): Uint8Array {
  return Uint8Array.of(
    0x80 |
      (frame.pulseBeep ? 0x40 : 0) |
      (frame.probeUnplugged ? 0x20 : 0) |
      (frame.noSignal ? 0x10 : 0) |
      (frame.signalStrength & 0x0f),
    frame.pleth & 0x7f,
    ((frame.pulseRate & 0x80) >> 1) |
      (frame.pulseSearching ? 0x20 : 0) |
      (frame.noFinger ? 0x10 : 0) |
      (frame.barGraph & 0x0f),
    frame.pulseRate & 0x7f,
    frame.spo2 & 0x7f,
  );
}
