import {
  ByteReader,
  DecodeError,
  FrameError,
  type FrameEvent,
  type StreamDecoder,
  xor8,
} from 'rpm-gateway/sdk';

/**
 * Omron's proprietary EEPROM transfer protocol as the HEM-7142T2 speaks it on the "modern" stack (one RX and one TX
 * channel in the Omron service 0xFE4A, OS bonding). Sources: userx14/omblepy omblepy.py and README (packet layout,
 * XOR rule, start/read/end commands), eigger/hass-omron custom_components/omron/omron_ble/omron_driver.py
 * (single-channel reassembly, token unlock) and device_catalog.py (the HEM-7142T2 profile).
 */

/** Omron Healthcare's 16-bit service (Bluetooth SIG member UUID 0xFE4A), the parent of the modern stack. */
export const OMRON_SERVICE = 'fe4a';
/** Host -> device packets (hass-omron const.py, "TX channel" 0). */
export const OMRON_TX = 'db5b55e0-aee7-11e1-965e-0002a5d5c51b';
/** Device -> host packets, notified (hass-omron const.py, "RX channel" 0). */
export const OMRON_RX = '49123040-aee8-11e1-a74d-0002a5d5c51b';
/** The unlock characteristic: written and notified (hass-omron const.py CLASSIC_STACK_UNLOCK_CHARACTERISTIC_UUID). */
export const OMRON_UNLOCK = 'b305b680-aee7-11e1-a730-0002a5d5c51b';

/** Packet types (omblepy README, "command table"): requests and the device's replies. */
export const TYPE_START = 0x0000;
export const TYPE_READ = 0x0100;
export const TYPE_END = 0x0f00;
export const REPLY_START = 0x8000;
export const REPLY_READ = 0x8100;
export const REPLY_WRITE = 0x81c0;
export const REPLY_END = 0x8f00;

/** len | type u16 BE | address u16 BE | size | data | status | XOR: 8 bytes around the data. */
export const PACKET_OVERHEAD = 8;
/** The packet length is one byte. */
export const MAX_PACKET = 0xff;

/** Token unlock (hass-omron omron_driver.py _token_unlock): 0x11 + 4 host-chosen bytes + 15 zero bytes. */
export const TOKEN_UNLOCK = 0x11;
/** Its acknowledgement: 0x91, status 00, the 4 bytes echoed. */
export const TOKEN_ACK = 0x91;

/** HEM-7142T2 record memory (hass-omron device_catalog.py "HEM-7142T2"): 14 slots of 14 bytes from 0x02E8. */
export const RECORD_START = 0x02e8;
export const RECORD_SIZE = 0x0e;
export const RECORD_SLOTS = 14;
export const RECORD_END = RECORD_START + RECORD_SIZE * RECORD_SLOTS;

/** A packet with its length byte, status 00 and XOR byte: the XOR of all its bytes is 0 (omblepy README). */
export function omronPacket(
  type: number,
  address: number,
  size: number,
  data: Uint8Array = new Uint8Array(),
): Uint8Array {
  const length = PACKET_OVERHEAD + data.length;
  const out = new Uint8Array(length);
  out.set([length, type >> 8, type & 0xff, address >> 8, address & 0xff, size], 0);
  out.set(data, 6);
  out[length - 2] = 0x00;
  out[length - 1] = xor8(out, 0, length - 1);
  return out;
}

/** A short reply that carries only an error status (hass-omron issue #13: 08 81 00 02 ac 38 e7 f8). */
export function omronErrorReply(type: number, address: number, size: number, status: number): Uint8Array {
  const out = Uint8Array.of(
    PACKET_OVERHEAD,
    type >> 8,
    type & 0xff,
    address >> 8,
    address & 0xff,
    size,
    status,
    0,
  );
  out[7] = xor8(out, 0, 7);
  return out;
}

/** Start of a data transfer, 08 00 00 00 00 10 00 18 (omblepy, and ubpm's cmd_init as hass-omron quotes it). */
export const START_TRANSFER = omronPacket(TYPE_START, 0x0000, 0x10);
/** End of a data transfer, 08 0f 00 00 00 00 00 07. */
export const END_TRANSFER = omronPacket(TYPE_END, 0x0000, 0x00);
/** Read `size` bytes of EEPROM at `address`: 08 01 00 aa aa ss 00 xx. */
export function readRequest(address: number, size: number): Uint8Array {
  return omronPacket(TYPE_READ, address, size);
}

