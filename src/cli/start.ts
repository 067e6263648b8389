import { loadBundledRegistry } from '../drivers/default-registry.js';
import { keyProtection } from '../store/key-protection.js';
import { parseCommandArgs } from './args.js';
import { STORE_OPTIONS, STORE_OPTIONS_HELP, storeLocation } from './enrolment-store.js';
import type { CommandIo } from './io.js';

export const START_HELP = `Usage: rpm-gateway start

Runs the hub. This release ships the decoding layer, the encrypted outbox, the PKI, the signed wire format,
the mutual-TLS uplink and the embedded clinical broker; the Bluetooth sessions and the runtime that wires
them together behind "start" come next (see README.md, "Status"). Until then "start" prints what the hub
will do with the bundled drivers, and what its store key protects against, and exits 0.
Options:
${STORE_OPTIONS_HELP}
  -h, --help             show this help`;

export async function startCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: [...argv],
    options: { ...STORE_OPTIONS, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.stdout.write(`${START_HELP}\n`);
    return 0;
  }
  const registry = await loadBundledRegistry();
  const location = storeLocation(values, io);
  const protection = await keyProtection(location.keys, { storePath: location.paths.store });
  const lines = [
    'rpm-gateway: what this hub will do',
    '  1. find enrolled Bluetooth LE medical sensors (other devices nearby are ignored)',
    '  2. decode each reading with its driver:',
    ...registry.drivers.map((d) => `       - ${d.name} (${d.id}@${d.version})`),
    '  3. keep every reading in an encrypted local outbox until the clinic acknowledges it',
    '  4. send readings, signed, over mutual-TLS MQTT to the clinic broker',
    '',
    `Store: ${location.paths.store}, key from ${location.keys.description}`,
    `Store key: ${protection.summary}`,
    '',
    'Available now as commands:',
    '  npx rpm-gateway decode 2a35 00780050005d00   (a blood pressure reading)',
    '  npx rpm-gateway drivers',
    '  npx rpm-gateway store status                 (the encrypted outbox)',
    '  npx rpm-gateway certs init --dir certs/dev   (a development PKI)',
    'Not yet wired behind "start": Bluetooth sessions and the runtime (see README.md, "Status").',
  ];
  io.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
