import {
  bitNames,
  DecodeError,
  type Decoder,
  defineDriver,
  type MderNumber,
  observe,
  type Reading,
} from 'rpm-gateway/sdk';
import {
  frameKind,
  PC60FW_FRAMING,
  PC60FW_STATUS_BITS,
  PC60FW_STATUS_NO_READING,
  PC60FW_TOKEN_OXIMETER,
  PC60FW_TYPE_PARAMETERS,
  type Pc60fwParameters,
  parseParameters,
  pc60fwFrameProblem,
} from './pc60fw-protocol.js';

/**
 * Wellue/Viatom PC-60FW fingertip pulse oximeter and its relatives (Creative Medical's PC-60F/PC-60E platform,
 * also sold as OxySmart, BabyOximeter, OxyKnight) on the Nordic UART service. See README.md and
 * pc60fw-protocol.ts.
 */
const NUS_SERVICE = '6e400001-b5a3-f393-e0a9-e50e24dcca9e';
const NUS_TX_NOTIFY = '6e400003-b5a3-f393-e0a9-e50e24dcca9e';

const NO_VALUE: MderNumber = Object.freeze({ value: null, invalid: 'nan' });
const PI_TENTHS = { factor: 0.1 };
/**
 * Highest pulse rate taken as a number. The field is 16 bits and neither vendor SDK names a sentinel; no human
 * pulse and no oximeter's display range reaches 300 /min, so a larger value is a corrupted field, not a reading.
 */
const MAX_PULSE_RATE = 300;

/** SpO2 1-100 % is a reading; 0 (sent with no finger) and anything above 100 are not. */
function spo2Of(raw: number): MderNumber {
  return raw > 0 && raw <= 100 ? { value: raw } : NO_VALUE;
}

/** Pulse rate 1-300 /min is a reading; 0 (sent with no finger) and larger values are not. */
function pulseRateOf(raw: number): MderNumber {
  return raw > 0 && raw <= MAX_PULSE_RATE ? { value: raw } : NO_VALUE;
}

/** Perfusion index in tenths of a percent; 0 (no pulsatile signal measured yet) is not a reading. */
function perfusionOf(raw: number): MderNumber {
  return raw > 0 ? { value: raw } : NO_VALUE;
}

function readingOf(p: Pc60fwParameters): Reading {
  // With the probe off or the pulse still being searched for, the bytes are not a measurement (the Lepu SDK's
  // RtDataParam reads exactly these two bits, isProbeOff and isPulseSearching).
  const usable = (p.status & PC60FW_STATUS_NO_READING) === 0;
  const status = bitNames(p.status, PC60FW_STATUS_BITS);
  // All zero with no status bit is what the device sends before a finger is in (spo2_combined.csv line 1).
  if (p.spo2 === 0 && p.pulseRate === 0 && p.perfusionIndex === 0 && status.length === 0) {
    status.push('no-finger');
  }
  return {
    observations: [
      observe('MDC_PULS_OXIM_PULS_RATE', usable ? pulseRateOf(p.pulseRate) : NO_VALUE, '/min'),
      observe('MDC_PULS_OXIM_SAT_O2', usable ? spo2Of(p.spo2) : NO_VALUE, '%'),
      observe('MDC_PULS_OXIM_PERF_REL', usable ? perfusionOf(p.perfusionIndex) : NO_VALUE, '%', PI_TENTHS),
    ],
    time: null,
    status,
    kind: 'measurement',
    details: { statusByte: p.status, extra: p.extra },
  };
}

/**
 * One reading per parameter frame (0F 01); pulse-wave, working-status, battery and information frames carry no
 * coded value and give none. The framer (PC60FW_FRAMING) hands over whole, CRC-checked frames; anything else
 * (a tool or a fuzz run calling the decoder directly) is refused.
 */
const streamDecoder: Decoder = (bytes) => {
  const problem = pc60fwFrameProblem(bytes);
  if (problem !== undefined) {
    throw new DecodeError('DECODE_INVALID_FIELD', `not one PC-60FW frame: ${problem}`);
  }
  const { token, type } = frameKind(bytes);
  if (token !== PC60FW_TOKEN_OXIMETER || type !== PC60FW_TYPE_PARAMETERS) return [];
  const p = parseParameters(bytes);
  if (p === undefined) {
    throw new DecodeError(
      'DECODE_INVALID_FIELD',
      `a PC-60FW parameter frame has 12 bytes, this one ${bytes.length}`,
      3,
    );
  }
  return [readingOf(p)];
};

