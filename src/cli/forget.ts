import { UsageError } from '../errors.js';
import { DeviceError } from '../store/device-errors.js';
import { DEVICE_ID_PATTERN, notEnrolled } from '../store/device-registry.js';
import { parseCommandArgs } from './args.js';
import {
  openRegistry,
  STORE_OPTIONS,
  STORE_OPTIONS_HELP,
  storeExists,
  storeLocation,
} from './enrolment-store.js';
import type { CommandIo } from './io.js';
import { LinePrompt } from './prompt.js';

export const FORGET_HELP = `Usage: rpm-gateway forget <device-id> [--yes] [--show-address]

Removes a device from the enrolled devices (ids: see "rpm-gateway devices"): the gateway stops reading it,
and its address and label are deleted from the encrypted store. Its id is never given to another device.
Readings it took while enrolled that are still in the outbox are sent as usual.

The Bluetooth adapter keeps its own bond (pairing keys) with the device until removed there:
"bluetoothctl remove <address>". The address is printed only with --show-address (audited).
Stop the running gateway first: it owns the store.
Options:
  --yes                  do not ask for confirmation
  --show-address         print the bluetoothctl command with the device's address (audited)
${STORE_OPTIONS_HELP}
  -h, --help             show this help`;

export async function forgetCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      yes: { type: 'boolean' },
      'show-address': { type: 'boolean' },
      ...STORE_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(`${FORGET_HELP}\n`);
    return 0;
  }
  const [id, ...extra] = positionals;
  if (id === undefined || extra.length > 0)
    throw new UsageError('name one device id (see: rpm-gateway devices)');
  const location = storeLocation(values, io);
  // Checked before opening: no store (or key file) is created just to find it empty.
  if (!DEVICE_ID_PATTERN.test(id) || !storeExists(location)) throw notEnrolled(id);
  const say = (line: string) => io.stdout.write(`${line}\n`);
  const prompt = new LinePrompt(io.stdin, io.stdout);
  const store = await openRegistry(location);
  try {
    const device = store.registry.require(id);
    const name = `${device.id} (${device.category}, ${device.driverId}${device.label ? `, "${device.label}"` : ''})`;
    if (!values.yes && !(await prompt.confirm(`Forget ${name}? The gateway will stop reading it.`))) {
      throw new DeviceError('DEVICE_NOT_CHOSEN', 'nothing was changed');
    }
    store.registry.forget(device.id);
    location.audit.record('device.forgotten', 'cli', {
      device: device.id,
      driver: device.driverId,
      profile: device.category,
      bonded: device.bonded,
    });
    say(`forgot ${name}`);
    say('readings it took while enrolled that are still in the outbox will be sent as usual');
    if (device.bonded) {
      if (values['show-address']) {
        location.audit.record('device.addresses-shown', 'cli', { devices: [device.id] });
        say(`the adapter still holds its bond; to remove it: bluetoothctl remove ${device.address}`);
      } else {
        say(
          'the adapter still holds its bond; to remove it: bluetoothctl remove <address> (find it with ' +
            '"bluetoothctl devices Bonded"; the address is not printed here, for privacy)',
        );
      }
    }
    return 0;
  } finally {
    prompt.close();
    store.close();
  }
}
