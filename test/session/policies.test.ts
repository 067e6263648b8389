import { describe, expect, it } from 'vitest';
import { loadBundledRegistry } from '../../src/drivers/default-registry.js';
import type { Driver } from '../../src/drivers/sdk/define-driver.js';
import type { Reading } from '../../src/model/observation.js';
import {
  ClockOffsetEstimator,
  correctDeviceTime,
  DeviceClock,
  deviceTimeToEpoch,
} from '../../src/session/clock-sync.js';
import { RETRY_RULES, retryDelay } from '../../src/session/retry-policy.js';
import {
  DEFAULT_REPLAY_TIMING,
  type ReplayEnd,
  replayCharacteristics,
  StoredRecordClassifier,
} from '../../src/session/stored-replay.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';

describe('retry policy by error class', () => {
  it('backs off within each class range, and never retries an authentication failure by itself', () => {
    const top = () => 0.999_999;
    expect(retryDelay(RETRY_RULES.BLE_ABORTED, 0, top)).toBeLessThan(250);
    expect(retryDelay(RETRY_RULES.BLE_DEVICE_GONE, 10, top)).toBeLessThanOrEqual(5 * 60_000);
    expect(retryDelay(RETRY_RULES.BLE_NO_SLOTS, 10, top)).toBeLessThan(15_000);
    expect(RETRY_RULES.BLE_AUTH_FAILED.action).toBe('wait-for-user');
    expect(RETRY_RULES.BLE_ADAPTER.action).toBe('recover-adapter');
  });
});

describe('clock offset', () => {
  it('reads a device local time in the gateway time zone', () => {
    expect(new Date(deviceTimeToEpoch('2026-11-28T09:00:00', 60)).toISOString()).toBe(
      '2026-11-28T08:00:00.000Z',
    );
    expect(new Date(deviceTimeToEpoch('2026-11-28T09:00:00', -300)).toISOString()).toBe(
      '2026-11-28T14:00:00.000Z',
    );
  });

  it('estimates a wrong device clock from live readings with the median, and corrects timestamps', () => {
    const estimator = new ClockOffsetEstimator();
    const received = Date.UTC(2026, 10, 28, 8, 0, 0);
    for (const delay of [0, 400, 200, 90_000, 100]) {
      // the device is 1 h 2 min ahead; one reading was delayed 90 s in a retry
      estimator.add(received + 62 * 60_000, received + delay);
    }
    const estimate = estimator.estimate();
    expect(estimate?.offsetMs).toBe(62 * 60_000 - 200);
    const corrected = correctDeviceTime('2026-11-28T09:02:00', 0, estimate);
    expect(corrected.source).toBe('device-corrected');
    expect(corrected.time).toBe('2026-11-28T08:00:00.200Z');
  });

  it('leaves a clock within tolerance alone', () => {
    const estimator = new ClockOffsetEstimator();
    estimator.add(1_000_000 + 2_000, 1_000_000);
    expect(correctDeviceTime('2026-11-28T09:00:00', 0, estimator.estimate())).toEqual({
      time: '2026-11-28T09:00:00.000Z',
      source: 'device',
    });
  });
});

