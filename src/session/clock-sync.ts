/**
 * Device clocks drift and are often simply wrong (never set after a battery change). A session either writes
 * the gateway's time to the device (Current Time Service, when the device allows writes) or measures the
 * offset: a reading that arrives live (not a stored record) was taken "just now", so device time minus the
 * gateway's receipt time estimates the skew. The Measurement records which was done (time source
 * 'device' vs 'device-corrected').
 *
 * Device times are local wall-clock strings without offset (GATT Date Time), so the gateway interprets them in
 * its own time zone, passed in as the offset from UTC in minutes (east positive), never read from the process.
 */
export function deviceTimeToEpoch(iso: string, utcOffsetMinutes: number): number {
  // "YYYY-MM-DDTHH:MM:SS" as UTC, then shift by the zone: local = UTC + offset.
  return Date.parse(`${iso}Z`) - utcOffsetMinutes * 60_000;
}

export interface OffsetEstimate {
  /** Device clock minus gateway clock, ms (positive: the device is ahead). */
  readonly offsetMs: number;
  readonly samples: number;
}

/**
 * Keeps a robust estimate of a device's clock offset from live readings: the median of the last few samples,
 * so one reading delayed in a radio retry does not swing it. Offsets under `toleranceMs` count as none.
 */
export class ClockOffsetEstimator {
  private readonly samples: number[] = [];

  constructor(
    private readonly window = 5,
    readonly toleranceMs = 5_000,
  ) {}

  add(deviceEpochMs: number, receivedEpochMs: number): void {
    this.samples.push(deviceEpochMs - receivedEpochMs);
    if (this.samples.length > this.window) this.samples.shift();
  }

  estimate(): OffsetEstimate | undefined {
    if (this.samples.length === 0) return undefined;
    const sorted = [...this.samples].sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    const median =
      sorted.length % 2 === 1
        ? (sorted[middle] as number)
        : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
    return { offsetMs: Math.abs(median) < this.toleranceMs ? 0 : median, samples: sorted.length };
  }
}

/**
 * The corrected time of a device timestamp: the device time minus the measured offset, as ISO-8601 UTC.
 * Without an estimate the device time is taken as it is (time source 'device').
 */
export function correctDeviceTime(
  iso: string,
  utcOffsetMinutes: number,
  estimate: OffsetEstimate | undefined,
): { time: string; source: 'device' | 'device-corrected' } {
  const epoch = deviceTimeToEpoch(iso, utcOffsetMinutes);
  if (!estimate || estimate.offsetMs === 0) return { time: new Date(epoch).toISOString(), source: 'device' };
  return { time: new Date(epoch - estimate.offsetMs).toISOString(), source: 'device-corrected' };
}

/** How a session handles a device's clock: written at connect, or measured and corrected. */
export type ClockHandling = 'written' | 'measured' | 'none';

/**
 * One device's clock as the session knows it, and the time each reading gets.
 *
 * - The Current Time the session reads at connect, before it writes one (CTS 1.1 makes Read mandatory, so a
 *   device with the service can always say what its clock shows), is an exact offset of the clock that
 *   stamped the stored records: they were stamped before any write of this connection.
 * - Live readings in 'measured' mode feed the estimator (median of recent samples); stored ones never do
 *   (they are old by nature, stored-replay.ts). A live reading is corrected with the connect-time offset when
 *   there is one (exact), else with the estimate.
 * - Stored records are corrected with the connect-time offset, else with the live estimate, else not at all
 *   (time source 'device': the skew is unknown).
 * - Once the clock is written on a connection, live readings are taken as they are (the clock was just set);
 *   before that (the write comes after the stored records) they are corrected like in 'measured' mode.
 */
export class DeviceClock {
  private readonly estimator: ClockOffsetEstimator;
  private atConnect: OffsetEstimate | undefined;
  handling: ClockHandling = 'none';

  constructor(estimator: ClockOffsetEstimator = new ClockOffsetEstimator()) {
    this.estimator = estimator;
  }

  /** A new connection: the connect-time reading of the previous one no longer applies. */
  newConnection(): void {
    this.atConnect = undefined;
    this.handling = 'none';
  }

  /**
   * The device's Current Time as read at `readAt` (before any write on this connection), with its fraction of
   * a second (Exact Time 256) when the device keeps one.
   */
  noteClockRead(deviceIso: string, utcOffsetMinutes: number, readAt: number, fractions256 = 0): void {
    const offsetMs = deviceTimeToEpoch(deviceIso, utcOffsetMinutes) + (fractions256 * 1000) / 256 - readAt;
    this.atConnect = {
      offsetMs: Math.abs(offsetMs) < this.estimator.toleranceMs ? 0 : offsetMs,
      samples: 1,
    };
  }

  /** The connect-time offset of this connection, if the clock could be read. */
  get offsetAtConnect(): OffsetEstimate | undefined {
    return this.atConnect;
  }

  /** The offset measured from live readings, if any. */
  get liveEstimate(): OffsetEstimate | undefined {
    return this.estimator.estimate();
  }

  /**
   * The time of a reading with device time `iso`: live readings in 'measured' mode first add their sample
   * (unless `sample` is false: info values such as a battery level carry no measurement time).
   */
  timeOf(
    iso: string,
    utcOffsetMinutes: number,
    receivedAt: number,
    stored: boolean,
    sample: boolean,
  ): { time: string; source: 'device' | 'device-corrected' } {
    if (stored) {
      return correctDeviceTime(iso, utcOffsetMinutes, this.atConnect ?? this.estimator.estimate());
    }
    if (this.handling === 'written') return correctDeviceTime(iso, utcOffsetMinutes, undefined);
    // Not written (yet) on this connection: the clock is the one measured at connect and by live readings.
    if (sample) this.estimator.add(deviceTimeToEpoch(iso, utcOffsetMinutes), receivedAt);
    return correctDeviceTime(iso, utcOffsetMinutes, this.atConnect ?? this.estimator.estimate());
  }
}
