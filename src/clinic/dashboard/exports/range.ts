import { resolveDateTime } from '../../intake/local-time.js';
import { ExportError } from './errors.js';

/** The longest range one export may ask for: a month, enough for a review period; CSV streams it. */
export const MAX_EXPORT_SPAN_MS = 31 * 24 * 3_600_000;

export type ExportFormat = 'csv' | 'fhir';

export interface ExportRequest {
  /** [from, to), epoch ms, as every range of the dashboard. */
  readonly from: number;
  readonly to: number;
  readonly format: ExportFormat;
}

/**
 * A date-time as the patient page's form sends it: an HTML `datetime-local` value (HTML Standard section
 * 2.3.5.5, "local date and time": YYYY-MM-DDTHH:MM, seconds optional), read in the clinic's time zone, or
 * the same with `Z` or an offset (RFC 3339), taken as it is.
 */
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?(Z|[+-](\d{2}):(\d{2}))?$/;

/** Reads and checks an export's query; throws ExportError (answered 400) with what is wrong. */
export function exportRequest(
  query: Readonly<Record<string, string | undefined>>,
  timeZone: string,
): ExportRequest {
  const format = query.format ?? 'csv';
  if (format !== 'csv' && format !== 'fhir') {
    throw new ExportError('EXPORT_FORMAT_UNKNOWN', 'The format must be csv or fhir.');
  }
  const from = instant(query.from, 'from', timeZone);
  const to = instant(query.to, 'to', timeZone);
  if (to <= from) {
    throw new ExportError('EXPORT_RANGE_INVERTED', 'The end of the range must be after its start.');
  }
  if (to - from > MAX_EXPORT_SPAN_MS) {
    throw new ExportError(
      'EXPORT_RANGE_TOO_LONG',
      'The range may span 31 days at most; export a longer period in parts.',
    );
  }
  return { from, to, format };
}

function instant(text: string | undefined, name: 'from' | 'to', timeZone: string): number {
  const bad = () =>
    new ExportError(
      'EXPORT_RANGE_INVALID',
      `"${name}" must be a date and time, such as 2026-01-10T08:00 (in the clinic's time zone) or 2026-01-10T08:00Z.`,
    );
  const m = text === undefined ? null : DATE_TIME.exec(text);
  if (m === null || text === undefined) throw bad();
  const [, y, mo, d, h, mi, s, zone, oh, om] = m.map((part) => part ?? '');
  // Date.UTC rolls month 13 or hour 25 over into the next year or day; such a field is refused instead.
  const days = new Date(Date.UTC(Number(y), Number(mo), 0)).getUTCDate();
  const fieldsOk =
    Number(mo) >= 1 &&
    Number(mo) <= 12 &&
    Number(d) >= 1 &&
    Number(d) <= days &&
    Number(h) <= 23 &&
    Number(mi) <= 59 &&
    Number(s || '0') <= 59 &&
    Number(oh || '0') <= 23 &&
    Number(om || '0') <= 59;
  if (!fieldsOk) throw bad();
  // resolveDateTime wants seconds; a datetime-local value may leave them out.
  const withSeconds = s === '' ? `${text.slice(0, 16)}:00${zone}` : text;
  const at = resolveDateTime(withSeconds, timeZone);
  if (at === undefined || !Number.isSafeInteger(at) || at < 0) throw bad();
  return at;
}
