/**
 * `npm run driver:test -- devices/vendor/<vendor>-<model> [more dirs]`: the vendor's conformance run. Loads
 * every bundled driver together (so id clashes and overlapping match rules show up), then replays the named
 * drivers' fixtures (all drivers when none is named) and prints one line per fixture. Exit status 1 when
 * anything fails.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checkDriver } from '../src/drivers/conformance.js';
import { BUNDLED_DEVICES_DIR } from '../src/drivers/default-registry.js';
import { driverIdOf, sourceDirOf } from '../src/drivers/fixture-paths.js';
import { readFixtureFile } from '../src/drivers/fixtures.js';
import { loadDriverModules } from '../src/drivers/loader.js';
import { DriverRegistry } from '../src/drivers/registry.js';
import { GatewayError } from '../src/errors.js';

const HELP = `Usage: npm run driver:test -- [devices/<sig|vendor>/<name> ...]

Replays each named driver's fixtures.json through the conformance kit (every bundled driver when none is
named) after loading all drivers together. Prints "ok" or "FAIL" per fixture and a summary line.`;

async function run(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const modules = await loadDriverModules(BUNDLED_DEVICES_DIR);
  new DriverRegistry(modules.map((m) => m.driver)); // throws on clashes between drivers
  const wanted = positionals.map((dir) => {
    const id = driverIdOf(dir);
    if (!id) throw new GatewayError('USAGE', `${dir} is not a devices/<sig|vendor>/<name> folder`);
    return id;
  });
  const selected = wanted.length === 0 ? modules : modules.filter((m) => wanted.includes(m.driver.id));
  for (const id of wanted) {
    if (!selected.some((m) => m.driver.id === id)) {
      throw new GatewayError(
        'USAGE',
        `no driver ${id} (is there a driver.ts exporting defineDriver, and did it build?)`,
      );
    }
  }
  let passed = 0;
  let failed = 0;
  for (const { driver, dir } of selected) {
    const report = checkDriver(driver, await readFixtureFile(join(sourceDirOf(dir), 'fixtures.json')));
    console.log(`${report.driver}`);
    for (const result of report.results) {
      console.log(`  ${result.ok ? 'ok  ' : 'FAIL'} ${result.fixture.char} ${result.fixture.name}`);
      for (const problem of result.problems) console.log(`         ${problem}`);
      if (result.ok) passed++;
      else failed++;
    }
    for (const problem of report.driverProblems) {
      console.log(`  FAIL ${problem}`);
      failed++;
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

try {
  process.exitCode = await run();
} catch (error) {
  console.error(error instanceof GatewayError ? `driver:test: ${error.message} [${error.code}]` : error);
  process.exitCode = error instanceof GatewayError ? 2 : 70;
}
