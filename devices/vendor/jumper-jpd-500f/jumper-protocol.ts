/**
 * Jumper JPD-500F fingertip oximeter ("My Oximeter"): the vendor service CDEACB80-5235-4C07-8846-93A37EE6B86D,
 * notify characteristic CDEACB81-…. Jumper publishes no document; the layout below is the one four independent
 * public readers agree on (README.md lists them with paths):
 *
 *   parameter frame, 4 bytes:  81 | PR (/min) | SpO2 (%) | PI (0.1 %)
 *
 * No length byte, no checksum. The first byte names the frame type: besides 0x81 the readers see 0x80 frames
 * (ignored by KookKookKool/smarttelemed-v4; by the family's convention most likely the plethysmogram) and
 * 11-byte 0x88 frames (Eclipse AGILE MedicalDevice, which decodes nothing from them). Neither layout is
 * documented anywhere, so neither is decoded: the framer below cuts only 0x81 frames, and the bytes of other
 * frames are reported as DECODE_FRAME_GARBAGE (counted, never silent, never read as values).
 *
 * Pure: no state, no exceptions, no regular expressions.
 */
import type { FrameFormat } from 'rpm-gateway/sdk';

export const JUMPER_SERVICE = 'cdeacb80-5235-4c07-8846-93a37ee6b86d';
export const JUMPER_NOTIFY = 'cdeacb81-5235-4c07-8846-93a37ee6b86d';
/** Write characteristic (ESP32 "BHCD" reader); no reader writes a command to it. */
export const JUMPER_WRITE = 'cdeacb82-5235-4c07-8846-93a37ee6b86d';

export const JUMPER_PARAMETER_TYPE = 0x81;
export const JUMPER_PARAMETER_LENGTH = 4;
/** SpO2 byte the readers treat as "no value" (ESP32 reader: accepts only 0 < SpO2 < 127). */
export const JUMPER_SPO2_NO_VALUE = 127;
/** Pulse byte the readers treat as "no value" (Y. Debeer PulseOximeter: publishes only 0 < bpm < 255). */
export const JUMPER_PULSE_NO_VALUE = 255;

/**
 * How the notification stream is cut: a 0x81 sync byte, 4 bytes, no checksum. The SDK framer reassembles a
 * frame split across notifications and splits merged ones.
 */
export const JUMPER_FRAMING: FrameFormat = {
  sync: [JUMPER_PARAMETER_TYPE],
  length: { fixed: JUMPER_PARAMETER_LENGTH },
};

export interface JumperParameters {
  /** Byte 1: pulse rate /min (255 = no value). */
  readonly pulseRate: number;
  /** Byte 2: SpO2 % (127 = no value). */
  readonly spo2: number;
  /** Byte 3: perfusion index in 0.1 %. */
  readonly perfusionIndex: number;
}

/** True when `b` is exactly one parameter frame. */
export function isJumperParameterFrame(b: Uint8Array): boolean {
  return b.length === JUMPER_PARAMETER_LENGTH && b[0] === JUMPER_PARAMETER_TYPE;
}

/** Reads one parameter frame; the caller has checked it with isJumperParameterFrame. */
export function parseJumperParameters(b: Uint8Array): JumperParameters {
  return { pulseRate: b[1] as number, spo2: b[2] as number, perfusionIndex: b[3] as number };
}

/** Encodes one parameter frame (simulator and tests). Fields are masked to a byte. */
export function encodeJumperParameters(p: JumperParameters): Uint8Array {
  return Uint8Array.of(JUMPER_PARAMETER_TYPE, p.pulseRate & 0xff, p.spo2 & 0xff, p.perfusionIndex & 0xff);
}
