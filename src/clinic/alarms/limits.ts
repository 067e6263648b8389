import { DEFAULTS } from '../../config/defaults.js';
import { alertRulesSchema } from '../../config/schema.js';
import { AlarmError } from './errors.js';
import { type AlarmLimit, type AlarmPriority, PRIORITIES } from './model.js';

/**
 * A patient's physiological limits: checked with the hub's own configuration schema (src/config/schema.ts,
 * alertRulesSchema), so a limit the clinic stores is always one the hub accepts in the signed `config` command
 * (docs/wire-format.md 9.3.1: the hub checks the laid-over rules with the same schema), and the defaults are the
 * hub's built-in defaults (src/config/defaults.ts, the one place they are written) with a clinic priority.
 */

/**
 * Default priorities (IEC 60601-1-8 Table 1: priority follows the potential harm and how soon it may occur):
 * desaturation and a pulse far out of range can harm within minutes, high; a systolic pressure above 180 mmHg
 * needs attention within hours, medium. A code with no entry here is medium.
 */
const DEFAULT_PRIORITY: { readonly [code: string]: AlarmPriority } = {
  MDC_PULS_OXIM_SAT_O2: 'high',
  MDC_PULS_OXIM_PULS_RATE: 'high',
  MDC_PULS_RATE_NON_INV: 'high',
  MDC_ECG_HEART_RATE: 'high',
  MDC_PRESS_BLD_NONINV_SYS: 'medium',
};

/** The limits of a patient for whom no admin set any: the hub's defaults. */
export const DEFAULT_LIMITS: readonly AlarmLimit[] = defaultLimits();

function defaultLimits(): AlarmLimit[] {
  const rules = alertRulesSchema.parse((DEFAULTS.alerts as { rules: unknown }).rules);
  return rules.map((rule) => ({
    code: rule.code,
    unit: rule.unit,
    ...(rule.below === undefined ? {} : { below: rule.below }),
    ...(rule.above === undefined ? {} : { above: rule.above }),
    forMs: rule.forMs,
    hysteresis: rule.hysteresis,
    priority: DEFAULT_PRIORITY[rule.code] ?? 'medium',
  }));
}

/**
 * Checks a patient's whole set of limits. Messages name the code and the field, never a value (a limit chosen
 * for one patient says something about that patient).
 */
export function checkLimits(limits: readonly AlarmLimit[]): void {
  if (!Array.isArray(limits)) throw invalid('limits must be a list');
  const problems: string[] = [];
  limits.forEach((limit, index) => {
    if (typeof limit !== 'object' || limit === null) {
      problems.push(`limit ${index}: not an object`);
      return;
    }
    if (!PRIORITIES.includes(limit.priority)) {
      problems.push(`limit ${index}: priority must be high, medium or low`);
    }
    if (!Number.isSafeInteger(limit.forMs) || limit.forMs < 0) {
      problems.push(`limit ${index}: forMs must be whole milliseconds, 0 or more`);
    }
  });
  if (problems.length === 0) {
    const parsed = alertRulesSchema.safeParse(limits.map(ruleOf));
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const index = issue.path[0];
        const code = typeof index === 'number' ? String(limits[index]?.code ?? '?') : '?';
        const field = issue.path.slice(1).join('.');
        problems.push(`${code}${field ? `.${field}` : ''}: ${issue.message}`);
      }
    }
  }
  if (problems.length > 0) throw invalid(`limits refused: ${problems.join('; ')}`);
}

/** A limit as the hub's configuration writes a rule (the duration as text, as the file and the command do). */
export function ruleOf(limit: AlarmLimit): Record<string, unknown> {
  return {
    code: limit.code,
    unit: limit.unit,
    ...(limit.below === undefined ? {} : { below: limit.below }),
    ...(limit.above === undefined ? {} : { above: limit.above }),
    for: `${limit.forMs}ms`,
    hysteresis: limit.hysteresis,
  };
}

function invalid(message: string): AlarmError {
  return new AlarmError('ALARM_LIMITS_INVALID', message);
}
