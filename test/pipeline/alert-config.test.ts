import { describe, expect, it } from 'vitest';
import { DEFAULTS, type RawTree } from '../../src/config/defaults.js';
import { alertRulesSchema, type AlertRule as ConfigAlertRule } from '../../src/config/schema.js';
import {
  AlertLimitsError,
  alertRulesOf,
  applyClinicLimits,
  clinicLimitKeys,
  rulesInForce,
} from '../../src/pipeline/alert-config.js';
import { AlertRules } from '../../src/pipeline/alert-rules.js';

/** The rules as the configuration defaults give them (src/config/defaults.ts: the one place they are written). */
const DEFAULT_RULES: ConfigAlertRule[] = alertRulesSchema.parse((DEFAULTS.alerts as RawTree).rules);

describe('alert rules from the configuration', () => {
  it('ships defaults for SpO2, systolic pressure and every pulse code, each side a rule with a unique id', () => {
    const rules = alertRulesOf(DEFAULT_RULES);
    const ids = rules.map((rule) => rule.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(
      expect.arrayContaining([
        'MDC_PULS_OXIM_SAT_O2:below',
        'MDC_PRESS_BLD_NONINV_SYS:above',
        'MDC_PULS_RATE_NON_INV:below',
        'MDC_PULS_RATE_NON_INV:above',
        'MDC_ECG_HEART_RATE:below',
        'MDC_ECG_HEART_RATE:above',
      ]),
    );
    expect(rules.find((r) => r.id === 'MDC_PULS_OXIM_SAT_O2:below')).toEqual({
      id: 'MDC_PULS_OXIM_SAT_O2:below',
      code: 'MDC_PULS_OXIM_SAT_O2',
      unit: '%',
      below: 90,
      forMs: 60_000,
      hysteresis: 1,
    });
  });

  it('judges each side of a two-sided rule apart: a swing across the range earns the duration again', () => {
    const [low, high] = alertRulesOf([
      { code: 'MDC_ECG_HEART_RATE', unit: '/min', below: 40, above: 130, forMs: 10_000, hysteresis: 5 },
    ]);
    const rules = new AlertRules([low, high].filter((r) => r !== undefined));
    const T0 = Date.UTC(2026, 11, 5);
    const judge = (value: number, second: number) =>
      rules
        .judge({
          stored: false,
          measurement: {
            id: `m1-${second}`,
            deviceId: 'd1-hr',
            driver: 'sig/heart-rate@1.0.0',
            characteristic: '2a37',
            time: new Date(T0 + second * 1000).toISOString(),
            timeSource: 'gateway',
            deviceTime: null,
            receivedAt: new Date(T0 + second * 1000).toISOString(),
            kind: 'measurement',
            observations: [{ code: 'MDC_ECG_HEART_RATE', value, unit: '/min' }],
            status: [],
            details: {},
          },
        })
        .map((m) => m.rule);
    for (let s = 0; s < 10; s++) expect(judge(35, s)).toEqual([]);
    expect(judge(35, 10)).toEqual(['MDC_ECG_HEART_RATE:below']);
    // 140: the low episode clears (past 40 + 5); the high side has no evidence yet.
    expect(judge(140, 11)).toEqual([]);
    for (let s = 12; s < 21; s++) expect(judge(140, s)).toEqual([]);
    expect(judge(140, 21)).toEqual(['MDC_ECG_HEART_RATE:above']);
  });
});

describe("the clinic's limits over the configured rules", () => {
  it('change single fields of single codes, and the rules say which come from the clinic', () => {
    const inForce = rulesInForce(DEFAULT_RULES, {
      'alerts.MDC_PULS_OXIM_SAT_O2.below': 88,
      'alerts.MDC_PULS_OXIM_SAT_O2.for': '2min',
    });
    const spo2 = inForce.find((r) => r.rule.id === 'MDC_PULS_OXIM_SAT_O2:below');
    expect(spo2).toEqual({
      source: 'clinic',
      rule: {
        id: 'MDC_PULS_OXIM_SAT_O2:below',
        code: 'MDC_PULS_OXIM_SAT_O2',
        unit: '%',
        below: 88,
        forMs: 120_000,
        hysteresis: 1,
      },
    });
    expect(inForce.find((r) => r.rule.id === 'MDC_PRESS_BLD_NONINV_SYS:above')?.source).toBe('configuration');
    expect(inForce).toHaveLength(alertRulesOf(DEFAULT_RULES).length);
  });

  it('remove a side with false, a whole code by removing both, and add a code the file has no rule for', () => {
    const ids = rulesInForce(DEFAULT_RULES, {
      'alerts.MDC_ECG_HEART_RATE.above': false,
      'alerts.MDC_PULS_RATE_NON_INV.below': false,
      'alerts.MDC_PULS_RATE_NON_INV.above': false,
      'alerts.MDC_TEMP_BODY.unit': 'Cel',
      'alerts.MDC_TEMP_BODY.above': 38.5,
    }).map((r) => r.rule.id);
    expect(ids).toContain('MDC_ECG_HEART_RATE:below');
    expect(ids).not.toContain('MDC_ECG_HEART_RATE:above');
    expect(ids.some((id) => id.startsWith('MDC_PULS_RATE_NON_INV'))).toBe(false);
    expect(ids).toContain('MDC_TEMP_BODY:above');
  });

  it('are refused as a whole when the result is not a valid rule list, naming keys and not values', () => {
    const refuse = (limits: Record<string, string | number | boolean>) => {
      try {
        applyClinicLimits(DEFAULT_RULES, limits);
      } catch (error) {
        expect(error).toBeInstanceOf(AlertLimitsError);
        expect((error as AlertLimitsError).code).toBe('ALERT_LIMITS_INVALID');
        return (error as Error).message;
      }
      throw new Error('not refused');
    };
    expect(refuse({ 'alerts.MDC_PULS_OXIM_PULS_RATE.below': 140 })).toMatch(
      /alerts\.MDC_PULS_OXIM_PULS_RATE\.above: must be greater than below/,
    );
    expect(refuse({ 'alerts.MDC_PULS_OXIM_SAT_O2.for': 'soon' })).toMatch(/MDC_PULS_OXIM_SAT_O2\.for/);
    expect(refuse({ 'alerts.MDC_PULS_OXIM_SAT_O2.hysteresis': -1 })).toMatch(/hysteresis/);
    expect(refuse({ 'alerts.MDC_TEMP_BODY.above': 38.5 })).toMatch(/MDC_TEMP_BODY\.unit/); // a new code needs a unit
    expect(refuse({ 'alerts.MDC_PULS_OXIM_SAT_O2.below': '87.5' })).not.toContain('87.5');
    expect(refuse({ 'log.level': 'debug' })).toMatch(/not an alert limit key/);
  });

  it('may be set for every known code and field, and nothing else', () => {
    const keys = clinicLimitKeys();
    expect(keys.has('alerts.MDC_PULS_OXIM_SAT_O2.below')).toBe(true);
    expect(keys.has('alerts.MDC_PRESS_BLD_NONINV_SYS.for')).toBe(true);
    expect(keys.has('alerts.MDC_PULS_OXIM_SAT_O2.code')).toBe(false);
    expect(keys.has('log.level')).toBe(false);
    for (const key of keys) expect(key).toMatch(/^[A-Za-z0-9_.-]{1,128}$/); // wire-format 9.2 key syntax
  });
});
