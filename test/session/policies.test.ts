import { describe, expect, it } from 'vitest';
import { ClockOffsetEstimator, correctDeviceTime, deviceTimeToEpoch } from '../../src/session/clock-sync.js';
import { RETRY_RULES, retryDelay } from '../../src/session/retry-policy.js';

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
