/**
 * IEEE 11073-10101 nomenclature used by the gateway: reference id -> context-free numeric code
 * (partition * 65536 + term code). The reference id is what the `decode` CLI and the wire format carry; the
 * numeric code is what FHIR (system urn:iso:std:iso:11073:10101) and 11073-20601 agents use.
 *
 * Sources: IEEE 11073-10101:2019 and the device specialisations 10404 (pulse oximeter), 10407 (blood
 * pressure), 10408 (thermometer), 10415 (weighing scale), 10417 (glucose meter); cross-checked against the
 * Personal Health Devices Transcoding White Paper (Bluetooth SIG, v1.6) and the HL7 FHIR Personal Health
 * Device Implementation Guide. A driver may only emit codes listed here (checked when the registry loads).
 */
export const MDC_CODES = {
  // Pulse oximetry (11073-10404)
  MDC_PULS_OXIM_SAT_O2: 150456,
  MDC_PULS_OXIM_PULS_RATE: 149530,
  MDC_PULS_OXIM_PERF_REL: 150448,
  // Blood pressure (11073-10407)
  MDC_PRESS_BLD_NONINV_SYS: 150021,
  MDC_PRESS_BLD_NONINV_DIA: 150022,
  MDC_PRESS_BLD_NONINV_MEAN: 150023,
  MDC_PRESS_CUFF: 150300, // 2::19228 (mdpnp/mdpnp data-types/x73-idl/src/main/idl/ice/device.idl)
  MDC_PULS_RATE_NON_INV: 149546,
  // Body temperature (11073-10408); the site-specific codes follow Temperature Type (GATT 2A1D).
  MDC_TEMP_BODY: 150364,
  MDC_TEMP_AXILLA: 188452, // 2::57380 (conqlima/Antidote src/specializations/thermometer.h; hl7dk/dk-core)
  MDC_TEMP_GIT: 188456, // 2::57384 (conqlima/Antidote src/specializations/thermometer.h; hl7dk/dk-core)
  MDC_TEMP_EAR: 188428, // 2::57356 (conqlima/Antidote src/specializations/thermometer.h; hl7dk/dk-core)
  MDC_TEMP_FINGER: 188432, // 2::57360 (conqlima/Antidote src/specializations/thermometer.h)
  MDC_TEMP_ORAL: 188424, // 2::57352 (conqlima/Antidote src/specializations/thermometer.h; hl7dk/dk-core)
  MDC_TEMP_RECT: 188420, // 2::57348 (conqlima/Antidote src/specializations/thermometer.h; hl7dk/dk-core)
  MDC_TEMP_TOE: 188448, // 2::57376 (conqlima/Antidote src/specializations/thermometer.h)
  MDC_TEMP_TYMP: 150392,
  // Weighing scale and body composition (11073-10415)
  MDC_MASS_BODY_ACTUAL: 188736,
  MDC_LEN_BODY_ACTUAL: 188740,
  MDC_RATIO_MASS_BODY_LEN_SQ: 188752,
  // Body composition (11073-10420, and the Bluetooth Body Composition Service fields). MDC_BODY_FAT 2::57676 as
  // in signove/antidote src/dim/nomenclature.h; MDC_BODY_WATER 2::57692 and MDC_BODY_MUSCLE 2::57700 ("muscle
  // percentage", beside MDC_MASS_BODY_MUSCLE 57704) as in the IEEE 11073-10101 table of the PHD reference
  // encoder's Mdc.java (package ca.uhn.fhir.example, "Not in 20601"). 10420 carries body water as a mass; a
  // device that reports it as a share of body weight keeps its unit ('%'), as every value keeps the device's.
  MDC_BODY_FAT: 188748, // 2::57676, % of body mass
  MDC_BODY_WATER: 188764, // 2::57692
  MDC_BODY_MUSCLE: 188772, // 2::57700, % of body mass
  // Glucose (11073-10417); the sample-type specific codes follow GATT Glucose Measurement Type-Sample Location.
  MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD: 160184,
  MDC_CONC_GLU_CAPILLARY_PLASMA: 160188,
  MDC_CONC_GLU_VENOUS_WHOLEBLOOD: 160192,
  MDC_CONC_GLU_VENOUS_PLASMA: 160196,
  MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD: 160200,
  MDC_CONC_GLU_ARTERIAL_PLASMA: 160204,
  MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD: 160364, // was 160368; 2:29292 per lestarcdog/ehealth MDC constants
  MDC_CONC_GLU_UNDETERMINED_PLASMA: 160368, // was 160372; 2:29296 per lestarcdog/ehealth MDC constants
  MDC_CONC_GLU_ISF: 160212, // was 160376; 2:29140 per Freescale NomenclatureCodes.h, lestarcdog/ehealth
  MDC_CONC_GLU_CONTROL: 160208, // was 160380; 2:29136 per Freescale NomenclatureCodes.h, lestarcdog/ehealth
  MDC_CONC_HBA1C: 160220,
  // Heart rate (ECG-derived, as the GATT Heart Rate profile reports it)
  MDC_ECG_HEART_RATE: 147842,
  MDC_ECG_TIME_PD_RR_GL: 147240,
  // Device attributes
  MDC_ATTR_VAL_BATT_CHARGE: 67996,
} as const;

export type MdcCode = keyof typeof MDC_CODES;

export function isMdcCode(code: string): code is MdcCode {
  return Object.hasOwn(MDC_CODES, code);
}
