import { createHash } from 'node:crypto';
import type {
  CodeableConcept,
  Coding,
  Device,
  Extension,
  Identifier,
  Observation,
  ObservationComponent,
  Quantity,
  Reference,
} from 'fhir/r4.js';
import type { MdcCode } from '../../model/codes.js';
import type { Observation as HubObservation, InvalidReason } from '../../model/observation.js';
import { isUcumUnit, UCUM_UNITS } from '../../model/units.js';
import type { StoredMeasurement } from '../storage/clinic-store.js';
import { formatInstant, formatWallClock, offsetOf, parseWallClock, phdTimestampPart } from './time.js';
import {
  BP_PANEL,
  CODE_MAPPINGS,
  COINCIDENT_TIME_STAMP_EXTENSION,
  type CodeMapping,
  DATA_ABSENT_REASON_SYSTEM,
  GATEWAY_DEVICE_EXTENSION,
  LOINC_SYSTEM,
  type LoincCode,
  MDC_ATTR_SUPPLEMENTAL_TYPES,
  MDC_ATTR_TIME_ABS,
  MDC_SYSTEM,
  MODALITY_BY_QUALIFIER,
  mdcNumeric,
  OBSERVATION_CATEGORY_SYSTEM,
  PHD_CATEGORY_SYSTEM,
  PHD_DEVICE_TYPE,
  PHD_OBSERVATION_IDENTIFIER_SYSTEM,
  PHG_DEVICE_TYPE,
  PROFILES,
  type Specialization,
  specializationOf,
  UCUM_SYSTEM,
  type VitalSign,
  vitalSignAccepts,
  vitalSignProfile,
} from './vocabulary.js';

/**
 * Pure mapping of one stored measurement to FHIR R4 resources per the HL7 Personal Health Device IG STU2
 * (hl7.org/fhir/uv/phd). No I/O, no clock: the same input gives the same resources, byte for byte, which is
 * what makes a replayed Bundle a no-op at the server (conditional create on the IG's identifier).
 */

export interface MappingOptions {
  /** The identifier system of the clinic's medical record numbers (Patient.identifier.system). */
  readonly patientIdentifierSystem: string;
  /**
   * A URI the clinic owns, under which this exporter names its own identifier and tag systems:
   * `<base>/gateway-id`, `<base>/device-id`, `<base>/measurement-id`, `<base>/tag`, `<base>/driver`.
   */
  readonly systemBase: string;
}

/** A resource created only if none with its identifier exists (FHIR R4 http.html#ccreate). */
export interface ConditionalResource<T extends Device | Observation> {
  readonly resource: T;
  /** The search that finds it again: `identifier=<system>|<value>`. */
  readonly ifNoneExist: string;
  /** The bundle entry's fullUrl: a urn:uuid derived from the identifier, so equal resources share it. */
  readonly fullUrl: string;
}

export interface MappedMeasurement {
  readonly measurementId: string;
  readonly gateway: ConditionalResource<Device>;
  readonly device: ConditionalResource<Device>;
  readonly coincidentTimeStamp?: ConditionalResource<Observation>;
  readonly observations: readonly ConditionalResource<Observation>[];
  /** Hub observations not exported, with why (a battery level, RR intervals...). */
  readonly notExported: readonly { readonly code: string; readonly why: string }[];
}

export function systemsOf(options: MappingOptions) {
  const base = options.systemBase.replace(/\/+$/, '');
  return {
    gateway: `${base}/gateway-id`,
    device: `${base}/device-id`,
    measurement: `${base}/measurement-id`,
    tag: `${base}/tag`,
    driver: `${base}/driver`,
  };
}

