import { BACKEND_NAMES, type BackendName, createCentral } from '../ble/backends.js';
import { loadBundledRegistry } from '../drivers/default-registry.js';
import { UsageError } from '../errors.js';
import { parseCommandArgs } from './args.js';
import type { CommandIo } from './io.js';

export const SCAN_HELP = `Usage: rpm-gateway scan [--seconds 10] [--backend ${BACKEND_NAMES.join('|')}] [--json]

Lists nearby health devices that a bundled driver supports, by profile: pulse oximeters, cuffs,
thermometers, scales, glucose meters, heart-rate straps. Other devices are not shown, and no address is
printed or stored: a neighbour's devices stay private. To enrol one, run "rpm-gateway pair": it scans
again and lets you pick by number (docs/enrolment.md).
Options:
  --seconds <n>      how long to listen (default 10)
  --backend <name>   bluez (default on Linux), noble (raw HCI without BlueZ; optional package
                     @abandonware/noble, see docs/raspberry-pi.md) or sim (simulated devices, no radio)
  --json             one JSON object per device
  -h, --help         show this help`;

export async function scanCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: [...argv],
    options: {
      seconds: { type: 'string', default: '10' },
      backend: { type: 'string', default: 'bluez' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(`${SCAN_HELP}\n`);
    return 0;
  }
  const seconds = Number(values.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 300)
    throw new UsageError('--seconds must be 1 to 300');
  const backend = values.backend as BackendName;
  if (!BACKEND_NAMES.includes(backend))
    throw new UsageError(`--backend must be one of ${BACKEND_NAMES.join(', ')}`);
  const registry = await loadBundledRegistry();
  const central = await createCentral(backend, { agent: false });
  await central.start();
  // Addresses live only in this map, in memory, for the duration of the scan: the list shows a number.
  const found = new Map<
    string,
    { number: number; driver: string; category: string; name: string; rssi?: number }
  >();
  try {
    await central.scan({ durationMs: seconds * 1000 }, (ad) => {
      const driver = registry.match({
        services: ad.services,
        ...(ad.name === undefined ? {} : { name: ad.name }),
        manufacturerIds: [...ad.manufacturerData.keys()],
      });
      if (!driver) return; // not a health device we support: ignored, not recorded
      const known = found.get(ad.address);
      if (known) {
        if (ad.rssi !== undefined) known.rssi = ad.rssi;
        return;
      }
      found.set(ad.address, {
        number: found.size + 1,
        driver: driver.id,
        category: driver.category,
        name: driver.name,
        ...(ad.rssi === undefined ? {} : { rssi: ad.rssi }),
      });
    });
  } finally {
    await central.stop();
  }
  const rows = [...found.values()];
  if (values.json) {
    for (const row of rows) io.stdout.write(`${JSON.stringify(row)}\n`);
  } else if (rows.length === 0) {
    io.stdout.write(
      'no supported health devices nearby (is the device awake? most measure, then advertise)\n',
    );
  } else {
    for (const row of rows) {
      const signal = row.rssi === undefined ? '' : `  ${row.rssi} dBm`;
      io.stdout.write(
        `${String(row.number).padStart(2)}. ${row.category.padEnd(15)} ${row.name} (${row.driver})${signal}\n`,
      );
    }
  }
  return 0;
}
