import {
  DecodeError,
  type Decoder,
  defineDriver,
  type MderNumber,
  type Observation,
  observe,
  type Reading,
} from 'rpm-gateway/sdk';
import {
  CONTEC_FRAMING,
  CONTEC_SPO2_FINGER_OUT,
  type ContecMeasurementFrame,
  encodeContecCommand,
  isContecFrame,
  parseContecFrame,
} from './contec-protocol.js';

/**
 * Contec CMS50D-BT fingertip pulse oximeter (advertised as "SpO208…") streaming Contec's live-data frames on
 * the vendor service ff12. See README.md and contec-protocol.ts.
 */
const CONTEC_SERVICE = 'ff12';
const CONTEC_WRITE = 'ff01';
const CONTEC_NOTIFY = 'ff02';

const NO_VALUE: MderNumber = Object.freeze({ value: null, invalid: 'nan' });
const FINGER_OUT: readonly string[] = Object.freeze(['no-finger']);
const NO_STATUS: readonly string[] = Object.freeze([]);
const PI_PERCENT = { factor: 0.01 };

/** SpO2 1-100 % is a reading; 127 means finger out, and 0 or 101-126 are never readings. */
function spo2Of(raw: number): MderNumber {
  return raw > 0 && raw <= 100 ? { value: raw } : NO_VALUE;
}

/** Pulse rate 1-254 /min is a reading; 0 and 255 are the family's "no value". */
function pulseRateOf(raw: number): MderNumber {
  return raw > 0 && raw < 255 ? { value: raw } : NO_VALUE;
}

function readingOf(f: ContecMeasurementFrame): Reading {
  const observations: Observation[] = [
    observe('MDC_PULS_OXIM_PULS_RATE', pulseRateOf(f.pulseRate), '/min'),
    observe('MDC_PULS_OXIM_SAT_O2', spo2Of(f.spo2), '%'),
  ];
  const pi = f.perfusionIndex;
  if (pi !== undefined) {
    // Hundredths of a percent; 0 (no pulsatile signal) is not a reading.
    observations.push(observe('MDC_PULS_OXIM_PERF_REL', pi > 0 ? { value: pi } : NO_VALUE, '%', PI_PERCENT));
  }
  return {
    observations,
    time: null,
    status: f.spo2 === CONTEC_SPO2_FINGER_OUT ? FINGER_OUT : NO_STATUS,
    kind: 'measurement',
    details: { flags: f.flags },
  };
}

/**
 * One reading per measurement frame; pulse-wave frames and the stop acknowledgement carry no coded value. The
 * framer (CONTEC_FRAMING) hands over whole, checksum-verified frames; anything else is refused.
 */
const liveDataDecoder: Decoder = (bytes) => {
  if (!isContecFrame(bytes)) {
    throw new DecodeError('DECODE_INVALID_FIELD', 'not one Contec live-data frame (EB 00, EB 01 or EB 7F)');
  }
  const f = parseContecFrame(bytes);
  return f?.type === 'measurement' ? [readingOf(f)] : [];
};

