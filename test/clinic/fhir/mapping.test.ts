import type { Bundle, Observation } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { transactionBundle } from '../../../src/clinic/fhir/bundle.js';
import { type MappedMeasurement, mapMeasurement } from '../../../src/clinic/fhir/mapping.js';
import type { IncomingMeasurement, StoredMeasurement } from '../../../src/clinic/storage/clinic-store.js';
import { resolvedEntries, validate } from './r4.js';
import {
  battery,
  bloodPressure,
  continuous,
  GATEWAY,
  glucose,
  heartRate,
  invalidTemperature,
  MRN,
  PATIENT_SYSTEM,
  SYSTEM_BASE,
  sample,
  spotCheck,
  T0,
  temperature,
  weight,
} from './samples.js';

const options = { patientIdentifierSystem: PATIENT_SYSTEM, systemBase: SYSTEM_BASE };
const stored = (m: IncomingMeasurement): StoredMeasurement => ({ ...m, committedAt: m.measuredAt + 5_000 });
const map = (m: IncomingMeasurement): MappedMeasurement => mapMeasurement(stored(m), MRN, options);
const MDC = 'urn:iso:std:iso:11073:10101';
const LOINC = 'http://loinc.org';
const codes = (o: Observation, system: string) =>
  (o.code.coding ?? []).filter((c) => c.system === system).map((c) => c.code);
const phdId = (o: Observation) =>
  o.identifier?.find((i) => i.system === 'http://hl7.org/fhir/uv/phd/StructureDefinition/PhdBaseObservation')
    ?.value;
/** The PHD IG STU2 time-stamp part: the reported wall-clock time in seconds since 2000-01-01. */
const since2000 = (wall: string) => String((Date.parse(`${wall}Z`) - Date.UTC(2000, 0, 1)) / 1000);

const ALL = [
  spotCheck(),
  continuous(T0),
  bloodPressure(),
  bloodPressure({ at: T0 + 60_000, skewMs: -90_000 }),
  temperature(),
  weight(),
  glucose(),
  invalidTemperature(),
  heartRate(T0),
];

