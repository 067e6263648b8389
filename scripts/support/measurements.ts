import type { Measurement } from '../../src/model/measurement.js';

/** A realistic SpO2 Measurement for store and uplink tests; `n` makes ids and values distinct. */
export function spo2Measurement(n: number, overrides: Partial<Measurement> = {}): Measurement {
  const at = new Date(Date.UTC(2026, 10, 28, 8, 0, 0) + n * 1000).toISOString();
  return {
    id: `m1-${n.toString(16).padStart(32, '0')}`,
    deviceId: 'dev-ox-1',
    driver: 'sig/pulse-oximeter@1.0.0',
    characteristic: '2a5f',
    time: at,
    timeSource: 'gateway',
    deviceTime: null,
    receivedAt: at,
    kind: 'measurement',
    observations: [
      { code: 'MDC_PULS_OXIM_SAT_O2', value: 90 + (n % 10), unit: '%' },
      { code: 'MDC_PULS_OXIM_PULS_RATE', value: 60 + (n % 40), unit: '/min' },
    ],
    status: [],
    details: {},
    ...overrides,
  };
}