describe('stored-record replay window (timing rules)', () => {
  const reading = (kind?: Reading['kind']): Reading => ({
    observations: [],
    time: null,
    ...(kind ? { kind } : {}),
  });

  function classifier(timing = DEFAULT_REPLAY_TIMING) {
    const scheduler = new VirtualScheduler(0);
    const ends: [ReplayEnd, number, number][] = [];
    const c = new StoredRecordClassifier(new Set(['2a35']), scheduler, timing, (reason, records) =>
      ends.push([reason, records, scheduler.now()]),
    );
    return { scheduler, ends, c };
  }

  it('closes after firstWithinMs when nothing came', () => {
    const { scheduler, ends, c } = classifier();
    c.openWindow();
    scheduler.advance(DEFAULT_REPLAY_TIMING.firstWithinMs - 1);
    expect(c.windowOpen).toBe(true);
    scheduler.advance(1);
    expect(ends).toEqual([['no-records', 0, DEFAULT_REPLAY_TIMING.firstWithinMs]]);
  });

  it('closes quietMs after the last record, and only values on replay characteristics count', () => {
    const { scheduler, ends, c } = classifier();
    c.openWindow();
    for (let i = 0; i < 3; i++) {
      scheduler.advance(50);
      expect(c.classify('2a35', reading(), undefined, false)).toBe(true);
    }
    expect(c.classify('2a19', reading(), undefined, false)).toBe(false); // battery: not a replay characteristic
    scheduler.advance(DEFAULT_REPLAY_TIMING.quietMs);
    expect(ends).toEqual([['quiet', 3, 150 + DEFAULT_REPLAY_TIMING.quietMs]]);
    expect(c.classify('2a35', reading(), undefined, false)).toBe(false);
  });

  it('closes at maxMs even while records keep coming', () => {
    const { scheduler, ends, c } = classifier({ firstWithinMs: 1_000, quietMs: 1_000, maxMs: 5_000 });
    c.openWindow();
    for (let t = 0; t < 7_000; t += 500) {
      c.classify('2a35', reading(), undefined, false);
      scheduler.advance(500);
    }
    expect(ends).toEqual([['timeout', 10, 5_000]]);
  });

  it('an intermediate value closes it at once; info values are never stored records', () => {
    const { ends, c } = classifier();
    c.openWindow();
    expect(c.classify('2a35', reading('info'), undefined, false)).toBe(false);
    expect(c.classify('2a36', reading('intermediate'), undefined, false)).toBe(false);
    expect(ends).toEqual([['live-measurement', 0, 0]]);
    expect(c.windowOpen).toBe(false);
  });

  it('after the window, a device time not newer than the newest is stored, unless the clock was written', () => {
    const { scheduler, c } = classifier();
    c.openWindow();
    c.classify('2a35', reading(), 1_000_000, false);
    scheduler.advance(60_000);
    expect(c.windowOpen).toBe(false);
    expect(c.classify('2a35', reading(), 999_000, false)).toBe(true);
    expect(c.classify('2a35', reading(), 1_000_000, false)).toBe(true);
    expect(c.classify('2a35', reading(), 999_000, true)).toBe(false);
    expect(c.classify('2a35', reading(), 1_001_000, false)).toBe(false);
    c.reset(); // a new connection forgets the newest time
    expect(c.classify('2a35', reading(), 999_000, false)).toBe(false);
  });

  it('replays only on indicated characteristics of drivers without RACP', async () => {
    const registry = await loadBundledRegistry();
    const of = (id: string) => [...replayCharacteristics(registry.get(id) as Driver)].sort();
    expect(of('sig/blood-pressure')).toEqual(['2a35']);
    expect(of('sig/weight-scale')).toEqual(['2a9d']);
    expect(of('sig/glucose')).toEqual([]);
    expect(of('sig/heart-rate')).toEqual([]);
  });
});

describe('device clock', () => {
  const at = Date.UTC(2026, 10, 28, 8, 0, 0);

  it('corrects stored records with the clock read at connect, live ones with it until the clock is written', () => {
    const clock = new DeviceClock();
    clock.newConnection();
    clock.noteClockRead('2026-11-28T09:00:00', 0, at, 128); // one hour and half a second ahead
    expect(clock.offsetAtConnect?.offsetMs).toBe(3_600_500);
    expect(clock.timeOf('2026-11-28T03:00:00', 0, at, true, true)).toEqual({
      time: '2026-11-28T01:59:59.500Z',
      source: 'device-corrected',
    });
    clock.handling = 'measured';
    expect(clock.timeOf('2026-11-28T09:00:10', 0, at + 10_000, false, true).source).toBe('device-corrected');
    expect(clock.liveEstimate?.samples).toBe(1);
    clock.handling = 'written';
    expect(clock.timeOf('2026-11-28T08:00:20', 0, at + 20_000, false, true)).toEqual({
      time: '2026-11-28T08:00:20.000Z',
      source: 'device',
    });
    expect(clock.liveEstimate?.samples).toBe(1); // a written clock adds no samples
  });

  it('without a clock read, stored records use the live estimate, or nothing', () => {
    const clock = new DeviceClock();
    clock.newConnection();
    expect(clock.timeOf('2026-11-28T05:00:00', 0, at, true, true).source).toBe('device');
    clock.handling = 'measured';
    clock.timeOf('2026-11-28T07:30:00', 0, at, false, true); // live: the device is 30 min slow
    expect(clock.timeOf('2026-11-28T05:00:00', 0, at, true, true)).toEqual({
      time: '2026-11-28T05:30:00.000Z',
      source: 'device-corrected',
    });
  });
});
