import {
  ByteReader,
  DecodeError,
  type Decoder,
  defineDriver,
  type JsonValue,
  type MderNumber,
  type Observation,
  observe,
  type Reading,
  type SetupWrite,
  type StreamFraming,
} from 'rpm-gateway/sdk';
import {
  decodeRecord,
  END_TRANSFER,
  MAX_PACKET,
  OMRON_RX,
  OMRON_SERVICE,
  OMRON_TX,
  OMRON_UNLOCK,
  omronPacketStream,
  PACKET_OVERHEAD,
  parsePacket,
  RECORD_END,
  RECORD_SIZE,
  RECORD_SLOTS,
  RECORD_START,
  REPLY_END,
  REPLY_READ,
  REPLY_START,
  REPLY_WRITE,
  readRequest,
  START_TRANSFER,
  TOKEN_ACK,
  TOKEN_UNLOCK,
} from './omron-protocol.js';

const NO_VALUE: MderNumber = Object.freeze({ value: null, invalid: 'nan' });

const framing: StreamFraming = { stream: omronPacketStream, maxLength: MAX_PACKET };

/** One record slot of a read reply: a reading, or none for an empty slot. */
function recordReading(bytes: Uint8Array, slot: number): Reading | null {
  const record = decodeRecord(bytes);
  if (record === null) return null;
  const observations: Observation[] = [
    observe('MDC_PRESS_BLD_NONINV_SYS', { value: record.systolic }, 'mm[Hg]'),
    observe(
      'MDC_PRESS_BLD_NONINV_DIA',
      record.diastolic === null ? NO_VALUE : { value: record.diastolic },
      'mm[Hg]',
    ),
    observe(
      'MDC_PULS_RATE_NON_INV',
      record.pulseRate === null ? NO_VALUE : { value: record.pulseRate },
      '/min',
    ),
  ];
  const status: string[] = [];
  if (record.bodyMovement) status.push('body-movement');
  if (!record.cuffWrapOk) status.push('cuff-fit-loose');
  if (record.irregularHeartbeat) status.push('irregular-pulse');
  if (record.position !== 0) status.push('improper-measurement-position');
  const details: { [k: string]: JsonValue } = { slot, recordId: record.recordId };
  if (record.lowBattery) details['lowBattery'] = true;
  if (record.time === null) details['deviceTimeInvalid'] = true;
  return { observations, time: record.time, status, kind: 'measurement', details };
}

/**
 * One RX packet. A read reply inside the record memory gives one reading per written slot; the replies to
 * start, end and writes, and reads elsewhere (another app's), carry no reading. A reply with an error status is
 * refused, which makes it visible (and the setup step's `refused` pattern fails the link).
 */
const decodePacket: Decoder = (bytes) => {
  const packet = parsePacket(bytes);
  const { type, address, size, data, status } = packet;
  if (status !== 0) {
    throw new DecodeError(
      'DECODE_INVALID_FIELD',
      `Omron packet: the device answered with error status ${status}`,
    );
  }
  if (type === REPLY_START || type === REPLY_END || type === REPLY_WRITE) return [];
  if (type !== REPLY_READ) {
    throw new DecodeError(
      'DECODE_INVALID_FIELD',
      `Omron packet: type ${type.toString(16).padStart(4, '0')} is no reply`,
    );
  }
  if (data.length !== size) {
    throw new DecodeError(
      'DECODE_INVALID_FIELD',
      `Omron packet: a read of ${size} bytes carries ${data.length}`,
    );
  }
  if (address + size <= RECORD_START || address >= RECORD_END) return [];
  if (
    (address - RECORD_START) % RECORD_SIZE !== 0 ||
    size % RECORD_SIZE !== 0 ||
    address + size > RECORD_END
  ) {
    throw new DecodeError(
      'DECODE_INVALID_FIELD',
      'Omron packet: a read of the record memory that does not cover whole record slots',
    );
  }
  const readings: Reading[] = [];
  for (let at = 0; at < size; at += RECORD_SIZE) {
    const slot = (address - RECORD_START + at) / RECORD_SIZE;
    const reading = recordReading(data.subarray(at, at + RECORD_SIZE), slot);
    if (reading) readings.push(reading);
  }
  return readings;
};

/**
 * The unlock characteristic's notifications. Only the token acknowledgement (91 00 + echo) is expected; it
 * carries no reading. Anything else is refused (the setup step still sees it: a 91 with another status fails it).
 */
