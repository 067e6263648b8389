import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkDriver } from '../../src/drivers/conformance.js';
import { readFixtureFile } from '../../src/drivers/fixtures.js';
import { loadDriverModules } from '../../src/drivers/loader.js';
import { DriverRegistry } from '../../src/drivers/registry.js';

// Every driver under devices/ replays its own fixtures through the conformance kit (the same check vendors
// run with `npm run driver:test`). One test per fixture, so a failure names the vector.
const devicesRoot = join(import.meta.dirname, '../../devices');
const modules = await loadDriverModules(devicesRoot);

describe('driver registry', () => {
  it('loads every driver under devices/ together without conflicts', () => {
    const registry = new DriverRegistry(modules.map((m) => m.driver));
    expect(registry.drivers.length).toBe(modules.length);
    expect(modules.length).toBeGreaterThan(0);
  });
});

for (const { driver, dir } of modules) {
  describe(`${driver.id}@${driver.version}`, async () => {
    const file = await readFixtureFile(join(dir, 'fixtures.json'));
    const report = checkDriver(driver, file);
    it('has a passing fixture for every declared characteristic', () => {
      expect(report.driverProblems).toEqual([]);
    });
    for (const result of report.results) {
      it(`${result.fixture.char} ${result.fixture.name}`, () => {
        expect(result.problems).toEqual([]);
      });
    }
  });
}
