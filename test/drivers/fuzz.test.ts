import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFixtureFile } from '../../src/drivers/fixtures.js';
import { FUZZ_PAYLOADS, type FuzzTarget, fuzzCharacteristic, fuzzTargets } from '../../src/drivers/fuzz.js';
import { loadDriverModules } from '../../src/drivers/loader.js';

/**
 * Property test over every characteristic of every bundled driver (src/drivers/fuzz.ts): 100,000 payloads
 * each, half random bytes of random length, half mutations of the driver's own fixtures. Whatever the radio
 * sends, a decoder either throws a DecodeError or returns readings that satisfy the contract. Deterministic:
 * the seed is printed with any failure. `npm run driver:test` runs the same for one driver; so does this file
 * with RPM_FUZZ_DRIVERS=<id>[,<id>...] in the environment.
 */
const only = process.env.RPM_FUZZ_DRIVERS?.split(',').filter(Boolean);
const root = join(import.meta.dirname, '../../devices');
const targets: FuzzTarget[] = [];
for (const { driver, dir } of await loadDriverModules(root)) {
  if (only && !only.includes(driver.id)) continue;
  targets.push(...fuzzTargets(driver, await readFixtureFile(join(dir, 'fixtures.json'))));
}

describe('decoders under random and mutated payloads', () => {
  it('covers every characteristic of every bundled driver (or of each driver named)', () => {
    expect(targets.length).toBeGreaterThan(0);
  });

  for (const target of targets) {
    it(`${target.target}: ${FUZZ_PAYLOADS} payloads, only DecodeErrors, only valid readings`, () => {
      const result = fuzzCharacteristic(target);
      expect(result.failure).toBeUndefined();
      expect(result.decoded).toBeGreaterThan(0);
    });
  }
});
