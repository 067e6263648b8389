import { simulatedDevice } from '../../src/ble/sim/index.js';
import { SimCentral } from '../../src/ble/sim/sim-central.js';
import { benchDevices } from './bench-devices.js';

/**
 * The simulator's own cost, for bench:runtime (forked with IPC): the same simulated devices the hub streams
 * from, on the same SimCentral, each connected and its measurement characteristic subscribed with a consumer
 * that only counts. The parent samples this process's CPU from /proc like the hub's, so the hub's cost per
 * reading can be given with and without the simulator that runs inside it.
 *
 * argv[2]: the number of devices. Sends { type: 'ready' } once all stream; answers { type: 'count' } with
 * { type: 'count', notifications }. Exits when the IPC channel closes.
 */
const count = Number(process.argv[2] ?? '8');
const devices = benchDevices(count).map((d, i) =>
  simulatedDevice(d.driver, { seed: i + 1, address: d.address, streamEveryMs: d.streamEveryMs }),
);
const central = new SimCentral({ peripherals: devices.map((d) => d.peripheral), maxConnections: count });
await central.start();
let notifications = 0;
for (const device of devices) {
  const connection = await central.connect(device.peripheral.address, { timeoutMs: 5_000 });
  await connection.discover();
  await connection.subscribe(device.measurement.service, device.measurement.characteristic, () => {
    notifications++;
  });
}
process.on('message', (message: { type?: string }) => {
  if (message.type === 'count') process.send?.({ type: 'count', notifications });
});
process.on('disconnect', () => {
  void central.stop().finally(() => process.exit(0));
});
process.send?.({ type: 'ready' });
