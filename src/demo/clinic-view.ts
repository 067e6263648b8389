import type { Gap } from '../model/gap.js';
import type { Measurement } from '../model/measurement.js';
import type { Observation } from '../model/observation.js';
import type { GatewayStatus } from '../wire/index.js';

/**
 * What the clinic side of the demo prints: one line per reading the clinic database has committed (the demo
 * feeds it from ClinicStore.subscribe), and a running count: the terminal's account of what the clinic has,
 * beside the dashboard the demo serves (dashboard.ts), and what the demo's tests check the database against. It
 * writes to the terminal only (reading values are PHI: nothing here goes to a file).
 */
export interface ClinicViewCounts {
  readings: number;
  alerts: number;
  duplicates: number;
  gaps: number;
  rejected: number;
}

/** Short names a person reads at a glance; the wire format itself carries the IEEE 11073 reference ids. */
const SHORT_NAMES: Readonly<Record<string, string>> = {
  MDC_PULS_OXIM_SAT_O2: 'SpO2',
  MDC_PULS_OXIM_PULS_RATE: 'pulse',
  MDC_PULS_OXIM_PERF_REL: 'perfusion',
  MDC_PRESS_BLD_NONINV_SYS: 'sys',
  MDC_PRESS_BLD_NONINV_DIA: 'dia',
  MDC_PRESS_BLD_NONINV_MEAN: 'mean',
  MDC_PULS_RATE_NON_INV: 'pulse',
  MDC_TEMP_BODY: 'temp',
  MDC_MASS_BODY_ACTUAL: 'weight',
  MDC_LEN_BODY_ACTUAL: 'height',
  MDC_RATIO_MASS_BODY_LEN_SQ: 'BMI',
  MDC_ECG_HEART_RATE: 'heart rate',
  MDC_PRESS_CUFF: 'cuff pressure',
  MDC_TEMP_EAR: 'temp (ear)',
  MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD: 'glucose',
  MDC_CONC_GLU_CAPILLARY_PLASMA: 'glucose',
};

export class ClinicView {
  readonly counts: ClinicViewCounts = { readings: 0, alerts: 0, duplicates: 0, gaps: 0, rejected: 0 };

  constructor(
    private readonly write: (line: string) => void,
    private readonly labelOf: (deviceId: string) => string = (id) => id,
  ) {}

  measurement(gatewayId: string, measurement: Measurement, lane: 'obs' | 'alert'): void {
    this.counts.readings++;
    if (lane === 'alert') this.counts.alerts++;
    const values =
      measurement.observations.length > 0
        ? measurement.observations.map(describe).join('  ')
        : contextOf(measurement);
    const when = measurement.time.replace('T', ' ').replace(/\.\d+Z$|Z$/, '');
    const tags = [
      lane === 'alert' ? 'ALERT' : '',
      measurement.stored ? 'stored' : '',
      measurement.kind === 'intermediate' ? 'intermediate' : '',
      measurement.timeSource === 'gateway' ? '' : 'device time',
    ]
      .filter(Boolean)
      .join(', ');
    this.write(
      `clinic <- ${gatewayId}  ${this.labelOf(measurement.deviceId).padEnd(16)} ${values}  at ${when}${tags ? `  [${tags}]` : ''}`,
    );
  }

  gap(gatewayId: string, gap: Gap): void {
    this.counts.gaps++;
    this.write(`clinic <- ${gatewayId}  gap: ${gap.count} reading(s) not delivered (${gap.reason})`);
  }

  status(status: GatewayStatus): void {
    const b = status.backlog;
    this.write(
      `clinic <- ${status.gatewayId}  status: ${status.state} (waiting at the hub: alert ${b.alert}, live ${b.live}, backlog ${b.backlog})`,
    );
  }

  rejected(reason: string): void {
    this.counts.rejected++;
    this.write(`clinic    rejected a message: ${reason}`);
  }

  summary(): string {
    const c = this.counts;
    return `clinic received ${c.readings} reading(s) (${c.alerts} on the alert lane), ${c.gaps} gap record(s), dropped ${c.duplicates} duplicate(s), rejected ${c.rejected} message(s)`;
  }
}

/** A record without observations (a glucose record's context): what it says, by its best-known detail. */
function contextOf(measurement: Measurement): string {
  const meal = measurement.details['meal'];
  return typeof meal === 'string' ? `context: meal ${meal}` : `${measurement.kind} (no values)`;
}

function describe(observation: Observation): string {
  const name = SHORT_NAMES[observation.code] ?? observation.code;
  const value =
    observation.value === null ? `-- (${observation.invalid ?? 'no value'})` : `${observation.value}`;
  return `${name} ${value} ${observation.unit}`;
}
