import { berrymedBm1000 } from './berrymed-bm1000.js';
import { bloodPressureCuff } from './blood-pressure.js';
import { contecCms50dBt } from './contec-cms50d-bt.js';
import { glucoseMeter } from './glucose.js';
import { heartRateStrap } from './heart-rate.js';
import { type DeviceModel, ModelContext } from './model-context.js';
import { pulseOximeter } from './pulse-oximeter.js';
import { thermometer } from './thermometer.js';
import {
  isSimulatedDriverId,
  type SimulatedDevice,
  type SimulatedDeviceOptions,
  type SimulatedDriverId,
} from './types.js';
import { weightScale } from './weight-scale.js';

/** The driver ids, the passkey default and the device types, as src/ble/sim/index.ts lists them. */
export * from './types.js';

/** The device model of each simulated driver, one module each. */
const MODELS: Readonly<Record<SimulatedDriverId, DeviceModel>> = {
  'sig/blood-pressure': bloodPressureCuff,
  'sig/thermometer': thermometer,
  'sig/weight-scale': weightScale,
  'sig/glucose': glucoseMeter,
  'sig/pulse-oximeter': pulseOximeter,
  'sig/heart-rate': heartRateStrap,
  'vendor/berrymed-bm1000': berrymedBm1000,
  'vendor/contec-cms50d-bt': contecCms50dBt,
};

/**
 * Builds the simulated device for a driver: the services, characteristics and exact byte layouts of the real
 * device (each model follows one of the driver's captured fixtures, noted at the model), carrying a simulated
 * patient's values over time.
 */
export function simulatedDevice(driverId: string, options: SimulatedDeviceOptions = {}): SimulatedDevice {
  if (!isSimulatedDriverId(driverId)) throw new RangeError(`no device model for driver ${driverId}`);
  const context = new ModelContext(driverId, options);
  const device = MODELS[driverId](context);
  if (options.preload) device.preload(options.preload, options.preloadEveryMs, options.preloadEndingAt);
  return device;
}
