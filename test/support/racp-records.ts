import { spo2Measurement } from '../../scripts/support/measurements.js';

/** The glucose meter of the RACP crash test (test/store/racp-resume.test.ts and its child). */
export const DEVICE = 'dev-glucose';

/** Record n of the meter: a stable id (it has a device time); its sequence number is n mod 2^16. */
export function record(n: number) {
  return spo2Measurement(n, { deviceId: DEVICE, deviceTime: '2026-11-28T08:00:00', stored: true });
}
