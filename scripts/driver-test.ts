/**
 * `npm run driver:test -- devices/vendor/<vendor>-<model> [more dirs]`: the vendor's conformance run. Loads
 * every bundled driver together (so id clashes and overlapping match rules show up), then for each named
 * driver (all drivers when none is named): replays its fixtures through the conformance kit, runs the fuzz
 * run on each of its characteristics, and runs its simulated device through a simulated session, decoding
 * what it sends. Writes one markdown conformance report per driver. Exit status 1 when anything fails.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkDriver } from '../src/drivers/conformance.js';
import {
  type ModelCheckSummary,
  renderConformanceReport,
  reportPassed,
} from '../src/drivers/conformance-report.js';
import { BUNDLED_DEVICES_DIR } from '../src/drivers/default-registry.js';
import { evidenceOf } from '../src/drivers/evidence.js';
import { driverIdOf, repositoryRoot, sourceDirOf } from '../src/drivers/fixture-paths.js';
import { type FixtureFile, readFixtureFile } from '../src/drivers/fixtures.js';
import { FUZZ_PAYLOADS, fuzzCharacteristic, fuzzTargets } from '../src/drivers/fuzz.js';
import { loadDriverModules } from '../src/drivers/loader.js';
import { DriverRegistry } from '../src/drivers/registry.js';
import type { Driver } from '../src/drivers/sdk/define-driver.js';
import { GatewayError } from '../src/errors.js';
import { packageVersion } from '../src/util/package-version.js';

/** Where reports go unless --out says otherwise: git-ignored, since a report describes one run. */
const REPORT_DIR = 'test-artifacts/conformance';

const HELP = `Usage: npm run driver:test -- [devices/<sig|vendor>/<name> ...] [options]

For each named driver (every bundled driver when none is named), after loading all drivers together:
  1. the conformance kit: its fixtures.json replayed, one line per fixture;
  2. the fuzz run: random and mutated payloads on each characteristic (only DecodeError may be thrown);
  3. the simulator model check: its simulated device (sim.ts, core model or fixture replay) through a
     simulated session, every value decoded by the driver.
Writes a markdown conformance report per driver, to attach to your pull request: by default
${REPORT_DIR}/<sig|vendor>-<name>.md (git-ignored). Exit status 1 when anything fails.
Options:
  --out <file>       where to write the report (one driver only)
  --fuzz <n>         fuzz payloads per characteristic (default ${FUZZ_PAYLOADS})
  -h, --help         show this help`;

async function run(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      out: { type: 'string' },
      fuzz: { type: 'string' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const fuzzPayloads = values.fuzz === undefined ? FUZZ_PAYLOADS : Number(values.fuzz);
  if (!Number.isInteger(fuzzPayloads) || fuzzPayloads < 1) {
    throw new GatewayError('USAGE', `--fuzz takes a positive whole number, got ${values.fuzz}`);
  }
  if (values.out !== undefined && positionals.length !== 1) {
    throw new GatewayError('USAGE', '--out names the report of one driver: name exactly one driver folder');
  }
  const modules = await loadDriverModules(BUNDLED_DEVICES_DIR);
  const registry = new DriverRegistry(modules.map((m) => m.driver)); // throws on clashes between drivers
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
  // Loaded only now: importing the simulator finds every driver's device model.
  const sim = await import('../src/ble/sim/index.js');
  const { checkDeviceModel } = await import('../src/ble/sim/model-check.js');
  const { expectedReplay } = await import('../src/ble/sim/devices/fixture-replay.js');

  const modelCheck = async (driver: Driver, file: FixtureFile): Promise<ModelCheckSummary> => {
    const entry = sim.deviceModelOf(driver.id);
    if (!entry) {
      const why = sim.simulationProblem(driver.id) ?? sim.simulationProblem('*') ?? 'no model';
      return { origin: 'none', payloads: 0, readings: 0, refused: 0, problems: [why], ok: false };
    }
    const build = (options: Parameters<typeof sim.simulatedDevice>[1]) =>
      sim.simulatedDevice(driver.id, options);
    const measurement = build({}).measurement.characteristic;
    const result = await checkDeviceModel(driver, build, {
      registry,
      ...(entry.origin === 'fixtures' ? { expected: expectedReplay(file, measurement) } : {}),
    });
    return { origin: entry.origin, ...result };
  };

  let failedDrivers = 0;
  for (const { driver, dir } of selected) {
    const file = await readFixtureFile(join(sourceDirOf(dir), 'fixtures.json'));
    const conformance = checkDriver(driver, file);
    console.log(`${conformance.driver}`);
    for (const result of conformance.results) {
      console.log(`  ${result.ok ? 'ok  ' : 'FAIL'} ${result.fixture.char} ${result.fixture.name}`);
      for (const problem of result.problems) console.log(`         ${problem}`);
    }
    for (const problem of conformance.driverProblems) console.log(`  FAIL ${problem}`);
    const fuzz = fuzzTargets(driver, file).map((target) =>
      fuzzCharacteristic(target, { payloads: fuzzPayloads }),
    );
    for (const f of fuzz) {
      console.log(`  ${f.failure === undefined ? 'ok  ' : 'FAIL'} fuzz ${f.target}: ${f.payloads} payloads`);
      if (f.failure !== undefined) console.log(`         ${f.failure}`);
    }
    const model = await modelCheck(driver, file);
    console.log(`  ${model.ok ? 'ok  ' : 'FAIL'} simulator (${model.origin}): ${model.payloads} values`);
    for (const problem of model.problems) console.log(`         ${problem}`);
    const evidence = evidenceOf(driver, file);
    const input = {
      driver,
      fixtures: file,
      conformance,
      fuzz,
      model,
      evidence,
      gatewayVersion: packageVersion(),
      generatedAt: new Date().toISOString().slice(0, 16).concat('Z'),
    };
    const out = resolve(
      values.out ?? join(repositoryRoot(), REPORT_DIR, `${driver.id.replace('/', '-')}.md`),
    );
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, renderConformanceReport(input));
    const passed = reportPassed(input);
    if (!passed) failedDrivers++;
    const status = evidence.verified ? 'verified' : 'unverified';
    console.log(
      `  ${passed ? 'PASS' : 'FAIL'} (${status}: ${evidence.capture} captured, ${evidence.constructed} constructed fixtures); report ${relative(process.cwd(), out)}`,
    );
  }
  console.log(`${selected.length - failedDrivers} driver(s) passed, ${failedDrivers} failed`);
  return failedDrivers === 0 ? 0 : 1;
}

try {
  process.exitCode = await run();
} catch (error) {
  console.error(error instanceof GatewayError ? `driver:test: ${error.message} [${error.code}]` : error);
  process.exitCode = error instanceof GatewayError ? 2 : 70;
}
