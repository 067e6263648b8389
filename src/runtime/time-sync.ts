import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Scheduler, TimerHandle } from '../util/scheduler.js';

/**
 * Is the system clock set? A Raspberry Pi has no battery-backed real-time clock: it boots at the time
 * fake-hwclock saved at the last shutdown (or at 1970), and is correct only once NTP has synchronised it.
 * Until then, gateway-stamped times, "older than" rules, alert durations and certificate validity are wrong,
 * so the hub holds wall-clock stamping until this says yes (see held-stamps.ts).
 *
 * The evidence, in order:
 * 1. A wall clock before `notBeforeMs` (this release's build time) is certainly not set.
 * 2. systemd-timesyncd touches /run/systemd/timesync/synchronized at each successful synchronisation
 *    (systemd-timesyncd.service(8), "Files"; since systemd 239). It is Raspberry Pi OS's default NTP client.
 * 3. Otherwise ask timedated: `timedatectl show --property=NTPSynchronized --value` reports the kernel's
 *    view (adjtimex(2): the STA_UNSYNC status bit is clear), which chrony and ntpd also maintain.
 * Anything that cannot be read counts as "not synchronised", with the reason in `detail`.
 */
export interface TimeSyncReading {
  readonly synchronised: boolean;
  /** Which evidence decided, for `rpm-gateway status`. */
  readonly source: 'clock-before-release' | 'timesyncd' | 'timedated' | 'unknown' | 'not-required';
  readonly detail: string;
}

export type TimeSyncProbe = () => Promise<TimeSyncReading>;

export interface SystemProbeOptions {
  readonly now: () => number;
  /** A time the clock is certainly past: the build time of this release. */
  readonly notBeforeMs: number;
  readonly timesyncdFlag?: string;
  /** Runs timedatectl; injectable for tests. Resolves with stdout, rejects when it cannot run. */
  readonly timedatectl?: () => Promise<string>;
}

export const TIMESYNCD_FLAG = '/run/systemd/timesync/synchronized';

export function systemTimeSyncProbe(options: SystemProbeOptions): TimeSyncProbe {
  const flag = options.timesyncdFlag ?? TIMESYNCD_FLAG;
  const timedatectl = options.timedatectl ?? runTimedatectl;
  return async () => {
    const now = options.now();
    if (now < options.notBeforeMs) {
      return {
        synchronised: false,
        source: 'clock-before-release',
        detail: `the clock reads ${new Date(now).toISOString()}, before this release was built`,
      };
    }
    if (existsSync(flag)) {
      return { synchronised: true, source: 'timesyncd', detail: `${flag} exists` };
    }
    try {
      const answer = (await timedatectl()).trim();
      if (answer === 'yes') return { synchronised: true, source: 'timedated', detail: 'NTPSynchronized=yes' };
      if (answer === 'no') return { synchronised: false, source: 'timedated', detail: 'NTPSynchronized=no' };
      return {
        synchronised: false,
        source: 'unknown',
        detail: `timedatectl answered "${answer.slice(0, 40)}"`,
      };
    } catch (error) {
      const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
      return { synchronised: false, source: 'unknown', detail: `cannot ask timedated: ${reason}` };
    }
  };
}

/** For hubs with a real-time clock, or development machines: the configuration says not to wait. */
export const NOT_REQUIRED: TimeSyncProbe = async () => ({
  synchronised: true,
  source: 'not-required',
  detail: 'clock.requireSync is false',
});

function runTimedatectl(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'timedatectl',
      ['show', '--property=NTPSynchronized', '--value'],
      { timeout: 5_000, env: { ...process.env, LC_ALL: 'C' } },
      (error, stdout) => (error ? reject(error) : resolve(stdout)),
    );
  });
}

export interface TimeSyncWatchOptions {
  readonly probe: TimeSyncProbe;
  readonly scheduler: Scheduler;
  /** How often to ask while not synchronised. */
  readonly pollMs?: number;
}

/**
 * Asks the probe until the clock is synchronised, then tells `onSynchronised` once. A clock that was set stays
 * trusted: losing NTP later does not make it jump, it only drifts slowly.
 */
export class TimeSyncWatch {
  private latest: TimeSyncReading = { synchronised: false, source: 'unknown', detail: 'not asked yet' };
  private timer: TimerHandle | undefined;
  private stopped = true;
  private readonly listeners: ((reading: TimeSyncReading) => void)[] = [];

  constructor(private readonly options: TimeSyncWatchOptions) {}

  get state(): TimeSyncReading {
    return this.latest;
  }

  get synchronised(): boolean {
    return this.latest.synchronised;
  }

  /** Called once, when the clock is first known to be synchronised (at once if it already is). */
  onSynchronised(listener: (reading: TimeSyncReading) => void): void {
    if (this.latest.synchronised) listener(this.latest);
    else this.listeners.push(listener);
  }

  /** Asks once and resolves with the answer; keeps asking in the background while the answer is no. */
  async start(): Promise<TimeSyncReading> {
    this.stopped = false;
    await this.ask();
    return this.latest;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.options.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async ask(): Promise<void> {
    this.timer = undefined;
    const reading = await this.options.probe();
    if (this.stopped) return;
    this.latest = reading;
    if (reading.synchronised) {
      for (const listener of this.listeners.splice(0)) listener(reading);
      return;
    }
    this.timer = this.options.scheduler.setTimeout(() => void this.ask(), this.options.pollMs ?? 10_000);
  }
}
