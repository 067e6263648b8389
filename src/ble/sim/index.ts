/** The simulator backend of the Central port (backend 'sim'): virtual peripherals and a device model per driver. */
export {
  buildDevice,
  DEFAULT_GLUCOSE_PASSKEY,
  type DeviceModelEntry,
  deviceModelEntry,
  deviceModelOf,
  isSimulatedDriverId,
  SIMULATED_DRIVER_IDS,
  type SimulatedDevice,
  type SimulatedDeviceOptions,
  type SimulatedDriverId,
  simulatedDevice,
  simulationProblem,
} from './devices/index.js';
export {
  type FaultOptions,
  type IndicationCut,
  MALFORM_MODES,
  type MalformMode,
  malform,
  type RadioFault,
} from './faults.js';
export { CardioProcess, DEFAULT_SUBJECT, plethAt, Subject, type SubjectProfile } from './physiology.js';
export { type GlucoseRecord, RacpServer, type RacpServerOptions } from './racp.js';
export { Random } from './random.js';
export { type PasskeyProvider, SimCentral, type SimCentralOptions, SimConnection } from './sim-central.js';
export {
  type CharacteristicDefinition,
  type CharacteristicProperty,
  dateTimeFields,
  isoOf,
  type PeripheralHooks,
  type PeripheralLink,
  type ServiceDefinition,
  VirtualPeripheral,
  type VirtualPeripheralOptions,
} from './virtual-peripheral.js';
