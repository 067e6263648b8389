import { describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import { EnrolmentGate } from '../../src/pipeline/enrolment-gate.js';

const OXIMETER = { id: 'd1-00000000000000a1', address: 'D0:5E:00:00:00:01' };
const CUFF = { id: 'd1-00000000000000b2', address: 'D0:5E:00:00:00:02' };
const NEIGHBOUR = 'D0:5E:00:00:00:99';

describe('EnrolmentGate', () => {
  it('maps enrolled addresses to their ids, in any case, and ignores a neighbour', () => {
    const gate = new EnrolmentGate([OXIMETER, CUFF]);
    expect(gate.deviceIdFor('d0:5e:00:00:00:01')).toBe(OXIMETER.id);
    expect(gate.deviceIdFor(CUFF.address)).toBe(CUFF.id);
    expect(gate.deviceIdFor(NEIGHBOUR)).toBeUndefined();
    expect(gate.deviceIdFor(NEIGHBOUR)).toBeUndefined();
    expect(gate.counts()).toEqual({ admitted: 0, dropped: { 'unknown-address': 2, 'not-enrolled': 0 } });
  });

  it('admits readings of enrolled devices only, in order, and counts the rest', () => {
    const gate = new EnrolmentGate([OXIMETER]);
    const readings = [
      spo2Measurement(1, { deviceId: OXIMETER.id }),
      spo2Measurement(2, { deviceId: 'd1-00000000000000ff' }),
      spo2Measurement(3, { deviceId: OXIMETER.id }),
    ];
    expect(gate.filter(readings).map((m) => m.id)).toEqual([readings[0]?.id, readings[2]?.id]);
    expect(gate.counts()).toEqual({ admitted: 2, dropped: { 'unknown-address': 0, 'not-enrolled': 1 } });
  });

  it('drops a forgotten device from the moment the enrolled set is replaced; counters carry on', () => {
    const gate = new EnrolmentGate([OXIMETER, CUFF]);
    expect(gate.admit({ deviceId: CUFF.id })).toBe(true);
    gate.replace([OXIMETER]); // `forget` of the cuff
    expect(gate.isEnrolled(CUFF.id)).toBe(false);
    expect(gate.admit({ deviceId: CUFF.id })).toBe(false);
    expect(gate.deviceIdFor(CUFF.address)).toBeUndefined();
    expect(gate.admit({ deviceId: OXIMETER.id })).toBe(true);
    expect(gate.counts()).toEqual({ admitted: 2, dropped: { 'unknown-address': 1, 'not-enrolled': 1 } });
  });

  it('compares other backend handles exactly (CoreBluetooth ids are case-sensitive)', () => {
    const gate = new EnrolmentGate([
      { id: 'd1-00000000000000c3', address: '5f1a0c9e2b7d4e3f8a6b1c0d9e8f7a6b' },
    ]);
    expect(gate.deviceIdFor('5f1a0c9e2b7d4e3f8a6b1c0d9e8f7a6b')).toBe('d1-00000000000000c3');
    expect(gate.deviceIdFor('5F1A0C9E2B7D4E3F8A6B1C0D9E8F7A6B')).toBeUndefined();
  });

  it('with nothing enrolled, nothing passes', () => {
    const gate = new EnrolmentGate();
    expect(gate.deviceIdFor(OXIMETER.address)).toBeUndefined();
    expect(gate.admit({ deviceId: OXIMETER.id })).toBe(false);
  });

  it('never keeps an address in what it reports', () => {
    const gate = new EnrolmentGate([OXIMETER]);
    gate.deviceIdFor(NEIGHBOUR);
    gate.admit({ deviceId: 'd1-00000000000000ff' });
    expect(JSON.stringify(gate.counts())).not.toMatch(/[0-9A-F]{2}(:[0-9A-F]{2}){5}/i);
  });
});
