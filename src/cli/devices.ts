import { table } from '../control/status.js';
import type { EnrolledDeviceView } from '../enrolment/guided.js';
import { UsageError } from '../errors.js';
import { parseCommandArgs } from './args.js';
import { RUNTIME_DIR_HELP, RUNTIME_DIR_OPTION, useControl } from './control-access.js';
import { STORE_OPTIONS, STORE_OPTIONS_HELP } from './enrolment-store.js';
import type { CommandIo } from './io.js';

export const DEVICES_HELP = `Usage: rpm-gateway devices [--json] [--show-addresses]

Lists the enrolled devices: id, label, driver, profile, bond, when enrolled. Only these are read; every
other device nearby is ignored. Addresses are not shown unless asked for (they identify the patient's
devices); showing them is recorded in the audit log. While the hub runs it is asked through its control
socket (as root or the service user: docs/control-socket.md); otherwise the store is read directly.
Options:
  --json                 one JSON object per device
  --show-addresses       include each device's Bluetooth address (audited)
${RUNTIME_DIR_HELP}
${STORE_OPTIONS_HELP}
  -h, --help             show this help`;

export async function devicesCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      json: { type: 'boolean' },
      'show-addresses': { type: 'boolean' },
      ...STORE_OPTIONS,
      ...RUNTIME_DIR_OPTION,
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(`${DEVICES_HELP}\n`);
    return 0;
  }
  if (positionals.length > 0)
    throw new UsageError('devices takes no arguments (to remove one: rpm-gateway forget <id>)');
  const showAddresses = values['show-addresses'] === true;
  // Listing needs no store: without a hub or a store there is nothing enrolled, and no key file is made for it.
  const opened = await useControl(values, io, { create: false });
  let devices: EnrolledDeviceView[] = [];
  if (opened) {
    try {
      devices = await opened.control.devices({ addresses: showAddresses, actor: 'cli' });
    } finally {
      opened.close();
    }
  }
  if (values.json) {
    for (const device of devices) io.stdout.write(`${JSON.stringify(toJson(device))}\n`);
    return 0;
  }
  if (devices.length === 0) {
    io.stdout.write('no devices enrolled (pair one with: rpm-gateway pair)\n');
    return 0;
  }
  const rows = devices.map((d) => [
    d.id,
    d.profile,
    d.driver,
    d.bonded ? 'yes' : 'no',
    isoSeconds(d.enrolledAt),
    ...(showAddresses ? [d.address ?? ''] : []),
    d.label ?? '',
  ]);
  const header = [
    'ID',
    'PROFILE',
    'DRIVER',
    'BONDED',
    'ENROLLED',
    ...(showAddresses ? ['ADDRESS'] : []),
    'LABEL',
  ];
  io.stdout.write(
    table([header, ...rows])
      .map((line) => `${line}\n`)
      .join(''),
  );
  if (showAddresses)
    io.stderr.write("addresses identify the patient's devices: treat this output as health data\n");
  return 0;
}

/** The JSON lines `devices --json` has always printed. */
function toJson(device: EnrolledDeviceView): Record<string, unknown> {
  return {
    id: device.id,
    label: device.label,
    driver: device.driver,
    profile: device.profile,
    model: device.model,
    bonded: device.bonded,
    enrolledAt: device.enrolledAt,
    updatedAt: device.updatedAt,
    lastSeenAt: device.lastSeenAt,
    ...(device.address === undefined ? {} : { address: device.address }),
  };
}

function isoSeconds(iso: string): string {
  return iso.replace(/\.\d{3}Z$/, 'Z');
}
