import { describe, expect, it } from 'vitest';
import { HeldStamps } from '../../src/pipeline/held-stamps.js';
import type { SessionReading } from '../../src/session/device-session.js';

/** A Pi that booted believing it is 1 January 2026 10:00; NTP later steps the clock to 5 December 15:00. */
const WRONG_BOOT = Date.UTC(2026, 0, 1, 10, 0, 0);
const TRUE_BOOT = Date.UTC(2026, 11, 5, 15, 0, 0);

function reading(receivedAt: number, timeSource: SessionReading['timeSource'], time: string): SessionReading {
  return {
    deviceId: 'd1-00',
    characteristic: '2a5f',
    payload: new Uint8Array([1]),
    reading: { observations: [], time: null },
    receivedAt,
    time,
    timeSource,
    stored: false,
  };
}

describe('HeldStamps', () => {
  it('re-stamps held readings with the true time once the clock is set, by the monotonic clock', () => {
    let mono = 1_000;
    let wall = WRONG_BOOT;
    const stage = new HeldStamps({ monotonic: { monotonicNow: () => mono }, wallNow: () => wall });

    const a = reading(wall, 'gateway', new Date(wall).toISOString());
    expect(stage.accept(a)).toEqual([]);
    mono += 5_000;
    wall += 5_000;
    const b = reading(wall, 'device', '2026-12-05T14:59:30');
    expect(stage.accept(b)).toEqual([]);
    const corrected = reading(wall, 'device-corrected', new Date(wall - 2_000).toISOString());
    expect(stage.accept(corrected)).toEqual([]);
    expect(stage.holding).toBe(3);

    mono += 60_000; // a minute later NTP steps the wall clock
    wall = TRUE_BOOT + 65_000;
    const released = stage.synchronise();
    expect(released.map((r) => r.receivedAt)).toEqual([TRUE_BOOT, TRUE_BOOT + 5_000, TRUE_BOOT + 5_000]);
    expect(released[0]?.time).toBe(new Date(TRUE_BOOT).toISOString());
    expect(released[1]?.time).toBe('2026-12-05T14:59:30'); // the device's own clock is not ours to move
    expect(released[2]?.time).toBe(new Date(TRUE_BOOT + 3_000).toISOString());
    expect(stage.holding).toBe(0);

    const after = reading(wall, 'gateway', new Date(wall).toISOString());
    expect(stage.accept(after)).toEqual([after]);
  });

  it('lets the oldest through marked clockUnsynchronised past its limit, never dropping one', () => {
    const stage = new HeldStamps({
      monotonic: { monotonicNow: () => 0 },
      wallNow: () => WRONG_BOOT,
      limit: 2,
    });
    const readings = [1, 2, 3, 4].map((n) =>
      reading(WRONG_BOOT + n, 'gateway', new Date(WRONG_BOOT + n).toISOString()),
    );
    expect(stage.accept(readings[0] as SessionReading)).toEqual([]);
    expect(stage.accept(readings[1] as SessionReading)).toEqual([]);
    const overflow = [
      ...stage.accept(readings[2] as SessionReading),
      ...stage.accept(readings[3] as SessionReading),
    ];
    expect(overflow.map((r) => r.receivedAt)).toEqual([WRONG_BOOT + 1, WRONG_BOOT + 2]);
    expect(overflow.every((r) => r.reading.details?.clockUnsynchronised === true)).toBe(true);
    expect(stage.synchronise().map((r) => r.reading.details?.clockUnsynchronised)).toEqual([
      undefined,
      undefined,
    ]);
  });

  it('hands every held reading over, marked clockUnsynchronised, when the hub stops before the clock was set', () => {
    const wall = WRONG_BOOT;
    const stage = new HeldStamps({ monotonic: { monotonicNow: () => 0 }, wallNow: () => wall });
    stage.accept(reading(wall, 'gateway', new Date(wall).toISOString()));
    stage.accept(reading(wall + 1, 'gateway', new Date(wall + 1).toISOString()));
    const out = stage.releaseUnsynchronised();
    expect(out.map((r) => r.receivedAt)).toEqual([wall, wall + 1]);
    expect(out.every((r) => r.reading.details?.clockUnsynchronised === true)).toBe(true);
    expect(stage.holding).toBe(0);
    expect(stage.isSynchronised).toBe(false);
  });
});
