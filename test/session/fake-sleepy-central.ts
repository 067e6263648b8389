import { BleError, type BleErrorCode, type CentralPort } from '../../src/ble/central.js';
import type { SimCentral } from '../../src/ble/sim/index.js';
import type { VirtualScheduler } from '../../src/util/scheduler.js';

/**
 * The simulator as BlueZ treats a device that sleeps: connecting to it fails after a page timeout
 * (Device1.Connect "page-timeout" / "abort-by-remote", BLE_DEVICE_GONE; or BLE_NOT_FOUND when BlueZ had no
 * device object and its discovery did not see one) instead of waiting, as the simulator does, for the device
 * to come into range. Everything else goes straight to the simulator. Scans started through it are counted.
 */
export interface SleepyCentral extends CentralPort {
  /** Scans running now, and the most that ever ran at once. */
  readonly scans: { running: number; mostAtOnce: number; started: number };
}

export function sleepyCentral(
  sim: SimCentral,
  options: { readonly code?: BleErrorCode; readonly pageTimeoutMs?: number } = {},
): SleepyCentral {
  const code = options.code ?? 'BLE_DEVICE_GONE';
  const pageTimeoutMs = options.pageTimeoutMs ?? 2_000;
  const scans = { running: 0, mostAtOnce: 0, started: 0 };
  return {
    backend: sim.backend,
    scans,
    start: () => sim.start(),
    stop: () => sim.stop(),
    powerCycle: () => sim.powerCycle(),
    clearCache: (address) => sim.clearCache(address),
    async scan(scanOptions, onAdvertisement) {
      scans.running++;
      scans.started++;
      scans.mostAtOnce = Math.max(scans.mostAtOnce, scans.running);
      try {
        await sim.scan(scanOptions, onAdvertisement);
      } finally {
        scans.running--;
      }
    },
    async connect(address, connectOptions) {
      const peripheral = sim.peripheral(address);
      if (peripheral && !peripheral.inRange) {
        await sim.delay(Math.min(pageTimeoutMs, connectOptions.timeoutMs));
        if (!peripheral.inRange) throw new BleError(code, 'page-timeout: the device did not answer');
      }
      return sim.connect(address, connectOptions);
    },
  };
}

/**
 * A sleeping device wakes for a measurement: it takes it, advertises for `awakeMs`, and sleeps again (out of
 * range to the radio: no advertisement, no link).
 */
export function wakeForMeasurement(
  device: { peripheral: { setInRange(inRange: boolean): void }; measure(): void },
  scheduler: VirtualScheduler,
  awakeMs = 30_000,
): void {
  device.peripheral.setInRange(true);
  device.measure();
  scheduler.setTimeout(() => device.peripheral.setInRange(false), awakeMs);
}
