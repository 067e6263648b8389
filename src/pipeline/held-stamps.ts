import type { SessionReading } from '../session/device-session.js';

/**
 * Holds readings whose times came from the gateway's wall clock until that clock is known to be set (see
 * src/runtime/time-sync.ts), then re-stamps them. A Raspberry Pi boots with a wrong clock and NTP steps it
 * later; the monotonic clock does not jump, so the true receipt time of a held reading is
 * `wall at sync - (monotonic at sync - monotonic at receipt)`.
 *
 * Which times move: `receivedAt` always; `time` when it came from the gateway (`gateway`) or was corrected by
 * an offset measured against the gateway's clock (`device-corrected`). A device's own clock as sent
 * (`device`) is not the gateway's to change. (Sessions do not write Current Time into a device while the
 * gateway's clock is unset, so a device clock is never set from a wrong one.)
 *
 * Held readings live in memory. Past `limit` (NTP unreachable for a long time), the oldest are let through
 * with `details.clockUnsynchronised: true`, so the clinic can tell that their gateway times are not to be
 * trusted, rather than holding without bound or dropping them.
 */
export interface MonotonicClock {
  /** Milliseconds from an arbitrary origin that never jumps (performance.now()). */
  monotonicNow(): number;
}

interface Held {
  readonly reading: SessionReading;
  readonly monotonicAt: number;
}

export class HeldStamps {
  private synchronised = false;
  private readonly held: Held[] = [];

  constructor(
    private readonly options: {
      readonly monotonic: MonotonicClock;
      readonly wallNow: () => number;
      readonly limit?: number;
    },
  ) {}

  get holding(): number {
    return this.held.length;
  }

  get isSynchronised(): boolean {
    return this.synchronised;
  }

  /** A new reading: the readings to pass on now (none while held, the overflow past the limit). */
  accept(reading: SessionReading): SessionReading[] {
    // Every reading waits, also one whose time is the device's own: its receipt time (provenance, the lane
    // rule's age) is the gateway's.
    if (this.synchronised) return [reading];
    this.held.push({ reading, monotonicAt: this.options.monotonic.monotonicNow() });
    const limit = this.options.limit ?? 10_000;
    if (this.held.length <= limit) return [];
    return this.held.splice(0, this.held.length - limit).map(({ reading: r }) => markUnsynchronised(r));
  }

  /**
   * The hub is stopping before the clock was ever set: every held reading, marked `clockUnsynchronised` as the
   * overflow is, so it is stored (and reaches the clinic flagged) rather than lost with the process.
   */
  releaseUnsynchronised(): SessionReading[] {
    return this.held.splice(0).map(({ reading }) => markUnsynchronised(reading));
  }

  /** The clock is set: every held reading, re-stamped, in the order they arrived. */
  synchronise(): SessionReading[] {
    this.synchronised = true;
    const wallNow = this.options.wallNow();
    const monotonicNow = this.options.monotonic.monotonicNow();
    return this.held.splice(0).map(({ reading, monotonicAt }) => {
      const trueReceipt = wallNow - (monotonicNow - monotonicAt);
      return restamp(reading, trueReceipt - reading.receivedAt);
    });
  }
}

export const performanceClock: MonotonicClock = { monotonicNow: () => performance.now() };

function restamp(reading: SessionReading, shiftMs: number): SessionReading {
  const shifted = reading.timeSource === 'device' ? reading.time : shiftIso(reading.time, shiftMs);
  return { ...reading, receivedAt: reading.receivedAt + shiftMs, time: shifted };
}

function shiftIso(iso: string, shiftMs: number): string {
  const epoch = Date.parse(iso);
  return Number.isNaN(epoch) ? iso : new Date(epoch + shiftMs).toISOString();
}

function markUnsynchronised(reading: SessionReading): SessionReading {
  return {
    ...reading,
    reading: {
      ...reading.reading,
      details: { ...(reading.reading.details ?? {}), clockUnsynchronised: true },
    },
  };
}