/** One parsed packet: its type, address, announced size, data (the bytes between header and status) and status. */
export interface OmronPacket {
  readonly type: number;
  readonly address: number;
  readonly size: number;
  readonly data: Uint8Array;
  readonly status: number;
}

/** Parses one whole packet (the framer has checked its length and XOR; a direct caller may not have). */
export function parsePacket(bytes: Uint8Array): OmronPacket {
  const r = new ByteReader(bytes, 'Omron packet');
  const length = r.u8('length');
  if (length < PACKET_OVERHEAD)
    r.invalid(`length ${length} is below the ${PACKET_OVERHEAD}-byte packet header`);
  if (length !== bytes.length) {
    throw new DecodeError(
      bytes.length < length ? 'DECODE_TRUNCATED' : 'DECODE_TRAILING_BYTES',
      `Omron packet: length byte says ${length} bytes, ${bytes.length} given`,
      Math.min(length, bytes.length),
    );
  }
  if (xor8(bytes) !== 0) r.invalid('the XOR of the packet is not 0');
  const type = (r.u8('type') << 8) | r.u8('type low byte');
  const address = (r.u8('address') << 8) | r.u8('address low byte');
  const size = r.u8('size');
  const data = r.take(length - PACKET_OVERHEAD, 'data');
  const status = r.u8('status');
  r.u8('xor');
  r.end();
  return { type, address, size, data, status };
}

/**
 * Cuts the RX notifications into packets. The length byte comes first and there is no sync byte, so the SDK's
 * declarative FrameFormat (which needs one) cannot say it: this is the SDK's StreamFraming. A packet may span
 * notifications (20 bytes at the default ATT_MTU) or share one with the next; the XOR of a whole packet must be 0.
 * A packet whose XOR fails is dropped whole (DECODE_CHECKSUM). Zero bytes after a packet in the same notification are the transport's padding (omblepy and hass-omron cut a
 * packet to its length byte; the captures in omblepy issue #57 pad each 16-byte channel with 00), never a packet
 * start, since no packet is shorter than 8 bytes. Anything else that starts no packet is reported.
 */
export function omronPacketStream(): StreamDecoder {
  let held: number[] = [];
  return {
    get pending() {
      return held.length;
    },
    push(bytes: Uint8Array): FrameEvent[] {
      const out: FrameEvent[] = [];
      held.push(...bytes);
      let completedHere = false;
      let garbage = 0;
      const flushGarbage = () => {
        if (garbage === 0) return;
        out.push({
          error: new FrameError('DECODE_FRAME_GARBAGE', `Omron stream: ${garbage} byte(s) start no packet`, {
            bytes: garbage,
          }),
        });
        garbage = 0;
      };
      while (held.length > 0) {
        const length = held[0] as number;
        if (length === 0 && completedHere) {
          // Padding after a packet this notification completed: the rest of it must be zeros too.
          held.shift();
          continue;
        }
        if (length < PACKET_OVERHEAD) {
          held.shift();
          garbage++;
          continue;
        }
        if (held.length < length) break;
        const frame = Uint8Array.from(held.slice(0, length));
        if (xor8(frame) !== 0) {
          flushGarbage();
          out.push({
            error: new FrameError('DECODE_CHECKSUM', `Omron stream: a ${length}-byte packet fails its XOR`, {
              bytes: length,
            }),
          });
          // The whole announced packet is dropped, as hass-omron does. Without a sync byte there is no better
          // place to resume: retrying at the next byte would read the packet's own bytes as lengths and could
          // hold back the packets behind it until up to 255 bytes arrived.
          held = held.slice(length);
          completedHere = true;
          continue;
        }
        flushGarbage();
        held = held.slice(length);
        out.push({ frame });
        completedHere = true;
      }
      flushGarbage();
      return out;
    },
  };
}

/** One decoded record slot: null when the slot is empty. */
export interface OmronRecord {
  readonly systolic: number;
  /** null: the byte reads FF, an erased EEPROM byte, never a pressure. */
  readonly diastolic: number | null;
  readonly pulseRate: number | null;
  /** ISO-8601 local time without offset, or null when the fields are no date. */
  readonly time: string | null;
  readonly irregularHeartbeat: boolean;
  readonly bodyMovement: boolean;
  /** Bit 12 of the second flags word: set when the cuff was wrapped correctly (hass-omron parser.py cuff_fit). */
  readonly cuffWrapOk: boolean;
  readonly lowBattery: boolean;
  /** Bits 14-15 of the second flags word; non-zero is an improper measurement position (hass-omron). */
  readonly position: number;
  readonly recordId: number;
}

