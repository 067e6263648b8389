import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  authPayload,
  CMD_AUTH,
  CMD_LIVE,
  CMD_SETUP,
  isRequest,
  LEPUCLOUD_MD5,
  oxyiiFrame,
} from '../../devices/vendor/viatom-o2ring-s/oxyii-protocol.js';
import { normalizeUuid } from '../../src/gatt/uuid.js';
import { sessionRig } from '../session/session-rig.js';

/**
 * The O2Ring S (OxyII) driver: its frame encoder against the one real OxyII frame published (nglessner's GET_INFO
 * request), its AUTH payload against the published derivation, and its conversation through a real session
 * against its simulator (devices/vendor/viatom-o2ring-s/sim.ts) in virtual time.
 */
const WRITE = normalizeUuid('e8fb0002-a14b-98f9-831b-4e2941d01248');
const NOTIFY = normalizeUuid('e8fb0003-a14b-98f9-831b-4e2941d01248');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('OxyII frames', () => {
  it('encodes the GET_INFO request nglessner/o2ring-s-protocol gives as its CRC fixture (a5e11e00020000bf)', () => {
    const frame = oxyiiFrame(0xe1, [], { seq: 2 });
    expect(hex(frame)).toBe('a5e11e00020000bf');
    expect(isRequest(frame, 0xe1)).toBe(true);
    const corrupted = frame.slice();
    corrupted[7] = (corrupted[7] as number) ^ 0x01;
    expect(isRequest(corrupted, 0xe1)).toBe(false);
  });

  it('builds AUTH from MD5("lepucloud") as nglessner derive_session_key describes', () => {
    const md5 = [...createHash('md5').update('lepucloud').digest()];
    expect([...LEPUCLOUD_MD5]).toEqual(md5);
    const ts = 0x12345678;
    const key = [
      ...[0, 2, 4, 6, 8, 10, 12, 14].map((i) => md5[i] as number),
      ...Buffer.from('0000', 'ascii'),
      ...[0, 1, 2, 3].map((n) => (ts >> n) & 0xff),
    ];
    expect(authPayload('0000', ts)).toEqual(key.map((k, i) => k ^ (md5[i] as number)));
  });
});

describe('viatom-o2ring-s in a session', () => {
  it('sends AUTH and setup once, then polls every second, each live reply one reading with its whole frame', async () => {
    const r = sessionRig('vendor/viatom-o2ring-s');
    await r.central.start();
    r.session.start();
    await r.advance(10_100);
    expect(r.session.state).toBe('streaming');
    const writes = r.device.peripheral.written(WRITE);
    expect(isRequest(writes[0] as Uint8Array, CMD_AUTH)).toBe(true);
    expect(isRequest(writes[1] as Uint8Array, CMD_SETUP)).toBe(true);
    const polls = writes.slice(2);
    expect(polls.length).toBeGreaterThanOrEqual(10);
    expect(polls.every((p) => hex(p) === hex(oxyiiFrame(CMD_LIVE)))).toBe(true);
    expect(r.readings).toHaveLength(polls.length);
    for (const { payload, reading } of r.readings) {
      // The whole reassembled frame (header, 26-byte fixed part, waveform, CRC), though it came in 20-byte pieces.
      const samples = (payload[31] as number) | ((payload[32] as number) << 8);
      expect(payload.length).toBe(8 + 26 + samples);
      expect(payload.length).toBeGreaterThan(20);
      expect(reading.details?.waveformSamplesDropped).toBe(samples);
    }
    const spo2 = r.readings[1]?.reading.observations.find((o) => o.code === 'MDC_PULS_OXIM_SAT_O2');
    expect(typeof spo2?.value).toBe('number');
    await r.session.stop();
  });

  it('refuses a ring that answers AUTH with a session key (BLE_REFUSED), polling nothing', async () => {
    const r = sessionRig('vendor/viatom-o2ring-s');
    const write = r.device.peripheral.characteristic(WRITE) as { onWrite?: (v: Uint8Array) => void };
    const answer = write.onWrite;
    write.onWrite = (value) => {
      if (isRequest(value, CMD_AUTH)) {
        // A connection interval later, as a ring's answer comes.
        r.scheduler.setTimeout(
          () => r.device.peripheral.emit(NOTIFY, oxyiiFrame(CMD_AUTH, [...Array(16).keys()], { flag: 0x01 })),
          30,
        );
      }
      answer?.(value);
    };
    await r.central.start();
    r.session.start();
    await r.advance(3_000);
    expect(r.states).toContain('backoff');
    expect(r.details[r.states.indexOf('backoff')]).toMatch(/^BLE_REFUSED/);
    const writes = r.device.peripheral.written(WRITE);
    expect(writes.some((w) => isRequest(w, CMD_LIVE))).toBe(false);
    expect(r.readings).toHaveLength(0);
    await r.session.stop();
  });

  it('fails the link with BLE_NO_ANSWER when the ring stops answering polls', async () => {
    const r = sessionRig('vendor/viatom-o2ring-s');
    await r.central.start();
    r.session.start();
    await r.advance(3_100);
    expect(r.session.state).toBe('streaming');
    const write = r.device.peripheral.characteristic(WRITE) as { onWrite?: unknown };
    write.onWrite = undefined;
    await r.advance(10_000);
    expect(r.states).toContain('backoff');
    const detail = r.details[r.states.indexOf('backoff')];
    expect(detail).toMatch(/^BLE_NO_ANSWER: repeating setup write 3 .* went unanswered 6 times in a row/);
    await r.session.stop();
  });
});
