import { map, type OperatorFunction } from 'rxjs';
import type { Measurement } from '../model/measurement.js';
import type { AlertRules } from '../pipeline/alert-rules.js';
import { alertMarkOf, type Lane, laneFor } from '../pipeline/lanes.js';
import type { SessionReading } from '../session/device-session.js';
import type { ResumeProgress } from '../store/racp-resume.js';

/** A reading the pipeline stamped, with the session's reading it came from. */
export interface Stamped {
  readonly reading: SessionReading;
  readonly measurement: Measurement;
}

/** What the outbox appends: the measurement (marked when a rule fired), its lane, and a RACP resume point. */
export interface Routed {
  readonly measurement: Measurement;
  readonly lane: Lane;
  /** Set on the value that completes a RACP record: committed with its row (Outbox.append's `progress`). */
  readonly progress?: ResumeProgress;
}

export interface LaneStageOptions {
  readonly rules: AlertRules;
  /** The gateway's wall clock (epoch ms); the pipeline runs this stage only once the clock is known set. */
  readonly now: () => number;
  readonly backlogAfterMs: number;
}

/**
 * The pipeline's alert and lane stage, after stamping: the alert-lane rules judge the reading (live and stored
 * ones apart, src/pipeline/alert-rules.ts), the first rule that fired marks it (`alert` on the wire), and the
 * lane policy (src/pipeline/lanes.ts) puts it on the alert, live or backlog lane. The session's RACP resume
 * point travels on to the append so the outbox commits it with the record it covers.
 *
 * A stage of its own, in order: the rules' episodes depend on the order a device's readings arrive in, which
 * the pipeline's concatMap keeps.
 */
export function laneStage(options: LaneStageOptions): OperatorFunction<Stamped, Routed> {
  return map(({ reading, measurement }) => {
    const marks = options.rules.judge({ measurement, stored: measurement.stored === true });
    const mark = alertMarkOf(marks);
    const marked: Measurement = mark === undefined ? measurement : { ...measurement, alert: mark };
    const lane = laneFor(marked, {
      alertMarks: marks,
      now: options.now(),
      backlogAfterMs: options.backlogAfterMs,
    });
    const progress = reading.racpProgress;
    return progress === undefined
      ? { measurement: marked, lane }
      : {
          measurement: marked,
          lane,
          progress: { deviceId: reading.deviceId, sequence: progress.sequence, anchor: progress.anchor },
        };
  });
}