export function mapMeasurement(
  stored: StoredMeasurement,
  mrn: string,
  options: MappingOptions,
): MappedMeasurement {
  const m = stored.measurement;
  const systems = systemsOf(options);
  const offset = offsetOf(m.time, stored.measuredAt);

  const gateway = gatewayDevice(stored.receipt.gatewayId, systems.gateway);
  const specializations = uniqueSpecializations(m.observations.map((o) => o.code));
  const device = personalHealthDevice(stored.receipt.gatewayId, m.deviceId, specializations, systems.device);

  // PHD IG: the coincident time stamp records how effective[x] was made when the hub moved the device's time.
  const coincidentTimeStamp =
    m.timeSource === 'device-corrected' && m.deviceTime !== null
      ? coincident(m.deviceTime, stored.measuredAt, offset, device, gateway)
      : undefined;

  const common: ObservationContext = {
    stored,
    mrn,
    options,
    systems,
    effective: formatInstant(stored.measuredAt, offset),
    gateway,
    device,
    coincidentTimeStamp,
  };

  const observations: ConditionalResource<Observation>[] = [];
  const notExported: { code: string; why: string }[] = [];
  const bp: HubObservation[] = [];
  m.observations.forEach((o, index) => {
    // The wire format is checked at intake, but a code from a newer hub may be unknown here: skip it, say why.
    // Own properties only: a code such as "toString" must not find Object.prototype's.
    const mapping: CodeMapping | undefined = Object.hasOwn(CODE_MAPPINGS, o.code)
      ? CODE_MAPPINGS[o.code]
      : undefined;
    if (mapping === undefined || !isUcumUnit(o.unit)) {
      notExported.push({ code: String(o.code), why: 'a code or unit this exporter has no FHIR mapping for' });
    } else if (mapping.kind === 'not-exported') notExported.push({ code: o.code, why: mapping.why });
    else if (mapping.kind === 'bp-component') bp.push(o);
    else if (o.qualifier !== undefined && !Object.hasOwn(MODALITY_BY_QUALIFIER, o.qualifier)) {
      notExported.push({ code: o.code, why: `qualifier "${o.qualifier}" has no MDC supplemental type` });
    } else observations.push(numericObservation(common, o, mapping.loinc, mapping.vital, index));
  });
  if (bp.length > 0) observations.push(bloodPressureObservation(common, bp));
  return { measurementId: m.id, gateway, device, coincidentTimeStamp, observations, notExported };
}

interface ObservationContext {
  readonly stored: StoredMeasurement;
  readonly mrn: string;
  readonly options: MappingOptions;
  readonly systems: ReturnType<typeof systemsOf>;
  readonly effective: string;
  readonly gateway: ConditionalResource<Device>;
  readonly device: ConditionalResource<Device>;
  readonly coincidentTimeStamp: ConditionalResource<Observation> | undefined;
}

function numericObservation(
  ctx: ObservationContext,
  o: HubObservation,
  loinc: readonly LoincCode[] | undefined,
  vital: VitalSign | undefined,
  index: number,
): ConditionalResource<Observation> {
  const modality = o.qualifier === undefined ? undefined : MODALITY_BY_QUALIFIER[o.qualifier];
  const isVital = vital !== undefined && vitalSignAccepts(vital, o.unit);
  const code: CodeableConcept = {
    coding: [mdcCoding(mdcNumeric(o.code), o.code), ...(loinc ?? []).map(loincCoding)],
    text: o.code,
  };
  const resource: Observation = {
    resourceType: 'Observation',
    ...base(ctx, PROFILES.numeric, isVital && vital !== undefined ? vitalSignProfile(vital) : undefined),
    status: 'final',
    category: categories(isVital),
    code,
    ...references(ctx),
    ...(o.value === null
      ? { dataAbsentReason: dataAbsent(o.invalid) }
      : { valueQuantity: quantity(o.value, o.unit) }),
    ...(modality === undefined
      ? {}
      : {
          component: [
            {
              code: {
                coding: [mdcCoding(MDC_ATTR_SUPPLEMENTAL_TYPES.code, MDC_ATTR_SUPPLEMENTAL_TYPES.display)],
              },
              valueCodeableConcept: { coding: [mdcCoding(modality.code, modality.display)] },
            },
          ],
        }),
  };
  const key = phdKey(ctx, mdcNumeric(o.code), modality === undefined ? [] : [modality.code]);
  return withIdentifiers(
    ctx,
    resource,
    key,
    `${o.code}${o.qualifier === undefined ? '' : `.${o.qualifier}`}#${index}`,
  );
}

