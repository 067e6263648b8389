import type { JsonValue } from '../../model/observation.js';

/**
 * The clinic's alarms: what a remote notification system tells clinicians about their patients, informed by
 * IEC 60601-1-8 (alarm systems of medical electrical equipment) but not a bedside monitor: it shows alarms on
 * screens that staff look at, and has no sound, no escalation and no guarantee that anybody is watching
 * (docs/alarms.md says what that leaves out).
 *
 * Vocabulary (IEC 60601-1-8 section 3):
 * - An alarm **condition** is the state the engine detected (SpO2 below the limit for long enough, a hub gone
 *   silent). Each has a stable `conditionKey`; there is at most one open alarm per key, so an ongoing condition
 *   is never told twice.
 * - A **physiological** condition comes from a patient's readings against that patient's limits; a
 *   **technical** one from the equipment (hub, device, certificate, clock, lost readings).
 * - Three **priorities**, high, medium and low (IEC 60601-1-8 section 6.1.2), each condition has one.
 * - A **latching** alarm stays after its condition ended until someone acknowledges it (section 6.9). High
 *   priority latches; so do late alarms and event alarms (a gap), whatever their priority: they describe the
 *   past, and without latching they would be gone before anybody saw them.
 *
 * Times are epoch milliseconds (UTC).
 */
export type AlarmPriority = 'high' | 'medium' | 'low';

export const PRIORITIES: readonly AlarmPriority[] = ['high', 'medium', 'low'];

export type AlarmKind =
  /** A reading past the patient's limit for its minimum duration. */
  | 'physiological'
  /** The hub said it is offline (a clean stop or its MQTT Last Will), or nothing came from it for too long. */
  | 'hub-offline'
  /** An enrolled device of the patient's hub sent nothing for too long. */
  | 'device-silent'
  /** A device's battery level (MDC_ATTR_VAL_BATT_CHARGE) is low. */
  | 'battery-low'
  /** The hub reported readings it dropped before they reached the clinic (a gap record). */
  | 'gap'
  /** The hub's client certificate expires soon (status `certExp`). */
  | 'cert-expiry'
  /** The hub's clock is ahead of the clinic's by more than the wire format tolerates. */
  | 'clock-skew';

export const TECHNICAL_KINDS: readonly AlarmKind[] = [
  'hub-offline',
  'device-silent',
  'battery-low',
  'gap',
  'cert-expiry',
  'clock-skew',
];

/**
 * - `active`: the condition is present.
 * - `latched`: the condition ended, but the alarm latches and nobody acknowledged it yet.
 * - `cleared`: over; kept as history.
 */
export type AlarmState = 'active' | 'latched' | 'cleared';

export interface Alarm {
  readonly id: number;
  /** The condition it tells (see the module comment); unique among alarms that are not cleared. */
  readonly conditionKey: string;
  /** The patient, by the gateway's assignment at the time the condition concerns. */
  readonly mrn: string;
  readonly gatewayId: string;
  readonly deviceId?: string;
  readonly kind: AlarmKind;
  /** The MDC code, for physiological and battery alarms. */
  readonly code?: string;
  readonly priority: AlarmPriority;
  readonly state: AlarmState;
  /**
   * A late alarm: raised by readings that were measured long before they arrived (a device's stored records, a
   * hub's back-fill). Shown with `measuredAt`, never as current.
   */
  readonly late: boolean;
  /** When the engine raised it (clinic clock). */
  readonly raisedAt: number;
  /** For physiological alarms: the measurement time of the reading that raised it (its original time). */
  readonly measuredAt?: number;
  /** When its condition ended (it may still be latched). */
  readonly conditionEndedAt?: number;
  readonly clearedAt?: number;
  readonly acknowledgedBy?: string;
  readonly acknowledgedAt?: number;
  /**
   * The triggering value and its unit (physiological, battery). PHI: the clinic database is PHI-grade and
   * encrypted, so it is stored; it is never logged and never in an error message.
   */
  readonly value?: number;
  readonly unit?: string;
  /** What else explains it: the limit and side crossed, a gap's count and reason, a certificate's end. */
  readonly details: { readonly [key: string]: JsonValue };
}

/** What the engine asks the store to raise. */
export interface NewAlarm {
  readonly conditionKey: string;
  readonly mrn: string;
  readonly gatewayId: string;
  readonly deviceId?: string;
  readonly kind: AlarmKind;
  readonly code?: string;
  readonly priority: AlarmPriority;
  readonly late: boolean;
  readonly raisedAt: number;
  readonly measuredAt?: number;
  readonly value?: number;
  readonly unit?: string;
  readonly details: { readonly [key: string]: JsonValue };
  /**
   * The condition is over as it is raised (a gap record: an event, not a state). It is stored latched, and
   * waits for an acknowledgement.
   */
  readonly endedAt?: number;
}

/** Whether an alarm stays after its condition ended (see the module comment). */
export function latches(alarm: Pick<Alarm, 'priority' | 'late' | 'kind'>): boolean {
  return alarm.priority === 'high' || alarm.late || alarm.kind === 'gap';
}

/**
 * A physiological limit of one patient: one MDC code in one UCUM unit, a lower and/or an upper limit, the
 * minimum duration past it, and the hysteresis to clear, with the same meaning as the hub's alert-lane rules
 * (src/pipeline/alert-rules.ts), so the limits the clinic sends to the hub (the signed `config` command) mean
 * there what they mean here. `priority` is the clinic's own.
 */
export interface AlarmLimit {
  readonly code: string;
  readonly unit: string;
  readonly below?: number;
  readonly above?: number;
  readonly forMs: number;
  readonly hysteresis: number;
  readonly priority: AlarmPriority;
}

/** A patient's limits as an admin set them. */
export interface PatientLimits {
  readonly mrn: string;
  readonly limits: readonly AlarmLimit[];
  readonly setBy: string;
  readonly setAt: number;
}

/** Sort order of the alarm lists: open (active, latched) first, then priority, then newest first. */
export function compareAlarms(a: Alarm, b: Alarm): number {
  const open = (x: Alarm) => (x.state === 'cleared' ? 1 : 0);
  return (
    open(a) - open(b) ||
    PRIORITIES.indexOf(a.priority) - PRIORITIES.indexOf(b.priority) ||
    b.raisedAt - a.raisedAt ||
    b.id - a.id
  );
}
