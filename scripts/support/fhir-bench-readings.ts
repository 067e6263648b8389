import { createHash } from 'node:crypto';
import type { IncomingMeasurement } from '../../src/clinic/storage/clinic-store.js';
import type { Measurement } from '../../src/model/measurement.js';
import type { Observation } from '../../src/model/observation.js';

/**
 * The spot readings `bench:fhir` exports: what a patient's hub sends from a blood-pressure cuff (Blood Pressure
 * Measurement, 2A35: systolic, diastolic, mean and the cuff's pulse rate), a scale (Weight Measurement, 2A9D)
 * and a pulse oximeter's spot check (PLX Spot-Check, 2A5E: SpO2, pulse rate, perfusion index), in turn. Each is
 * time stamped by the device in the patient's local time (+01:00, no offset, as GATT devices report it); every
 * tenth blood pressure had its clock corrected by the hub (so it also makes a coincident time stamp), every
 * fifth weight was stored on the scale before it was sent. Ids are derived from (gateway, n): stable per run.
 *
 * Observations per reading under the PHD IG mapping (docs/fhir.md): blood pressure 2 (the panel and the pulse
 * rate) + 1 coincident time stamp per corrected one, weight 1, spot check 3.
 */
const HOUR = 3_600_000;
const MINUTE = 60_000;

export type SpotKind = 'bp' | 'weight' | 'spo2';
export const SPOT_KINDS: readonly SpotKind[] = ['bp', 'weight', 'spo2'];

const DEVICE: Record<SpotKind, { deviceId: string; driver: string; characteristic: string }> = {
  bp: { deviceId: 'dev-cuff-1', driver: 'sig/blood-pressure@1.0.0', characteristic: '2a35' },
  weight: { deviceId: 'dev-scale-1', driver: 'sig/weight-scale@1.0.0', characteristic: '2a9d' },
  spo2: { deviceId: 'dev-ox-1', driver: 'sig/pulse-oximeter@1.0.0', characteristic: '2a5e' },
};

function observations(kind: SpotKind, n: number): Observation[] {
  switch (kind) {
    case 'bp':
      return [
        { code: 'MDC_PRESS_BLD_NONINV_SYS', value: 115 + (n % 30), unit: 'mm[Hg]' },
        { code: 'MDC_PRESS_BLD_NONINV_DIA', value: 70 + (n % 20), unit: 'mm[Hg]' },
        { code: 'MDC_PRESS_BLD_NONINV_MEAN', value: 85 + (n % 20), unit: 'mm[Hg]' },
        { code: 'MDC_PULS_RATE_NON_INV', value: 55 + (n % 40), unit: '/min' },
      ];
    case 'weight':
      return [{ code: 'MDC_MASS_BODY_ACTUAL', value: 60 + (n % 400) / 10, unit: 'kg' }];
    case 'spo2':
      return [
        { code: 'MDC_PULS_OXIM_SAT_O2', value: 90 + (n % 10), unit: '%' },
        { code: 'MDC_PULS_OXIM_PULS_RATE', value: 55 + (n % 40), unit: '/min' },
        { code: 'MDC_PULS_OXIM_PERF_REL', value: 1 + (n % 50) / 10, unit: '%' },
      ];
  }
}

/** Local wall-clock text at +01:00 without an offset. */
function local(instant: number): string {
  return new Date(instant + HOUR).toISOString().slice(0, 19);
}

/** The `n`-th spot reading of a gateway, `n` minutes after `start` (kinds in turn). */
export function spotReading(gatewayId: string, n: number, start: number): IncomingMeasurement {
  const kind = SPOT_KINDS[n % SPOT_KINDS.length] as SpotKind;
  const at = start + n * MINUTE;
  const corrected = kind === 'bp' && n % 30 === 0;
  const stored = kind === 'weight' && n % 15 === 1;
  const digest = createHash('sha256').update(`${gatewayId}\u0000${n}`).digest('hex');
  const measurement: Measurement = {
    id: `m1-${digest.slice(0, 32)}`,
    ...DEVICE[kind],
    time: local(at),
    timeSource: corrected ? 'device-corrected' : 'device',
    // A corrected reading: the device's clock ran 90 s behind; the hub shifted it by the skew it measured.
    deviceTime: local(corrected ? at - 90_000 : at),
    receivedAt: new Date(at + 5_000).toISOString(),
    kind: 'measurement',
    observations: observations(kind, n),
    status: [],
    details: {},
    ...(stored ? { stored: true } : {}),
  };
  return {
    measurement,
    measuredAt: at,
    receipt: {
      gatewayId,
      topic: 'obs',
      batchSeq: n + 1,
      sentAt: at + 6_000,
      signerSerial: '0a1b',
      receivedAt: at + 7_000,
    },
  };
}
