import { DecodeError, type Decoder, defineDriver, type MderNumber, observe } from 'rpm-gateway/sdk';
import {
  BCI_FRAMING,
  BCI_PULSE_RATE_NO_VALUE,
  type BciFrame,
  isBciFrame,
  parseBciFrame,
} from './bci-protocol.js';

/**
 * BerryMed BM1000 family (BM1000, BM1000B/C/E, advertised as "BerryMed") fingertip oximeters speaking the
 * vendor's BCI protocol over the Microchip/ISSC transparent-UART service. See README.md and bci-protocol.ts.
 */
const TRANSPARENT_UART_SERVICE = '49535343-fe7d-4ae5-8fa9-9fafd205e455';
const TRANSPARENT_UART_TX = '49535343-1e4d-4bd9-ba61-23c647249616';

const NO_VALUE: MderNumber = Object.freeze({ value: null, invalid: 'nan' });

/** SpO2 1-100 % is a reading; 127 is the protocol's "no value", and 0 or 101-126 never are readings. */
function spo2Of(raw: number): MderNumber {
  return raw > 0 && raw <= 100 ? { value: raw } : NO_VALUE;
}

/** Pulse rate 1-254 /min is a reading; 255 is the protocol's "no value", 0 means none was found. */
function pulseRateOf(raw: number): MderNumber {
  return raw > 0 && raw < BCI_PULSE_RATE_NO_VALUE ? { value: raw } : NO_VALUE;
}

function statusOf(f: BciFrame): string[] {
  const status: string[] = [];
  if (f.noSignal) status.push('no-signal');
  if (f.probeUnplugged) status.push('probe-unplugged');
  if (f.noFinger) status.push('no-finger');
  if (f.pulseSearching) status.push('pulse-searching');
  return status;
}

/**
 * One reading per frame (the session keeps one a second of them: `thin` below). The framer (BCI_FRAMING) hands over whole frames only; anything else reaching the
 * decoder (a caller that bypasses the framer) is refused rather than guessed at.
 */
const bciDecoder: Decoder = (bytes) => {
  if (!isBciFrame(bytes)) {
    throw new DecodeError('DECODE_INVALID_FIELD', 'not one BCI frame (5 bytes, bit 7 set in the first only)');
  }
  const f = parseBciFrame(bytes);
  return [
    {
      observations: [
        observe('MDC_PULS_OXIM_SAT_O2', spo2Of(f.spo2), '%'),
        observe('MDC_PULS_OXIM_PULS_RATE', pulseRateOf(f.pulseRate), '/min'),
      ],
      time: null,
      status: statusOf(f),
      kind: 'measurement',
      details: {
        pleth: f.pleth,
        signalStrength: f.signalStrength,
        barGraph: f.barGraph,
        pulseBeep: f.pulseBeep,
      },
    },
  ];
};

export default defineDriver({
  id: 'vendor/berrymed-bm1000',
  version: '1.2.0',
  name: 'BerryMed BM1000 pulse oximeter (BCI protocol)',
  category: 'pulse-oximeter',
  match: { services: [TRANSPARENT_UART_SERVICE], name: /^(?:BerryMed|BM1000)/ },
  characteristics: [
    {
      uuid: TRANSPARENT_UART_TX,
      service: TRANSPARENT_UART_SERVICE,
      access: 'notify',
      name: 'BCI data stream (transparent UART TX)',
      framing: BCI_FRAMING,
      // About 100 frames a second repeat the displayed SpO2 and pulse rate with one pleth sample each: the
      // session passes on one reading a second (a status change first), not one per sample (quirk highRateStream).
      thin: { everyMs: 1_000 },
      decode: bciDecoder,
      emits: [
        { code: 'MDC_PULS_OXIM_SAT_O2', units: ['%'] },
        { code: 'MDC_PULS_OXIM_PULS_RATE', units: ['/min'] },
      ],
    },
  ],
  quirks: {
    uartStreamFraming: {
      reason:
        'Notifications carry a raw UART byte stream, so a 5-byte frame can straddle two notifications; the SDK framer (BCI_FRAMING) reassembles it',
    },
    noValueSentinels: {
      reason:
        'SpO2 127 and pulse rate 255 (or 0) mean no value (no finger, searching); reported as null with invalid nan',
    },
    sharedTransparentUartService: {
      reason:
        'Service 49535343-fe7d-4ae5-8fa9-9fafd205e455 is the generic Microchip/ISSC transparent UART used by unrelated products, so the match also needs the BerryMed/BM1000 name',
    },
    highRateStream: {
      reason:
        'About 100 frames per second, each repeating the displayed SpO2 and pulse rate with one pleth sample; thinned by the session to one reading per second (the first with a changed status, else the latest), the pleth sample of the kept frame in details',
    },
    noDeviceTime: { reason: 'Frames carry no timestamp, so time is always null' },
  },
  sources: [
    'Shanghai Berry Electronic Tech, BCI Protocol V1.2 (github.com/zh2x/BCI_Protocol, BCI Protocol V1.2.pdf: pulse rate bit 7 in byte 2 bit 6, invalid pulse rate 0xFF, invalid SpO2 0x7F) and V1.4 (zh2x/SpO2-BLE-for-Android files/Protocol/BCI Protocol V1.4.pdf)',
    'zh2x/SpO2-BLE-for-Android app/src/main/java/com/berry_med/bci/utils/ble/ParseRunnable.java and BluetoothManager.java (vendor demo: UUIDs, frame parsing)',
    'adafruit/Adafruit_CircuitPython_BLE_BerryMed_Pulse_Oximeter adafruit_ble_berrymed_pulse_oximeter/__init__.py',
    'bgould/berrymed-pulseox-reader packet.go; ScheindorfHyenetics/berrymedBluetoothOxymeter parser/sp02.py',
    'atick-faisal/berry-oximeter tests/test_berry_oximeter.py (frame vectors)',
  ],
});
