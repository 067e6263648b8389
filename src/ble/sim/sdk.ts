/**
 * The simulator part of the driver SDK (`rpm-gateway/sdk/sim`): what a device model in a driver's folder
 * (devices/<kind>/<name>/sim.ts) may import. A hub never loads it: drivers (`rpm-gateway/sdk`) stay free of
 * simulator code, and models are loaded only by the `sim` radio backend, the tests and `npm run driver:test`.
 * Everything exported here is a stable API under semantic versioning, like `rpm-gateway/sdk`.
 * See devices/README.md, "A simulator model".
 */
export type { Scheduler, TimerHandle } from '../../util/scheduler.js';
export {
  type DeviceModel,
  type DeviceModelContext,
  type DeviceModelDefinition,
  type DeviceModelParts,
  defineDeviceModel,
} from './devices/define-model.js';
export { pastTimes, sendOrStore, Ticker } from './devices/model-context.js';
export type { SimulatedDevice, SimulatedDeviceOptions } from './devices/types.js';
export {
  type BloodPressureSample,
  CardioProcess,
  type GlucoseSample,
  plethAt,
  type Subject,
  type SubjectProfile,
} from './physiology.js';
export type { Random } from './random.js';
export type {
  CharacteristicDefinition,
  CharacteristicProperty,
  ServiceDefinition,
  VirtualPeripheral,
} from './virtual-peripheral.js';
