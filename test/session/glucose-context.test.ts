import { describe, expect, it } from 'vitest';
import type { Reading } from '../../src/model/observation.js';
import { GlucoseContextPairing } from '../../src/session/glucose-context.js';

const measurement = (sequence: number, time: string | null): Reading => ({
  observations: [],
  time,
  kind: 'measurement',
  details: { sequenceNumber: sequence, contextFollows: true },
});
const context = (sequence: number): Reading => ({
  observations: [],
  time: null,
  kind: 'measurement',
  details: { sequenceNumber: sequence, meal: 'preprandial' },
});

describe('glucose context pairing (GLS: the context follows its measurement, same sequence number)', () => {
  it("gives a context its measurement's device time, and nothing else of it", () => {
    const pairing = new GlucoseContextPairing();
    pairing.noteMeasurement(measurement(7, '2026-03-01T08:15:00'));
    const { reading, paired } = pairing.pair(context(7));
    expect(paired).toBe(true);
    expect(reading).toEqual({ ...context(7), time: '2026-03-01T08:15:00' });
  });

  it('leaves a context alone whose measurement was not the last one seen (out of order, or alone)', () => {
    const pairing = new GlucoseContextPairing();
    expect(pairing.pair(context(7))).toEqual({ reading: context(7), paired: false }); // no measurement yet
    pairing.noteMeasurement(measurement(7, '2026-03-01T08:15:00'));
    pairing.noteMeasurement(measurement(8, '2026-03-01T09:00:00'));
    expect(pairing.pair(context(7))).toEqual({ reading: context(7), paired: false }); // 8 came in between
    expect(pairing.pair(context(8)).paired).toBe(true);
  });

  it('pairs nothing after forget() (a new connection, or a measurement that could not be decoded)', () => {
    const pairing = new GlucoseContextPairing();
    pairing.noteMeasurement(measurement(7, '2026-03-01T08:15:00'));
    pairing.forget();
    expect(pairing.pair(context(7)).paired).toBe(false);
  });

  it('a measurement without a device time gives none', () => {
    const pairing = new GlucoseContextPairing();
    pairing.noteMeasurement(measurement(7, null));
    expect(pairing.pair(context(7))).toEqual({ reading: context(7), paired: false });
  });
});
