import { BUNDLED_DEVICES_DIR } from '../../../drivers/default-registry.js';
import { bloodPressureCuff } from './blood-pressure.js';
import type { DeviceModel } from './define-model.js';
import { buildDevice, type DeviceModelEntry, discoverDeviceModels } from './discover.js';
import { glucoseMeter } from './glucose.js';
import { heartRateStrap } from './heart-rate.js';
import { pulseOximeter } from './pulse-oximeter.js';
import { thermometer } from './thermometer.js';
import type { SimulatedDevice, SimulatedDeviceOptions, SimulatedDriverId } from './types.js';
import { weightScale } from './weight-scale.js';

export { buildDevice, type DeviceModelEntry, deviceModelEntry } from './discover.js';
/** The passkey default and the device types, as src/ble/sim/index.ts lists them. */
export * from './types.js';

/**
 * The models of the core SIG drivers. They stay in core because they are built on the gateway's own GATT
 * encoders (src/gatt) and RACP server, which are not SDK API, for drivers that are core themselves. Every
 * other driver brings its model in its folder (sim.ts) or is replayed from its fixtures: adding a driver never
 * edits this list.
 */
const CORE_MODELS: ReadonlyMap<string, DeviceModel> = new Map([
  ['sig/pulse-oximeter', pulseOximeter],
  ['sig/blood-pressure', bloodPressureCuff],
  ['sig/thermometer', thermometer],
  ['sig/weight-scale', weightScale],
  ['sig/glucose', glucoseMeter],
  ['sig/heart-rate', heartRateStrap],
]);

// Found once, when the simulator is first imported, so that building a device stays synchronous (tests, the
// demo and scenarios build devices in plain expressions). A folder whose model cannot be built is left out and
// its reason kept for simulatedDevice() and `npm run driver:test`; it never stops the other devices.
const discovered = await discoverDeviceModels(BUNDLED_DEVICES_DIR, CORE_MODELS);

/** Every driver the simulator has a device for: core models first, then the devices/ folders in order. */
export const SIMULATED_DRIVER_IDS: readonly SimulatedDriverId[] = Object.freeze([
  ...discovered.models.keys(),
]);

export function isSimulatedDriverId(id: string): id is SimulatedDriverId {
  return discovered.models.has(id);
}

/** Where a driver's device model comes from, or undefined when the simulator has none. */
export function deviceModelOf(driverId: string): DeviceModelEntry | undefined {
  return discovered.models.get(driverId);
}

/** Why a bundled driver has no simulated device (a sim.ts that fails to load, fixtures with nothing to replay). */
export function simulationProblem(driverId: string): string | undefined {
  return discovered.problems.get(driverId);
}

/**
 * Builds the simulated device for a driver: the services, characteristics and exact byte layouts of the real
 * device (each model follows one of the driver's fixtures, noted at the model), carrying a simulated patient's
 * values over time.
 */
export function simulatedDevice(driverId: string, options: SimulatedDeviceOptions = {}): SimulatedDevice {
  const entry = discovered.models.get(driverId);
  if (!entry) {
    const why = discovered.problems.get(driverId);
    throw new RangeError(`no device model for driver ${driverId}${why ? `: ${why}` : ''}`);
  }
  return buildDevice(entry, options);
}
