/**
 * Durations and sizes in the configuration are written with their unit ("60s", "10min", "64KiB"), so a
 * number never has to be guessed at: is 600 seconds or milliseconds? The parsed configuration holds
 * milliseconds and bytes.
 *
 * Durations follow a subset of systemd.time(7) ("Parsing Time Spans"): a number and a unit, several of them
 * added up ("1h 30min"). Sizes use the IEC binary prefixes (IEC 80000-13: KiB = 1024 B), so "1GiB" means
 * exactly what `store status` reports.
 */

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  sec: 1_000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const SIZE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};

export const DURATION_HELP = 'a duration with its unit: ms, s, min, h or d, e.g. "60s", "10min", "1h 30min"';
export const SIZE_HELP = 'a size with its unit: B, KiB, MiB or GiB, e.g. "64KiB", "1GiB"';

/** Milliseconds, or undefined for text that is not a duration. */
export function parseDuration(text: string): number | undefined {
  return parseQuantity(text, DURATION_UNITS);
}

/** Bytes, or undefined for text that is not a size. */
export function parseSize(text: string): number | undefined {
  return parseQuantity(text, SIZE_UNITS);
}

const PART = /^(\d+(?:\.\d+)?)\s*([A-Za-z]+)/;

function parseQuantity(text: string, units: Readonly<Record<string, number>>): number | undefined {
  let rest = text.trim();
  if (rest === '') return undefined;
  let total = 0;
  while (rest !== '') {
    const match = PART.exec(rest);
    if (!match) return undefined;
    const unit = match[2] as string;
    if (!Object.hasOwn(units, unit)) return undefined;
    const factor = units[unit] as number;
    total += Number(match[1]) * factor;
    rest = rest.slice(match[0].length).trimStart();
  }
  return Number.isSafeInteger(Math.round(total)) ? Math.round(total) : undefined;
}
