/**
 * UCUM units (https://ucum.org/ucum) the gateway reports, each with its IEEE 11073-10101 unit code
 * (partition 4, dimensions) for receivers that want MDC units. Values stay in the unit system the device
 * chose (the `decode` output, devices/README.md); no conversion happens on the gateway except glucose, which GATT
 * carries in kg/L or mol/L and clinicians read in mg/dL or mmol/L.
 */
export const UCUM_UNITS = {
  '%': { mdc: 'MDC_DIM_PERCENT', display: '%' },
  '/min': { mdc: 'MDC_DIM_BEAT_PER_MIN', display: 'beats/min' },
  'mm[Hg]': { mdc: 'MDC_DIM_MMHG', display: 'mmHg' },
  kPa: { mdc: 'MDC_DIM_KILO_PASCAL', display: 'kPa' },
  Cel: { mdc: 'MDC_DIM_DEGC', display: '°C' },
  '[degF]': { mdc: 'MDC_DIM_FAHR', display: '°F' },
  kg: { mdc: 'MDC_DIM_KILO_G', display: 'kg' },
  '[lb_av]': { mdc: 'MDC_DIM_LB', display: 'lb' },
  m: { mdc: 'MDC_DIM_M', display: 'm' },
  '[in_i]': { mdc: 'MDC_DIM_INCH', display: 'in' },
  'kg/m2': { mdc: 'MDC_DIM_KG_PER_M_SQ', display: 'kg/m²' },
  'mg/dL': { mdc: 'MDC_DIM_MILLI_G_PER_DL', display: 'mg/dL' },
  'mmol/L': { mdc: 'MDC_DIM_MILLI_MOLE_PER_L', display: 'mmol/L' },
  s: { mdc: 'MDC_DIM_SEC', display: 's' },
} as const;

export type UcumUnit = keyof typeof UCUM_UNITS;

export function isUcumUnit(unit: string): unit is UcumUnit {
  return Object.hasOwn(UCUM_UNITS, unit);
}
