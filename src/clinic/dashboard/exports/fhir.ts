import type { Bundle } from 'fhir/r4.js';
import { collectionBundle } from '../../fhir/bundle.js';
import { type MappingOptions, mapMeasurement } from '../../fhir/mapping.js';
import type { ClinicStore, StoredMeasurement } from '../../storage/clinic-store.js';
import { ExportError } from './errors.js';
import { measurementPages } from './pages.js';

/**
 * The most measurements one FHIR download holds. A Bundle is one JSON document that a reader parses whole, and
 * each measurement becomes one to four resources of about a kilobyte: 10,000 measurements (about 3 hours of
 * a reading a second, or years of spot checks) make a file of some 15-40 MB, which the server builds in
 * memory and an EHR import still takes. A range holding more is refused (EXPORT_TOO_MANY_READINGS, with the
 * advice to shorten it or use the CSV, which streams any range), never cut short: a clinical file that
 * silently ends early would look complete.
 */
export const MAX_FHIR_MEASUREMENTS = 10_000;

/**
 * A patient's measurements over [from, to) as one collection Bundle (src/clinic/fhir/bundle.ts), mapped by
 * the FHIR export's own mapping (src/clinic/fhir/mapping.ts) with the clinic's identifier systems, so the
 * file carries the identifiers the EHR holds.
 */
export async function fhirExport(
  clinic: ClinicStore,
  range: { readonly mrn: string; readonly from: number; readonly to: number },
  mapping: MappingOptions,
  assembledAt: number,
): Promise<{ readonly bundle: Bundle; readonly measurements: number }> {
  const stored: StoredMeasurement[] = [];
  for await (const page of measurementPages(clinic, range)) {
    stored.push(...page);
    if (stored.length > MAX_FHIR_MEASUREMENTS) {
      throw new ExportError(
        'EXPORT_TOO_MANY_READINGS',
        `The range holds more than ${MAX_FHIR_MEASUREMENTS.toLocaleString('en')} readings, more than one FHIR file may. Choose a shorter range, or download the CSV, which holds any range.`,
      );
    }
  }
  const mapped = stored.map((s) => mapMeasurement(s, range.mrn, mapping));
  const bundle = collectionBundle(
    mapped,
    { system: mapping.patientIdentifierSystem, mrn: range.mrn },
    assembledAt,
  );
  return { bundle, measurements: stored.length };
}
