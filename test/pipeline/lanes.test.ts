import { describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import { DEFAULTS, type RawTree } from '../../src/config/defaults.js';
import { alertRulesSchema } from '../../src/config/schema.js';
import type { Measurement } from '../../src/model/measurement.js';
import { alertRulesOf } from '../../src/pipeline/alert-config.js';
import { AlertRules } from '../../src/pipeline/alert-rules.js';
import { ageOf, alertMarkOf, laneFor } from '../../src/pipeline/lanes.js';

/** The lane policy (src/pipeline/lanes.ts): one test per branch, at the edges of each. */
const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const MINUTE = 60_000;
const BACKLOG_AFTER = 10 * MINUTE;
const iso = (t: number) => new Date(t).toISOString();

function reading(overrides: Partial<Measurement> = {}): Measurement {
  return spo2Measurement(1, {
    time: iso(NOW - 1_000),
    timeSource: 'gateway',
    deviceTime: null,
    receivedAt: iso(NOW - 1_000),
    ...overrides,
  });
}

const context = { alertMarks: [], now: NOW, backlogAfterMs: BACKLOG_AFTER };

describe('laneFor', () => {
  it('a fresh live reading goes to the live lane', () => {
    expect(laneFor(reading(), context)).toBe('live');
  });

  it('any alert mark sends a reading to the alert lane, stored or old ones too', () => {
    const marks = [{ rule: 'spo2-low', late: false }];
    expect(laneFor(reading(), { ...context, alertMarks: marks })).toBe('alert');
    const late = [{ rule: 'spo2-low', late: true }];
    expect(laneFor(reading({ stored: true }), { ...context, alertMarks: late })).toBe('alert');
    const old = reading({ time: iso(NOW - 60 * MINUTE), receivedAt: iso(NOW - 60 * MINUTE) });
    expect(laneFor(old, { ...context, alertMarks: late })).toBe('alert');
  });

  it('a stored record goes to the backlog however recent its time', () => {
    expect(laneFor(reading({ stored: true }), context)).toBe('backlog');
  });

  it('a reading measured longer ago than backlogAfterMs goes to the backlog; at the limit it is live', () => {
    const at = (ms: number) =>
      reading({ time: iso(NOW - ms), timeSource: 'device-corrected', deviceTime: '2026-11-28T11:00:00' });
    expect(laneFor(at(BACKLOG_AFTER), context)).toBe('live');
    expect(laneFor(at(BACKLOG_AFTER + 1), context)).toBe('backlog');
  });

  it('a reading received long ago (held in the pipeline) is backlog whatever its time says', () => {
    const held = reading({ time: iso(NOW), receivedAt: iso(NOW - BACKLOG_AFTER - 1) });
    expect(laneFor(held, context)).toBe('backlog');
  });

  it('a device time without offset is not an instant: judged by receipt only, in any time zone', () => {
    // 11:55 local on a device in UTC+14 (Kiribati) or UTC-12 would be hours "old" or "in the future" if read as
    // UTC; the gateway received it a second ago, which is all that is known on the gateway's time line.
    for (const local of ['2026-11-28T01:55:00', '2026-11-28T23:55:00', '2026-11-27T12:00:00']) {
      const m = reading({ time: local, timeSource: 'device', deviceTime: local });
      expect(laneFor(m, context)).toBe('live');
    }
    const late = reading({
      time: '2026-11-28T11:59:59',
      timeSource: 'device',
      deviceTime: '2026-11-28T11:59:59',
      receivedAt: iso(NOW - BACKLOG_AFTER - 1),
    });
    expect(laneFor(late, context)).toBe('backlog');
  });

  it('a device time with an offset is an instant and counts', () => {
    const m = reading({ time: '2026-11-28T12:49:59+01:00', timeSource: 'device', deviceTime: null });
    expect(ageOf(m, NOW)).toBe(BACKLOG_AFTER + 1_000);
    expect(laneFor(m, context)).toBe('backlog');
  });

  it('a gateway-stamped reading is judged by its receipt', () => {
    const m = reading({ time: iso(NOW - 30 * MINUTE), receivedAt: iso(NOW - 30 * MINUTE) });
    expect(laneFor(m, context)).toBe('backlog');
  });

  it('unreadable times leave a reading live rather than guessing', () => {
    const m = reading({ time: 'not a time', receivedAt: 'not a time', timeSource: 'device-corrected' });
    expect(ageOf(m, NOW)).toBeUndefined();
    expect(laneFor(m, context)).toBe('live');
  });
});

describe('with the alert rules', () => {
  it('a stored reading that crosses a limit is marked late and goes ahead of the backlog', () => {
    const rules = new AlertRules(alertRulesOf(alertRulesSchema.parse((DEFAULTS.alerts as RawTree).rules)));
    const m = reading({
      stored: true,
      observations: [{ code: 'MDC_PRESS_BLD_NONINV_SYS', value: 200, unit: 'mm[Hg]' }],
    });
    const marks = rules.judge({ measurement: m, stored: true });
    expect(alertMarkOf(marks)).toEqual({ rule: 'MDC_PRESS_BLD_NONINV_SYS:above', late: true });
    expect(laneFor(m, { ...context, alertMarks: marks })).toBe('alert');
  });

  it('no mark when no rule fired', () => {
    expect(alertMarkOf([])).toBeUndefined();
  });
});
