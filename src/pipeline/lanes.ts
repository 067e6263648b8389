import type { Measurement } from '../model/measurement.js';
import type { Lane } from '../store/outbox.js';
import type { AlertMark } from './alert-rules.js';

export type { Lane } from '../store/outbox.js';

/**
 * The lane policy: which outbox lane a stamped reading goes to. The uplink sends the alert lane first, then
 * live, then backlog (src/store/outbox.ts), so the lane decides how long a reading waits behind others after an
 * outage, never whether it is sent. In order:
 *
 * 1. alert: any mark from the alert-lane rules (src/pipeline/alert-rules.ts). A stored or back-filled reading
 *    that fires a rule is marked `late` by the rules themselves; it still goes ahead of the backlog.
 * 2. backlog: a stored record (a glucose meter's RACP download, a cuff's or scale's replay on connect).
 * 3. backlog: a reading older than `backlogAfterMs` at the time it is judged (a device that kept readings
 *    while the hub was away and sends them as if live). How old it is can only be told from a time on the
 *    gateway's own time line, so the rule reads `time` only when it is one:
 *    - `gateway`: the gateway's clock at receipt, so never old (it is `receivedAt`).
 *    - `device-corrected`: the device's clock shifted onto the gateway's by the offset the session measured
 *      (src/session/clock-sync.ts): comparable with `now`.
 *    - `device`: the device's clock as it is. When it carries a UTC offset it is an instant and comparable;
 *      without one (GATT Date Time is local wall-clock time with no zone) it is not an instant at all, and
 *      reading it as UTC would make every reading of a hub east of Greenwich look hours old (and west of it,
 *      from the future). Such a reading is judged by `receivedAt` alone, which is always the gateway's clock.
 *    `receivedAt` counts as well in every case: a reading that waited in the pipeline (held for the clock
 *    sync, src/pipeline/held-stamps.ts) is as late as its receipt says.
 * 4. live: everything else.
 *
 * `now` is the gateway's wall clock when the reading is judged; it must be a synchronised clock (until it is,
 * the runtime holds stamping, and with it this decision).
 */
export interface LaneContext {
  /** The alert-lane rules' marks for this reading (AlertRules.judge); empty when none fired. */
  readonly alertMarks: readonly AlertMark[];
  /** The gateway's wall clock now (epoch ms). */
  readonly now: number;
  /** A reading measured (or received) longer ago than this goes to the backlog. */
  readonly backlogAfterMs: number;
}

export function laneFor(measurement: Measurement, context: LaneContext): Lane {
  if (context.alertMarks.length > 0) return 'alert';
  if (measurement.stored) return 'backlog';
  const age = ageOf(measurement, context.now);
  return age !== undefined && age > context.backlogAfterMs ? 'backlog' : 'live';
}

/**
 * How long ago the reading happened, on the gateway's time line (see rule 3 above): the older of its receipt
 * and, when comparable, its measurement time. Undefined when not even the receipt time can be read.
 */
export function ageOf(measurement: Measurement, now: number): number | undefined {
  const received = Date.parse(measurement.receivedAt);
  const measured = comparableTime(measurement);
  const times = [received, measured].filter((t): t is number => t !== undefined && !Number.isNaN(t));
  if (times.length === 0) return undefined;
  return now - Math.min(...times);
}

const HAS_OFFSET = /(?:Z|[+-]\d\d:\d\d)$/;

/** The measurement time as an instant, when it is one on the gateway's time line; else undefined. */
function comparableTime(measurement: Measurement): number | undefined {
  if (measurement.timeSource === 'device' && !HAS_OFFSET.test(measurement.time)) return undefined;
  const at = Date.parse(measurement.time);
  return Number.isNaN(at) ? undefined : at;
}

/**
 * The mark a reading carries on the wire (docs/wire-format.md 7.1): the first rule that fired, as the rules
 * order them. Undefined when none fired.
 */
export function alertMarkOf(marks: readonly AlertMark[]): AlertMark | undefined {
  const first = marks[0];
  return first === undefined ? undefined : { rule: first.rule, late: first.late };
}
