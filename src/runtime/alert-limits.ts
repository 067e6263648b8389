import type { AuditLog } from '../audit/audit-log.js';
import type { GatewayConfig } from '../config/schema.js';
import { type ClinicLimits, type RuleInForce, rulesInForce } from '../pipeline/alert-config.js';
import { AlertRules } from '../pipeline/alert-rules.js';
import type { Store } from '../store/store.js';
import { codeOf, messageOf } from './error-fields.js';
import type { RuntimeLog } from './log.js';

/**
 * The alert rules in force on the running hub, and the clinic's per-patient limits laid over the
 * configuration's (src/pipeline/alert-config.ts: clinic > file > defaults). It exists apart from the hub because
 * the limits have a life of their own: the clinic changes them at run time with the signed `config` command
 * (docs/wire-format.md 9.3), the store keeps them across restarts, and the alert stage reads the same AlertRules
 * throughout, so a change applies to the readings judged after it.
 */
export interface AlertLimitsOptions {
  readonly configured: GatewayConfig['alerts']['rules'];
  readonly log: RuntimeLog;
  /** The hub's store: undefined before start; closed once it stops. */
  readonly store: () => Store | undefined;
  readonly audit: () => AuditLog | undefined;
}

/** The settings row (src/store/settings.ts) that keeps the clinic's alert limits across restarts. */
export const CLINIC_LIMITS_SETTING = 'alerts.clinicLimits';

export class AlertLimits {
  /** The rules the alert stage judges by (replaced in place, so the stage never holds stale ones). */
  readonly rules = new AlertRules([]);
  private inForce: readonly RuleInForce[] = [];
  private clinicLimits: ClinicLimits = {};

  constructor(private readonly options: AlertLimitsOptions) {}

  /** Each rule in force and where its limits come from (status, metrics). */
  get rulesInForce(): readonly RuleInForce[] {
    return this.inForce;
  }

  /**
   * The rules in force at start: the configuration's, with the clinic's limits the store kept laid over them.
   * Limits the configuration no longer accepts (the file changed under them) are set aside with a warning
   * rather than stopping the hub; they stay stored until the clinic sends new ones.
   */
  load(): void {
    const { configured, log } = this.options;
    const stored = (this.options.store() as Store).settings.get(CLINIC_LIMITS_SETTING);
    const limits = clinicLimitsOf(stored);
    if (stored !== undefined && limits === undefined) {
      log.warn('alerts.clinic-limits-unreadable', { detail: 'not a map of limit keys to values' });
    }
    try {
      this.inForce = rulesInForce(configured, limits ?? {});
      this.clinicLimits = limits ?? {};
    } catch (error) {
      log.warn('alerts.clinic-limits-set-aside', { code: codeOf(error), error: messageOf(error) });
      this.inForce = rulesInForce(configured, {});
    }
    this.rules.replaceRules(this.inForce.map((r) => r.rule));
    const fromClinic = this.inForce.filter((r) => r.source === 'clinic').length;
    log.info('alerts.rules', { count: this.inForce.length, detail: `${fromClinic} from the clinic` });
  }

  /**
   * The clinic's signed `config` command: new per-patient limits (docs/wire-format.md 9.3). Checked as a whole
   * (AlertLimitsError, ALERT_LIMITS_INVALID, answered as the command's error), stored so they survive a
   * restart, then in force for the readings judged after this, and audited with the keys that changed.
   */
  set(set: ClinicLimits): void {
    const store = this.options.store();
    if (!store?.isOpen) throw new Error('the hub is stopping');
    const merged: ClinicLimits = { ...this.clinicLimits, ...set };
    const inForce = rulesInForce(this.options.configured, merged);
    store.settings.set(CLINIC_LIMITS_SETTING, { ...merged });
    const changed = Object.keys(set)
      .filter((key) => this.clinicLimits[key] !== set[key])
      .sort();
    this.clinicLimits = merged;
    this.inForce = inForce;
    this.rules.replaceRules(inForce.map((r) => r.rule));
    this.options.audit()?.record('alerts.limits-changed', 'clinic', { changed, rules: inForce.length });
    this.options.log.info('alerts.limits-changed', { count: changed.length, source: 'clinic' });
  }
}

/** The stored clinic limits, when they are what AlertLimits.set wrote: a map of keys to scalars. */
function clinicLimitsOf(value: unknown): ClinicLimits | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const entries = Object.entries(value);
  const scalar = (v: unknown) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
  return entries.every(([, v]) => scalar(v)) ? (Object.fromEntries(entries) as ClinicLimits) : undefined;
}