/** PhdCompoundNumericObservation: code 150020 / LOINC 85354-9, no value of its own, one component per number. */
function bloodPressureObservation(
  ctx: ObservationContext,
  parts: readonly HubObservation[],
): ConditionalResource<Observation> {
  const order: readonly MdcCode[] = [
    'MDC_PRESS_BLD_NONINV_SYS',
    'MDC_PRESS_BLD_NONINV_DIA',
    'MDC_PRESS_BLD_NONINV_MEAN',
  ];
  const sorted = [...parts].sort((a, b) => order.indexOf(a.code) - order.indexOf(b.code));
  // The R4 bp profile needs both systolic and diastolic, in mm[Hg].
  const isVital =
    sorted.every((p) => vitalSignAccepts('bp', p.unit)) &&
    sorted.some((p) => p.code === 'MDC_PRESS_BLD_NONINV_SYS') &&
    sorted.some((p) => p.code === 'MDC_PRESS_BLD_NONINV_DIA');
  const component: ObservationComponent[] = sorted.map((p) => {
    const mapping = CODE_MAPPINGS[p.code];
    const loinc = mapping.kind === 'bp-component' ? mapping.loinc : undefined;
    return {
      code: {
        coding: [mdcCoding(mdcNumeric(p.code), p.code), ...(loinc === undefined ? [] : [loincCoding(loinc)])],
      },
      ...(p.value === null
        ? { dataAbsentReason: dataAbsent(p.invalid) }
        : { valueQuantity: quantity(p.value, p.unit) }),
    };
  });
  const resource: Observation = {
    resourceType: 'Observation',
    ...base(ctx, PROFILES.compoundNumeric, isVital ? vitalSignProfile('bp') : undefined),
    status: 'final',
    category: categories(isVital),
    code: {
      coding: [mdcCoding(BP_PANEL.mdc, BP_PANEL.display), loincCoding(BP_PANEL.loinc)],
      text: 'Blood pressure',
    },
    ...references(ctx),
    component,
  };
  return withIdentifiers(ctx, resource, phdKey(ctx, BP_PANEL.mdc, []), 'MDC_PRESS_BLD_NONINV');
}

function base(
  ctx: ObservationContext,
  phdProfile: string,
  vitalProfile: string | undefined,
): Pick<Observation, 'meta' | 'extension' | 'issued'> {
  const m = ctx.stored.measurement;
  const tags: Coding[] = [{ system: ctx.systems.driver, code: m.driver }];
  // A reading the device had stored before sending (back-filled): the EHR can tell it from a live one.
  if (m.stored === true)
    tags.push({ system: ctx.systems.tag, code: 'stored', display: 'Stored on the device before sending' });
  tags.push({ system: ctx.systems.tag, code: `time-source-${m.timeSource}` });
  const extension: Extension[] = [
    { url: GATEWAY_DEVICE_EXTENSION, valueReference: { reference: ctx.gateway.fullUrl } },
  ];
  if (ctx.coincidentTimeStamp !== undefined) {
    extension.push({
      url: COINCIDENT_TIME_STAMP_EXTENSION,
      valueReference: { reference: ctx.coincidentTimeStamp.fullUrl },
    });
  }
  return {
    meta: { profile: vitalProfile === undefined ? [phdProfile] : [phdProfile, vitalProfile], tag: tags },
    extension,
    // When the clinic's database committed it: the time it became available to providers (Observation.issued).
    issued: new Date(ctx.stored.committedAt).toISOString(),
  };
}

function references(ctx: ObservationContext): Pick<Observation, 'subject' | 'effectiveDateTime' | 'device'> {
  const subject: Reference = {
    type: 'Patient',
    identifier: { system: ctx.options.patientIdentifierSystem, value: ctx.mrn },
  };
  return { subject, effectiveDateTime: ctx.effective, device: { reference: ctx.device.fullUrl } };
}

function categories(vital: boolean): CodeableConcept[] {
  const phd: CodeableConcept = {
    coding: [{ system: PHD_CATEGORY_SYSTEM, code: 'phd', display: 'PHD generated Observation' }],
  };
  if (!vital) return [phd];
  return [
    { coding: [{ system: OBSERVATION_CATEGORY_SYSTEM, code: 'vital-signs', display: 'Vital Signs' }] },
    phd,
  ];
}

