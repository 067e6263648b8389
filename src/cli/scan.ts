import { BACKEND_NAMES, type BackendName, createCentral } from '../ble/backends.js';
import { loadBundledRegistry } from '../drivers/default-registry.js';
import { type Candidate, findCandidates } from '../enrolment/pairing.js';
import { UsageError } from '../errors.js';
import { parseCommandArgs } from './args.js';
import { candidateLine } from './candidate-line.js';
import type { CommandIo } from './io.js';

export const SCAN_HELP = `Usage: rpm-gateway scan [--seconds 10] [--backend ${BACKEND_NAMES.join('|')}] [--json]

Lists nearby health devices that a bundled driver supports, by profile: pulse oximeters, cuffs,
thermometers, scales, glucose meters, heart-rate straps. Other devices are not shown, and no address is
printed or stored: a neighbour's devices stay private. To enrol one, run "rpm-gateway pair": it scans
again, numbers the devices the same way, and lets you pick by number (docs/enrolment.md).
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
  // Numbered exactly as `pair` numbers them (one ordering, findCandidates), so "pair --pick <n>" after a scan
  // means the device this list showed as <n>. Addresses stay in memory for this run; the list shows a number.
  let candidates: Candidate[];
  try {
    candidates = await findCandidates(central, registry, seconds * 1000, () => undefined);
  } finally {
    await central.stop();
  }
  if (values.json) {
    for (const c of candidates) {
      const row = {
        number: c.number,
        driver: c.driver.id,
        category: c.driver.category,
        name: c.driver.name,
        ...(c.rssi === undefined ? {} : { rssi: c.rssi }),
      };
      io.stdout.write(`${JSON.stringify(row)}\n`);
    }
  } else if (candidates.length === 0) {
    io.stdout.write(
      'no supported health devices nearby (is the device awake? most measure, then advertise)\n',
    );
  } else {
    for (const c of candidates) io.stdout.write(`${candidateLine(c)}\n`);
  }
  return 0;
}
