import { describe, expect, it } from 'vitest';
import { normalizeUuid } from '../../src/gatt/uuid.js';
import { sessionRig } from '../session/session-rig.js';

/**
 * The O2Ring's poll through a real session against its simulator (devices/vendor/viatom-o2ring/sim.ts), in
 * virtual time: each RT_PARAM request is answered with a response split across two notifications, which is both
 * the poll's answer and a reading; a ring that stops answering fails the link with BLE_NO_ANSWER after six
 * unanswered polls.
 */
const WRITE = normalizeUuid('8b00ace7-eb0b-49b0-bbe9-9aee0a26e1a3');

describe('viatom-o2ring in a session', () => {
  it('polls every second and turns each answer into one reading with its whole frame', async () => {
    const r = sessionRig('vendor/viatom-o2ring');
    await r.central.start();
    r.session.start();
    await r.advance(10_100);
    expect(r.session.state).toBe('streaming');
    const polls = r.device.peripheral.written(WRITE);
    expect(polls.length).toBeGreaterThanOrEqual(10);
    expect(polls.every((p) => Buffer.from(p).toString('hex') === 'aa17e8000000001b')).toBe(true);
    expect(r.readings).toHaveLength(polls.length);
    expect(r.readings.every((x) => x.payload.length === 21)).toBe(true);
    const spo2 = r.readings[0]?.reading.observations.find((o) => o.code === 'MDC_PULS_OXIM_SAT_O2');
    expect(typeof spo2?.value).toBe('number');
    await r.session.stop();
  });

  it('fails the link with BLE_NO_ANSWER when the ring stops answering', async () => {
    const r = sessionRig('vendor/viatom-o2ring');
    await r.central.start();
    r.session.start();
    await r.advance(3_100);
    expect(r.session.state).toBe('streaming');
    // The ring's answers stop (its request handler gone); the link itself stays up.
    const write = r.device.peripheral.characteristic(WRITE) as { onWrite?: unknown };
    (write as { onWrite?: unknown }).onWrite = undefined;
    await r.advance(10_000);
    expect(r.states).toContain('backoff');
    const detail = r.details[r.states.indexOf('backoff')];
    expect(detail).toMatch(/^BLE_NO_ANSWER: repeating setup write 1 .* went unanswered 6 times in a row/);
    await r.session.stop();
  });
});
