import type { KeyObject } from 'node:crypto';
import { DEFAULTS } from '../../config/defaults.js';
import { alertRulesSchema } from '../../config/schema.js';
import { AlertLimitsError, applyClinicLimits, clinicLimitKeys } from '../../pipeline/alert-config.js';
import { type Command, type ConfigValue, encodeCommand, newCommand, topicFor } from '../../wire/index.js';
import type { ClinicStore } from '../storage/clinic-store.js';
import { AlarmError } from './errors.js';
import { DEFAULT_LIMITS } from './limits.js';
import type { AlarmLimit } from './model.js';

/**
 * A patient's limits as the signed `config` command their hub accepts (docs/wire-format.md 9.3.1): the hub's
 * alert lane then sends the readings that cross the clinic's limits ahead of its backlog. One key per field of
 * one MDC code, `alerts.<code>.<unit|below|above|for|hysteresis>`: the hub's whitelist
 * (src/pipeline/alert-config.ts, clinicLimitKeys).
 *
 * The command states every field of every code it names, so the hub's result does not depend on what it was
 * told before: a code the patient's limits leave out, but the hub's defaults or an earlier command had, is sent
 * with `below: false` and `above: false`, which removes the hub's rule (9.3.1: "a code left with neither limit
 * has no rule"). The hub checks the whole laid-over set with its configuration schema; so does this function,
 * over the hub's built-in defaults, so a command the clinic sends is one a default hub accepts.
 */
export function limitsConfigSet(
  limits: readonly AlarmLimit[],
  /** The limits sent to this hub before (their codes are removed when no longer limited). */
  previous: readonly AlarmLimit[] = [],
): { readonly [key: string]: ConfigValue } {
  const set: Record<string, ConfigValue> = {};
  for (const limit of limits) {
    const key = (field: string) => `alerts.${limit.code}.${field}`;
    set[key('unit')] = limit.unit;
    set[key('below')] = limit.below ?? false;
    set[key('above')] = limit.above ?? false;
    set[key('for')] = `${limit.forMs}ms`;
    set[key('hysteresis')] = limit.hysteresis;
  }
  const limited = new Set(limits.map((l) => l.code));
  for (const { code } of [...DEFAULT_LIMITS, ...previous]) {
    if (limited.has(code)) continue;
    set[`alerts.${code}.below`] = false;
    set[`alerts.${code}.above`] = false;
  }
  const allowed = clinicLimitKeys();
  const outside = Object.keys(set).filter((key) => !allowed.has(key));
  if (outside.length > 0) {
    throw new AlarmError(
      'ALARM_LIMITS_INVALID',
      `the hub does not accept the keys ${outside.sort().join(', ')}`,
    );
  }
  try {
    applyClinicLimits(HUB_DEFAULT_RULES, set);
  } catch (error) {
    if (error instanceof AlertLimitsError)
      throw new AlarmError('ALARM_LIMITS_INVALID', error.message, { cause: error });
    throw error;
  }
  return set;
}

const HUB_DEFAULT_RULES = alertRulesSchema.parse((DEFAULTS.alerts as { rules: unknown }).rules);

/** The clinic's command-signing key and its kid (SHA-256 of its certificate's DER, docs/wire-format.md section 4). */
export interface CommandSigner {
  readonly key: KeyObject;
  readonly kid: Uint8Array;
}

export interface LimitsCommand {
  readonly command: Command;
  /** `rpm/v1/<gw>/cmd`: publish with QoS 1, not retained (docs/wire-format.md 9.1). */
  readonly topic: string;
  /** The signed COSE_Sign1 envelope. */
  readonly payload: Uint8Array;
}

/** The signed `config` command that gives a hub a patient's limits, valid from `now` for `ttlMs` (default 60 s). */
export function limitsCommand(options: {
  readonly gatewayId: string;
  readonly limits: readonly AlarmLimit[];
  readonly previous?: readonly AlarmLimit[];
  readonly now: number;
  readonly ttlMs?: number;
  readonly signer: CommandSigner;
}): LimitsCommand {
  const set = limitsConfigSet(options.limits, options.previous);
  const command = newCommand(
    { cmd: 'config', args: { set } },
    {
      gatewayId: options.gatewayId,
      now: options.now,
      ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
    },
  );
  return {
    command,
    topic: topicFor(options.gatewayId, 'cmd'),
    payload: encodeCommand(command, options.signer.key, options.signer.kid),
  };
}

/**
 * The hub a patient's limits go to: the gateway assigned to the patient now (ClinicStore assignments). Throws
 * ALARM_NO_GATEWAY when there is none; the limits still apply at the clinic, and are sent once a hub is assigned.
 */
export async function patientGateway(clinic: ClinicStore, mrn: string, now: number): Promise<string> {
  const open = (await clinic.assignments()).find(
    (a) => a.mrn === mrn && a.from <= now && (a.to === undefined || now < a.to),
  );
  if (open === undefined) {
    throw new AlarmError(
      'ALARM_NO_GATEWAY',
      'the patient has no hub assigned now; the limits apply at the clinic',
    );
  }
  return open.gatewayId;
}
