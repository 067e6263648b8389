/**
 * `npm run hardware:check -- [--backend bluez|noble|sim] [--seconds 60] [--pick N]`: the maintainer's check on a
 * real Pi with a real device. Scans for supported health devices, lists them by profile (no addresses), asks
 * which one to use (or takes --pick), then runs a device session on it: bonding (passkey asked on the
 * terminal), subscriptions, time sync, stored records, and prints every decoded reading and every state
 * change until --seconds have passed. With --backend sim it runs against the simulator (no radio needed); with
 * --backend noble it drives the adapter over a raw HCI socket (no bonding: pick a device that needs none).
 */
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { BACKEND_NAMES, type BackendName, createCentral } from '../src/ble/backends.js';
import type { Advertisement } from '../src/ble/central.js';
import { loadBundledRegistry } from '../src/drivers/default-registry.js';
import type { Driver } from '../src/drivers/sdk/define-driver.js';
import { DeviceSession } from '../src/session/device-session.js';
import { realScheduler } from '../src/util/scheduler.js';

const HELP = `Usage: npm run hardware:check -- [--backend ${BACKEND_NAMES.join('|')}] [--scan-seconds 15] [--seconds 60] [--pick N]`;

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'bluez' },
    'scan-seconds': { type: 'string', default: '15' },
    seconds: { type: 'string', default: '60' },
    pick: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const backend = values.backend as BackendName;
if (!BACKEND_NAMES.includes(backend)) {
  console.error(`--backend must be one of ${BACKEND_NAMES.join(', ')}`);
  process.exit(2);
}

const terminal = createInterface({ input: process.stdin, output: process.stdout });
const ask = async (question: string) => (await terminal.question(question)).trim();
const registry = await loadBundledRegistry();
const central = await createCentral(backend, {
  agent: {
    passkey: async () => Number(await ask('passkey shown on the device: ')),
    confirm: async ({ passkey }) =>
      (await ask(`does the device show ${passkey}? [y/N] `)).toLowerCase() === 'y',
  },
});
await central.start();
const found: { advertisement: Advertisement; driver: Driver }[] = [];
console.log(`scanning for ${values['scan-seconds']} s ...`);
await central.scan({ durationMs: Number(values['scan-seconds']) * 1000 }, (advertisement) => {
  if (found.some((f) => f.advertisement.address === advertisement.address)) return;
  const driver = registry.match({
    services: advertisement.services,
    ...(advertisement.name === undefined ? {} : { name: advertisement.name }),
    manufacturerIds: [...advertisement.manufacturerData.keys()],
  });
  if (driver) {
    found.push({ advertisement, driver });
    console.log(`${String(found.length).padStart(2)}. ${driver.category} ${driver.name} (${driver.id})`);
  }
});
if (found.length === 0) {
  console.log('no supported device found; wake the device (take a measurement) and try again');
  await central.stop();
  terminal.close();
  process.exit(1);
}
const pick = Number(values.pick ?? (await ask(`use which device [1-${found.length}]? `)));
const chosen = found[pick - 1];
if (!chosen) {
  console.error('no such device');
  process.exit(2);
}
const session = new DeviceSession({
  device: { id: 'hardware-check', address: chosen.advertisement.address },
  driver: chosen.driver,
  central,
  scheduler: realScheduler,
  utcOffsetMinutes: () => -new Date().getTimezoneOffset(),
  onState: (state, detail) =>
    console.log(`[${new Date().toISOString()}] state ${state}${detail ? ` (${detail})` : ''}`),
  onDecodeError: (characteristic, error) =>
    console.log(`  ${characteristic}: ${error.code} ${error.message}`),
  onReading: (r) => {
    const values = r.reading.observations
      .map((o) => `${o.code}=${o.value ?? o.invalid}${o.unit}${o.qualifier ? `(${o.qualifier})` : ''}`)
      .join(' ');
    console.log(
      `  ${r.characteristic} ${r.time} [${r.timeSource}${r.stored ? ', stored' : ''}] ${values || r.reading.kind}`,
    );
  },
});
session.start();
await new Promise((resolve) => setTimeout(resolve, Number(values.seconds) * 1000));
await session.stop();
await central.stop();
terminal.close();
console.log(`done; clock handling: ${session.clockHandling}`);
// noble keeps its HCI socket and adapter poll for the life of the process (it has no close): exit explicitly.
process.exit(0);
