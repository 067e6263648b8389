import { defineDeviceModel, pastTimes, type ServiceDefinition } from 'rpm-gateway/sdk/sim';
import {
  encodeRecord,
  OMRON_RX,
  OMRON_SERVICE,
  OMRON_TX,
  OMRON_UNLOCK,
  omronErrorReply,
  omronPacket,
  PACKET_OVERHEAD,
  RECORD_END,
  RECORD_SIZE,
  RECORD_SLOTS,
  RECORD_START,
  REPLY_END,
  REPLY_READ,
  REPLY_START,
  TOKEN_ACK,
  TOKEN_UNLOCK,
  TYPE_END,
  TYPE_READ,
  TYPE_START,
} from './omron-protocol.js';

/** The cuff answers within a connection interval or two. */
const ANSWER_DELAY_MS = 30;
/** An error status for a read the cuff will not serve (the e7 of hass-omron issue #13). */
const READ_REFUSED = 0xe7;

/**
 * A HEM-7142T2: advertises the Omron service FE4A with the name "HEM-7142T2"; keeps its last 14 measurements of
 * the simulated patient in a ring of 14-byte EEPROM slots at 0x02E8 (a new measurement overwrites the oldest
 * slot); answers the token unlock on the unlock characteristic, and, once unlocked, start / read / end transfer
 * packets on TX with whole packets on RX (one notification each, as the single-channel debug logs show them).
 * Requests are answered in the order they arrive. A packet whose XOR fails, a request before the unlock, or a
 * read outside a started transfer get no answer; a read outside the record memory gets a short error reply.
 * The settings and index regions (unread counter, write cursor, clock) are not modelled.
 */
export default defineDeviceModel({
  address: 'D0:5E:00:00:71:42',
  name: 'HEM-7142T2',
  build: (c) => {
    const memory = new Uint8Array(RECORD_SLOTS * RECORD_SIZE).fill(0xff);
    let next = 0; // the slot the next measurement goes to
    let recordId = 1;
    let unlocked = false;
    let transferring = false;

    const store = (t: number) => {
      const bp = c.subject.bloodPressure(t);
      const time = p.deviceTime(t);
      const record = encodeRecord({
        systolic: bp.systolic,
        diastolic: bp.diastolic,
        pulseRate: bp.pulseRate,
        year: time.year,
        month: time.month,
        day: time.day,
        hour: time.hours,
        minute: time.minutes,
        second: time.seconds,
        recordId: recordId++,
      });
      memory.set(record, next * RECORD_SIZE);
      next = (next + 1) % RECORD_SLOTS;
    };

    let lastAnswerAt = Number.NEGATIVE_INFINITY;
    const answer = (characteristic: string, packet: Uint8Array) => {
      // One answer at a time, in request order, each a little after the one before.
      const at = Math.max(c.scheduler.now(), lastAnswerAt) + ANSWER_DELAY_MS;
      lastAnswerAt = at;
      c.scheduler.setTimeout(() => p.emit(characteristic, packet), at - c.scheduler.now());
    };

    const onUnlock = (value: Uint8Array) => {
      if (value[0] !== TOKEN_UNLOCK || value.length < 5) return;
      unlocked = true;
      answer(OMRON_UNLOCK, Uint8Array.of(TOKEN_ACK, 0x00, ...value.subarray(1, 5)));
    };

    const onRequest = (value: Uint8Array) => {
      if (!unlocked || value.length < PACKET_OVERHEAD || value[0] !== value.length) return;
      if (value.reduce((x, b) => x ^ b, 0) !== 0) return;
      const type = ((value[1] ?? 0) << 8) | (value[2] ?? 0);
      const address = ((value[3] ?? 0) << 8) | (value[4] ?? 0);
      const size = value[5] ?? 0;
      if (type === TYPE_START) {
        transferring = true;
        answer(OMRON_RX, omronPacket(REPLY_START, 0x0000, 0x10, new Uint8Array(0x10)));
      } else if (type === TYPE_END) {
        transferring = false;
        answer(OMRON_RX, omronPacket(REPLY_END, 0x0000, 0x00));
      } else if (type === TYPE_READ && transferring) {
        if (address < RECORD_START || address + size > RECORD_END || size === 0) {
          answer(OMRON_RX, omronErrorReply(REPLY_READ, address, size, READ_REFUSED));
          return;
        }
        const from = address - RECORD_START;
        answer(OMRON_RX, omronPacket(REPLY_READ, address, size, memory.slice(from, from + size)));
      }
    };

    const gatt: ServiceDefinition[] = [
      {
        uuid: OMRON_SERVICE,
        characteristics: [
          c.measurementChar(OMRON_RX, ['notify']),
          { uuid: OMRON_TX, properties: ['write', 'write-without-response'], onWrite: (v) => onRequest(v) },
          c.measurementChar(OMRON_UNLOCK, ['write', 'write-without-response', 'notify'], {
            onWrite: (v) => onUnlock(v),
          }),
        ],
      },
    ];
    const p = c.peripheral([OMRON_SERVICE], gatt);
    p.addHooks({
      onDisconnect: () => {
        unlocked = false;
        transferring = false;
      },
    });
    return {
      peripheral: p,
      measurement: { service: OMRON_SERVICE, characteristic: OMRON_RX },
      streams: false,
      // A measurement goes into the ring; the gateway reads it at its next transfer.
      measure: () => store(c.scheduler.now()),
      preload: (count, everyMs = 6 * 3_600_000, endingAt = c.scheduler.now()) => {
        for (const t of pastTimes(endingAt, count, everyMs)) store(t);
      },
    };
  },
});