/**
 * The PHD IG STU2 conditional-create identifier (PhdBaseObservation notes, "Conditional-create Identifier"):
 * device-patient-type-timestamp[-duration][-supplemental types], using the time the DEVICE reported (never
 * the corrected one), so re-sends of a stored record and retries of an upload find the same Observation.
 * The device part is the IG's "PHD Device.identifier.value"; a GATT sensor seen through the hub has no EUI-64,
 * so it is the clinic-wide device identifier `<gateway>/<device>`. A reading the device did not time stamp is
 * keyed by the gateway's receipt time in milliseconds (the IG needs no identifier for those; the key still
 * makes a retried upload idempotent).
 */
function phdKey(ctx: ObservationContext, type: number, supplemental: readonly number[]): string {
  const m = ctx.stored.measurement;
  const timestamp =
    (m.deviceTime !== null ? phdTimestampPart(m.deviceTime) : undefined) ??
    gatewayTimestampPart(m.time, ctx.stored.measuredAt);
  const device = deviceIdentifierValue(ctx.stored.receipt.gatewayId, m.deviceId);
  const patient = `${identifierPart(ctx.mrn)}-${identifierPart(ctx.options.patientIdentifierSystem)}`;
  return [device, patient, String(type), timestamp, ...supplemental.map(String)].join('-');
}

function gatewayTimestampPart(time: string, measuredAt: number): string {
  const wall = parseWallClock(time);
  const instant = wall?.offsetMinutes === 0 ? wall.asUtcMs : measuredAt;
  return ((instant - Date.UTC(2000, 0, 1)) / 1000).toFixed(3);
}

function withIdentifiers(
  ctx: ObservationContext,
  resource: Observation,
  phdValue: string,
  part: string,
): ConditionalResource<Observation> {
  const identifier: Identifier[] = [
    { system: PHD_OBSERVATION_IDENTIFIER_SYSTEM, value: phdValue },
    // The clinic's own key: which stored measurement (and which value in it) this Observation came from.
    { system: ctx.systems.measurement, value: `${ctx.stored.measurement.id}/${part}` },
  ];
  return conditional({ ...resource, identifier }, PHD_OBSERVATION_IDENTIFIER_SYSTEM, phdValue);
}

function coincident(
  deviceTime: string,
  measuredAt: number,
  offset: number,
  device: ConditionalResource<Device>,
  gateway: ConditionalResource<Device>,
): ConditionalResource<Observation> | undefined {
  const wall = parseWallClock(deviceTime);
  const part = phdTimestampPart(deviceTime);
  if (wall === undefined || part === undefined) return undefined;
  const deviceOffset = wall.offsetMinutes ?? offset;
  const deviceValue = device.resource.identifier?.[0]?.value ?? '';
  const key = [deviceValue, String(MDC_ATTR_TIME_ABS.code), part].join('-');
  const resource: Observation = {
    resourceType: 'Observation',
    meta: { profile: [PROFILES.coincidentTimeStamp] },
    identifier: [{ system: PHD_OBSERVATION_IDENTIFIER_SYSTEM, value: key }],
    status: 'final',
    code: { coding: [mdcCoding(MDC_ATTR_TIME_ABS.code, MDC_ATTR_TIME_ABS.display)], text: 'Absolute time' },
    // PhdCoincidentTimeStampObservation: subject is the sensor, device the gateway; effective = the gateway's
    // time at the instant the sensor's clock read valueDateTime.
    subject: { reference: device.fullUrl },
    effectiveDateTime: formatInstant(measuredAt, offset),
    valueDateTime: formatWallClock(wall, deviceOffset),
    device: { reference: gateway.fullUrl },
  };
  return conditional(resource, PHD_OBSERVATION_IDENTIFIER_SYSTEM, key);
}

/** PhgDevice (the hub): type MDC_MOC_VMS_MDS_AHD, identified by its gateway id in the clinic's system. */
function gatewayDevice(gatewayId: string, system: string): ConditionalResource<Device> {
  const resource: Device = {
    resourceType: 'Device',
    identifier: [{ system, value: gatewayId }],
    type: { coding: [mdcCoding(PHG_DEVICE_TYPE.code, PHG_DEVICE_TYPE.display)] },
    deviceName: [{ name: `RPM hub ${gatewayId}`, type: 'user-friendly-name' }],
  };
  return conditional(resource, system, gatewayId);
}

