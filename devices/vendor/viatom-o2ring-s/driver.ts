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
  authPayload,
  CMD_AUTH,
  CMD_LIVE,
  CMD_SETUP,
  FLAG_REPLY,
  LIVE_FIXED,
  OXYII_HEADER,
  OXYII_LEAD,
  OXYII_MAX_PAYLOAD,
  OXYII_NOTIFY,
  OXYII_SERVICE,
  OXYII_WRITE,
  oxyiiFrame,
} from './oxyii-protocol.js';

const NO_VALUE: MderNumber = Object.freeze({ value: null, invalid: 'nan' });

/**
 * A5 | cmd | ~cmd | flag | seq | len u16 LE | payload | CRC-8 (poly 0x07). The length counts the payload only:
 * the bytes from offset 7 to the end, less the CRC. A live reply (about 160 bytes) spans several 20-byte
 * notifications at the default MTU (Tepna oxyii.py Reassembler: "the T8520 splits big live frames").
 */
const framing: FrameFormat = {
  sync: [OXYII_LEAD],
  length: { field: { offset: 5, width: 2, endian: 'little', counts: { from: OXYII_HEADER, trailing: 1 } } },
  checksum: { algorithm: 'crc8' },
  maxLength: OXYII_HEADER + OXYII_MAX_PAYLOAD + 1,
};

/** The payload length a frame announces (bytes 5-6, little-endian). */
function payloadLength(frame: Uint8Array): number {
  return (frame[5] ?? 0) | ((frame[6] ?? 0) << 8);
}

/**
 * A reply to AUTH that carries a payload: the ring handed out a session key, so (per the vendor SDK's AES path,
 * nglessner README "Encryption") its payloads may be encrypted from here on. This driver reads plaintext only.
 */
function isKeyedAuthReply(frame: Uint8Array): boolean {
  return (
    frame[0] === OXYII_LEAD && frame[1] === CMD_AUTH && frame[3] === FLAG_REPLY && payloadLength(frame) > 0
  );
}

/**
 * One whole frame. Only LIVE_SAMPLES_B replies carry readings; the setup acknowledgement and answers to other
 * commands (another app on the link) give none. The waveform samples of a live reply are dropped.
 */
const decodeFrame: Decoder = (bytes) => {
  const r = new ByteReader(bytes, 'OxyII frame');
  if (r.u8('lead') !== OXYII_LEAD) throw new DecodeError('DECODE_INVALID_FIELD', 'OxyII frame: no A5 lead');
  const cmd = r.u8('command');
  if (r.u8('command complement') !== (~cmd & 0xff)) r.invalid('command and its complement disagree');
  const flag = r.u8('flag');
  r.u8('sequence');
  const length = r.u16('length');
  if (isKeyedAuthReply(bytes)) {
    r.invalid('the ring answered AUTH with a session key; encrypted sessions are not supported');
  }
  if (cmd !== CMD_LIVE || flag !== FLAG_REPLY) {
    r.take(length, 'payload');
    r.u8('crc');
    r.end();
    return [];
  }
  if (length < LIVE_FIXED) r.invalid(`a live reply needs at least ${LIVE_FIXED} payload bytes`, 5);
  const duration = r.u32('session duration');
  r.u8('run status');
  const sensor = r.u8('sensor state');
  const spo2 = r.u8('SpO2');
  const pi = r.u8('perfusion index');
  const pulseRate = r.u16('pulse rate');
  r.u8('flags');
  const motion = r.u8('motion');
  const batteryState = r.u8('battery state');
  const battery = r.u8('battery');
  r.take(6, 'alarm states and reserved');
  r.u32('waveform offset');
  const samples = r.u16('waveform sample count');
  if (LIVE_FIXED + samples !== length) r.invalid('the waveform sample count disagrees with the frame length');
  r.take(samples, 'waveform');
  r.u8('crc');
  r.end();
  // Sensor 01 (finger present) and 03 (present, a file open) are worn; 00 is no finger (Tepna parse_live).
  const worn = sensor === 0x01 || sensor === 0x03;
  const spo2Valid = worn && spo2 >= 1 && spo2 <= 100;
  const pulseValid = worn && pulseRate !== 0 && pulseRate !== 0xff && pulseRate !== 0xffff;
  const status: string[] = [];
  if (!worn) status.push('not-worn');
  else if (!spo2Valid && !pulseValid) status.push('searching');
  return [
    {
      observations: [
        observe('MDC_PULS_OXIM_SAT_O2', spo2Valid ? { value: spo2 } : NO_VALUE, '%'),
        observe('MDC_PULS_OXIM_PULS_RATE', pulseValid ? { value: pulseRate } : NO_VALUE, '/min'),
        ...(spo2Valid && pi > 0 ? [observe('MDC_PULS_OXIM_PERF_REL', { value: pi / 10 }, '%')] : []),
      ],
      time: null,
      status,
      kind: 'measurement',
      details: { battery, batteryState, motion, sessionSeconds: duration, waveformSamplesDropped: samples },
    },
  ];
};

