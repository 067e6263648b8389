import type { AlarmLimit } from './model.js';

/**
 * The physiological alarm condition of one limit side, one device, one stream of a patient: the same rule as
 * the hub's alert lane (src/pipeline/alert-rules.ts), judged again at the clinic because the clinic owns the
 * alarm (the hub only chooses which readings travel first):
 *
 * - a reading exactly at the limit does not cross it;
 * - the condition starts once readings stayed across the limit for `forMs`, by the readings' own times (no
 *   timer: a device that stops sending never completes a duration it had not yet reached); 0 starts it at the
 *   first reading across;
 * - consecutive readings further apart than `maxGapMs` restart the count (nothing is known in between);
 * - it ends only when a reading is back past the limit by the hysteresis (SpO2 below 90 ends at 92 with a
 *   hysteresis of 2), so a value hovering at the limit does not raise and clear over and over.
 */
export type Side = 'below' | 'above';

export interface Episode {
  /** The measurement time of the first reading across the limit of the pending or present condition. */
  since: number | undefined;
  lastAt: number | undefined;
  present: boolean;
  /** The alarm condition it raised, while present. */
  conditionKey?: string;
}

export type Transition = 'started' | 'ended' | 'none';

export function newEpisode(): Episode {
  return { since: undefined, lastAt: undefined, present: false };
}

/** Advances an episode by one reading's value at measurement time `at`. */
export function advance(
  limit: AlarmLimit,
  side: Side,
  episode: Episode,
  value: number,
  at: number,
  maxGapMs: number,
): Transition {
  const threshold = side === 'below' ? limit.below : limit.above;
  if (threshold === undefined) return 'none';
  // A reading older than the last one judged (out of order within a stream) does not move the episode.
  if (episode.lastAt !== undefined && at < episode.lastAt) return 'none';
  const gapTooLong = episode.lastAt !== undefined && at - episode.lastAt > maxGapMs;
  episode.lastAt = at;
  const across = side === 'below' ? value < threshold : value > threshold;
  if (episode.present) {
    const recovered =
      side === 'below' ? value >= threshold + limit.hysteresis : value <= threshold - limit.hysteresis;
    if (recovered) {
      episode.present = false;
      episode.since = undefined;
      return 'ended';
    }
    // A long silence inside a present condition does not end it: only a recovered reading does.
    return 'none';
  }
  if (!across) {
    episode.since = undefined;
    return 'none';
  }
  if (episode.since === undefined || gapTooLong) episode.since = at;
  if (at - episode.since >= limit.forMs) {
    episode.present = true;
    return 'started';
  }
  return 'none';
}

/** Both sides a limit has. */
export function sidesOf(limit: AlarmLimit): Side[] {
  return [
    ...(limit.below === undefined ? [] : ['below' as const]),
    ...(limit.above === undefined ? [] : ['above' as const]),
  ];
}

export function sameLimit(a: AlarmLimit, b: AlarmLimit): boolean {
  return (
    a.code === b.code &&
    a.unit === b.unit &&
    a.below === b.below &&
    a.above === b.above &&
    a.forMs === b.forMs &&
    a.hysteresis === b.hysteresis &&
    a.priority === b.priority
  );
}