export default defineDriver({
  id: 'vendor/wellue-pc60fw',
  version: '1.0.0',
  name: 'Wellue/Viatom PC-60FW pulse oximeter (PC-60F family, Nordic UART)',
  category: 'pulse-oximeter',
  // The PC-60FW advertises the Nordic UART service (pythag/pc-60fw-esp32-logger connects only to a device
  // advertising it; pmenke-de/viatom_pc60fw scans with it as the filter). Nordic UART is a generic service, so
  // the name must match too: the names the vendor SDK maps to it (CRBlueToothManager.m getServiceIDForPeriName).
  // PC-66B is not among them: the same SDK puts it on FFF0.
  match: { services: [NUS_SERVICE], name: /^(?:PC-60F|PC-60E|OxySmart|BabyOximeter|OxyKnight)/ },
  characteristics: [
    {
      uuid: NUS_TX_NOTIFY,
      service: NUS_SERVICE,
      access: 'notify',
      name: 'Nordic UART TX (AA 55 frames)',
      framing: PC60FW_FRAMING,
      decode: streamDecoder,
      emits: [
        { code: 'MDC_PULS_OXIM_PULS_RATE', units: ['/min'] },
        { code: 'MDC_PULS_OXIM_SAT_O2', units: ['%'] },
        { code: 'MDC_PULS_OXIM_PERF_REL', units: ['%'] },
      ],
    },
  ],
  quirks: {
    streamFraming: {
      reason:
        'Frames are cut into 20-byte notifications regardless of frame boundaries (split and merged frames in the public raw log); PC60FW_FRAMING reassembles them and reports CRC-8/MAXIM failures as DECODE_CHECKSUM',
    },
    waveFramesNotReported: {
      reason:
        '0F 02 pulse-wave frames (5 pleth samples, about 10 frames a second) are dropped: they return [] and are never stored as measurements; the 1 Hz 0F 01 parameter frame carries the values',
    },
    zeroMeansNoValue: {
      reason:
        'With no finger the device sends SpO2 0, PR 0, PI 0 (status no-finger); 0 in any of them, SpO2 above 100 and PR above 300 become value null with invalid nan',
    },
    probeOffOrSearching: {
      reason:
        'Status bit 1 (probe off) or bit 2 (pulse searching) makes all three values null, as the vendor SDK ignores the numbers then',
    },
    opaqueLastByte: {
      reason:
        'The sixth parameter byte (c0/80 on the PC-60FW, 38/18 on the PC-60NW) is parsed by neither vendor SDK; kept as details.extra only',
    },
    otherFramesNotReported: {
      reason:
        'Working-status (0F 21), battery (F0 03, level 0-3) and information replies (F0 01/02/21) carry no coded value and give no reading',
    },
    noDeviceTime: { reason: 'Live frames carry no timestamp, so time is always null' },
  },
  sources: [
    'viatomEcho/LepuBle (Viatom Android SDK) blepro/src/main/java/com/lepu/blepro/ble/cmd/PC60FwBleResponse.kt (RtDataParam, RtDataWave), ble/Pc60FwBleInterface.kt hasResponse (AA 55 reassembly), utils/CrcUtil.java calCRC8Pc (CRC-8/MAXIM)',
    'viatom-dev/iOSPC60F (Creative Medical iOS SDK) PC-60F_en/PC_60FDemo/PC_60ESDK/SDK/CRAP20SDK.h CRAP_20Spo2State, CRBlueToothManager.m getServiceIDForPeriName (names on 6E400001, PC-66B on FFF0)',
    'sycophantic/pc60fw_pulseox raw_data.txt and spo2_combined.csv (raw 20-byte notifications of a PC-60FW logged with bluepy)',
    'sza2/viatom_pc60fw README.md (frame table, CRC over the whole message), pedasmith/BluetoothDeviceController Viatom_PulseOximeter_PC60FW_Factory.cs EXAMPLE_DATA',
  ],
});
