import { parseArgs } from 'node:util';
import { loadBundledRegistry } from '../drivers/default-registry.js';
import type { CommandIo } from './io.js';

export const START_HELP = `Usage: rpm-gateway start

Runs the hub. This release ships the decoding layer (drivers, the decode command); the radio sessions,
encrypted outbox and mutual-TLS uplink land in the next releases (see README.md, "Status"). Until then
"start" prints what the hub will do with the bundled drivers and exits 0.
Options:
  -h, --help  show this help`;

export async function startCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    io.stdout.write(`${START_HELP}\n`);
    return 0;
  }
  const registry = await loadBundledRegistry();
  const lines = [
    'rpm-gateway: what this hub will do',
    '  1. find enrolled Bluetooth LE medical sensors (other devices nearby are ignored)',
    '  2. decode each reading with its driver:',
    ...registry.drivers.map((d) => `       - ${d.name} (${d.id}@${d.version})`),
    '  3. keep every reading in an encrypted local outbox until the clinic acknowledges it',
    '  4. send readings, signed, over mutual-TLS MQTT to the clinic broker',
    '',
    'Available now: the decoding layer. Try:',
    '  npx rpm-gateway decode 2a35 00780050005d00   (a blood pressure reading)',
    '  npx rpm-gateway drivers',
    'Not yet available: radio sessions, outbox, uplink (see README.md, "Status").',
  ];
  io.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