/** PhdDevice (the sensor): type MDC_MOC_VMS_MDS_SIMP and the 104xx specializations its readings follow. */
function personalHealthDevice(
  gatewayId: string,
  deviceId: string,
  specializations: readonly Specialization[],
  system: string,
): ConditionalResource<Device> {
  const value = deviceIdentifierValue(gatewayId, deviceId);
  const resource: Device = {
    resourceType: 'Device',
    identifier: [{ system, value }],
    type: { coding: [mdcCoding(PHD_DEVICE_TYPE.code, PHD_DEVICE_TYPE.display)] },
    ...(specializations.length === 0
      ? {}
      : {
          specialization: specializations.map((s) => ({
            systemType: { coding: [mdcCoding(s.code, s.display)] },
          })),
        }),
  };
  return conditional(resource, system, value);
}

/** Device ids are gateway-local (docs/wire-format.md), so the clinic-wide one includes the gateway. */
export function deviceIdentifierValue(gatewayId: string, deviceId: string): string {
  return `${identifierPart(gatewayId)}/${identifierPart(deviceId)}`;
}

/**
 * Identifier values this exporter builds never contain `\`, `|`, `,` or `$`: FHIR search escapes them with a
 * backslash (R4 search.html#escaping), but servers differ in honouring that (medplum 4.5 does not), and a
 * conditional create that fails to find its own identifier creates a duplicate. They are percent-encoded
 * (with `%` itself), which every server compares as plain text.
 */
export function identifierPart(text: string): string {
  return text.replace(/[%\\|,$]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

function uniqueSpecializations(codes: readonly MdcCode[]): Specialization[] {
  const found = new Map<number, Specialization>();
  for (const code of codes) {
    const s = specializationOf(code);
    if (s !== undefined) found.set(s.code, s);
  }
  return [...found.values()];
}

function conditional<T extends Device | Observation>(
  resource: T,
  system: string,
  value: string,
): ConditionalResource<T> {
  return { resource, ifNoneExist: identifierQuery(system, value), fullUrl: uuidUrn(`${system}|${value}`) };
}

/**
 * `identifier=<system>|<value>` with the token escapes of FHIR search (R4 search.html#escaping: `\`, `|`, `,`
 * and `$` in a value are escaped with `\`) and then URL encoding of each part.
 */
export function identifierQuery(system: string, value: string): string {
  const token = (s: string) => encodeURIComponent(s.replace(/[\\|,$]/g, (c) => `\\${c}`));
  return `identifier=${token(system)}|${token(value)}`;
}

/** A name-based UUID (RFC 4122 section 4.3 layout, SHA-256 truncated) for the entry's fullUrl. */
export function uuidUrn(name: string): string {
  const h = createHash('sha256').update(name, 'utf8').digest();
  h[6] = ((h[6] as number) & 0x0f) | 0x50;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `urn:uuid:${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

function mdcCoding(code: number, display: string): Coding {
  return { system: MDC_SYSTEM, code: String(code), display };
}

function loincCoding(loinc: LoincCode): Coding {
  return { system: LOINC_SYSTEM, code: loinc.code, display: loinc.display };
}

function quantity(value: number, unit: keyof typeof UCUM_UNITS): Quantity {
  return { value, unit: UCUM_UNITS[unit].display, system: UCUM_SYSTEM, code: unit };
}

/** PHD IG STU2 "FLOATs and SFLOATs", special values: NaN, +INF, -INF as themselves; NRes and reserved = error. */
function dataAbsent(reason: InvalidReason | undefined): CodeableConcept {
  const code =
    reason === 'nan'
      ? 'not-a-number'
      : reason === '+inf'
        ? 'positive-infinity'
        : reason === '-inf'
          ? 'negative-infinity'
          : 'error';
  return { coding: [{ system: DATA_ABSENT_REASON_SYSTEM, code }] };
}
