import type { MdcCode } from '../model/codes.js';
import type { Observation } from '../model/observation.js';
import { UCUM_UNITS } from '../model/units.js';
import type { SessionState } from '../session/session-states.js';

/**
 * Plain words for a patient: what a device is, what it measured, and what it is doing now. The names follow
 * the words patient leaflets use (e.g. NHS "Blood pressure test", "Pulse oximeters"), not the MDC reference ids.
 */
const PROFILE_NAMES: Readonly<Record<string, string>> = {
  'pulse-oximeter': 'Pulse oximeter',
  'blood-pressure': 'Blood pressure monitor',
  thermometer: 'Thermometer',
  'weight-scale': 'Scale',
  'glucose-meter': 'Blood sugar meter',
  'heart-rate': 'Heart rate monitor',
};

export function profileName(profile: string): string {
  return PROFILE_NAMES[profile] ?? 'Device';
}

/** Every code the gateway knows has a name (a new code fails to compile until it gets one). */
const OBSERVATION_NAMES: Readonly<Record<MdcCode, string>> = {
  MDC_PULS_OXIM_SAT_O2: 'Oxygen level (SpO2)',
  MDC_PULS_OXIM_PULS_RATE: 'Pulse',
  MDC_PULS_OXIM_PERF_REL: 'Perfusion index',
  MDC_PRESS_BLD_NONINV_SYS: 'Blood pressure, upper number (systolic)',
  MDC_PRESS_BLD_NONINV_DIA: 'Blood pressure, lower number (diastolic)',
  MDC_PRESS_BLD_NONINV_MEAN: 'Blood pressure, average',
  MDC_PRESS_CUFF: 'Cuff pressure',
  MDC_PULS_RATE_NON_INV: 'Pulse',
  MDC_TEMP_BODY: 'Temperature',
  MDC_TEMP_AXILLA: 'Temperature (armpit)',
  MDC_TEMP_GIT: 'Temperature (core)',
  MDC_TEMP_EAR: 'Temperature (ear)',
  MDC_TEMP_FINGER: 'Temperature (finger)',
  MDC_TEMP_ORAL: 'Temperature (mouth)',
  MDC_TEMP_RECT: 'Temperature (rectal)',
  MDC_TEMP_TOE: 'Temperature (toe)',
  MDC_TEMP_TYMP: 'Temperature (ear drum)',
  MDC_MASS_BODY_ACTUAL: 'Weight',
  MDC_LEN_BODY_ACTUAL: 'Height',
  MDC_RATIO_MASS_BODY_LEN_SQ: 'Body mass index (BMI)',
  MDC_BODY_FAT: 'Body fat',
  MDC_BODY_WATER: 'Body water',
  MDC_BODY_MUSCLE: 'Muscle',
  MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD: 'Blood sugar (finger prick)',
  MDC_CONC_GLU_CAPILLARY_PLASMA: 'Blood sugar (finger prick)',
  MDC_CONC_GLU_VENOUS_WHOLEBLOOD: 'Blood sugar (vein)',
  MDC_CONC_GLU_VENOUS_PLASMA: 'Blood sugar (vein)',
  MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD: 'Blood sugar (artery)',
  MDC_CONC_GLU_ARTERIAL_PLASMA: 'Blood sugar (artery)',
  MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD: 'Blood sugar',
  MDC_CONC_GLU_UNDETERMINED_PLASMA: 'Blood sugar',
  MDC_CONC_GLU_ISF: 'Blood sugar (sensor)',
  MDC_CONC_GLU_CONTROL: 'Control solution test',
  MDC_CONC_HBA1C: 'HbA1c',
  MDC_ECG_HEART_RATE: 'Heart rate',
  MDC_ECG_TIME_PD_RR_GL: 'Time between beats',
  MDC_ATTR_VAL_BATT_CHARGE: 'Battery',
};

export function observationName(code: MdcCode): string {
  return OBSERVATION_NAMES[code] ?? code;
}

/** "97 %", "120 mmHg", "no value" for a reading the device marked as having none (11073-20601 NaN, NRes...). */
export function observationValue(o: Observation): string {
  if (o.value === null) return 'no value';
  const unit = UCUM_UNITS[o.unit]?.display ?? o.unit;
  return `${o.value} ${unit}`;
}

/** What a device is doing, for someone who does not know what a GATT session is. */
export function stateWords(state: SessionState | null): { readonly text: string; readonly tone: Tone } {
  switch (state) {
    case 'streaming':
      return { text: 'Connected', tone: 'good' };
    case 'connecting':
    case 'refreshing-services':
    case 'bonding':
    case 'subscribing':
    case 'syncing-time':
      return { text: 'Connecting', tone: 'neutral' };
    case 'fetching-stored':
      return { text: 'Collecting saved readings', tone: 'neutral' };
    case 'idle':
    case 'lost':
    case 'backoff':
    case 'discovered':
      return {
        text: 'Not connected: switched off, asleep or out of reach. The hub connects again by itself.',
        tone: 'neutral',
      };
    case 'needs-pairing':
      return {
        text: 'Needs to be paired again. Please tell your care team.',
        tone: 'warn',
      };
    case 'stopped':
    case null:
      return { text: 'Not in use by the hub right now', tone: 'neutral' };
  }
}

export type Tone = 'good' | 'neutral' | 'warn';

/** "just now", "5 minutes ago", "3 hours ago", "2 days ago"; "in ..." for a time ahead. */
export function relative(ms: number, now: number): string {
  const delta = now - ms;
  const ahead = delta < 0;
  const s = Math.abs(delta) / 1000;
  const say = (n: number, unit: string) => {
    const whole = Math.floor(n);
    const words = `${whole} ${unit}${whole === 1 ? '' : 's'}`;
    return ahead ? `in ${words}` : `${words} ago`;
  };
  if (s < 60) return ahead ? 'in under a minute' : 'just now';
  if (s < 3600) return say(s / 60, 'minute');
  if (s < 86_400) return say(s / 3600, 'hour');
  return say(s / 86_400, 'day');
}

/** A duration as a person says it: "45 seconds", "5 minutes", "3 hours", "2 days". */
export function duration(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  const say = (n: number, unit: string) => `${Math.floor(n)} ${unit}${Math.floor(n) === 1 ? '' : 's'}`;
  if (s < 60) return say(s, 'second');
  if (s < 3600) return say(s / 60, 'minute');
  if (s < 86_400) return say(s / 3600, 'hour');
  return say(s / 86_400, 'day');
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
