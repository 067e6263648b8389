import { alertRulesSchema, type AlertRule as ConfigAlertRule } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { MDC_CODES } from '../model/codes.js';
import type { ConfigValue } from '../wire/index.js';
import type { AlertRule } from './alert-rules.js';

/**
 * Where the alert-lane rules come from, and how the clinic's per-patient limits are laid over them.
 *
 * Precedence, highest first: the clinic's limits (the signed `config` command, docs/wire-format.md 9.3, kept
 * in the encrypted store across restarts) > the configuration file's `alerts.rules` > the built-in defaults
 * (src/config/defaults.ts, the one place they are written). The file's list replaces the default list as a
 * whole (docs/configuration.md); the clinic's limits change single fields of single codes.
 *
 * One configured rule with both `below` and `above` becomes two alert rules, `<code>:below` and `<code>:above`:
 * the mark on the wire then says which side fired, each side clears by the hysteresis around its own limit,
 * and a swing from one side to the other (a pulse from 35 to 140) must earn the minimum duration on the new
 * side again rather than count as one episode.
 */
export type RuleSource = 'configuration' | 'clinic';

export interface RuleInForce {
  readonly rule: AlertRule;
  /** 'configuration': the file or, where the file says nothing, the defaults (`config print` tells which). */
  readonly source: RuleSource;
}

/** The fields of one code the clinic may set: `alerts.<MDC code>.<field>`. */
export const CLINIC_LIMIT_FIELDS = ['unit', 'below', 'above', 'for', 'hysteresis'] as const;
type LimitField = (typeof CLINIC_LIMIT_FIELDS)[number];

/** The clinic's limits as the `config` command sets them: `alerts.<MDC code>.<field>` to a scalar. */
export type ClinicLimits = { readonly [key: string]: ConfigValue };

const KEY = /^alerts\.(MDC_[A-Z0-9_]+)\.(unit|below|above|for|hysteresis)$/;

/** Every key a `config` command may set on this hub: the limit fields of every MDC code the gateway knows. */
export function clinicLimitKeys(): ReadonlySet<string> {
  const keys = new Set<string>();
  for (const code of Object.keys(MDC_CODES)) {
    for (const field of CLINIC_LIMIT_FIELDS) keys.add(`alerts.${code}.${field}`);
  }
  return keys;
}

/** The alert rules of parsed configuration rules (see the module comment for the split and the ids). */
export function alertRulesOf(rules: readonly ConfigAlertRule[]): AlertRule[] {
  return rules.flatMap((rule) => {
    const base = { code: rule.code, unit: rule.unit, forMs: rule.forMs, hysteresis: rule.hysteresis };
    return [
      ...(rule.below === undefined ? [] : [{ id: `${rule.code}:below`, ...base, below: rule.below }]),
      ...(rule.above === undefined ? [] : [{ id: `${rule.code}:above`, ...base, above: rule.above }]),
    ];
  });
}

export type AlertLimitsErrorCode = 'ALERT_LIMITS_INVALID';

/** A refused set of clinic limits; the message names keys and what is wrong, never a value. */
export class AlertLimitsError extends GatewayError {
  declare readonly code: AlertLimitsErrorCode;

  constructor(code: AlertLimitsErrorCode, message: string) {
    super(code, message);
  }
}

/**
 * Lays the clinic's limits over the configured rules and checks the result with the configuration's own
 * schema (so a limit the file could not hold, the clinic cannot set either). Per key:
 * - `below`, `above`: a number sets the limit; `false` removes it. A code left with neither limit has no rule.
 * - `for`: a duration as the file writes it ("60s"); `hysteresis`: a number; `unit`: a UCUM unit.
 * A code the configuration has no rule for gets one from the clinic's fields alone (it needs `unit` and a
 * limit). Throws AlertLimitsError when the result is not a valid rule list.
 */
export function applyClinicLimits(
  configured: readonly ConfigAlertRule[],
  limits: ClinicLimits,
): { rules: ConfigAlertRule[]; clinicCodes: ReadonlySet<string> } {
  const raw = new Map<string, Record<string, unknown>>();
  for (const rule of configured) {
    raw.set(rule.code, {
      code: rule.code,
      unit: rule.unit,
      ...(rule.below === undefined ? {} : { below: rule.below }),
      ...(rule.above === undefined ? {} : { above: rule.above }),
      for: `${rule.forMs}ms`,
      hysteresis: rule.hysteresis,
    });
  }
  const clinicCodes = new Set<string>();
  const problems: string[] = [];
  for (const [key, value] of Object.entries(limits)) {
    const match = KEY.exec(key);
    if (!match) {
      problems.push(`${key}: not an alert limit key (alerts.<MDC code>.<${CLINIC_LIMIT_FIELDS.join('|')}>)`);
      continue;
    }
    const code = match[1] as string;
    const field = match[2] as LimitField;
    const rule = raw.get(code) ?? { code };
    raw.set(code, rule);
    clinicCodes.add(code);
    if ((field === 'below' || field === 'above') && value === false) delete rule[field];
    else rule[field] = value;
  }
  // A code whose limits were all removed has no rule (and is not an error: alerting off for this patient).
  const list = [...raw.values()].filter((rule) => rule.below !== undefined || rule.above !== undefined);
  const parsed = alertRulesSchema.safeParse(list);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const index = issue.path[0];
      const code = typeof index === 'number' ? String(list[index]?.code ?? '?') : '?';
      const field = issue.path.slice(1).join('.');
      problems.push(`alerts.${code}${field ? `.${field}` : ''}: ${issue.message}`);
    }
  }
  if (problems.length > 0)
    throw new AlertLimitsError('ALERT_LIMITS_INVALID', `alert limits refused: ${problems.join('; ')}`);
  return { rules: (parsed as { data: ConfigAlertRule[] }).data, clinicCodes };
}

/** The rules in force and where each came from. */
export function rulesInForce(configured: readonly ConfigAlertRule[], limits: ClinicLimits): RuleInForce[] {
  const { rules, clinicCodes } = applyClinicLimits(configured, limits);
  return alertRulesOf(rules).map((rule) => ({
    rule,
    source: clinicCodes.has(rule.code) ? 'clinic' : 'configuration',
  }));
}
