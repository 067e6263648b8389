import { describe, expect, it } from 'vitest';
import type { Measurement } from '../../src/model/measurement.js';
import { type AlertRule, AlertRules } from '../../src/pipeline/alert-rules.js';

const T0 = Date.UTC(2026, 11, 5, 3, 0, 0);
const SPO2_LOW: AlertRule = {
  id: 'spo2-low',
  code: 'MDC_PULS_OXIM_SAT_O2',
  unit: '%',
  below: 90,
  forMs: 60_000,
  hysteresis: 2,
};
const SYS_HIGH: AlertRule = {
  id: 'sys-high',
  code: 'MDC_PRESS_BLD_NONINV_SYS',
  unit: 'mm[Hg]',
  above: 180,
  forMs: 0,
  hysteresis: 5,
};

function spo2(value: number | null, atMs: number, deviceId = 'd1-aa'): Measurement {
  return measurement(deviceId, new Date(atMs).toISOString(), [
    { code: 'MDC_PULS_OXIM_SAT_O2', value, unit: '%' },
  ]);
}

function measurement(deviceId: string, time: string, observations: Measurement['observations']): Measurement {
  return {
    id: `m1-${time}`,
    deviceId,
    driver: 'sig/pulse-oximeter@1.0.0',
    characteristic: '2a5f',
    time,
    timeSource: 'gateway',
    deviceTime: null,
    receivedAt: time,
    kind: 'measurement',
    observations,
    status: [],
    details: {},
  };
}

/** One reading a second, values given; returns which seconds went on the alert lane. */
function run(rules: AlertRules, values: readonly number[], start = T0, stored = false): number[] {
  const fired: number[] = [];
  values.forEach((value, second) => {
    if (rules.judge({ measurement: spo2(value, start + second * 1000), stored }).length > 0)
      fired.push(second);
  });
  return fired;
}

describe('alert-lane rules', () => {
  it('fires only after the value stayed across the limit for the minimum duration', () => {
    const rules = new AlertRules([SPO2_LOW]);
    // 59 s below 90 % is not enough; the 61st reading (60 s after the first) fires.
    expect(run(rules, Array(60).fill(88))).toEqual([]);
    expect(rules.judge({ measurement: spo2(88, T0 + 60_000), stored: false })).toEqual([
      { rule: 'spo2-low', late: false },
    ]);
  });

  it('restarts the count when the value recovers in between', () => {
    const rules = new AlertRules([SPO2_LOW]);
    const values = [...Array(50).fill(88), 91, ...Array(61).fill(88)];
    expect(run(rules, values)).toEqual([111]); // counted afresh from second 51
  });

  it('ends a fired episode only past the hysteresis band, so a value hovering at the limit does not flap', () => {
    const rules = new AlertRules([SPO2_LOW]);
    const values = [...Array(61).fill(87), 90, 91, 90, 91, 92, 89, 89];
    // 60..64 stay on the alert lane (90 and 91 are inside the band); 92 ends it; 89 pends again.
    expect(run(rules, values)).toEqual([60, 61, 62, 63, 64]);
  });

  it('treats a limit value as not crossing and a null value as no evidence', () => {
    const rules = new AlertRules([SYS_HIGH]);
    const bp = (sys: number | null, at: number) =>
      measurement('d1-bp', new Date(at).toISOString(), [
        { code: 'MDC_PRESS_BLD_NONINV_SYS', value: sys, unit: 'mm[Hg]' },
      ]);
    expect(rules.judge({ measurement: bp(180, T0), stored: false })).toEqual([]);
    expect(rules.judge({ measurement: bp(null, T0 + 1), stored: false })).toEqual([]);
    expect(rules.judge({ measurement: bp(181, T0 + 2), stored: false })).toEqual([
      { rule: 'sys-high', late: false },
    ]);
  });

  it('needs the unit the rule names (a kPa cuff is not judged by a mmHg limit)', () => {
    const rules = new AlertRules([SYS_HIGH]);
    const kpa = measurement('d1-bp', new Date(T0).toISOString(), [
      { code: 'MDC_PRESS_BLD_NONINV_SYS', value: 200, unit: 'kPa' },
    ]);
    expect(rules.judge({ measurement: kpa, stored: false })).toEqual([]);
  });

  it('restarts a pending episode across a silence longer than maxGapMs', () => {
    const rules = new AlertRules([SPO2_LOW]);
    expect(run(rules, Array(30).fill(85))).toEqual([]);
    // 20 s of nothing (over the 15 s default), then 40 s more below: not 60 s of evidence.
    expect(run(rules, Array(40).fill(85), T0 + 50_000)).toEqual([]);
    expect(run(rules, Array(30).fill(85), T0 + 90_000)).toEqual([20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
  });

  it('marks stored readings late and keeps their episodes apart from live ones', () => {
    const rules = new AlertRules([SPO2_LOW]);
    expect(run(rules, Array(40).fill(85))).toEqual([]); // 40 s live
    // A stored series of the same hour does not complete the live episode, and fires on its own evidence.
    const storedFired: number[] = [];
    for (let s = 0; s < 61; s++) {
      const marks = rules.judge({ measurement: spo2(85, T0 - 3_600_000 + s * 1000), stored: true });
      if (marks.length > 0) {
        storedFired.push(s);
        expect(marks).toEqual([{ rule: 'spo2-low', late: true }]);
      }
    }
    expect(storedFired).toEqual([60]);
    expect(run(rules, Array(21).fill(85), T0 + 40_000)).toEqual([20]); // live: 60 s after its own first
  });

  it('keeps each device apart', () => {
    const rules = new AlertRules([SPO2_LOW]);
    for (let s = 0; s < 60; s++) {
      expect(rules.judge({ measurement: spo2(85, T0 + s * 1000, 'd1-aa'), stored: false })).toEqual([]);
      expect(rules.judge({ measurement: spo2(85, T0 + s * 1000 + 500, 'd1-bb'), stored: false })).toEqual([]);
    }
    expect(rules.judge({ measurement: spo2(85, T0 + 60_000, 'd1-aa'), stored: false })).toHaveLength(1);
  });

  it('replacing the limits keeps unchanged rules going and restarts changed ones', () => {
    const rules = new AlertRules([SPO2_LOW, SYS_HIGH]);
    expect(run(rules, Array(61).fill(85))).toEqual([60]);
    rules.replaceRules([SPO2_LOW, { ...SYS_HIGH, above: 170 }]);
    expect(run(rules, [85], T0 + 61_000)).toEqual([0]); // still firing
    rules.replaceRules([{ ...SPO2_LOW, below: 88 }]);
    expect(run(rules, [85], T0 + 62_000)).toEqual([]); // a new limit must earn its duration
  });
});
