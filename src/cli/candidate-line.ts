import type { Candidate } from '../enrolment/pairing.js';

/** One row of the list `scan` and `pair` print: number, profile, driver, signal; never the address. */
export function candidateLine(c: Candidate): string {
  const signal = c.rssi === undefined ? '' : `  ${c.rssi} dBm`;
  return `${String(c.number).padStart(2)}. ${c.driver.category.padEnd(15)} ${c.driver.name} (${c.driver.id})${signal}`;
}
