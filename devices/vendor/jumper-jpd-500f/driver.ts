import { DecodeError, type Decoder, defineDriver, type MderNumber, observe } from 'rpm-gateway/sdk';
import {
  isJumperParameterFrame,
  JUMPER_FRAMING,
  JUMPER_NOTIFY,
  JUMPER_PULSE_NO_VALUE,
  JUMPER_SERVICE,
  type JumperParameters,
  parseJumperParameters,
} from './jumper-protocol.js';

/**
 * Jumper JPD-500F fingertip pulse oximeter (advertised as "My Oximeter", or with no name) streaming 4-byte
 * parameter frames on the vendor service cdeacb80. See README.md and jumper-protocol.ts.
 */
const NO_VALUE: MderNumber = Object.freeze({ value: null, invalid: 'nan' });
const PI_PERCENT = { factor: 0.1 };

/** SpO2 1-100 % is a reading; 127 is "no value" (finger out), and 0 or 101-255 never are readings. */
function spo2Of(raw: number): MderNumber {
  return raw > 0 && raw <= 100 ? { value: raw } : NO_VALUE;
}

/** Pulse rate 1-254 /min is a reading; 255 is "no value" and 0 means none was found. */
function pulseRateOf(raw: number): MderNumber {
  return raw > 0 && raw < JUMPER_PULSE_NO_VALUE ? { value: raw } : NO_VALUE;
}

/** PI in 0.1 %: 0 (no pulsatile signal) is not a reading. */
function perfusionOf(raw: number): MderNumber {
  return raw > 0 ? { value: raw } : NO_VALUE;
}

function readingOf(p: JumperParameters) {
  return {
    observations: [
      observe('MDC_PULS_OXIM_SAT_O2', spo2Of(p.spo2), '%'),
      observe('MDC_PULS_OXIM_PULS_RATE', pulseRateOf(p.pulseRate), '/min'),
      observe('MDC_PULS_OXIM_PERF_REL', perfusionOf(p.perfusionIndex), '%', PI_PERCENT),
    ],
    time: null,
    kind: 'measurement' as const,
  };
}

/**
 * One reading per parameter frame. The framer (JUMPER_FRAMING) hands over whole 0x81 frames only; anything else
 * (a caller bypassing the framer) is refused rather than guessed at.
 */
const parameterDecoder: Decoder = (bytes) => {
  if (!isJumperParameterFrame(bytes)) {
    throw new DecodeError('DECODE_INVALID_FIELD', 'not one Jumper parameter frame (4 bytes starting 0x81)');
  }
  return [readingOf(parseJumperParameters(bytes))];
};

export default defineDriver({
  id: 'vendor/jumper-jpd-500f',
  version: '1.0.0',
  name: 'Jumper JPD-500F pulse oximeter',
  category: 'pulse-oximeter',
  // The service alone: the device may advertise it with no name (an HCI advertising report on experts-exchange
  // Q29179172 shows the service list and no local name), and the names seen ("My Oximeter", "Medical...")
  // are generic.
  match: { services: [JUMPER_SERVICE] },
  characteristics: [
    {
      uuid: JUMPER_NOTIFY,
      service: JUMPER_SERVICE,
      access: 'notify',
      name: 'Jumper oximeter frames',
      framing: JUMPER_FRAMING,
      decode: parameterDecoder,
      emits: [
        { code: 'MDC_PULS_OXIM_SAT_O2', units: ['%'] },
        { code: 'MDC_PULS_OXIM_PULS_RATE', units: ['/min'] },
        { code: 'MDC_PULS_OXIM_PERF_REL', units: ['%'] },
      ],
    },
  ],
  quirks: {
    noChecksum: {
      reason:
        'Frames carry no checksum or length: a corrupted byte cannot be detected, and a 0x81 byte inside another frame type can start a false frame',
    },
    otherFrameTypesDropped: {
      reason:
        'Frames of types 0x80 (most likely the pleth waveform) and 0x88 (11 bytes) have no documented layout; the framer cuts only 0x81 frames and reports their bytes as DECODE_FRAME_GARBAGE, so no waveform sample becomes a measurement',
    },
    noValueSentinels: {
      reason:
        'SpO2 127 (or 0, or above 100), pulse rate 255 (or 0) and PI 0 mean no value, as the public readers treat them; reported as null with invalid nan',
    },
    noDeviceTime: { reason: 'Frames carry no timestamp, so time is always null' },
  },
  sources: [
    'KookKookKool/smarttelemed-v4 lib/core/device/add_device/Jumper/jumper_po_jpd_500f.dart (frame 81 PR SpO2 XX, example 81 38 63 44, 0x80 frames ignored)',
    'Yves Debeer, PulseOximeter (iOS) ViewController.swift (service cdeacb80, notify cdeacb81, 0x81: bpm [1], SpO2 [2], PI [3]/10, bpm 255 not published)',
    'Eclipse AGILE IoT gateway, class org.eclipse.agail.device.instance.MedicalDevice (4-byte 0x81 frames, 11-byte 0x88 frames, names containing Medical or MyOximeter)',
    'ESP32 "BHCD" reader sketch (notify cdeacb81, write cdeacb82, SpO2 accepted only when byte 0 is 129 and 0 < SpO2 < 127)',
  ],
});
