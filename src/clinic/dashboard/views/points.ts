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

/** A patient's open alarms (not cleared: active, or latched until acknowledged), as a tile shows them. */
export interface AlarmCountJson {
  readonly open: number;
  readonly high: number;
  readonly medium: number;
  readonly low: number;
}

export function alarmCounts(alarms: readonly Alarm[]): Map<string, AlarmCountJson> {
  const counts = new Map<string, { open: number; high: number; medium: number; low: number }>();
  for (const alarm of alarms) {
    if (alarm.state === 'cleared') continue;
    let count = counts.get(alarm.mrn);
    if (count === undefined) {
      count = { open: 0, high: 0, medium: 0, low: 0 };
      counts.set(alarm.mrn, count);
    }
    count.open++;
    count[alarm.priority]++;
  }
  return counts;
}

export const NO_ALARMS: AlarmCountJson = { open: 0, high: 0, medium: 0, low: 0 };
