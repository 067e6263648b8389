import type { JsonValue } from '../../model/observation.js';
import { GATEWAY_ID } from '../../wire/fields.js';
import { AlarmError } from './errors.js';
import { checkLimits } from './limits.js';
import {
  type Alarm,
  type AlarmKind,
  type AlarmLimit,
  type AlarmPriority,
  type AlarmState,
  type NewAlarm,
  type PatientLimits,
  PRIORITIES,
  TECHNICAL_KINDS,
} from './model.js';

/**
 * The alarm tables' rows, the same column names in both engines, their conversion to the interface's types,
 * and the checks both engines make before they write (so a bad value is refused with the same code whichever
 * database holds the alarms). Integers are `number` from SQLite and text from node-postgres for bigint, so
 * every one goes through Number(). Messages name fields, never a value or an MRN.
 */
type Int = number | string;

export const ALARM_COLUMNS =
  'id, condition_key, mrn, gateway_id, device_id, kind, code, priority, state, late, raised_at, measured_at, condition_ended_at, cleared_at, acknowledged_by, acknowledged_at, value, unit, details';

export interface AlarmRow {
  readonly id: Int;
  readonly condition_key: string;
  readonly mrn: string;
  readonly gateway_id: string;
  readonly device_id: string | null;
  readonly kind: string;
  readonly code: string | null;
  readonly priority: string;
  readonly state: string;
  readonly late: Int | boolean;
  readonly raised_at: Int;
  readonly measured_at: Int | null;
  readonly condition_ended_at: Int | null;
  readonly cleared_at: Int | null;
  readonly acknowledged_by: string | null;
  readonly acknowledged_at: Int | null;
  readonly value: number | string | null;
  readonly unit: string | null;
  readonly details: string;
}

export function alarmOf(row: AlarmRow): Alarm {
  return {
    id: Number(row.id),
    conditionKey: row.condition_key,
    mrn: row.mrn,
    gatewayId: row.gateway_id,
    ...(row.device_id === null ? {} : { deviceId: row.device_id }),
    kind: row.kind as AlarmKind,
    ...(row.code === null ? {} : { code: row.code }),
    priority: row.priority as AlarmPriority,
    state: row.state as AlarmState,
    late: row.late === true || Number(row.late) === 1,
    raisedAt: Number(row.raised_at),
    ...(row.measured_at === null ? {} : { measuredAt: Number(row.measured_at) }),
    ...(row.condition_ended_at === null ? {} : { conditionEndedAt: Number(row.condition_ended_at) }),
    ...(row.cleared_at === null ? {} : { clearedAt: Number(row.cleared_at) }),
    ...(row.acknowledged_by === null ? {} : { acknowledgedBy: row.acknowledged_by }),
    ...(row.acknowledged_at === null ? {} : { acknowledgedAt: Number(row.acknowledged_at) }),
    ...(row.value === null ? {} : { value: Number(row.value) }),
    ...(row.unit === null ? {} : { unit: row.unit }),
    details: JSON.parse(row.details) as { [key: string]: JsonValue },
  };
}

export interface LimitRow {
  readonly mrn: string;
  readonly code: string | null;
  readonly unit: string | null;
  readonly below: number | string | null;
  readonly above: number | string | null;
  readonly for_ms: Int | null;
  readonly hysteresis: number | string | null;
  readonly priority: string | null;
  readonly set_by: string;
  readonly set_at: Int;
}

