import type { Reading } from '../model/observation.js';
import type { Scheduler, TimerHandle } from '../util/scheduler.js';

/**
 * One connection's thinning of one characteristic's live readings (CharacteristicSpec.thin in
 * define-driver.ts): at most one reading per period leaves here, so a stream that repeats the displayed values
 * with every waveform sample (about 100 frames a second) is stored as about one Measurement a second.
 *
 * The rule, in the session's clock (the injected scheduler, virtual in tests):
 * - A reading that arrives while no period is open opens one, `everyMs` long.
 * - When the period ends, ONE of its readings is passed on: the first whose status differs from the status of
 *   the last reading passed on (before any, from no status), else the latest. A status is an event the clinic
 *   must see (probe off, no finger, searching); the values are the device's displayed, already averaged numbers,
 *   of which the latest is the best summary of the period. So a status change always leaves within one period,
 *   even when it lasted a single frame; two different changes inside one period leave as the first of them,
 *   and the second is reported by the next period if it still holds.
 * - The reading passed on is the one that arrived, unchanged: its payload (the frame), its receipt time and its
 *   device time, so its measurement id (src/model/ids.ts) is the id it would have had unthinned.
 * - `flush()` (the link ended) passes on the open period's choice at once: the last seconds before a
 *   disconnect, and a probe-off among them, are not lost.
 *
 * Periods do not overlap, so passed-on readings are at least `everyMs` apart in emission; the first reading of
 * a period waits at most `everyMs`.
 */
export class ReadingThinner<T extends { readonly reading: Reading }> {
  /** The status (sorted, joined) of the last reading passed on; '' before any: no status is the normal state. */
  private lastStatus = '';
  /** The open period's first reading whose status differs from lastStatus. */
  private changed: T | undefined;
  /** The open period's latest reading. */
  private latest: T | undefined;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly everyMs: number,
    private readonly scheduler: Scheduler,
    private readonly emit: (item: T) => void,
  ) {}

  offer(item: T): void {
    if (this.changed === undefined && statusKey(item.reading) !== this.lastStatus) this.changed = item;
    this.latest = item;
    if (this.timer === undefined) {
      this.timer = this.scheduler.setTimeout(() => {
        this.timer = undefined;
        this.closePeriod();
      }, this.everyMs);
    }
  }

  /** The connection ended: the open period's choice goes out now, and nothing is held. */
  flush(): void {
    if (this.timer !== undefined) this.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
    this.closePeriod();
  }

  private closePeriod(): void {
    const chosen = this.changed ?? this.latest;
    this.changed = undefined;
    this.latest = undefined;
    if (chosen === undefined) return;
    this.lastStatus = statusKey(chosen.reading);
    this.emit(chosen);
  }
}

function statusKey(reading: Reading): string {
  return [...(reading.status ?? [])].sort().join('\u0000');
}
