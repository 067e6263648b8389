import { MDC_CODES, type MdcCode } from '../../model/codes.js';
import type { UcumUnit } from '../../model/units.js';

/**
 * The fixed FHIR vocabulary of the export: code systems, profile URLs, and the table that says how each MDC
 * code the hub can send becomes an Observation. Sources:
 * - HL7 FHIR Personal Health Device IG STU2 (hl7.org/fhir/uv/phd, source github.com/HL7/phd, input/fsh):
 *   profiles PhdNumericObservation, PhdCompoundNumericObservation, PhdCoincidentTimeStampObservation,
 *   PhdDevice, PhgDevice; code system PhdObservationCategories (#phd).
 * - FHIR R4 Vital Signs (hl7.org/fhir/R4/observation-vitalsigns.html): the LOINC code, the category
 *   `vital-signs` and the UCUM units each vital-sign profile requires.
 * - IEEE 11073-10101 numeric codes: src/model/codes.ts (with its sources).
 */

export const MDC_SYSTEM = 'urn:iso:std:iso:11073:10101';
export const LOINC_SYSTEM = 'http://loinc.org';
export const UCUM_SYSTEM = 'http://unitsofmeasure.org';
export const PHD_CATEGORY_SYSTEM = 'http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories';
export const OBSERVATION_CATEGORY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/observation-category';
export const DATA_ABSENT_REASON_SYSTEM = 'http://terminology.hl7.org/CodeSystem/data-absent-reason';

/** PHD IG STU2, PhdBaseObservation: the conditional-create identifier's fixed system. */
export const PHD_OBSERVATION_IDENTIFIER_SYSTEM =
  'http://hl7.org/fhir/uv/phd/StructureDefinition/PhdBaseObservation';
/** FHIR core extension the PHD IG requires (1..1) on every PHD observation: the PHG that uploaded it. */
export const GATEWAY_DEVICE_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice';
/** PHD IG STU2 extension from a measurement to its coincident-time-stamp observation. */
export const COINCIDENT_TIME_STAMP_EXTENSION =
  'http://hl7.org/fhir/uv/phd/StructureDefinition/CoincidentTimeStampReference';

const PHD = 'http://hl7.org/fhir/uv/phd/StructureDefinition/';
export const PROFILES = {
  numeric: `${PHD}PhdNumericObservation`,
  compoundNumeric: `${PHD}PhdCompoundNumericObservation`,
  coincidentTimeStamp: `${PHD}PhdCoincidentTimeStampObservation`,
  phdDevice: `${PHD}PhdDevice`,
  phgDevice: `${PHD}PhgDevice`,
} as const;

/** R4 vital-sign profiles (hl7.org/fhir/R4/observation-vitalsigns.html, "Profiles"). */
const VITALS = 'http://hl7.org/fhir/StructureDefinition/';
export type VitalSign = 'oxygensat' | 'heartrate' | 'bp' | 'bodytemp' | 'bodyweight' | 'bodyheight' | 'bmi';

/** Units each R4 vital-sign profile allows (its valueQuantity.code binding). */
const VITAL_UNITS: Record<VitalSign, readonly UcumUnit[]> = {
  oxygensat: ['%'],
  heartrate: ['/min'],
  bp: ['mm[Hg]'],
  bodytemp: ['Cel', '[degF]'],
  bodyweight: ['kg', '[lb_av]'],
  bodyheight: ['[in_i]'], // R4 allows cm and [in_i]; the hub reports metres, which the profile does not take
  bmi: ['kg/m2'],
};

export function vitalSignProfile(vital: VitalSign): string {
  return `${VITALS}${vital}`;
}

/** True when a reading in `unit` can claim the R4 vital-sign profile (otherwise it is a PHD observation only). */
export function vitalSignAccepts(vital: VitalSign, unit: UcumUnit): boolean {
  return VITAL_UNITS[vital].includes(unit);
}

export interface LoincCode {
  readonly code: string;
  readonly display: string;
}

/** How one MDC code of a numeric observation is exported. */
export interface NumericMapping {
  readonly kind: 'numeric';
  readonly loinc?: readonly LoincCode[];
  readonly vital?: VitalSign;
}

/** Systolic, diastolic and mean go into one PhdCompoundNumericObservation (the BP panel). */
export interface BloodPressureComponentMapping {
  readonly kind: 'bp-component';
  readonly loinc?: LoincCode;
}

