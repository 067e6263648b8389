import type { CandidateView } from '../enrolment/guided.js';
import type { Candidate } from '../enrolment/pairing.js';

/** One row of the list `scan` and `pair` print: number, profile, driver, signal; never the address. */
export function candidateLine(c: Candidate): string {
  return line(c.number, c.driver.category, c.driver.name, c.driver.id, c.rssi);
}

/** The same row for a candidate as the enrolment (or the running hub) lists it. */
export function candidateViewLine(c: CandidateView): string {
  return line(c.number, c.profile, c.driverName, c.driver, c.rssi ?? undefined);
}

function line(number: number, profile: string, name: string, id: string, rssi: number | undefined): string {
  const signal = rssi === undefined ? '' : `  ${rssi} dBm`;
  return `${String(number).padStart(2)}. ${profile.padEnd(15)} ${name} (${id})${signal}`;
}