const decodeUnlock: Decoder = (bytes) => {
  const r = new ByteReader(bytes, 'Omron unlock answer');
  if (r.u8('answer type') !== TOKEN_ACK) r.invalid('not a token unlock acknowledgement (91)');
  if (r.u8('status') !== 0) r.invalid('the device refused the unlock');
  return [];
};

/**
 * The token: any four bytes, echoed by the cuff. hass-omron (omron_driver.py _token_unlock) found it is no stored
 * secret: HCI btsnoop of a HEM-7142T2 showed the same cuff echoing two different host-chosen values. A setup write
 * is a constant, so the gateway sends the same four bytes every time.
 */
const TOKEN = [0x52, 0x50, 0x4d, 0x47];
const UNLOCK_REQUEST = Uint8Array.of(TOKEN_UNLOCK, ...TOKEN, ...new Array<number>(15).fill(0));

/** hass-omron and omblepy wait about 1 s for a reply and try again up to 5 times. */
const ANSWER_MS = 1_000;
const RETRIES = 5;

/**
 * How often the transfer is repeated while the cuff keeps the link. A cuff ends the link itself after a transfer,
 * so this rarely fires; when it does, the whole record memory is read again: start, reads and end share this
 * period, so the session runs them again as one transaction, in order (SetupWrite.repeatEveryMs).
 */
const REREAD_MS = 60_000;

const rxAnswer = (match: (number | null)[], refusedType: number) => ({
  characteristic: OMRON_RX,
  match,
  // An 8-byte reply of the same type with a non-zero status byte is an error (hass-omron issue #13: 08 81 00 02
  // ac 38 e7 f8 answered a read the cuff would not serve).
  refused: (frame: Uint8Array) =>
    frame.length === PACKET_OVERHEAD &&
    frame[0] === PACKET_OVERHEAD &&
    ((frame[1] ?? 0) << 8) + (frame[2] ?? 0) === refusedType &&
    frame[6] !== 0,
  timeoutMs: ANSWER_MS,
  retries: RETRIES,
});

/**
 * The record memory is read in blocks of three slots (42 bytes), the last one two slots: five reads instead of
 * fourteen. hass-omron reads this model's memory in blocks of up to 0x2C bytes (device_catalog.py
 * transmission_block_size); 42 is the largest whole number of 14-byte slots within that.
 */
const BLOCK_SLOTS = 3;
const blockReads: SetupWrite[] = Array.from({ length: Math.ceil(RECORD_SLOTS / BLOCK_SLOTS) }, (_, block) => {
  const first = block * BLOCK_SLOTS;
  const slots = Math.min(BLOCK_SLOTS, RECORD_SLOTS - first);
  const address = RECORD_START + first * RECORD_SIZE;
  const size = slots * RECORD_SIZE;
  return {
    service: OMRON_SERVICE,
    characteristic: OMRON_TX,
    value: readRequest(address, size),
    reason: `read record slots ${first}-${first + slots - 1} (EEPROM 0x${address.toString(16).padStart(4, '0')}, ${size} bytes)`,
    repeatEveryMs: REREAD_MS,
    expect: rxAnswer(
      [PACKET_OVERHEAD + size, REPLY_READ >> 8, REPLY_READ & 0xff, address >> 8, address & 0xff, size],
      REPLY_READ,
    ),
  };
});