describe('FHIR mapping (PHD IG STU2)', () => {
  it('every generated resource, and the transaction Bundle, is valid R4 (medplum validator)', () => {
    const mapped = ALL.map(map);
    const bundle = transactionBundle(mapped);
    const resources = [bundle, ...resolvedEntries(bundle)];
    expect(resources.length).toBeGreaterThan(20);
    const failures = resources.flatMap((r) => validate(r)).filter((v) => v.errors.length > 0);
    expect(failures).toEqual([]);
    // The validator is live: a heart rate without its LOINC code and an Observation without status are refused.
    const pulse = resources.find(
      (r) => r.resourceType === 'Observation' && r.meta?.profile?.[1]?.endsWith('/heartrate'),
    ) as Observation;
    const noLoinc = { ...pulse, code: { coding: pulse.code.coding?.slice(0, 1) ?? [] } };
    expect(validate(noLoinc).find((v) => v.profile.endsWith('/heartrate'))?.errors).not.toEqual([]);
    const { status: _status, ...noStatus } = pulse;
    expect(validate(noStatus as Observation)[0]?.errors).not.toEqual([]);
    // The vital-sign profiles were really applied (not only the base definition).
    const profilesChecked = new Set(resources.flatMap((r) => validate(r)).map((v) => v.profile));
    for (const p of ['heartrate', 'oxygensat', 'bodytemp', 'bodyweight', 'bmi']) {
      expect(profilesChecked).toContain(`http://hl7.org/fhir/StructureDefinition/${p}`);
    }
  });

  it('blood pressure is one PhdCompoundNumericObservation with systolic, diastolic and mean components (checked by hand)', () => {
    const m = map(bloodPressure());
    const bp = m.observations
      .map((o) => o.resource)
      .find((o) => codes(o, MDC).includes('150020')) as Observation;
    expect(bp.meta?.profile).toEqual([
      'http://hl7.org/fhir/uv/phd/StructureDefinition/PhdCompoundNumericObservation',
      'http://hl7.org/fhir/StructureDefinition/bp',
    ]);
    expect(codes(bp, LOINC)).toEqual(['85354-9']);
    expect(bp.valueQuantity).toBeUndefined();
    expect(bp.category?.map((c) => c.coding?.[0]?.code)).toEqual(['vital-signs', 'phd']);
    const parts = (bp.component ?? []).map((c) => ({
      mdc: c.code.coding?.find((x) => x.system === MDC)?.code,
      loinc: c.code.coding?.find((x) => x.system === LOINC)?.code,
      value: c.valueQuantity?.value,
      unit: `${c.valueQuantity?.system}|${c.valueQuantity?.code}`,
    }));
    expect(parts).toEqual([
      { mdc: '150021', loinc: '8480-6', value: 128, unit: 'http://unitsofmeasure.org|mm[Hg]' },
      { mdc: '150022', loinc: '8462-4', value: 82, unit: 'http://unitsofmeasure.org|mm[Hg]' },
      { mdc: '150023', loinc: undefined, value: 97, unit: 'http://unitsofmeasure.org|mm[Hg]' },
    ]);
    // The cuff's pulse rate is a numeric observation of its own, an R4 heart rate.
    const pulse = m.observations
      .map((o) => o.resource)
      .find((o) => codes(o, MDC).includes('149546')) as Observation;
    expect(codes(pulse, LOINC)).toEqual(['8867-4']);
    expect(pulse.valueQuantity).toEqual({
      value: 66,
      unit: 'beats/min',
      system: 'http://unitsofmeasure.org',
      code: '/min',
    });
  });

  it('codes SpO2 with MDC and both LOINC codes, and the sensor and hub as PhdDevice and PhgDevice', () => {
    const m = map(spotCheck());
    const [spo2, pulse, perfusion] = m.observations.map((o) => o.resource) as [
      Observation,
      Observation,
      Observation,
    ];
    expect(codes(spo2, MDC)).toEqual(['150456']);
    expect(codes(spo2, LOINC)).toEqual(['2708-6', '59408-5']);
    expect(codes(pulse, MDC)).toEqual(['149530']);
    expect(codes(pulse, LOINC)).toEqual(['8867-4']);
    expect(codes(perfusion, LOINC)).toEqual([]); // not a vital sign: MDC only, PHD category only
    expect(perfusion.category?.map((c) => c.coding?.[0]?.code)).toEqual(['phd']);
    for (const o of [spo2, pulse, perfusion]) {
      expect(o.extension?.[0]).toEqual({
        url: 'http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice',
        valueReference: { reference: m.gateway.fullUrl },
      });
      expect(o.device).toEqual({ reference: m.device.fullUrl });
      expect(o.subject).toEqual({ type: 'Patient', identifier: { system: PATIENT_SYSTEM, value: MRN } });
      expect(o.effectiveDateTime).toBe('2026-11-28T13:00:00+01:00');
      expect(o.issued).toBe(new Date(T0 + 5_000).toISOString());
    }
    expect(m.gateway.resource.type?.coding?.[0]?.code).toBe('531981');
    expect(m.gateway.resource.identifier).toEqual([{ system: `${SYSTEM_BASE}/gateway-id`, value: GATEWAY }]);
    expect(m.device.resource.type?.coding?.[0]?.code).toBe('65573');
    expect(m.device.resource.specialization?.[0]?.systemType?.coding?.[0]?.code).toBe('528388');
    expect(m.device.ifNoneExist).toBe(
      `identifier=${encodeURIComponent(`${SYSTEM_BASE}/device-id`)}|${encodeURIComponent(`${GATEWAY}/dev-2a5e`)}`,
    );
  });

  it('follows the IG identifier rule with the device-reported time, even when the hub corrected the clock', () => {
    const plain = map(bloodPressure());
    const bp = plain.observations[1]?.resource as Observation;
    expect(phdId(bp)).toBe(
      `${GATEWAY}/dev-2a35-${MRN}-${PATIENT_SYSTEM}-150020-${since2000('2026-11-28T13:00:00')}`,
    );
    expect(plain.coincidentTimeStamp).toBeUndefined();

    // The device's clock ran 90 s behind; the hub corrected it. The key keeps the device's own time.
    const corrected = map(bloodPressure({ at: T0 + 60_000, skewMs: -90_000 }));
    const cbp = corrected.observations.find((o) => codes(o.resource, MDC).includes('150020'))
      ?.resource as Observation;
    expect(phdId(cbp)).toBe(
      `${GATEWAY}/dev-2a35-${MRN}-${PATIENT_SYSTEM}-150020-${since2000('2026-11-28T12:59:30')}`,
    );
    expect(cbp.effectiveDateTime).toBe('2026-11-28T13:01:00+01:00');
    const coin = corrected.coincidentTimeStamp?.resource as Observation;
    expect(codes(coin, MDC)).toEqual(['67975']);
    expect(coin.meta?.profile).toEqual([
      'http://hl7.org/fhir/uv/phd/StructureDefinition/PhdCoincidentTimeStampObservation',
    ]);
    expect(coin.subject).toEqual({ reference: corrected.device.fullUrl });
    expect(coin.device).toEqual({ reference: corrected.gateway.fullUrl });
    expect(coin.effectiveDateTime).toBe('2026-11-28T13:01:00+01:00');
    expect(coin.valueDateTime).toBe('2026-11-28T12:59:30+01:00');
    expect(cbp.extension?.[1]).toEqual({
      url: 'http://hl7.org/fhir/uv/phd/StructureDefinition/CoincidentTimeStampReference',
      valueReference: { reference: corrected.coincidentTimeStamp?.fullUrl },
    });
  });

  it('keeps the PLX fast and slow averages apart with their MDC supplemental types', () => {
    const m = map(continuous(T0));
    const modality = (o: Observation) => o.component?.[0]?.valueCodeableConcept?.coding?.[0]?.code;
    const obs = m.observations.map((o) => o.resource);
    expect(obs.map(modality)).toEqual(['150580', '150580', '150584']);
    expect(obs[0]?.component?.[0]?.code.coding?.[0]?.code).toBe('68193');
    const ids = obs.map(phdId);
    expect(new Set(ids).size).toBe(3);
    // Untimed (gateway-stamped) readings are keyed by the gateway time in ms, and the modality closes the key.
    expect(ids[0]).toBe(
      `${GATEWAY}/dev-2a5f-${MRN}-${PATIENT_SYSTEM}-150456-${((T0 - Date.UTC(2000, 0, 1)) / 1000).toFixed(3)}-150580`,
    );
  });

  it('maps an invalid value to dataAbsentReason, marks stored readings, and says what it leaves out', () => {
    const nan = map(invalidTemperature()).observations[0]?.resource as Observation;
    expect(nan.valueQuantity).toBeUndefined();
    expect(nan.dataAbsentReason?.coding?.[0]).toEqual({
      system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason',
      code: 'not-a-number',
    });
    const g = map(glucose()).observations[0]?.resource as Observation;
    expect(g.meta?.tag).toContainEqual(
      expect.objectContaining({ system: `${SYSTEM_BASE}/tag`, code: 'stored' }),
    );
    expect(g.meta?.tag).toContainEqual({ system: `${SYSTEM_BASE}/driver`, code: 'sig-test@1.0.0' });
    expect(codes(g, LOINC)).toEqual([]);
    expect(g.valueQuantity).toEqual({
      value: 104,
      unit: 'mg/dL',
      system: 'http://unitsofmeasure.org',
      code: 'mg/dL',
    });
    expect(map(temperature()).observations[0]?.resource.meta?.tag?.some((t) => t.code === 'stored')).toBe(
      false,
    );

    const hr = map(heartRate(T0));
    expect(hr.observations.map((o) => codes(o.resource, MDC))).toEqual([['147842']]);
    expect(hr.notExported.map((n) => n.code)).toEqual(['MDC_ECG_TIME_PD_RR_GL']);
    expect(map(battery()).observations).toEqual([]);
    // Height in metres: the R4 bodyheight profile takes cm or [in_i] only, so it is a PHD observation only.
    const height = map(weight()).observations[2]?.resource as Observation;
    expect(height.meta?.profile).toEqual([
      'http://hl7.org/fhir/uv/phd/StructureDefinition/PhdNumericObservation',
    ]);
    expect(height.category?.map((c) => c.coding?.[0]?.code)).toEqual(['phd']);
  });

  it('is deterministic, and a Bundle lists each shared resource once with conditional creates', () => {
    expect(map(ALL[3] as IncomingMeasurement)).toEqual(map(ALL[3] as IncomingMeasurement));
    const bundle: Bundle = transactionBundle([map(spotCheck()), map(spotCheck(T0 + 60_000))]);
    const entries = bundle.entry ?? [];
    expect(bundle.type).toBe('transaction');
    expect(entries.filter((e) => e.resource?.resourceType === 'Device')).toHaveLength(2); // one hub, one sensor
    expect(entries.filter((e) => e.resource?.resourceType === 'Observation')).toHaveLength(6);
    for (const e of entries) {
      expect(e.fullUrl).toMatch(
        /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
      expect(e.request?.method).toBe('POST');
      expect(e.request?.ifNoneExist).toMatch(/^identifier=/);
    }
    expect(new Set(entries.map((e) => e.fullUrl)).size).toBe(entries.length);
  });

  it('never crashes on codes, units or qualifiers it does not know (a newer hub), and exports nothing for them', () => {
    const odd = sample({
      characteristic: '2a1c',
      observations: [
        { code: 'toString' as never, value: 1, unit: '%' },
        { code: 'MDC_TEMP_BODY', value: 37, unit: 'furlong' as never },
        { code: 'MDC_PULS_OXIM_SAT_O2', value: 97, unit: '%', qualifier: 'constructor' },
        { code: 'MDC_TEMP_BODY', value: 36.5, unit: 'Cel' },
      ],
    });
    const m = map(odd);
    expect(m.notExported.map((n) => n.code)).toEqual(['toString', 'MDC_TEMP_BODY', 'MDC_PULS_OXIM_SAT_O2']);
    expect(m.observations.map((o) => o.resource.valueQuantity?.value)).toEqual([36.5]);
  });
});