/**
 * AUTH with the portable serial prefix "0000" and time 0. Setup writes are fixed bytes, so the session's clock
 * cannot go in; the ring never answers AUTH, and neither source reports it checking the time.
 */
const AUTH_REQUEST = oxyiiFrame(CMD_AUTH, authPayload('0000', 0));
const SETUP_REQUEST = oxyiiFrame(CMD_SETUP, [0x00]);
/** LIVE_SAMPLES_B, empty payload, seq 0: A5 04 FB 00 00 00 00 CRC (Tepna live_frame). */
const LIVE_REQUEST = oxyiiFrame(CMD_LIVE);

export default defineDriver({
  id: 'vendor/viatom-o2ring-s',
  version: '1.0.0',
  name: 'Viatom/Wellue O2Ring S (OxyII protocol)',
  category: 'pulse-oximeter',
  match: { services: [OXYII_SERVICE] },
  characteristics: [
    {
      uuid: OXYII_NOTIFY,
      service: OXYII_SERVICE,
      access: 'notify',
      name: 'OxyII reply',
      framing,
      decode: decodeFrame,
      emits: [
        { code: 'MDC_PULS_OXIM_SAT_O2', units: ['%'] },
        { code: 'MDC_PULS_OXIM_PULS_RATE', units: ['/min'] },
        { code: 'MDC_PULS_OXIM_PERF_REL', units: ['%'] },
      ],
    },
  ],
  setup: [
    {
      service: OXYII_SERVICE,
      characteristic: OXYII_WRITE,
      value: AUTH_REQUEST,
      reason: 'AUTH (0xFF): the handshake the ring expects first; it sends no reply',
      withResponse: false,
    },
    {
      service: OXYII_SERVICE,
      characteristic: OXYII_WRITE,
      value: SETUP_REQUEST,
      reason: 'setup (0x10, payload 00): required after AUTH, answered by an empty acknowledgement',
      withResponse: false,
      expect: {
        characteristic: OXYII_NOTIFY,
        match: [OXYII_LEAD, CMD_SETUP, ~CMD_SETUP & 0xff, FLAG_REPLY],
        refused: isKeyedAuthReply,
        timeoutMs: 2_000,
        retries: 2,
      },
    },
    {
      service: OXYII_SERVICE,
      characteristic: OXYII_WRITE,
      value: LIVE_REQUEST,
      reason: 'live parameter request (LIVE_SAMPLES_B 0x04): the ring sends values only when asked',
      repeatEveryMs: 1_000,
      withResponse: false,
      expect: {
        characteristic: OXYII_NOTIFY,
        match: [OXYII_LEAD, CMD_LIVE, ~CMD_LIVE & 0xff, FLAG_REPLY],
        refused: isKeyedAuthReply,
        timeoutMs: 1_000,
        retries: 5,
      },
    },
  ],
  quirks: {
    polled: {
      reason:
        'Sends nothing unless asked: after AUTH and setup 0x10, LIVE_SAMPLES_B is requested every second (as Tepna capture-host polls it); six unanswered in a row fail the link',
    },
    fixedAuthTime: {
      reason:
        'The AUTH payload is built once with serial prefix "0000" and time 0, because setup writes are fixed bytes; the ring sends no reply to AUTH on firmware 2D010001/2D010002',
    },
    plaintextOnly: {
      reason:
        'A reply to AUTH carrying a session key (other firmware may encrypt payloads then) is refused with BLE_REFUSED rather than read as vitals',
    },
    invalidMarkers: {
      reason:
        'SpO2 0xFF or 0, pulse rate 0xFF, 0xFFFF or 0, and anything while no finger is sensed (sensor byte 00) are null with invalid nan',
    },
    waveformDropped: {
      reason:
        'Each live reply also carries about 125 waveform samples a second; they are dropped (only their count is kept in details), one reading per reply',
    },
    noDeviceTime: { reason: 'Live replies carry no timestamp, so time is always null' },
  },
  sources: [
    'nglessner/o2ring-s-protocol README.md (service, frame format, CRC-8 fixture, AUTH, command table) and oxyii_protocol.py',
    'Plantucha/Tepna capture-host/oxyii.py (live session flow, parse_live offsets from the vendor SDK OxyII RtParam, waveform layout) and capture-host/tests/test_oxyii.py (a real LIVE_SAMPLES_B payload)',
  ],
});