/** Not exported: why, for the docs and the skip reason. */
export interface NotExported {
  readonly kind: 'not-exported';
  readonly why: string;
}

export type CodeMapping = NumericMapping | BloodPressureComponentMapping | NotExported;

const HEART_RATE: NumericMapping = {
  kind: 'numeric',
  loinc: [{ code: '8867-4', display: 'Heart rate' }],
  vital: 'heartrate',
};
const BODY_TEMPERATURE: NumericMapping = {
  kind: 'numeric',
  loinc: [{ code: '8310-5', display: 'Body temperature' }],
  vital: 'bodytemp',
};
const GLUCOSE: NumericMapping = { kind: 'numeric' }; // not an R4 vital sign: MDC only (PHD IG)

/**
 * Every code a driver may emit (src/model/codes.ts) has a row: the compiler checks the table is complete, so a
 * new code cannot be exported by accident with a guessed mapping.
 */
export const CODE_MAPPINGS: Record<MdcCode, CodeMapping> = {
  MDC_PULS_OXIM_SAT_O2: {
    kind: 'numeric',
    // R4 oxygensat requires 2708-6; 59408-5 says "by pulse oximetry" (the US Core pulse-oximetry code).
    loinc: [
      { code: '2708-6', display: 'Oxygen saturation in Arterial blood' },
      { code: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry' },
    ],
    vital: 'oxygensat',
  },
  MDC_PULS_OXIM_PULS_RATE: HEART_RATE,
  MDC_PULS_OXIM_PERF_REL: { kind: 'numeric' },
  MDC_PRESS_BLD_NONINV_SYS: {
    kind: 'bp-component',
    loinc: { code: '8480-6', display: 'Systolic blood pressure' },
  },
  MDC_PRESS_BLD_NONINV_DIA: {
    kind: 'bp-component',
    loinc: { code: '8462-4', display: 'Diastolic blood pressure' },
  },
  MDC_PRESS_BLD_NONINV_MEAN: { kind: 'bp-component' },
  MDC_PRESS_CUFF: { kind: 'not-exported', why: 'cuff pressure while inflating is not a result' },
  MDC_PULS_RATE_NON_INV: HEART_RATE,
  MDC_TEMP_BODY: BODY_TEMPERATURE,
  MDC_TEMP_AXILLA: BODY_TEMPERATURE,
  MDC_TEMP_GIT: BODY_TEMPERATURE,
  MDC_TEMP_EAR: BODY_TEMPERATURE,
  MDC_TEMP_FINGER: BODY_TEMPERATURE,
  MDC_TEMP_ORAL: BODY_TEMPERATURE,
  MDC_TEMP_RECT: BODY_TEMPERATURE,
  MDC_TEMP_TOE: BODY_TEMPERATURE,
  MDC_TEMP_TYMP: BODY_TEMPERATURE,
  MDC_MASS_BODY_ACTUAL: {
    kind: 'numeric',
    loinc: [{ code: '29463-7', display: 'Body weight' }],
    vital: 'bodyweight',
  },
  MDC_LEN_BODY_ACTUAL: {
    kind: 'numeric',
    loinc: [{ code: '8302-2', display: 'Body height' }],
    vital: 'bodyheight',
  },
  MDC_RATIO_MASS_BODY_LEN_SQ: {
    kind: 'numeric',
    loinc: [{ code: '39156-5', display: 'Body mass index (BMI) [Ratio]' }],
    vital: 'bmi',
  },
  // Body composition: not R4 vital signs; MDC-coded only, as the PHD IG codes what has no LOINC mapping here.
  MDC_BODY_FAT: { kind: 'numeric' },
  MDC_BODY_WATER: { kind: 'numeric' },
  MDC_BODY_MUSCLE: { kind: 'numeric' },
  MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD: GLUCOSE,
  MDC_CONC_GLU_CAPILLARY_PLASMA: GLUCOSE,
  MDC_CONC_GLU_VENOUS_WHOLEBLOOD: GLUCOSE,
  MDC_CONC_GLU_VENOUS_PLASMA: GLUCOSE,
  MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD: GLUCOSE,
  MDC_CONC_GLU_ARTERIAL_PLASMA: GLUCOSE,
  MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD: GLUCOSE,
  MDC_CONC_GLU_UNDETERMINED_PLASMA: GLUCOSE,
  MDC_CONC_GLU_ISF: GLUCOSE,
  MDC_CONC_GLU_CONTROL: {
    kind: 'not-exported',
    why: 'a control-solution test checks the meter, it is not the patient (GATT Glucose, Type-Sample Location)',
  },
  MDC_CONC_HBA1C: { kind: 'numeric' },
  MDC_ECG_HEART_RATE: HEART_RATE,
  MDC_ECG_TIME_PD_RR_GL: { kind: 'not-exported', why: 'beat-to-beat RR intervals are not charted in an EHR' },
  MDC_ATTR_VAL_BATT_CHARGE: {
    kind: 'not-exported',
    why: 'battery level describes the device, not the patient',
  },
};

/** The blood-pressure panel (PhdCompoundNumericObservation.code): MDC_PRESS_BLD_NONINV and LOINC 85354-9. */
export const BP_PANEL = {
  mdc: 150020,
  display: 'MDC_PRESS_BLD_NONINV',
  loinc: { code: '85354-9', display: 'Blood pressure panel with all children optional' },
} as const;

/** MDC_ATTR_TIME_ABS: the code of a coincident time stamp of an absolute (wall-clock) device clock. */
export const MDC_ATTR_TIME_ABS = { code: 67975, display: 'MDC_ATTR_TIME_ABS' } as const;

/**
 * MDC_ATTR_SUPPLEMENTAL_TYPES (PhdBaseObservation, supplementalTypesComponent) and the modalities the PLX
 * continuous measurement's fast/slow averages map to (IEEE 11073-10101 partition 2 terms 19508/19512/19516,
 * e.g. signove/antidote's nomenclature table; the PHD IG's own example uses 150588 MDC_MODALITY_SPOT).
 */
export const MDC_ATTR_SUPPLEMENTAL_TYPES = { code: 68193, display: 'MDC_ATTR_SUPPLEMENTAL_TYPES' } as const;
export const MODALITY_BY_QUALIFIER: Readonly<Record<string, { code: number; display: string }>> = {
  fast: { code: 150580, display: 'MDC_MODALITY_FAST' },
  slow: { code: 150584, display: 'MDC_MODALITY_SLOW' },
};

/** PhdDevice.type: MDC_MOC_VMS_MDS_SIMP (a single-purpose personal health device). */
export const PHD_DEVICE_TYPE = { code: 65573, display: 'MDC_MOC_VMS_MDS_SIMP' } as const;
/** PhgDevice.type: MDC_MOC_VMS_MDS_AHD (the gateway). */
export const PHG_DEVICE_TYPE = { code: 531981, display: 'MDC_MOC_VMS_MDS_AHD' } as const;

/** PhdDevice.specialization: the 11073-104xx specialisation the device's readings follow, by code. */
export const SPECIALIZATIONS = {
  pulseOximeter: { code: 528388, display: 'MDC_DEV_SPEC_PROFILE_PULS_OXIM' },
  bloodPressure: { code: 528391, display: 'MDC_DEV_SPEC_PROFILE_BPM' },
  thermometer: { code: 528392, display: 'MDC_DEV_SPEC_PROFILE_TEMP' },
  scale: { code: 528399, display: 'MDC_DEV_SPEC_PROFILE_SCALE' },
  glucose: { code: 528401, display: 'MDC_DEV_SPEC_PROFILE_GLUCOSE' },
} as const;

export type Specialization = (typeof SPECIALIZATIONS)[keyof typeof SPECIALIZATIONS];

/** The specialization a code belongs to (heart-rate straps have none in 104xx: they get none). */
export function specializationOf(code: MdcCode): Specialization | undefined {
  if (code.startsWith('MDC_PULS_OXIM_')) return SPECIALIZATIONS.pulseOximeter;
  if (code.startsWith('MDC_PRESS_') || code === 'MDC_PULS_RATE_NON_INV') return SPECIALIZATIONS.bloodPressure;
  if (code.startsWith('MDC_TEMP_')) return SPECIALIZATIONS.thermometer;
  if (
    code === 'MDC_MASS_BODY_ACTUAL' ||
    code === 'MDC_LEN_BODY_ACTUAL' ||
    code === 'MDC_RATIO_MASS_BODY_LEN_SQ'
  ) {
    return SPECIALIZATIONS.scale;
  }
  if (code.startsWith('MDC_CONC_')) return SPECIALIZATIONS.glucose;
  return undefined;
}

export function mdcNumeric(code: MdcCode): number {
  return MDC_CODES[code];
}
