import type { IncomingMeasurement } from '../../../src/clinic/storage/clinic-store.js';
import type { Measurement } from '../../../src/model/measurement.js';
import type { Observation } from '../../../src/model/observation.js';

export const GATEWAY = 'gw-test-1';
export const MRN = 'MRN-0042';
export const PATIENT_SYSTEM = 'urn:oid:2.999.1.2.3';
export const SYSTEM_BASE = 'https://clinic.example.org/fhir/rpm-gateway';
/** 2026-11-28T12:00:00Z; the patient's home is at +01:00 in these samples. */
export const T0 = Date.UTC(2026, 10, 28, 12, 0, 0);
const HOUR = 3_600_000;

let counter = 0;

interface Sample {
  readonly characteristic: string;
  readonly observations: readonly Observation[];
  readonly at?: number;
  readonly timeSource?: Measurement['timeSource'];
  /** Device time minus true time, for a device-corrected reading. */
  readonly skewMs?: number;
  readonly kind?: Measurement['kind'];
  readonly stored?: true;
  readonly deviceId?: string;
  readonly gatewayId?: string;
  readonly driver?: string;
}

/** Local wall-clock text at +01:00 (no offset), as a GATT device reports it. */
function local(instant: number): string {
  return new Date(instant + HOUR).toISOString().slice(0, 19);
}

export function sample(s: Sample): IncomingMeasurement {
  counter++;
  const at = s.at ?? T0;
  const timeSource = s.timeSource ?? 'device';
  const deviceTime = timeSource === 'gateway' ? null : local(at + (s.skewMs ?? 0));
  const measurement: Measurement = {
    id: `m1-${counter.toString(16).padStart(32, '0')}`,
    deviceId: s.deviceId ?? `dev-${s.characteristic}`,
    driver: s.driver ?? 'sig-test@1.0.0',
    characteristic: s.characteristic,
    time: timeSource === 'gateway' ? new Date(at).toISOString() : local(at),
    timeSource,
    deviceTime,
    receivedAt: new Date(at + 2_000).toISOString(),
    kind: s.kind ?? 'measurement',
    observations: s.observations,
    status: [],
    details: {},
    ...(s.stored === undefined ? {} : { stored: s.stored }),
  };
  return {
    measurement,
    measuredAt: at,
    receipt: {
      gatewayId: s.gatewayId ?? GATEWAY,
      topic: 'obs',
      batchSeq: counter,
      sentAt: at + 3_000,
      signerSerial: '0a1b',
      receivedAt: at + 4_000,
    },
  };
}

export const spotCheck = (at?: number) =>
  sample({
    characteristic: '2a5e',
    at,
    observations: [
      { code: 'MDC_PULS_OXIM_SAT_O2', value: 97, unit: '%' },
      { code: 'MDC_PULS_OXIM_PULS_RATE', value: 64, unit: '/min' },
      { code: 'MDC_PULS_OXIM_PERF_REL', value: 3.1, unit: '%' },
    ],
  });

export const continuous = (at: number) =>
  sample({
    characteristic: '2a5f',
    at,
    timeSource: 'gateway',
    observations: [
      { code: 'MDC_PULS_OXIM_SAT_O2', value: 96, unit: '%', qualifier: 'fast' },
      { code: 'MDC_PULS_OXIM_PULS_RATE', value: 70, unit: '/min', qualifier: 'fast' },
      { code: 'MDC_PULS_OXIM_SAT_O2', value: 97, unit: '%', qualifier: 'slow' },
    ],
  });

export const bloodPressure = (opts: { at?: number; skewMs?: number; stored?: true } = {}) =>
  sample({
    characteristic: '2a35',
    at: opts.at,
    ...(opts.skewMs === undefined ? {} : { timeSource: 'device-corrected' as const, skewMs: opts.skewMs }),
    ...(opts.stored === undefined ? {} : { stored: opts.stored }),
    observations: [
      { code: 'MDC_PRESS_BLD_NONINV_SYS', value: 128, unit: 'mm[Hg]' },
      { code: 'MDC_PRESS_BLD_NONINV_DIA', value: 82, unit: 'mm[Hg]' },
      { code: 'MDC_PRESS_BLD_NONINV_MEAN', value: 97, unit: 'mm[Hg]' },
      { code: 'MDC_PULS_RATE_NON_INV', value: 66, unit: '/min' },
    ],
  });

export const temperature = (at?: number) =>
  sample({ characteristic: '2a1c', at, observations: [{ code: 'MDC_TEMP_ORAL', value: 37.2, unit: 'Cel' }] });

export const weight = (at?: number) =>
  sample({
    characteristic: '2a9d',
    at,
    observations: [
      { code: 'MDC_MASS_BODY_ACTUAL', value: 81.4, unit: 'kg' },
      { code: 'MDC_RATIO_MASS_BODY_LEN_SQ', value: 26.6, unit: 'kg/m2' },
      { code: 'MDC_LEN_BODY_ACTUAL', value: 1.75, unit: 'm' },
    ],
  });

export const glucose = (at?: number) =>
  sample({
    characteristic: '2a18',
    at,
    stored: true,
    observations: [{ code: 'MDC_CONC_GLU_CAPILLARY_PLASMA', value: 104, unit: 'mg/dL' }],
  });

export const invalidTemperature = (at?: number) =>
  sample({
    characteristic: '2a1c',
    at,
    observations: [{ code: 'MDC_TEMP_BODY', value: null, unit: 'Cel', invalid: 'nan' }],
  });

export const heartRate = (at: number) =>
  sample({
    characteristic: '2a37',
    at,
    timeSource: 'gateway',
    observations: [
      { code: 'MDC_ECG_HEART_RATE', value: 72, unit: '/min' },
      { code: 'MDC_ECG_TIME_PD_RR_GL', value: 0.83, unit: 's', qualifier: 'rr-1' },
    ],
  });

export const battery = (at?: number) =>
  sample({
    characteristic: '2a19',
    at,
    kind: 'info',
    observations: [{ code: 'MDC_ATTR_VAL_BATT_CHARGE', value: 80, unit: '%' }],
  });

export const cuffInflating = (at?: number) =>
  sample({
    characteristic: '2a36',
    at,
    kind: 'intermediate',
    observations: [{ code: 'MDC_PRESS_CUFF', value: 120, unit: 'mm[Hg]' }],
  });