/** Rows of `alarm_limit_sets` LEFT JOIN `alarm_limits`, ordered by MRN then code, to PatientLimits. */
export function limitsOf(rows: readonly LimitRow[]): PatientLimits[] {
  const byMrn = new Map<string, { setBy: string; setAt: number; limits: AlarmLimit[] }>();
  for (const row of rows) {
    let set = byMrn.get(row.mrn);
    if (set === undefined) {
      set = { setBy: row.set_by, setAt: Number(row.set_at), limits: [] };
      byMrn.set(row.mrn, set);
    }
    if (row.code === null) continue; // a set with no limits
    set.limits.push({
      code: row.code,
      unit: row.unit as string,
      ...(row.below === null ? {} : { below: Number(row.below) }),
      ...(row.above === null ? {} : { above: Number(row.above) }),
      forMs: Number(row.for_ms),
      hysteresis: Number(row.hysteresis),
      priority: row.priority as AlarmPriority,
    });
  }
  return [...byMrn].map(([mrn, set]) => ({ mrn, ...set }));
}

const PRINTABLE = /^[^\p{Cc}]+$/u;
const KINDS: ReadonlySet<string> = new Set<AlarmKind>(['physiological', ...TECHNICAL_KINDS]);

function invalid(message: string): AlarmError {
  return new AlarmError('ALARM_FIELD_INVALID', message);
}

export function checkTime(value: unknown, name: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(`${name} must be epoch milliseconds`);
  }
}

/** The same bound as the clinic record's assignments (src/clinic/storage/assignment-rules.ts). */
export function checkMrn(mrn: unknown): void {
  if (typeof mrn !== 'string' || mrn.trim() === '' || mrn.length > 128 || !PRINTABLE.test(mrn)) {
    throw invalid('the MRN must be 1 to 128 printable characters, not all blank');
  }
}

export function checkActor(actor: unknown, name: string): void {
  if (typeof actor !== 'string' || actor.trim() === '' || actor.length > 256 || !PRINTABLE.test(actor)) {
    throw invalid(`${name} must name who acted (1 to 256 printable characters)`);
  }
}

export function checkPatientLimits(limits: PatientLimits): void {
  checkMrn(limits.mrn);
  checkActor(limits.setBy, 'setBy');
  checkTime(limits.setAt, 'setAt');
  checkLimits(limits.limits);
}

export function checkNewAlarm(alarm: NewAlarm): void {
  if (
    typeof alarm.conditionKey !== 'string' ||
    alarm.conditionKey.length < 1 ||
    alarm.conditionKey.length > 512
  ) {
    throw invalid('conditionKey must be 1 to 512 characters');
  }
  checkMrn(alarm.mrn);
  if (typeof alarm.gatewayId !== 'string' || !GATEWAY_ID.test(alarm.gatewayId)) {
    throw invalid('gatewayId is not a gateway id');
  }
  if (!KINDS.has(alarm.kind)) throw invalid('kind is not an alarm kind');
  if (!PRIORITIES.includes(alarm.priority)) throw invalid('priority must be high, medium or low');
  if (typeof alarm.late !== 'boolean') throw invalid('late must be true or false');
  checkTime(alarm.raisedAt, 'raisedAt');
  if (alarm.measuredAt !== undefined) checkTime(alarm.measuredAt, 'measuredAt');
  if (alarm.endedAt !== undefined) checkTime(alarm.endedAt, 'endedAt');
  if (alarm.value !== undefined && !Number.isFinite(alarm.value))
    throw invalid('value must be a finite number');
  if (typeof alarm.details !== 'object' || alarm.details === null || Array.isArray(alarm.details)) {
    throw invalid('details must be an object');
  }
}

export function checkAlarmId(id: unknown): void {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) {
    throw new AlarmError('ALARM_UNKNOWN', 'an alarm id is a whole number from 1');
  }
}

export function listLimit(limit: number | undefined): number {
  if (limit === undefined) return 500;
  if (!Number.isSafeInteger(limit) || limit < 1) throw invalid('limit must be a whole number from 1');
  return Math.min(limit, 10_000);
}

/** ORDER BY for the lists (compareAlarms in SQL): open first, then priority, then newest first. */
export const LIST_ORDER = `CASE state WHEN 'cleared' THEN 1 ELSE 0 END,
  CASE priority WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END, raised_at DESC, id DESC`;
