import type { Measurement } from '../model/measurement.js';

/**
 * The hub's alert-lane rules. The clinic owns alarms (acknowledgement, escalation, IEC 60601-1-8 priorities);
 * the hub only decides which readings travel ahead of the backlog, and marks them with the rule that fired so
 * the clinic can see why. A rule is a threshold on one IEEE 11073-10101 code in one UCUM unit:
 *
 * - `below` / `above`: the limit (a reading exactly at the limit does not cross it).
 * - `forMs`: how long the value must stay across the limit before the episode fires, judged by the readings'
 *   own times (no timer: a device that stops sending never fires a rule it had not yet fired). 0 fires on the
 *   first reading across. Consecutive readings further apart than `maxGapMs` restart the count, since nothing
 *   is known about the time between them.
 * - `hysteresis`: once fired, the episode ends only when a reading is back past the limit by this much
 *   (e.g. SpO2 below 90 % ends at 90 + 2 = 92 %), so a value hovering at the limit does not flap.
 *
 * Readings of one device are judged in the order they arrive, separately for stored records (a cuff's memory,
 * a glucose meter's RACP download, a back-fill after an outage) and live ones, so a stored series cannot
 * complete a live episode or the reverse. A stored reading that fires is marked `late`: it travels on the
 * alert lane with its own (old) time, and the clinic must not treat it as happening now.
 */
export interface AlertRule {
  /**
   * Stable name, carried on the wire with the readings it marks. Rules from the configuration are named
   * `<code>:below` or `<code>:above` (src/pipeline/alert-config.ts, which also builds them: the defaults live
   * in the configuration only, src/config/defaults.ts).
   */
  readonly id: string;
  readonly code: string;
  readonly unit: string;
  readonly below?: number;
  readonly above?: number;
  readonly forMs: number;
  readonly hysteresis: number;
  /** Readings further apart than this restart a pending episode (default 15 s). */
  readonly maxGapMs?: number;
}

export interface AlertMark {
  readonly rule: string;
  /** A stored or back-filled reading: true; the clinic shows it with its own time, not as "now". */
  readonly late: boolean;
}

/** Readings as the rules see them: a Measurement plus whether the device had stored it. */
export interface RuleInput {
  readonly measurement: Measurement;
  readonly stored: boolean;
}

interface Episode {
  /** The time of the first reading across the limit, while pending; undefined when none is pending. */
  pendingSince: number | undefined;
  lastAt: number | undefined;
  firing: boolean;
}

const DEFAULT_MAX_GAP_MS = 15_000;

export class AlertRules {
  private rules: readonly AlertRule[];
  private readonly episodes = new Map<string, Episode>();

  constructor(rules: readonly AlertRule[]) {
    this.rules = rules;
  }

  /**
   * New limits (from the configuration, or per patient from the clinic's signed `config` command). Episodes of
   * rules that kept their id and limits go on; others start afresh.
   */
  replaceRules(rules: readonly AlertRule[]): void {
    const unchanged = new Set(
      rules.filter((rule) => this.rules.some((old) => sameRule(old, rule))).map((rule) => rule.id),
    );
    for (const key of [...this.episodes.keys()]) {
      if (!unchanged.has(ruleIdOfKey(key))) this.episodes.delete(key);
    }
    this.rules = rules;
  }

  get current(): readonly AlertRule[] {
    return this.rules;
  }

  /** The rules that fire on this reading (the first is the one named on the wire), or none. */
  judge(input: RuleInput): AlertMark[] {
    const { measurement, stored } = input;
    const at = epochOf(measurement.time);
    const marks: AlertMark[] = [];
    for (const rule of this.rules) {
      const observation = measurement.observations.find((o) => o.code === rule.code && o.unit === rule.unit);
      if (observation === undefined || observation.value === null || at === undefined) continue;
      const key = episodeKey(rule.id, measurement.deviceId, stored);
      const episode = this.episodes.get(key) ?? { pendingSince: undefined, lastAt: undefined, firing: false };
      this.episodes.set(key, episode);
      if (step(rule, episode, observation.value, at)) marks.push({ rule: rule.id, late: stored });
    }
    return marks;
  }

  /** Forget a device's episodes (it was unenrolled). */
  forgetDevice(deviceId: string): void {
    for (const key of [...this.episodes.keys()]) {
      if (key.split('\u0000')[1] === deviceId) this.episodes.delete(key);
    }
  }
}

/** Advances one episode by one reading; true when the reading is part of a fired episode. */
function step(rule: AlertRule, episode: Episode, value: number, at: number): boolean {
  const maxGap = rule.maxGapMs ?? DEFAULT_MAX_GAP_MS;
  const gapTooLong = episode.lastAt !== undefined && at - episode.lastAt > maxGap;
  episode.lastAt = at;
  if (episode.firing) {
    if (recovered(rule, value)) {
      episode.firing = false;
      episode.pendingSince = undefined;
      return false;
    }
    if (!gapTooLong) return true;
    // A long silence in a fired episode: it must earn its duration again.
    episode.firing = false;
    episode.pendingSince = undefined;
  }
  if (!crosses(rule, value)) {
    episode.pendingSince = undefined;
    return false;
  }
  if (episode.pendingSince === undefined || gapTooLong) episode.pendingSince = at;
  if (at - episode.pendingSince >= rule.forMs) {
    episode.firing = true;
    return true;
  }
  return false;
}

function crosses(rule: AlertRule, value: number): boolean {
  return (rule.below !== undefined && value < rule.below) || (rule.above !== undefined && value > rule.above);
}

function recovered(rule: AlertRule, value: number): boolean {
  if (rule.below !== undefined && value < rule.below + rule.hysteresis) return false;
  if (rule.above !== undefined && value > rule.above - rule.hysteresis) return false;
  return true;
}

function sameRule(a: AlertRule, b: AlertRule): boolean {
  return (
    a.id === b.id &&
    a.code === b.code &&
    a.unit === b.unit &&
    a.below === b.below &&
    a.above === b.above &&
    a.forMs === b.forMs &&
    a.hysteresis === b.hysteresis &&
    a.maxGapMs === b.maxGapMs
  );
}

function episodeKey(ruleId: string, deviceId: string, stored: boolean): string {
  return `${ruleId}\u0000${deviceId}\u0000${stored ? 'stored' : 'live'}`;
}

function ruleIdOfKey(key: string): string {
  return key.split('\u0000')[0] as string;
}

/**
 * Milliseconds for comparing the times of one device's readings. A device's own time has no offset (GATT
 * Date Time); reading it as UTC shifts every reading of that device alike, so differences stay right.
 */
function epochOf(time: string): number | undefined {
  const hasZone = /(?:Z|[+-]\d\d:\d\d)$/.test(time);
  const epoch = Date.parse(hasZone ? time : `${time}Z`);
  return Number.isNaN(epoch) ? undefined : epoch;
}
