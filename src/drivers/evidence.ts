import { join } from 'node:path';
import { normalizeUuid } from '../gatt/uuid.js';
import { sourceDirOf } from './fixture-paths.js';
import { type FixtureFile, type Provenance, provenanceOf, readFixtureFile } from './fixtures.js';
import type { Driver } from './sdk/define-driver.js';

/**
 * How well a driver's fixtures tie it to a real device: counts of captured and constructed fixtures, and
 * `verified` only when a characteristic that emits observations has a captured fixture. Shown by
 * `rpm-gateway drivers` and in the conformance report (`npm run driver:test`).
 */
export function evidenceOf(driver: Driver, file: FixtureFile): Provenance {
  const measuring = new Set(
    driver.characteristics.filter((c) => c.emits.length > 0).map((c) => normalizeUuid(c.uuid)),
  );
  return provenanceOf(file, (char) => {
    try {
      return measuring.has(normalizeUuid(char));
    } catch {
      return false; // a fixture with a malformed UUID verifies nothing (the conformance kit reports it)
    }
  });
}

/** The evidence of a loaded driver from the fixtures.json beside its source, or why there is none. */
export async function evidenceOfModule(
  driver: Driver,
  dir: string,
): Promise<Provenance | { readonly unavailable: string }> {
  try {
    return evidenceOf(driver, await readFixtureFile(join(sourceDirOf(dir), 'fixtures.json')));
  } catch {
    return { unavailable: 'no readable fixtures.json beside the driver' };
  }
}
