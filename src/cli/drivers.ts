import { BUNDLED_DEVICES_DIR } from '../drivers/default-registry.js';
import { evidenceOfModule } from '../drivers/evidence.js';
import { loadDriverModules } from '../drivers/loader.js';
import { DriverRegistry } from '../drivers/registry.js';
import { parseCommandArgs } from './args.js';
import type { CommandIo } from './io.js';

export const DRIVERS_HELP = `Usage: rpm-gateway drivers [--json]

Lists the device drivers bundled under devices/: id, version, device category, how a device is recognised,
the characteristics each decodes, and the evidence behind it: how many of its fixtures are real captures
and how many were constructed from documents. A driver without a captured fixture of a measurement is
marked "unverified": its decoder, its fixtures and a simulator built from them may all repeat one misreading
of a document.
Options:
  --json      one JSON object per driver
  -h, --help  show this help`;

export async function driversCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: [...argv],
    options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.stdout.write(`${DRIVERS_HELP}\n`);
    return 0;
  }
  const modules = await loadDriverModules(BUNDLED_DEVICES_DIR);
  const registry = new DriverRegistry(modules.map((m) => m.driver)); // the same checks a hub makes
  const dirs = new Map(modules.map((m) => [m.driver.id, m.dir]));
  for (const driver of registry.drivers) {
    const characteristics = driver.characteristics.map((c) => c.uuid);
    const match = [
      driver.match.services?.length ? `services ${driver.match.services.join(',')}` : '',
      driver.match.name ? `name ${driver.match.name}` : '',
      driver.match.manufacturerId === undefined
        ? ''
        : `manufacturer 0x${driver.match.manufacturerId.toString(16)}`,
    ].filter(Boolean);
    const evidence = await evidenceOfModule(driver, dirs.get(driver.id) as string);
    const status = 'unavailable' in evidence ? 'unknown' : evidence.verified ? 'verified' : 'unverified';
    if (values.json) {
      const summary = {
        id: driver.id,
        version: driver.version,
        name: driver.name,
        category: driver.category,
      };
      const fixtures =
        'unavailable' in evidence ? null : { capture: evidence.capture, constructed: evidence.constructed };
      io.stdout.write(
        `${JSON.stringify({ ...summary, match, characteristics, evidence: status, fixtures })}\n`,
      );
    } else {
      io.stdout.write(`${driver.id}@${driver.version}  ${driver.name} [${driver.category}]  ${status}\n`);
      io.stdout.write(`    match: ${match.join('; ')}\n    characteristics: ${characteristics.join(' ')}\n`);
      io.stdout.write(
        'unavailable' in evidence
          ? `    fixtures: ${evidence.unavailable}\n`
          : `    fixtures: ${evidence.capture} captured, ${evidence.constructed} constructed\n`,
      );
    }
  }
  return 0;
}
