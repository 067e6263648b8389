import { UsageError } from '../errors.js';
import { DeviceError } from '../store/device-errors.js';
import { DEVICE_ID_PATTERN, notEnrolled } from '../store/device-registry.js';
import { parseCommandArgs } from './args.js';
import { RUNTIME_DIR_HELP, RUNTIME_DIR_OPTION, useControl } from './control-access.js';
import { STORE_OPTIONS, STORE_OPTIONS_HELP } from './enrolment-store.js';
import type { CommandIo } from './io.js';
import { LinePrompt } from './prompt.js';

export const FORGET_HELP = `Usage: rpm-gateway forget <device-id> [--yes] [--show-address]

Removes a device from the enrolled devices (ids: see "rpm-gateway devices"): the gateway stops reading it,
and its address and label are deleted from the encrypted store. Its id is never given to another device.
Readings it took while enrolled that are still in the outbox are sent as usual.

The Bluetooth adapter keeps its own bond (pairing keys) with the device until removed there:
"bluetoothctl remove <address>". The address is printed only with --show-address (audited).
While the hub runs it is asked through its control socket and stops reading the device at once (as root or
the service user: docs/control-socket.md); otherwise the store is changed directly.
Options:
  --yes                  do not ask for confirmation
  --show-address         print the bluetoothctl command with the device's address (audited)
${RUNTIME_DIR_HELP}
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
      ...RUNTIME_DIR_OPTION,
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
  // Checked before anything is opened: no store (or key file) is created just to find it empty.
  if (!DEVICE_ID_PATTERN.test(id)) throw notEnrolled(id);
  const opened = await useControl(values, io, { create: false });
  if (!opened) throw notEnrolled(id);
  const say = (line: string) => io.stdout.write(`${line}\n`);
  const prompt = new LinePrompt(io.stdin, io.stdout);
  try {
    const { control, via } = opened;
    const found = (await control.devices({ addresses: false, actor: 'cli' })).find((d) => d.id === id);
    if (!found) throw notEnrolled(id);
    const name = `${found.id} (${found.profile}, ${found.driver}${found.label ? `, "${found.label}"` : ''})`;
    if (!values.yes && !(await prompt.confirm(`Forget ${name}? The gateway will stop reading it.`))) {
      throw new DeviceError('DEVICE_NOT_CHOSEN', 'nothing was changed');
    }
    const showAddress = values['show-address'] === true;
    const device = await control.forget(found.id, { actor: 'cli', showAddress });
    say(`forgot ${name}`);
    if (via === 'hub') say('the running hub has stopped reading it');
    say('readings it took while enrolled that are still in the outbox will be sent as usual');
    if (device.bonded) {
      if (showAddress && device.address !== undefined) {
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
    opened.close();
  }
}