/** The highest systolic byte of a written slot: above it (FF on an erased slot) the slot is empty. */
const MAX_SYSTOLIC_BYTE = 0xe1;
const SYSTOLIC_OFFSET = 25;

/**
 * The 14-byte "classic_vital_14" little-endian record (hass-omron record_parsers.py parse_classic_vital_14):
 * [0] systolic - 25, [1] diastolic, [2] pulse, [3] bits 0-5 year - 2000, [4..5] LE: hour bits 0-4, day 5-9,
 * month 10-13, irregular heartbeat 14, body movement 15; [6..7] LE: second bits 0-5, minute 6-11, cuff 12,
 * battery 13, position 14-15; [8..11] not decoded by any source; [12..13] LE record id.
 */
export function decodeRecord(bytes: Uint8Array): OmronRecord | null {
  const r = new ByteReader(bytes, 'Omron record');
  const sys = r.u8('systolic');
  const dia = r.u8('diastolic');
  const pulse = r.u8('pulse rate');
  const year = r.u8('year') & 0x3f;
  const flags1 = r.u16('date flags');
  const flags2 = r.u16('time flags');
  r.take(4, 'undocumented bytes');
  const recordId = r.u16('record id');
  r.end();
  // Empty slots (hass-omron): systolic byte above 0xE1 (an erased slot is all FF), or a zero-filled slot.
  if (sys > MAX_SYSTOLIC_BYTE) return null;
  if (dia === 0 && pulse === 0 && year === 0 && flags1 === 0 && flags2 === 0) return null;
  const hour = flags1 & 0x1f;
  const day = (flags1 >> 5) & 0x1f;
  const month = (flags1 >> 10) & 0x0f;
  const second = flags2 & 0x3f;
  const minute = (flags2 >> 6) & 0x3f;
  return {
    systolic: sys + SYSTOLIC_OFFSET,
    diastolic: dia === 0xff ? null : dia,
    pulseRate: pulse === 0xff ? null : pulse,
    time: isoTime(2000 + year, month, day, hour, minute, second),
    irregularHeartbeat: (flags1 & 0x4000) !== 0,
    bodyMovement: (flags1 & 0x8000) !== 0,
    cuffWrapOk: (flags2 & 0x1000) !== 0,
    lowBattery: (flags2 & 0x2000) !== 0,
    position: (flags2 >> 14) & 0x03,
    recordId,
  };
}

function isoTime(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
): string | null {
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  // Day within the month (Date.UTC rolls 31 April over into May: refuse that).
  const probe = new Date(Date.UTC(year, month - 1, day));
  if (probe.getUTCMonth() !== month - 1) return null;
  const two = (n: number) => String(n).padStart(2, '0');
  return `${year}-${two(month)}-${two(day)}T${two(hour)}:${two(minute)}:${two(second)}`;
}

/** What the simulator writes into a slot (the inverse of decodeRecord). */
export interface RecordFields {
  readonly systolic: number;
  readonly diastolic: number;
  readonly pulseRate: number;
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  readonly irregularHeartbeat?: boolean;
  readonly bodyMovement?: boolean;
  readonly recordId: number;
}

export function encodeRecord(f: RecordFields): Uint8Array {
  const out = new Uint8Array(RECORD_SIZE);
  const clampByte = (n: number, min: number, max: number) => Math.max(min, Math.min(max, Math.round(n)));
  out[0] = clampByte(f.systolic - SYSTOLIC_OFFSET, 0, MAX_SYSTOLIC_BYTE);
  out[1] = clampByte(f.diastolic, 1, 0xfe);
  out[2] = clampByte(f.pulseRate, 1, 0xfe);
  out[3] = (f.year - 2000) & 0x3f;
  const flags1 =
    (f.hour & 0x1f) |
    ((f.day & 0x1f) << 5) |
    ((f.month & 0x0f) << 10) |
    (f.irregularHeartbeat ? 0x4000 : 0) |
    (f.bodyMovement ? 0x8000 : 0);
  // Cuff wrapped correctly (bit 12), as in both real HEM-7142T2 records.
  const flags2 = (f.second & 0x3f) | ((f.minute & 0x3f) << 6) | 0x1000;
  out[4] = flags1 & 0xff;
  out[5] = flags1 >> 8;
  out[6] = flags2 & 0xff;
  out[7] = flags2 >> 8;
  out[12] = f.recordId & 0xff;
  out[13] = (f.recordId >> 8) & 0xff;
  return out;
}
