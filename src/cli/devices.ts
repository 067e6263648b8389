import { UsageError } from '../errors.js';
import type { EnrolledDevice } from '../store/device-registry.js';
import { parseCommandArgs } from './args.js';
import {
  openRegistry,
  STORE_OPTIONS,
  STORE_OPTIONS_HELP,
  storeExists,
  storeLocation,
} from './enrolment-store.js';
import type { CommandIo } from './io.js';

export const DEVICES_HELP = `Usage: rpm-gateway devices [--json] [--show-addresses]

Lists the enrolled devices: id, label, driver, profile, bond, when enrolled. Only these are read; every
other device nearby is ignored. Addresses are not shown unless asked for (they identify the patient's
devices); showing them is recorded in the audit log. Stop the running gateway first: it owns the store.
Options:
  --json                 one JSON object per device
  --show-addresses       include each device's Bluetooth address (audited)
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
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(`${DEVICES_HELP}\n`);
    return 0;
  }
  if (positionals.length > 0)
    throw new UsageError('devices takes no arguments (to remove one: rpm-gateway forget <id>)');
  const location = storeLocation(values, io);
  let devices: EnrolledDevice[] = [];
  // Listing needs no store: without one there is nothing enrolled, and no key file is created for it.
  if (storeExists(location)) {
    const store = await openRegistry(location);
    try {
      devices = store.registry.list();
    } finally {
      store.close();
    }
  }
  const showAddresses = values['show-addresses'] === true;
  if (showAddresses && devices.length > 0) {
    location.audit.record('device.addresses-shown', 'cli', { devices: devices.map((d) => d.id) });
  }
  if (values.json) {
    for (const device of devices) io.stdout.write(`${JSON.stringify(toJson(device, showAddresses))}\n`);
    return 0;
  }
  if (devices.length === 0) {
    io.stdout.write('no devices enrolled (pair one with: rpm-gateway pair)\n');
    return 0;
  }
  const rows = devices.map((d) => [
    d.id,
    d.category,
    d.driverId,
    d.bonded ? 'yes' : 'no',
    isoSeconds(d.enrolledAt),
    ...(showAddresses ? [d.address] : []),
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
  io.stdout.write(table([header, ...rows]));
  if (showAddresses)
    io.stderr.write("addresses identify the patient's devices: treat this output as health data\n");
  return 0;
}

function toJson(device: EnrolledDevice, withAddress: boolean): Record<string, unknown> {
  return {
    id: device.id,
    label: device.label,
    driver: device.driverId,
    profile: device.category,
    model: device.model,
    bonded: device.bonded,
    enrolledAt: new Date(device.enrolledAt).toISOString(),
    updatedAt: new Date(device.updatedAt).toISOString(),
    lastSeenAt: device.lastSeenAt === null ? null : new Date(device.lastSeenAt).toISOString(),
    ...(withAddress ? { address: device.address } : {}),
  };
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Left-aligned columns two spaces apart; the last column is not padded. */
function table(rows: readonly (readonly string[])[]): string {
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}
