import { describe, expect, it } from 'vitest';
import {
  assertTimeZone,
  isTimeZone,
  offsetAt,
  resolveDateTime,
} from '../../../src/clinic/intake/local-time.js';

/** Device wall-clock times become instants in the gateway's zone, right across daylight-saving changes. */
const utc = (text: string) => Date.parse(text);

describe('resolveDateTime', () => {
  it('uses a time with Z or an offset as it is, whatever the zone', () => {
    expect(resolveDateTime('2026-07-01T12:00:00Z', 'America/New_York')).toBe(utc('2026-07-01T12:00:00Z'));
    expect(resolveDateTime('2026-07-01T12:00:00+02:00', 'America/New_York')).toBe(
      utc('2026-07-01T10:00:00Z'),
    );
    expect(resolveDateTime('2026-07-01T12:00:00.123456789-05:30', 'UTC')).toBe(
      utc('2026-07-01T17:30:00.123Z'),
    );
  });

  it('reads a time without offset in the zone: summer and winter offsets', () => {
    expect(resolveDateTime('2026-07-01T12:00:00', 'Europe/Berlin')).toBe(utc('2026-07-01T10:00:00Z'));
    expect(resolveDateTime('2026-01-15T12:00:00.250', 'Europe/Berlin')).toBe(utc('2026-01-15T11:00:00.250Z'));
    expect(resolveDateTime('2026-07-01T12:00:00', 'America/New_York')).toBe(utc('2026-07-01T16:00:00Z'));
    expect(resolveDateTime('2026-07-01T12:00:00', 'Asia/Kolkata')).toBe(utc('2026-07-01T06:30:00Z'));
  });

  it('around the spring-forward gap (New York, 2026-03-08 02:00 EST -> 03:00 EDT)', () => {
    expect(resolveDateTime('2026-03-08T01:59:59', 'America/New_York')).toBe(utc('2026-03-08T06:59:59Z'));
    // 02:30 never happens: read with the offset before the gap (RFC 5545 3.3.5), i.e. 03:30 EDT
    expect(resolveDateTime('2026-03-08T02:30:00', 'America/New_York')).toBe(utc('2026-03-08T07:30:00Z'));
    expect(resolveDateTime('2026-03-08T03:00:00', 'America/New_York')).toBe(utc('2026-03-08T07:00:00Z'));
    expect(resolveDateTime('2026-03-08T03:30:00', 'America/New_York')).toBe(utc('2026-03-08T07:30:00Z'));
  });

  it('around the fall-back overlap (New York, 2026-11-01 02:00 EDT -> 01:00 EST)', () => {
    expect(resolveDateTime('2026-11-01T00:59:59', 'America/New_York')).toBe(utc('2026-11-01T04:59:59Z'));
    // 01:30 happens twice: the first occurrence (EDT, -04:00)
    expect(resolveDateTime('2026-11-01T01:30:00', 'America/New_York')).toBe(utc('2026-11-01T05:30:00Z'));
    expect(resolveDateTime('2026-11-01T02:00:00', 'America/New_York')).toBe(utc('2026-11-01T07:00:00Z'));
  });

  it('Europe/Berlin changes at 01:00 UTC (2026-03-29 and 2026-10-25)', () => {
    expect(resolveDateTime('2026-03-29T01:59:00', 'Europe/Berlin')).toBe(utc('2026-03-29T00:59:00Z'));
    expect(resolveDateTime('2026-03-29T02:30:00', 'Europe/Berlin')).toBe(utc('2026-03-29T01:30:00Z'));
    expect(resolveDateTime('2026-03-29T03:00:00', 'Europe/Berlin')).toBe(utc('2026-03-29T01:00:00Z'));
    expect(resolveDateTime('2026-10-25T02:30:00', 'Europe/Berlin')).toBe(utc('2026-10-25T00:30:00Z'));
    expect(resolveDateTime('2026-10-25T03:00:00', 'Europe/Berlin')).toBe(utc('2026-10-25T02:00:00Z'));
  });

  it('the southern hemisphere (Sydney leaves daylight time on 2026-04-05 03:00 AEDT -> 02:00 AEST)', () => {
    expect(resolveDateTime('2026-04-05T02:30:00', 'Australia/Sydney')).toBe(utc('2026-04-04T15:30:00Z'));
    expect(resolveDateTime('2026-04-05T03:30:00', 'Australia/Sydney')).toBe(utc('2026-04-04T17:30:00Z'));
  });

  it('is undefined for text that is not a date-time', () => {
    expect(resolveDateTime('yesterday', 'UTC')).toBeUndefined();
  });
});

describe('time zones', () => {
  it('knows IANA names and refuses others', () => {
    expect(isTimeZone('Europe/Zurich')).toBe(true);
    expect(isTimeZone('Mars/Olympus_Mons')).toBe(false);
    expect(() => assertTimeZone('Mars/Olympus_Mons', 'defaultTimeZone')).toThrow(
      expect.objectContaining({ code: 'INTAKE_BAD_OPTIONS' }),
    );
  });

  it('offsetAt gives the offset in force at an instant', () => {
    expect(offsetAt(utc('2026-03-08T06:59:59Z'), 'America/New_York')).toBe(-5 * 3_600_000);
    expect(offsetAt(utc('2026-03-08T07:00:00Z'), 'America/New_York')).toBe(-4 * 3_600_000);
  });
});
