import { describe, expect, it } from 'vitest';
import { omronPacketStream } from '../../devices/vendor/omron-hem7142t2/omron-protocol.js';
import { FrameError } from '../../src/errors.js';
import { normalizeUuid } from '../../src/gatt/uuid.js';
import { sessionRig } from '../session/session-rig.js';

/**
 * The HEM-7142T2 transfer through a real session against its simulator (devices/vendor/omron-hem7142t2/sim.ts),
 * in virtual time: token unlock, start, five block reads of the 14 record slots, end, each write waiting for its
 * answer; a cuff that answers a read with an error status fails the link with BLE_REFUSED, one that never answers
 * the unlock with BLE_NO_ANSWER.
 */
const TX = normalizeUuid('db5b55e0-aee7-11e1-965e-0002a5d5c51b');
const RX = normalizeUuid('49123040-aee8-11e1-a74d-0002a5d5c51b');
const UNLOCK = normalizeUuid('b305b680-aee7-11e1-a730-0002a5d5c51b');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('omron-hem7142t2 in a session', () => {
  it('unlocks, starts, reads the record memory in five blocks, ends, and reads each stored record once', async () => {
    const r = sessionRig('vendor/omron-hem7142t2', { device: { preload: 5 } });
    await r.central.start();
    r.session.start();
    await r.advance(5_000);
    expect(r.device.peripheral.written(UNLOCK).map(hex)).toEqual(['11' + '52504d47' + '00'.repeat(15)]);
    expect(r.device.peripheral.written(TX).map(hex)).toEqual([
      '0800000000100018',
      '08010002e82a00c9',
      '08010003122a0032',
      '080100033c2a001c',
      '08010003662a0046',
      '08010003901c0086',
      '080f000000000007',
    ]);
    // Five preloaded records fill slots 0-4: two blocks, five readings, each with its block reply as payload.
    expect(r.readings).toHaveLength(5);
    const sys = r.readings.map((x) =>
      x.reading.observations.find((o) => o.code === 'MDC_PRESS_BLD_NONINV_SYS'),
    );
    expect(sys.every((o) => typeof o?.value === 'number' && o.unit === 'mm[Hg]')).toBe(true);
    expect(r.readings.every((x) => x.reading.time !== null)).toBe(true);
    expect(r.readings.slice(0, 3).every((x) => x.payload.length === 50)).toBe(true);
    await r.session.stop();
  });

  it('fails the link with BLE_REFUSED when the cuff answers a read with an error status', async () => {
    const r = sessionRig('vendor/omron-hem7142t2', { device: { preload: 2 } });
    const tx = r.device.peripheral.characteristic(TX) as { onWrite?: (v: Uint8Array) => void };
    const answer = tx.onWrite as (v: Uint8Array) => void;
    // Start is answered as usual; every read gets the 8-byte error reply of hass-omron issue #13's shape.
    tx.onWrite = (v) => {
      if (v[1] !== 0x01) return answer(v);
      const reply = Uint8Array.of(0x08, 0x81, 0x00, v[3] ?? 0, v[4] ?? 0, v[5] ?? 0, 0xe7, 0);
      reply[7] = reply.slice(0, 7).reduce((x, b) => x ^ b, 0);
      r.scheduler.setTimeout(() => r.device.peripheral.emit(RX, reply), 30);
    };
    await r.central.start();
    r.session.start();
    await r.advance(5_000);
    expect(r.states).toContain('backoff');
    const detail = r.details[r.states.indexOf('backoff')];
    expect(detail).toMatch(/^BLE_REFUSED: the device refused setup step 3 \(read record slots 0-2/);
    expect(r.readings).toHaveLength(0);
    await r.session.stop();
  });

  it('fails the link with BLE_NO_ANSWER after six unanswered unlocks', async () => {
    const r = sessionRig('vendor/omron-hem7142t2', { device: { preload: 2 } });
    const unlock = r.device.peripheral.characteristic(UNLOCK) as { onWrite?: unknown };
    unlock.onWrite = undefined;
    await r.central.start();
    r.session.start();
    await r.advance(8_000);
    expect(r.device.peripheral.written(UNLOCK).length).toBeGreaterThanOrEqual(6);
    expect(r.device.peripheral.written(TX)).toHaveLength(0);
    const detail = r.details[r.states.indexOf('backoff')];
    expect(detail).toMatch(/^BLE_NO_ANSWER: setup step 1 \(token unlock.*6 tries/);
    await r.session.stop();
  });
});

describe('omron packet stream', () => {
  const end = Uint8Array.from(Buffer.from('088f000000000087', 'hex'));
  it('drops zero padding after a packet in the same notification, silently', () => {
    const events = omronPacketStream().push(Uint8Array.of(...end, 0, 0, 0, 0, 0, 0, 0, 0));
    expect(events.map((e) => (e.frame ? hex(e.frame) : e.error.code))).toEqual(['088f000000000087']);
  });

  it('reports zeros where a notification should start a packet', () => {
    const stream = omronPacketStream();
    const events = stream.push(Uint8Array.of(0, 0, ...end));
    expect(
      events.map((e) =>
        e.frame ? hex(e.frame) : `${e.error.code}:${e.error instanceof FrameError ? e.error.bytes : '?'}`,
      ),
    ).toEqual(['DECODE_FRAME_GARBAGE:2', '088f000000000087']);
    expect(stream.pending).toBe(0);
  });
});
