import { describe, expect, it } from 'vitest';
import { loadBundledRegistry } from '../../src/drivers/default-registry.js';
import { stamp } from '../../src/pipeline/stamp.js';
import type { SessionReading } from '../../src/session/device-session.js';
import { wireItemRecords } from '../../src/uplink/record-codec.js';

/** stamp() carries `stored` from the session into the Measurement, and the stored body keeps it. */
const registry = await loadBundledRegistry();
const driver = registry.get('sig/glucose');
if (!driver) throw new Error('no glucose driver');

function reading(stored: boolean): SessionReading {
  return {
    deviceId: 'd1-0000000000000001',
    characteristic: '2a18',
    payload: Uint8Array.of(1, 2, 3),
    reading: {
      time: '2026-11-28T07:00:00',
      observations: [{ code: 'MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD', value: 101, unit: 'mg/dL' }],
      details: { sequenceNumber: 7 },
    },
    receivedAt: Date.UTC(2026, 10, 28, 8, 0, 0),
    time: '2026-11-28T07:00:00',
    timeSource: 'device',
    stored,
  };
}

describe('stamp', () => {
  it('marks a stored record stored, and leaves the key out of a live reading', () => {
    expect(stamp(reading(true), driver).stored).toBe(true);
    const live = stamp(reading(false), driver);
    expect('stored' in live).toBe(false);
  });

  it('the id does not depend on stored: a record seen live and again stored is one record', () => {
    expect(stamp(reading(true), driver).id).toBe(stamp(reading(false), driver).id);
  });

  it('a stored body (the wire item) keeps stored and the alert mark', () => {
    const m = { ...stamp(reading(true), driver), alert: { rule: 'glucose-low', late: true } };
    const body = wireItemRecords.encode({ type: 'measurement', measurement: m });
    expect(wireItemRecords.decode(body)).toEqual({ type: 'measurement', measurement: m });
  });
});
