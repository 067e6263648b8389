import { IntakeError } from './errors.js';

/**
 * Device times to instants. A wire `date-time` without an offset is the device's local wall-clock time
 * (docs/wire-format.md section 5, rule 7: GATT Date Time carries no zone), so it names an instant only
 * together with the time zone the device lives in. The rules for the two awkward cases are those of iCalendar
 * (RFC 5545 section 3.3.5, "FORM #3: DATE WITH LOCAL TIME AND TIME ZONE REFERENCE"), which TC39 Temporal also
 * uses as its default ("compatible") disambiguation:
 *
 * - a local time that occurs twice (clocks go back) is the FIRST occurrence (the earlier instant);
 * - a local time that never occurs (clocks go forward) is read with the UTC offset from before the gap, so
 *   02:30 on a 02:00 -> 03:00 night becomes 03:30 in the new offset.
 *
 * Offsets come from the runtime's IANA time zone database through Intl.DateTimeFormat (ECMA-402), so there is
 * no zone data in this project to keep current; Node's full-ICU build carries it.
 */

const PARTS = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?$/;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    });
    formatters.set(timeZone, format);
  }
  return format;
}

/** True when the runtime knows `timeZone` as an IANA zone name (or an alias of one). */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** Throws INTAKE_BAD_OPTIONS unless `timeZone` is a zone the runtime knows. */
export function assertTimeZone(timeZone: string, what: string): string {
  if (!isTimeZone(timeZone)) {
    throw new IntakeError(
      'INTAKE_BAD_OPTIONS',
      `${what}: ${JSON.stringify(timeZone)} is not an IANA time zone`,
    );
  }
  return timeZone;
}

/** The zone's UTC offset at `instant`, in milliseconds (local = instant + offset), to the second. */
export function offsetAt(instant: number, timeZone: string): number {
  const seconds = Math.floor(instant / 1000) * 1000;
  const fields: Record<string, number> = {};
  let bc = false;
  for (const part of formatter(timeZone).formatToParts(seconds)) {
    if (part.type === 'era') bc = part.value === 'BC';
    else if (part.type !== 'literal') fields[part.type] = Number(part.value);
  }
  const year = bc ? 1 - (fields.year ?? 0) : (fields.year ?? 0);
  const local = Date.UTC(
    year,
    (fields.month ?? 1) - 1,
    fields.day ?? 1,
    fields.hour ?? 0,
    fields.minute ?? 0,
    fields.second ?? 0,
  );
  // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear puts them back where they belong.
  const fixed = year >= 0 && year < 100 ? new Date(local).setUTCFullYear(year) : local;
  return fixed - seconds;
}

/**
 * The instant a wire `date-time` names: as it is when it carries `Z` or an offset, otherwise as wall-clock
 * time in `timeZone` (see the file comment for times that occur twice or never). Undefined when the text is
 * not a date-time (the wire decoder has checked it already; this keeps the function total).
 */
export function resolveDateTime(text: string, timeZone: string): number | undefined {
  const m = PARTS.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, fraction, offset] = m;
  const ms = fraction === undefined ? 0 : Number(fraction.slice(0, 3).padEnd(3, '0'));
  const wall = new Date(0).setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  const local = wall + ((Number(h) * 60 + Number(mi)) * 60 + Number(s)) * 1000 + ms;
  if (Number.isNaN(local)) return undefined;
  if (offset === 'Z') return local;
  if (offset !== undefined) {
    const sign = offset.startsWith('-') ? -1 : 1;
    const minutes = Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6));
    return local - sign * minutes * 60_000;
  }
  return localToInstant(local, timeZone);
}

const DAY = 86_400_000;

/**
 * `local` is wall-clock time written as if it were UTC. The offsets a day either side bound every candidate
 * (no zone changes its offset twice within two days); a candidate is right when the zone's offset at it is the
 * one it was computed with.
 */
function localToInstant(local: number, timeZone: string): number {
  const before = offsetAt(local - DAY, timeZone);
  const after = offsetAt(local + DAY, timeZone);
  const candidates = [before, after]
    .filter((offset) => offsetAt(local - offset, timeZone) === offset)
    .map((offset) => local - offset);
  // Occurs twice: the first occurrence. Occurs once: that one. Never occurs: the offset before the gap.
  return candidates.length > 0 ? Math.min(...candidates) : local - before;
}
