import type { ClinicStore, MeasurementCursor, StoredMeasurement } from '../../storage/clinic-store.js';

/**
 * Measurements per store page: a page's rows are in memory at once (a few hundred KiB), the next one is read
 * only when the response has taken the last (the stream's backpressure), so a month of a reading a second
 * (2.6 million) never is.
 */
export const EXPORT_PAGE_SIZE = 1_000;

/** A patient's measurements over [from, to), page after page (ClinicStore.measurementPage), in (time, id) order. */
export async function* measurementPages(
  clinic: ClinicStore,
  range: { readonly mrn: string; readonly from: number; readonly to: number },
  pageSize = EXPORT_PAGE_SIZE,
): AsyncGenerator<StoredMeasurement[]> {
  let after: MeasurementCursor | undefined;
  for (;;) {
    const page = await clinic.measurementPage({ ...range, limit: pageSize, ...(after ? { after } : {}) });
    if (page.length > 0) yield page;
    if (page.length < pageSize) return;
    const last = page[page.length - 1] as StoredMeasurement;
    after = { measuredAt: last.measuredAt, measurementId: last.measurement.id };
  }
}
