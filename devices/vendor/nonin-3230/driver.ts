import { bitNames, type Decoder, defineDriver, type MderNumber, observe } from 'rpm-gateway/sdk';
import {
  NONIN_CONTINUOUS_OXIMETRY,
  NONIN_OXIMETRY_SERVICE,
  NONIN_PULSE_MAX,
  NONIN_STATUS,
  type NoninFrame,
  parseNoninFrame,
} from './nonin-protocol.js';

/**
 * Nonin 3230 finger-clip and WristOx2 3150 BLE wrist pulse oximeters: the Nonin Continuous Oximetry
 * characteristic of the Nonin Oximetry Service. See README.md and nonin-protocol.ts.
 */
const NO_VALUE: MderNumber = Object.freeze({ value: null, invalid: 'nan' });
const PAI_PERCENT = { factor: 0.01 };
/** A perfusion index is a ratio of the pulsatile to the steady signal; above 100 % it is no reading. */
const PAI_MAX = 10_000;

/** SpO2 1-100 % is a reading; 127 is "missing", and 0 or any other value never is one. */
function spo2Of(raw: number): MderNumber {
  return raw > 0 && raw <= 100 ? { value: raw } : NO_VALUE;
}

/** Pulse rate 1-325 /min is a reading; 511 is "missing", and 0 or 326-510 never are readings. */
function pulseRateOf(raw: number): MderNumber {
  return raw > 0 && raw <= NONIN_PULSE_MAX ? { value: raw } : NO_VALUE;
}

/** PAI in 0.01 %: 0 (no pulsatile signal) and anything above 100 % are not readings. */
function paiOf(raw: number): MderNumber {
  return raw > 0 && raw <= PAI_MAX ? { value: raw } : NO_VALUE;
}

/** Status bits that describe a problem with the reading; bit 4 is inverted (set = finger placed correctly). */
const PROBLEM_BITS: (string | undefined)[] = [
  undefined,
  'weak-signal',
  undefined,
  'pulse-searching',
  undefined,
  'low-battery',
];

function statusOf(f: NoninFrame): string[] {
  const status = bitNames(f.status, PROBLEM_BITS);
  if ((f.status & NONIN_STATUS.correctCheck) === 0) status.push('no-finger');
  return status;
}

const continuousOximetry: Decoder = (bytes) => {
  const f = parseNoninFrame(bytes);
  return [
    {
      observations: [
        observe('MDC_PULS_OXIM_SAT_O2', spo2Of(f.spo2), '%'),
        observe('MDC_PULS_OXIM_PULS_RATE', pulseRateOf(f.pulseRate), '/min'),
        observe('MDC_PULS_OXIM_PERF_REL', paiOf(f.pai), '%', PAI_PERCENT),
      ],
      time: null,
      status: statusOf(f),
      kind: 'measurement',
      details: {
        batteryVolts: f.batteryDecivolts / 10,
        secondsCounter: f.counter,
        smartPoint: (f.status & NONIN_STATUS.smartPoint) !== 0,
        displaySync: (f.status & NONIN_STATUS.displaySync) !== 0,
        encrypted: (f.status & NONIN_STATUS.encrypted) !== 0,
      },
    },
  ];
};

export default defineDriver({
  id: 'vendor/nonin-3230',
  version: '1.0.0',
  name: 'Nonin 3230 / WristOx2 3150 BLE pulse oximeter (Nonin Oximetry Service)',
  category: 'pulse-oximeter',
  match: {
    // The 128-bit Nonin Oximetry Service is Nonin's own, so it alone identifies the device (the names differ
    // by model: Nonin3230_<serial>, Nonin3150_<serial>).
    services: [NONIN_OXIMETRY_SERVICE],
    // The 3230 is Continua-certified and also offers the SIG Pulse Oximeter Service (andreasdri/nonin-3230-ble
    // README); should it advertise both, this driver (with Nonin's status bits) takes the device.
    supersedes: ['sig/pulse-oximeter'],
  },
  characteristics: [
    {
      uuid: NONIN_CONTINUOUS_OXIMETRY,
      service: NONIN_OXIMETRY_SERVICE,
      access: 'notify',
      name: 'Nonin Continuous Oximetry',
      decode: continuousOximetry,
      emits: [
        { code: 'MDC_PULS_OXIM_SAT_O2', units: ['%'] },
        { code: 'MDC_PULS_OXIM_PULS_RATE', units: ['/min'] },
        { code: 'MDC_PULS_OXIM_PERF_REL', units: ['%'] },
      ],
    },
  ],
  quirks: {
    bigEndianFields: {
      reason:
        'PAI, the seconds counter and the pulse rate are big-endian, unlike Bluetooth SIG characteristics',
    },
    missingValueMarkers: {
      reason:
        'SpO2 127 and pulse rate 511 mean missing (as do SpO2 0 or above 100, pulse 0 or above 325, PAI 0 or above 100 %); reported as null with invalid nan',
    },
    correctCheckInverted: {
      reason:
        'Status bit 4 is set while the finger is placed correctly; its absence is reported as status no-finger',
    },
    noDeviceTime: {
      reason:
        'The value carries a seconds-since-run-mode counter, not a clock, so time is null (counter in details)',
    },
  },
  sources: [
    'Nonin Medical, Nonin Continuous Oximetry Characteristic, document 113142-000-02 Rev B (as cited by M. Villarroel, PulseOxRecorder README and swift-async_pulse_ox ble_nco_spec_decoder.swift)',
    'Nonin Medical, NONIN3230 Mini iOS Application (2013, Revision 1.0), PulseOximeterClass parseData: every field, units and the 127/511 missing markers',
    'andreasdri/nonin-3230-ble index.js (service and characteristic UUIDs, Nonin3230_ name prefix, big-endian reads)',
  ],
});
