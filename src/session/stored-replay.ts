import type { Driver } from '../drivers/sdk/define-driver.js';
import { normalizeUuid } from '../gatt/uuid.js';
import type { Reading } from '../model/observation.js';
import type { Scheduler } from '../util/scheduler.js';

/**
 * Telling a cuff's or a scale's stored records from live readings.
 *
 * Cuffs, scales and thermometers (Blood Pressure, Weight Scale and Health Thermometer profiles) have no record
 * access protocol: a measurement taken while no collector was connected is kept, and when a collector connects
 * and writes the CCCD of the measurement characteristic, the device indicates what it kept, oldest first, one
 * indication per confirmation, as a burst (Omron's cuffs in their transfer mode, as StanfordSpezi/SpeziDevices
 * handles them; derdilla/blood-pressure-monitor-fl lists cuffs that send every stored record, others only the
 * latest, and most then hang up). On the air a stored record is indistinguishable from a live one: same
 * characteristic, same layout, a device timestamp from a clock we do not trust. Using such records as
 * offset samples would make a week-old record say the device clock is a week slow.
 *
 * The rule, in order:
 *   1. Arrival pattern, not device time. The replay window opens when the session enables indications on a
 *      replay characteristic (any 'indicate' characteristic of a driver without RACP). Every value that arrives
 *      on one while the window is open is stored. The window closes after `quietMs` without such a value
 *      (once a first one came), after `firstWithinMs` if none came, or after `maxMs` in any case. Real bursts
 *      are tight (an indication per connection event or two, tens of milliseconds apart), so a quiet second or
 *      three means the burst is over; a device that waits for the time write first still starts well within
 *      `firstWithinMs`. Device times cannot be the primary signal: the device clock is exactly what is in
 *      doubt (never set, reset by a battery change, or off by a time zone).
 *   2. A live measurement ends the window at once: an intermediate value (Intermediate Cuff Pressure while the
 *      cuff inflates, Intermediate Temperature) means the person is measuring now, so what follows is live.
 *   3. Stragglers: after the window, a value whose device time is not later than the newest device time seen
 *      on this connection is stored too (a device that paused mid-burst, or re-sends its last value, as Rice
 *      Lake's HealthWeigh scales do 2.5 s after connecting). This compares device times with device times of
 *      the same clock, so it is only applied while the clock was not written on this connection.
 *
 * What a stored record is used for: it is delivered with `stored: true`, it never feeds the clock-offset
 * estimator, and its time is corrected with the offset of the device clock that stamped it: the Current Time
 * the session read at connect (before writing it), else the estimate from live readings (clock-sync.ts).
 *
 * Known limits: a live measurement without intermediate values taken within seconds of connecting (someone
 * stepping on a scale just as it connects) counts as stored; it is then kept out of the estimate and corrected
 * with the connect-time offset, which is the right correction anyway.
 */
export interface ReplayTiming {
  /** The window closes if no stored record arrived this long after it opened. */
  readonly firstWithinMs: number;
  /** The window closes this long after the last stored record. */
  readonly quietMs: number;
  /** The window closes this long after it opened, burst or not. */
  readonly maxMs: number;
}

export const DEFAULT_REPLAY_TIMING: ReplayTiming = { firstWithinMs: 5_000, quietMs: 3_000, maxMs: 120_000 };

/** Why a replay window closed. */
export type ReplayEnd = 'quiet' | 'no-records' | 'timeout' | 'live-measurement';

/**
 * The characteristics a device may replay stored records on: the driver's indicated ones, unless the driver
 * uses RACP (then stored records are fetched on request, not replayed).
 */
export function replayCharacteristics(driver: Driver): ReadonlySet<string> {
  const uuids = driver.characteristics.map((c) => normalizeUuid(c.uuid));
  if (uuids.includes(RACP)) return new Set();
  return new Set(
    driver.characteristics.filter((c) => c.access === 'indicate').map((c) => normalizeUuid(c.uuid)),
  );
}

const RACP = '2a52';

/** Classifies readings on one device's replay characteristics as stored or live (see the rule above). */
export class StoredRecordClassifier {
  private open = false;
  private timer: unknown;
  private openedAt = 0;
  private burst = 0;
  private newestDeviceTime: number | undefined;

  constructor(
    private readonly characteristics: ReadonlySet<string>,
    private readonly scheduler: Scheduler,
    private readonly timing: ReplayTiming,
    /** Told once per window when it closes by itself, with the number of stored records it saw. */
    private readonly onEnd: (reason: ReplayEnd, records: number) => void,
  ) {}

  /** Whether `uuid` is one of the replay characteristics. */
  replays(uuid: string): boolean {
    return this.characteristics.has(uuid);
  }

  get windowOpen(): boolean {
    return this.open;
  }

  /** A new connection: forgets the previous connection's device times. */
  reset(): void {
    this.cancel();
    this.newestDeviceTime = undefined;
  }

  /** Opens the window (just before the session writes the first CCCD of a replay characteristic). */
  openWindow(): void {
    this.cancel();
    this.open = true;
    this.burst = 0;
    this.openedAt = this.scheduler.now();
    this.arm(this.timing.firstWithinMs, 'no-records');
  }

  /** Closes the window without telling anyone (the link ended, or the session stopped). */
  cancel(): void {
    this.open = false;
    if (this.timer !== undefined) this.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Whether a reading is a stored record. `deviceEpochMs` is its device time read as epoch (undefined when
   * it has none); `clockWritten` says whether the session wrote the device clock on this connection.
   */
  classify(
    uuid: string,
    reading: Reading,
    deviceEpochMs: number | undefined,
    clockWritten: boolean,
  ): boolean {
    if (reading.kind === 'intermediate') {
      if (this.open) this.end('live-measurement');
      return false;
    }
    if (!this.characteristics.has(uuid) || reading.kind === 'info') return false;
    const newest = this.newestDeviceTime;
    if (deviceEpochMs !== undefined && (newest === undefined || deviceEpochMs > newest)) {
      this.newestDeviceTime = deviceEpochMs;
    }
    if (this.open) {
      this.burst++;
      const left = this.openedAt + this.timing.maxMs - this.scheduler.now();
      if (left <= 0) this.end('timeout');
      else if (left <= this.timing.quietMs) this.arm(left, 'timeout');
      else this.arm(this.timing.quietMs, 'quiet');
      return true;
    }
    return !clockWritten && deviceEpochMs !== undefined && newest !== undefined && deviceEpochMs <= newest;
  }

  private arm(ms: number, reason: ReplayEnd): void {
    if (this.timer !== undefined) this.scheduler.clearTimeout(this.timer);
    if (reason === 'no-records' && ms > this.timing.maxMs) ms = this.timing.maxMs;
    this.timer = this.scheduler.setTimeout(() => {
      this.timer = undefined;
      this.end(reason);
    }, ms);
  }

  private end(reason: ReplayEnd): void {
    if (!this.open) return;
    this.cancel();
    this.onEnd(reason, this.burst);
  }
}
