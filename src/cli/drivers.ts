import { loadBundledRegistry } from '../drivers/default-registry.js';
import { parseCommandArgs } from './args.js';
import type { CommandIo } from './io.js';

export const DRIVERS_HELP = `Usage: rpm-gateway drivers [--json]

Lists the device drivers bundled under devices/: id, version, device category, how a device is recognised,
and the characteristics each decodes.
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
  const registry = await loadBundledRegistry();
  for (const driver of registry.drivers) {
    const characteristics = driver.characteristics.map((c) => c.uuid);
    const match = [
      driver.match.services?.length ? `services ${driver.match.services.join(',')}` : '',
      driver.match.name ? `name ${driver.match.name}` : '',
      driver.match.manufacturerId === undefined
        ? ''
        : `manufacturer 0x${driver.match.manufacturerId.toString(16)}`,
    ].filter(Boolean);
    if (values.json) {
      const summary = {
        id: driver.id,
        version: driver.version,
        name: driver.name,
        category: driver.category,
      };
      io.stdout.write(`${JSON.stringify({ ...summary, match, characteristics })}\n`);
    } else {
      io.stdout.write(`${driver.id}@${driver.version}  ${driver.name} [${driver.category}]\n`);
      io.stdout.write(`    match: ${match.join('; ')}\n    characteristics: ${characteristics.join(' ')}\n`);
    }
  }
  return 0;
}
