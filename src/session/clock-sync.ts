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
