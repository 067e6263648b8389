import { isMdcCode } from '../../../model/codes.js';
import type { Gap } from '../../../model/gap.js';
import { isUcumUnit, UCUM_UNITS } from '../../../model/units.js';
import { observationName } from '../../../patient-page/words.js';
import type { Alarm } from '../../alarms/model.js';
import { resolveDateTime } from '../../intake/local-time.js';
import type { Assignment, PatientHub, SeriesPoint } from '../../storage/clinic-store.js';

/**
 * The JSON the dashboard's pages read (GET /api/tiles, /api/patients/:mrn/series and the live events): short
 * keys, times in epoch milliseconds, units already in the words a clinician reads. Only what a page shows:
 * never the signer's serial, batch numbers or the measurement body.
 */
export interface PointJson {
  /** The measurement id: a live event and a later fetch of the same reading are recognised as one. */
  readonly id: string;
  readonly code: string;
  /** Measurement time. */
  readonly t: number;
  readonly v: number | null;
  /** Why there is no value (11073-20601 special values), when `v` is null. */
  readonly invalid?: string;
  readonly unit: string;
  /** The device had stored it before sending it (back-filled, not live). */
  readonly stored: boolean;
  readonly device: string;
  readonly driver: string;
  readonly hub: string;
}

export interface HubJson {
  readonly gatewayId: string;
  readonly since: number;
  /** The hub's last status said online or offline; unknown if it never sent one. */
  readonly state: 'online' | 'offline' | 'unknown';
  /** When that status was received. */
  readonly statusAt?: number;
}

export interface GapJson {
  readonly hub: string;
  readonly device: string;
  readonly count: number;
  readonly first: string;
  readonly last: string;
  readonly reason: Gap['reason'];
  /** first and last as instants (a time without an offset read in the patient's zone); absent if unreadable. */
  readonly from?: number;
  readonly to?: number;
}

/** The words for a UCUM unit ("beats/min", "°C"); the UCUM text itself for one the gateway does not know. */
export function unitText(unit: string): string {
  return isUcumUnit(unit) ? UCUM_UNITS[unit].display : unit;
}

export function codeText(code: string): string {
  return isMdcCode(code) ? observationName(code) : code;
}

export function pointJson(p: SeriesPoint): PointJson {
  return {
    id: p.measurementId,
    code: p.code,
    t: p.measuredAt,
    v: p.value,
    ...(p.invalid === undefined ? {} : { invalid: p.invalid }),
    unit: unitText(p.unit),
    stored: p.stored,
    device: p.deviceId,
    driver: p.driver,
    hub: p.gatewayId,
  };
}

export function hubJson(h: PatientHub): HubJson {
  return {
    gatewayId: h.gatewayId,
    since: h.since,
    state: h.status?.status.state ?? 'unknown',
    ...(h.status === undefined ? {} : { statusAt: h.status.receivedAt }),
  };
}

export function gapJson(gap: Gap, hub: string, timeZone: string): GapJson {
  const from = resolveDateTime(gap.firstTime, timeZone);
  const to = resolveDateTime(gap.lastTime, timeZone);
  return {
    hub,
    device: gap.deviceId,
    count: gap.count,
    first: gap.firstTime,
    last: gap.lastTime,
    reason: gap.reason,
    ...(from === undefined || to === undefined ? {} : { from, to }),
  };
}

/** The patient a gateway's reading at `at` belongs to: the assignment whose [from, to) holds it. */
export function patientAt(
  assignments: readonly Assignment[],
  gatewayId: string,
  at: number,
): string | undefined {
  return assignments.find(
    (a) => a.gatewayId === gatewayId && a.from <= at && (a.to === undefined || at < a.to),
  )?.mrn;
}

/**
 * A patient's open alarms (not cleared: active, or latched until acknowledged), as a tile shows them: by
 * priority, and how many nobody has acknowledged yet (an acknowledged alarm whose condition is still present
 * stays open: docs/alarms.md, "Priorities and latching").
 */
export interface AlarmCountJson {
  readonly open: number;
  readonly high: number;
  readonly medium: number;
  readonly low: number;
  readonly unacknowledged: number;
}

export function alarmCounts(alarms: readonly Alarm[]): Map<string, AlarmCountJson> {
  const counts = new Map<string, { -readonly [K in keyof AlarmCountJson]: number }>();
  for (const alarm of alarms) {
    if (alarm.state === 'cleared') continue;
    let count = counts.get(alarm.mrn);
    if (count === undefined) {
      count = { ...NO_ALARMS };
      counts.set(alarm.mrn, count);
    }
    count.open++;
    count[alarm.priority]++;
    if (alarm.acknowledgedAt === undefined) count.unacknowledged++;
  }
  return counts;
}

export const NO_ALARMS: AlarmCountJson = { open: 0, high: 0, medium: 0, low: 0, unacknowledged: 0 };

/**
 * One alarm as the live feed carries it (the `alarm` event): what a page needs to show and place it. A late
 * alarm has `late` and `measuredAt`, the reading's own time, so a page never shows it as current. Values are
 * PHI like a reading's, and go only to the connections that may see the patient.
 */
export interface AlarmJson {
  readonly id: number;
  readonly kind: Alarm['kind'];
  readonly priority: Alarm['priority'];
  readonly state: Alarm['state'];
  readonly late: boolean;
  /** When the clinic raised it. */
  readonly raisedAt: number;
  /** The reading's own measurement time (physiological, battery). */
  readonly measuredAt?: number;
  readonly conditionEndedAt?: number;
  readonly clearedAt?: number;
  readonly acknowledgedBy?: string;
  readonly acknowledgedAt?: number;
  readonly code?: string;
  readonly value?: number;
  /** In words ("beats/min"). */
  readonly unit?: string;
  readonly hub: string;
  readonly device?: string;
}

export function alarmJson(a: Alarm): AlarmJson {
  return {
    id: a.id,
    kind: a.kind,
    priority: a.priority,
    state: a.state,
    late: a.late,
    raisedAt: a.raisedAt,
    ...(a.measuredAt === undefined ? {} : { measuredAt: a.measuredAt }),
    ...(a.conditionEndedAt === undefined ? {} : { conditionEndedAt: a.conditionEndedAt }),
    ...(a.clearedAt === undefined ? {} : { clearedAt: a.clearedAt }),
    ...(a.acknowledgedBy === undefined ? {} : { acknowledgedBy: a.acknowledgedBy }),
    ...(a.acknowledgedAt === undefined ? {} : { acknowledgedAt: a.acknowledgedAt }),
    ...(a.code === undefined ? {} : { code: a.code }),
    ...(a.value === undefined ? {} : { value: a.value }),
    ...(a.unit === undefined ? {} : { unit: unitText(a.unit) }),
    hub: a.gatewayId,
    ...(a.deviceId === undefined ? {} : { device: a.deviceId }),
  };
}