export default defineDriver({
  id: 'vendor/contec-cms50d-bt',
  version: '1.1.0',
  name: 'Contec CMS50D-BT pulse oximeter (Contec live-data protocol)',
  category: 'pulse-oximeter',
  match: { services: [CONTEC_SERVICE], name: /^SpO208/ },
  characteristics: [
    {
      uuid: CONTEC_NOTIFY,
      service: CONTEC_SERVICE,
      access: 'notify',
      name: 'Contec live data (EB frames)',
      framing: CONTEC_FRAMING,
      decode: liveDataDecoder,
      emits: [
        { code: 'MDC_PULS_OXIM_PULS_RATE', units: ['/min'] },
        { code: 'MDC_PULS_OXIM_SAT_O2', units: ['%'] },
        { code: 'MDC_PULS_OXIM_PERF_REL', units: ['%'] },
      ],
    },
  ],
  setup: [
    {
      characteristic: CONTEC_WRITE,
      service: CONTEC_SERVICE,
      value: encodeContecCommand([0x9b, 0x01]),
      reason:
        'Start real-time measurements (9B 01 1C): the oximeter sends nothing on ff02 until asked (OxiVis issue #2, pulseoxdl requestlivedata)',
    },
    {
      characteristic: CONTEC_WRITE,
      service: CONTEC_SERVICE,
      value: encodeContecCommand([0x9a]),
      repeatEveryMs: 4_000,
      reason:
        'Heartbeat (9A 1A); the stream stops without it, so it is repeated every 4 s, inside the 5 s the sources report (see quirk heartbeatRequired)',
    },
  ],
  quirks: {
    heartbeatRequired: {
      reason:
        'Streaming stops unless 9A 1A is written to ff01 about every 5 s (pulseoxdl, nringelstein/CMS50D-BT; EMAY S50 firmware: every 2 s); repeated by the session through setup.repeatEveryMs',
    },
    sevenBitFrames: {
      reason:
        'Only the EB header byte has bit 7 set, so pulse rate bit 7 travels in byte 2 bit 1 and the perfusion index is split into two 7-bit halves',
    },
    checksummedFrames: {
      reason:
        'The last byte is the sum of the other bytes & 0x7F; a frame that fails it is dropped and reported as DECODE_CHECKSUM',
    },
    streamFraming: {
      reason:
        'A notification can carry several frames, part of one, and replies to other commands; the SDK framer (CONTEC_FRAMING) reassembles and splits them',
    },
    noValueSentinels: {
      reason:
        'SpO2 127 (finger out, status no-finger), 0 or 101-126, pulse rate 0 or 255 and PI 0 mean no value; reported as null with invalid nan',
    },
    noPerfusionIndex: {
      reason:
        'PI bytes 7F 00 mean the model measures no PI (the CMS50D-BT sends them always), so no PI observation is made; a true PI of 1.27 % looks the same',
    },
    waveFramesNotReported: {
      reason:
        'EB 00 pulse-wave frames (only sent after 9B 00 1B, which setup does not write) carry no coded value and give no reading',
    },
    encryptedFirmwareUnsupported: {
      reason:
        'Contec firmware reporting protocol version above 13 needs an AES key exchange (F3/83) and masks values; not supported, such devices give no readings',
    },
    noDeviceTime: { reason: 'Live frames carry no timestamp, so time is always null' },
  },
  sources: [
    'icefest/pulseoxdl README.md "Live" and src/pulseoxdl.c process_live() (Contec CMS50E USB HID live commands: EB 00 / EB 01 byte meanings, PR bit 7, PI, 9A 1A ping every 5 s), src/exchange.h (9B 01 1C, 9B 00 1B, 9B 7F 1A, EB 7F 6A, checksum)',
    'tobiasisenberg/OxiVis issue #2 "Adding support for Contec CMS50D-BT" (ff01/ff02, start command 9B 01 1C repeated, captured frame EB 01 04 40 63 7F 00 12)',
    'nringelstein/CMS50D-BT cms50d_bt_driver.py and cms50d_traceAnalyzer.py (CMS50D-BT over BLE: ff01 write, ff02 notify, EB 00 6-byte and EB 01 8-byte frames, 9A 1A heartbeat every 5 s)',
    'SemenKeyzer/oscar-sql oscar/SleepLib/loader_plugins/contec_ble_protocol.h/.cpp and docs/superpowers design notes (service ff12, SpO208 = CMS50D-BT, frame lengths by header, protocol version > 13 encryption)',
    'Contec PHMS app ContecDevices.checkDevice ("SpO208" -> CMS50D) as quoted in public decompilations; chenders/emay-sleepo2 SPEC.md and REVERSE_ENGINEERING.md (same frames on EMAY SleepO2, captured frames)',
  ],
});
