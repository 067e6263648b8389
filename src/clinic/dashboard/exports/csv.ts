import { stringify } from 'csv-stringify/sync';
import type { InvalidReason } from '../../../model/observation.js';
import type { ClinicStore, StoredMeasurement } from '../../storage/clinic-store.js';
import { measurementPages } from './pages.js';

/**
 * The CSV export: one record per observation (a blood pressure reading is three: systolic, diastolic, mean),
 * RFC 4180 (csv-stringify: CRLF between records, a field quoted when it holds a comma, a quote or a line
 * break, quotes doubled), UTF-8, a header record first. A measurement without coded values (a device's
 * information) has no record.
 *
 * Fields that come from a hub or a device (device id, driver, status flags, qualifier, unit, times as sent)
 * may start with `=`, `+`, `-`, `@`, a tab or a carriage return, which a spreadsheet would run as a formula
 * (OWASP, "CSV Injection"). csv-stringify's `escape_formulas` puts a single quote in front of such a field (and
 * of their full-width forms), as OWASP recommends; a number (the value) is never changed, so -4.5 stays a
 * number. The price: such a text field reads back with the quote in front.
 */
export const CSV_COLUMNS = [
  'measurement_id',
  /** Measurement.time as the hub sent it: local wall-clock time without an offset, or UTC with `Z`. */
  'time_as_sent',
  /** The device's own time stamp as it sent it (local, no offset); empty when it sent none. */
  'device_time',
  /** device, device-corrected (the hub shifted the device's clock by its measured skew) or gateway. */
  'time_source',
  /** The measurement time as an instant (time_as_sent resolved in the patient's zone), ISO 8601 UTC. */
  'measured_utc',
  /** When the hub received it from the device. */
  'hub_received_utc',
  /** When the clinic's intake received it, and when the clinic database committed it. */
  'clinic_received_utc',
  'committed_utc',
  /** The MDC reference id, e.g. MDC_PULS_OXIM_SAT_O2. */
  'code',
  /** The number as the device sent it; empty when it sent none (invalid_reason says why). */
  'value',
  /** UCUM, as the device sent it (%, /min, mm[Hg], Cel ...): nothing is converted. */
  'unit',
  'invalid_reason',
  /** Tells apart two values of one code in one reading (the fast and slow SpO2 averages). */
  'qualifier',
  /** The device's status flags (irregular-pulse, cuff-fit-loose ...), separated by `;`. */
  'status',
  /** true when the device stored the reading and sent it later (back-filled), false for a live one. */
  'stored',
  'device',
  'driver',
  'gateway',
  /** The lane it came on: obs (live and back-filled) or alert (a hub alert rule sent it ahead). */
  'lane',
] as const;

type Column = (typeof CSV_COLUMNS)[number];
type CsvRecord = Record<Column, string | number>;

/**
 * IEEE 11073-20601 special values in words. Not the wire's `+inf` and `-inf`: a field starting with + or - is
 * one a spreadsheet would run, and would be written with a quote in front.
 */
const INVALID_WORDS: Readonly<Record<InvalidReason, string>> = {
  nan: 'not-a-number',
  nres: 'not-at-this-resolution',
  '+inf': 'positive-infinity',
  '-inf': 'negative-infinity',
  reserved: 'reserved',
};

const iso = (ms: number) => new Date(ms).toISOString();

export function csvRecords(stored: StoredMeasurement): CsvRecord[] {
  const m = stored.measurement;
  return m.observations.map((o) => ({
    measurement_id: m.id,
    time_as_sent: m.time,
    device_time: m.deviceTime ?? '',
    time_source: m.timeSource,
    measured_utc: iso(stored.measuredAt),
    hub_received_utc: m.receivedAt,
    clinic_received_utc: iso(stored.receipt.receivedAt),
    committed_utc: iso(stored.committedAt),
    code: o.code,
    value: o.value ?? '',
    unit: o.unit,
    invalid_reason: o.invalid === undefined ? '' : (INVALID_WORDS[o.invalid] ?? o.invalid),
    qualifier: o.qualifier ?? '',
    status: m.status.join(';'),
    stored: m.stored === true ? 'true' : 'false',
    device: m.deviceId,
    driver: m.driver,
    gateway: stored.receipt.gatewayId,
    lane: stored.receipt.topic,
  }));
}

const OPTIONS = {
  columns: [...CSV_COLUMNS],
  record_delimiter: 'windows',
  escape_formulas: true,
} as const;

/**
 * A patient's observations over [from, to) as CSV text: the header record, then one piece per store page
 * (pages.ts). `tally` counts the measurements and records written.
 */
export async function* csvChunks(
  clinic: ClinicStore,
  range: { readonly mrn: string; readonly from: number; readonly to: number },
  tally: { measurements: number; rows: number },
): AsyncGenerator<string> {
  yield stringify([], { ...OPTIONS, header: true });
  for await (const page of measurementPages(clinic, range)) {
    const records = page.flatMap(csvRecords);
    tally.measurements += page.length;
    tally.rows += records.length;
    if (records.length > 0) yield stringify(records, OPTIONS);
  }
}
