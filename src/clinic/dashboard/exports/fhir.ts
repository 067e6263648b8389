import { CollectionBundleWriter } from '../../fhir/bundle.js';
import { type MappingOptions, mapMeasurement } from '../../fhir/mapping.js';
import type { ClinicStore } from '../../storage/clinic-store.js';
import { ExportError } from './errors.js';
import { measurementPages } from './pages.js';

/**
 * The most measurements one FHIR download holds. A Bundle is one JSON document, which a reader (an EHR's
 * import, a script) parses whole, and a measurement becomes about 5 KB of it (a blood pressure reading: the
 * panel, the pulse, the coincident time stamp): 10,000 measurements make some 50 MB, about 3 hours of a
 * reading a second or years of spot checks. A range holding more is refused (EXPORT_TOO_MANY_READINGS, with
 * the advice to shorten it or use the CSV, which holds any range), never cut short: a clinical file that
 * silently ends early would look complete.
 */
export const MAX_FHIR_MEASUREMENTS = 10_000;

/**
 * Measurements mapped between two turns of the event loop: mapping one takes about a millisecond (a SHA-256
 * per resource for its fullUrl), so the dashboard's other requests and the live feed wait at most about
 * this many milliseconds for a FHIR download.
 */
const MAP_BATCH = 50;

/** Throws EXPORT_TOO_MANY_READINGS when [from, to) holds more than MAX_FHIR_MEASUREMENTS measurements. */
export async function checkFhirSize(
  clinic: ClinicStore,
  range: { readonly mrn: string; readonly from: number; readonly to: number },
): Promise<void> {
  let count = 0;
  for await (const page of measurementPages(clinic, range)) {
    count += page.length;
    if (count > MAX_FHIR_MEASUREMENTS) {
      throw new ExportError(
        'EXPORT_TOO_MANY_READINGS',
        `The range holds more than ${MAX_FHIR_MEASUREMENTS.toLocaleString('en')} readings, more than one FHIR file may. Choose a shorter range, or download the CSV, which holds any range.`,
      );
    }
  }
}

/**
 * A patient's measurements over [from, to) as one collection Bundle (src/clinic/fhir/bundle.ts), in pieces of
 * JSON text, mapped by the FHIR export's own mapping (src/clinic/fhir/mapping.ts) with the clinic's identifier
 * systems. The range's size was checked first (checkFhirSize); readings committed between that check and
 * this walk are in the file too (the bound is one of size, not of content). `tally` counts what was written.
 */
export async function* fhirChunks(
  clinic: ClinicStore,
  range: { readonly mrn: string; readonly from: number; readonly to: number },
  mapping: MappingOptions,
  assembledAt: number,
  tally: { measurements: number; rows: number },
): AsyncGenerator<string> {
  const writer = new CollectionBundleWriter(
    { system: mapping.patientIdentifierSystem, mrn: range.mrn },
    assembledAt,
  );
  yield writer.open();
  tally.rows += 1;
  for await (const page of measurementPages(clinic, range)) {
    for (let i = 0; i < page.length; i += MAP_BATCH) {
      const batch = page.slice(i, i + MAP_BATCH);
      const { text, entries } = writer.add(batch.map((s) => mapMeasurement(s, range.mrn, mapping)));
      tally.measurements += batch.length;
      tally.rows += entries;
      if (text !== '') yield text;
    }
  }
  yield writer.close();
}
