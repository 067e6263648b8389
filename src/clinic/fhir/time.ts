/**
 * Time stamps as FHIR needs them. A FHIR `dateTime` with a time of day SHALL carry a time-zone offset
 * (hl7.org/fhir/R4/datatypes.html#dateTime), and the PHD IG (STU2, PhdBaseObservation notes, "Timestamp:
 * effective[x]") maps a local device time to "UTC + offset, including the PHG offset". The wire format's
 * `date-time` is RFC 3339 with an optional offset (docs/wire-format.md section 5, rule 7): without one it is the
 * device's local wall-clock time, which the intake resolved to the instant `measuredAt`. The offset that
 * resolution used is therefore `wall clock read as UTC - measuredAt`, so it is recovered here without the time
 * zone itself.
 */

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?$/;

export interface WallClock {
  /** The fields read as if they were UTC (epoch ms, fraction truncated to ms). */
  readonly asUtcMs: number;
  /** The fraction as written ('' when none), without the dot. */
  readonly fraction: string;
  /** The offset in minutes when the text has one (`Z` = 0), else undefined. */
  readonly offsetMinutes: number | undefined;
}

/** Parses RFC 3339 date-time text; undefined when it is not one (never throws: input is from the wire). */
export function parseWallClock(text: string): WallClock | undefined {
  const m = DATE_TIME.exec(text);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, frac, off] = m;
  const fraction = frac === undefined ? '' : frac.slice(1);
  const ms = Number(fraction.padEnd(3, '0').slice(0, 3));
  const asUtcMs = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  if (Number.isNaN(asUtcMs)) return undefined;
  let offsetMinutes: number | undefined;
  if (off === 'Z') offsetMinutes = 0;
  else if (off !== undefined) {
    const sign = off.startsWith('-') ? -1 : 1;
    offsetMinutes = sign * (Number(off.slice(1, 3)) * 60 + Number(off.slice(4, 6)));
  }
  return { asUtcMs, fraction, offsetMinutes };
}

/**
 * The offset (minutes east of UTC) in which `time` was written: its own when it has one, else the one the
 * intake's resolution to `measuredAt` implies (rounded to a minute), else 0 (UTC).
 */
export function offsetOf(time: string, measuredAt: number): number {
  const wall = parseWallClock(time);
  if (wall === undefined) return 0;
  if (wall.offsetMinutes !== undefined) return wall.offsetMinutes;
  const minutes = Math.round((wall.asUtcMs - measuredAt) / 60_000);
  // Real offsets lie within -12:00..+14:00; anything else means the inputs disagree: say UTC rather than guess.
  return minutes >= -12 * 60 && minutes <= 14 * 60 ? minutes : 0;
}

/** `instant` as a FHIR dateTime in the given offset, e.g. 2026-11-28T13:00:05+01:00 (milliseconds when non-zero). */
export function formatInstant(instant: number, offsetMinutes: number): string {
  const local = new Date(instant + offsetMinutes * 60_000).toISOString(); // ....sssZ, fields in the offset
  const base = local.endsWith('.000Z') ? local.slice(0, 19) : local.slice(0, 23);
  if (offsetMinutes === 0) return `${base}Z`;
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${base}${sign}${pad2(Math.floor(abs / 60))}:${pad2(abs % 60)}`;
}

/** A wall-clock text with no offset, given the offset it was read in, as a FHIR dateTime. */
export function formatWallClock(wall: WallClock, offsetMinutes: number): string {
  return formatInstant(wall.asUtcMs - offsetMinutes * 60_000, offsetMinutes);
}

const EPOCH_2000 = Date.UTC(2000, 0, 1);

/**
 * The time-stamp part of the PHD conditional-create identifier (PHD IG STU2, "Generating the PHD Reported
 * Timestamp Identifier"): the time as the device reported it, in seconds since 2000-01-01 at the resolution it
 * was reported in (GATT Date Time: whole seconds; a fraction is kept as written), then the device's own offset
 * when it sent one, as a signed count of 15-minute units ("+4" = one hour).
 */
export function phdTimestampPart(reported: string): string | undefined {
  const wall = parseWallClock(reported);
  if (wall === undefined) return undefined;
  // Whole seconds from the fields (the fraction is appended as text, so no digit is lost or rounded).
  const wholeSeconds = Math.floor((wall.asUtcMs - EPOCH_2000) / 1000);
  let part = wall.fraction === '' ? String(wholeSeconds) : `${wholeSeconds}.${wall.fraction}`;
  if (wall.offsetMinutes !== undefined && wall.offsetMinutes !== 0) {
    const units = Math.trunc(wall.offsetMinutes / 15);
    part += units < 0 ? String(units) : `+${units}`;
  } else if (wall.offsetMinutes === 0 && !reported.endsWith('Z')) {
    part += '+0'; // an explicit +00:00 from the device is still an offset it reported
  }
  return part;
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}
