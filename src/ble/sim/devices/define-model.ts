import type { Scheduler } from '../../../util/scheduler.js';
import type { Subject } from '../physiology.js';
import type { Random } from '../random.js';
import type {
  CharacteristicDefinition,
  ServiceDefinition,
  VirtualPeripheral,
} from '../virtual-peripheral.js';
import type { SimulatedDevice, SimulatedDeviceOptions } from './types.js';

/**
 * What a device model is given: the options of this device resolved, generators seeded from its seed, the
 * simulated patient it measures, and helpers to build its peripheral. A model is the device's behaviour: its
 * GATT table, the bytes it sends and when, how it answers writes, what it keeps in memory.
 */
export interface DeviceModelContext {
  /** The driver this device is a model for (its devices/ folder path). */
  readonly driverId: string;
  readonly options: SimulatedDeviceOptions;
  /** Time and timers: virtual time in tests, the real clock in a hub. Never use Date.now or setTimeout. */
  readonly scheduler: Scheduler;
  /** Seeded: the same seed gives the same bytes. Use `random.fork(n)` per sub-process. */
  readonly random: Random;
  /** The simulated patient: spot values as functions of time, `profile` for CardioProcess. */
  readonly subject: Subject;
  /**
   * The device's radio side, advertising `advertised` service UUIDs with the model's address and name (or
   * the ones the options give) and serving `gatt`.
   */
  peripheral(advertised: readonly string[], gatt: readonly ServiceDefinition[]): VirtualPeripheral;
  /** A characteristic that carries measurements (bonded when the options ask for a bond). */
  measurementChar(
    uuid: string,
    properties: CharacteristicDefinition['properties'],
    extra?: Partial<CharacteristicDefinition>,
  ): CharacteristicDefinition;
  /** Device Information, Battery and Current Time services, as SIG devices with a clock carry them. */
  commonServices(model: string, clock: () => VirtualPeripheral | undefined): ServiceDefinition[];
  /** The streaming period: the options' `streamEveryMs`, else `fallback`. */
  streamEvery(fallback: number): number;
}

/** What a model builds; the simulator adds the driver id and the subject. */
export type DeviceModelParts = Omit<SimulatedDevice, 'driverId' | 'subject'>;

export interface DeviceModelDefinition {
  /** The device's Bluetooth address unless the options give one (default: one derived from the driver id). */
  readonly address?: string;
  /**
   * The advertised local name unless the options give one. Default: the literal start of the driver's name
   * pattern (`/^PC-60F/` gives "PC-60F"), else the driver's name.
   */
  readonly name?: string;
  /**
   * Builds the device. Without it the device replays the driver's fixtures (see fixture-replay.ts): a
   * `sim.ts` that only gives `name` or `address` is enough for a driver whose name pattern has no literal
   * start.
   */
  readonly build?: (c: DeviceModelContext) => DeviceModelParts;
}

const MODEL_BRAND = Symbol.for('rpm-gateway.device-model');

export type DeviceModel = DeviceModelDefinition & { readonly [MODEL_BRAND]: true };

/** Declares a device model: the default export of a driver folder's `sim.ts` (or a core SIG model). */
export function defineDeviceModel(definition: DeviceModelDefinition): DeviceModel {
  return Object.freeze({ ...definition, [MODEL_BRAND]: true as const });
}

export function isDeviceModel(value: unknown): value is DeviceModel {
  return (
    typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MODEL_BRAND] === true
  );
}