export default defineDriver({
  id: 'vendor/omron-hem7142t2',
  version: '1.0.0',
  name: 'Omron HEM-7142T2 blood pressure monitor (Omron EEPROM transfer protocol)',
  category: 'blood-pressure',
  // hass-omron (manifest.json, parser.py) recognises Omron cuffs by the service FE4A, company id 526 or a "HEM-"
  // name, and infers the model, which decides the memory map, from a "HEM-" name or else from the Model Number
  // read after connecting. A driver is picked from the advertisement alone, and the memory map below is the
  // HEM-7142T2's, so the name must say so. A cuff that advertises only the standard 0x1810 stays with the SIG
  // driver: no supersedes needed.
  match: { services: [OMRON_SERVICE], name: /^HEM-7142T2/ },
  characteristics: [
    {
      uuid: OMRON_RX,
      service: OMRON_SERVICE,
      access: 'notify',
      name: 'Omron transfer RX',
      framing,
      decode: decodePacket,
      emits: [
        { code: 'MDC_PRESS_BLD_NONINV_SYS', units: ['mm[Hg]'] },
        { code: 'MDC_PRESS_BLD_NONINV_DIA', units: ['mm[Hg]'] },
        { code: 'MDC_PULS_RATE_NON_INV', units: ['/min'] },
      ],
    },
    {
      uuid: OMRON_UNLOCK,
      service: OMRON_SERVICE,
      access: 'notify',
      name: 'Omron unlock',
      decode: decodeUnlock,
      emits: [],
    },
  ],
  setup: [
    {
      service: OMRON_SERVICE,
      characteristic: OMRON_UNLOCK,
      value: UNLOCK_REQUEST,
      reason: 'token unlock (11 + 4 bytes): the cuff answers transfer commands only after it',
      // The official app writes without response (hass-omron, from btsnoop).
      withResponse: false,
      expect: {
        characteristic: OMRON_UNLOCK,
        match: [TOKEN_ACK, 0x00, ...TOKEN],
        refused: (frame) => frame[0] === TOKEN_ACK && frame[1] !== 0x00,
        timeoutMs: ANSWER_MS,
        retries: RETRIES,
      },
    },
    {
      service: OMRON_SERVICE,
      characteristic: OMRON_TX,
      value: START_TRANSFER,
      reason: 'start of data transfer (08 00 00 00 00 10 00 18)',
      repeatEveryMs: REREAD_MS,
      expect: rxAnswer([null, REPLY_START >> 8, REPLY_START & 0xff], REPLY_START),
    },
    ...blockReads,
    {
      service: OMRON_SERVICE,
      characteristic: OMRON_TX,
      value: END_TRANSFER,
      reason: 'end of data transfer (08 0f 00 00 00 00 00 07)',
      repeatEveryMs: REREAD_MS,
      expect: rxAnswer([null, REPLY_END >> 8, REPLY_END & 0xff], REPLY_END),
    },
  ],
  quirks: {
    pulledRecords: {
      reason:
        'Sends nothing by itself: after a token unlock the gateway starts a transfer, reads the 14 record slots (EEPROM 0x02E8, 14 bytes each) in five blocks of up to three slots and ends the transfer',
    },
    allSlotsEveryTime: {
      reason:
        'Which slots are new is in the index region (write cursor, unread counter), and setup writes cannot take an address from an earlier answer, so all 14 slots are read on every connection; a record re-read has the same frame and so the same id',
    },
    unreadCounterUntouched: {
      reason:
        'The unread counter and the clock (settings at 0x02A4) are never written, so the Omron app still sees the records as new and the cuff clock is not set',
    },
    fixedUnlockToken: {
      reason: 'The token unlock echoes any four host-chosen bytes (hass-omron), so a constant token is sent',
    },
    rereadWhileConnected: {
      reason:
        'Start, reads and end repeat every 60 s while the cuff keeps the link, as one transfer in order (the whole memory again; re-read records keep their ids)',
    },
    systolicOffset: {
      reason: 'The systolic byte is the pressure less 25 mmHg; a byte above 0xE1 marks an empty slot',
    },
    emptySlots: {
      reason: 'An empty slot (all FF, systolic byte above 0xE1, or zero-filled) gives no reading',
    },
    erasedBytes: {
      reason:
        'A diastolic or pulse byte of FF inside a written slot (an erased EEPROM byte, no source documents it in a record) is null with invalid nan, never 255',
    },
    deviceLocalTime: {
      reason:
        'Record times are the cuff clock in local time without offset; a date the fields cannot form gives time null and details.deviceTimeInvalid',
    },
    paddedPackets: {
      reason:
        'Zero bytes after a packet in the same notification are transport padding (packets are cut to their length byte), not errors',
    },
    modelSpecificMemoryMap: {
      reason:
        'Record addresses and layout are those of the HEM-7142T2 (hass-omron device_catalog.py); other Omron models differ, so only an advertised HEM-7142T2 name matches',
    },
  },
  sources: [
    'userx14/omblepy omblepy.py and README.md (packet layout len|type|address|size|data|00|xor, XOR rule, start/read/end commands, 1 s timeout and retries), commit 708c13e4a6e62ddeb863dffff046ff93de200bef',
    'eigger/hass-omron custom_components/omron/omron_ble/device_catalog.py ("HEM-7142T2": addresses, record size, parser), record_parsers.py (parse_classic_vital_14), omron_driver.py (_token_unlock, single-channel reassembly, replies), const.py (UUIDs), commit d6758ed2dbd1d8ba5e954ccccf5f90e15e1a0ffa',
    'eigger/hass-omron tests/test_record_parsers.py (two HEM-7142T2 records from a real-device debug log) and issue #7 (read replies from a debug log), issue #13 (an error reply)',
    'userx14/omblepy issue #57 (HEM-7280T btsnoop: start, read, write and end packets decoded by the maintainer)',
  ],
});
