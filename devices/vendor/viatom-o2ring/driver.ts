import {
  ByteReader,
  DecodeError,
  type Decoder,
  defineDriver,
  type FrameFormat,
  type MderNumber,
  observe,
} from 'rpm-gateway/sdk';
import {
  CMD_RT_PARAM,
  OXY_HEADER,
  OXY_NOTIFY,
  OXY_RESPONSE,
  OXY_SERVICE,
  OXY_WRITE,
  oxyRequest,
  RT_PARAM_LENGTH,
} from './oxy-protocol.js';

const NO_VALUE: MderNumber = Object.freeze({ value: null, invalid: 'nan' });
const BATTERY_STATES = ['not-charging', 'charging', 'full'] as const;

/**
 * Responses: 55 | status | ~status | block u16 | len u16 LE | data | CRC-8 (poly 0x07). The length counts the
 * data only: the bytes from offset 7 to the end, less the CRC. INFO answers are JSON of a few hundred bytes;
 * file blocks (not requested by this driver) are larger, hence the bound.
 */
const framing: FrameFormat = {
  sync: [OXY_RESPONSE],
  length: { field: { offset: 5, width: 2, endian: 'little', counts: { from: OXY_HEADER, trailing: 1 } } },
  checksum: { algorithm: 'crc8' },
  maxLength: 4_096,
};

/**
 * One response frame. The only request this driver sends is RT_PARAM (17), so a 13-byte answer is the real-time
 * parameters; anything else (an answer to another app's command on a shared link) gives no reading.
 */
const decodeResponse: Decoder = (bytes) => {
  const r = new ByteReader(bytes, 'Oxy response');
  if (r.u8('sync') !== OXY_RESPONSE)
    throw new DecodeError('DECODE_INVALID_FIELD', 'Oxy response: no 55 sync');
  const status = r.u8('status');
  if (r.u8('status complement') !== (~status & 0xff)) r.invalid('status and its complement disagree');
  r.u16('block');
  const length = r.u16('length');
  if (status !== 0) r.invalid('the device answered with an error status');
  if (length !== RT_PARAM_LENGTH) {
    r.take(length, 'data');
    r.u8('crc');
    r.end();
    return [];
  }
  const spo2 = r.u8('SpO2');
  const pulseRate = r.u16('pulse rate');
  const steps = r.u32('steps');
  const battery = r.u8('battery');
  const batteryState = r.u8('battery state');
  const motion = r.u8('motion');
  const pi = r.u8('perfusion index');
  const state = r.u8('state');
  r.u8('alarm states');
  r.u8('crc');
  r.end();
  const worn = (state & 0x01) !== 0;
  // Worn with SpO2 0 and pulse 0: the ring is still searching ("calibrating" in ecostech/viatom-ble).
  const searching = worn && spo2 === 0 && pulseRate === 0;
  const spo2Valid = worn && !searching && spo2 !== 0xff && spo2 <= 100;
  const pulseValid = worn && !searching && pulseRate !== 0xffff && (pulseRate & 0xff) !== 0xff;
  const flags: string[] = [];
  if (!worn) flags.push('not-worn');
  if (searching) flags.push('searching');
  return [
    {
      observations: [
        observe('MDC_PULS_OXIM_SAT_O2', spo2Valid ? { value: spo2 } : NO_VALUE, '%'),
        observe('MDC_PULS_OXIM_PULS_RATE', pulseValid ? { value: pulseRate } : NO_VALUE, '/min'),
        ...(spo2Valid && pi > 0 ? [observe('MDC_PULS_OXIM_PERF_REL', { value: pi / 10 }, '%')] : []),
      ],
      time: null,
      status: flags,
      kind: 'measurement',
      details: {
        battery,
        batteryState: BATTERY_STATES[batteryState] ?? `unknown-${batteryState}`,
        motion,
        steps,
      },
    },
  ];
};

/** The RT_PARAM request, AA 17 E8 00 00 00 00 1B, as ecostech/viatom-ble sends it to real rings. */
const RT_PARAM_REQUEST = oxyRequest(CMD_RT_PARAM);

export default defineDriver({
  id: 'vendor/viatom-o2ring',
  version: '1.0.0',
  name: 'Viatom/Wellue O2Ring, Checkme O2, SleepU (legacy Oxy protocol)',
  category: 'pulse-oximeter',
  match: { services: [OXY_SERVICE] },
  characteristics: [
    {
      uuid: OXY_NOTIFY,
      service: OXY_SERVICE,
      access: 'notify',
      name: 'Oxy response',
      framing,
      decode: decodeResponse,
      emits: [
        { code: 'MDC_PULS_OXIM_SAT_O2', units: ['%'] },
        { code: 'MDC_PULS_OXIM_PULS_RATE', units: ['/min'] },
        { code: 'MDC_PULS_OXIM_PERF_REL', units: ['%'] },
      ],
    },
  ],
  setup: [
    {
      service: OXY_SERVICE,
      characteristic: OXY_WRITE,
      value: RT_PARAM_REQUEST,
      reason: 'real-time parameter request (RT_PARAM 0x17): the ring sends values only when asked',
      repeatEveryMs: 1_000,
      // o2r's o2bt.py writes with bleak's default, a Write Command (no response).
      withResponse: false,
      expect: {
        characteristic: OXY_NOTIFY,
        match: [OXY_RESPONSE, 0x00, 0xff],
        refused: (frame) => frame[0] === OXY_RESPONSE && frame[1] !== 0x00,
        timeoutMs: 1_000,
        // Six seconds unanswered, the vendor app's own timeout (darrylburke/lookee_o2ring_bluetooth docs/PROTOCOL.md).
        retries: 5,
      },
    },
  ],
  quirks: {
    polled: {
      reason:
        'Sends nothing unless asked: RT_PARAM is requested every second (vendor SDK 500 ms, o2r and viatom-ble 2 s); six unanswered in a row fail the link',
    },
    invalidMarkers: {
      reason:
        'SpO2 0xFF and pulse rate 0xFFFF (or low byte 0xFF) mean no value, as does anything while not worn or searching (worn, SpO2 0 and pulse 0): null with invalid nan',
    },
    responseWithoutCommand: {
      reason:
        'Responses do not name the command they answer; only RT_PARAM is sent, so a 13-byte answer is read as real-time parameters and other answers give no reading',
    },
    noWaveform: {
      reason: 'The 125 Hz RT_WAVE stream (0x1B) is never requested, so no waveform sample reaches the store',
    },
    noDeviceTime: { reason: 'Real-time parameters carry no timestamp, so time is always null' },
  },
  sources: [
    'viatomEcho/LepuBle blepro/src/main/java/com/lepu/blepro/ble/cmd/OxyBleCmd.java, OxyBleResponse.kt (RtParam), OxyBleInterface.kt (reassembly), utils/CrcUtil.java (CRC-8 poly 0x07)',
    'MackeyStingray/o2r o2r/o2pkt.py (framing, CRC), o2r/o2state.py (RT_PARAM decode and three received payloads), o2r/o2bt.py',
    'ecostech/viatom-ble viatom-ble.py (RT_PARAM request bytes, tested against a Wellue KidsO2)',
    'darrylburke/lookee_o2ring_bluetooth docs/PROTOCOL.md (getInfo bytes, the app timeout, invalid markers)',
  ],
});
