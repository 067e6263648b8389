import type { Scheduler } from '../../../util/scheduler.js';
import type { FaultOptions } from '../faults.js';
import type { Subject, SubjectProfile } from '../physiology.js';
import type { RacpServer } from '../racp.js';
import type { VirtualPeripheral } from '../virtual-peripheral.js';

/**
 * A driver id the simulator has a device for: every bundled driver (src/ble/sim/devices/index.ts finds their
 * models when it loads); SIMULATED_DRIVER_IDS lists them and isSimulatedDriverId checks one.
 */
export type SimulatedDriverId = string;

/** The glucose model's pairing passkey unless another is given (meters print theirs on a label or screen). */
export const DEFAULT_GLUCOSE_PASSKEY = '123456';

export interface SimulatedDeviceOptions {
  readonly address?: string;
  readonly name?: string;
  /** Seeds the physiology and the fault injection: the same seed gives the same bytes. */
  readonly seed?: number;
  readonly scheduler?: Scheduler;
  /** The device clock is this far off true time (a wrong clock); timestamps in payloads follow it. */
  readonly clockOffsetMs?: number;
  readonly faults?: FaultOptions;
  readonly rssi?: number;
  readonly inRange?: boolean;
  readonly advertiseEveryMs?: number;
  readonly manufacturerData?: ReadonlyMap<number, Uint8Array>;
  readonly subject?: Partial<SubjectProfile>;
  /** The measurement characteristics need a bond (default: the glucose meter only, as GLS requires). */
  readonly requireBonding?: boolean;
  /**
   * Pairing needs this passkey (default: DEFAULT_GLUCOSE_PASSKEY for the glucose meter when it needs a bond,
   * none otherwise). Give `null` for Just Works.
   */
  readonly passkey?: string | null;
  /** Period of a streaming device's notifications (defaults: 1 s; BerryMed 40 ms, four frames each). */
  readonly streamEveryMs?: number;
  /** Historic measurements in the device's memory, `preloadEveryMs` apart, ending now. */
  readonly preload?: number;
  readonly preloadEveryMs?: number;
  /**
   * When the preloaded history ends (epoch ms; default: now). A device whose memory outlives the process that
   * simulates it (a hub restarted while the meter keeps its records) is re-created with the same seed and the
   * same end: it then holds the same records, byte for byte, so they keep their stable ids.
   */
  readonly preloadEndingAt?: number;
  /**
   * BerryMed only: notifications are 20-byte slices of the UART stream that do not start on a frame (each
   * carries a 3-byte tail, three frames and a 2-byte head), as some firmware sends them. Default: aligned.
   */
  readonly misalignedStream?: boolean;
  /** Glucose only: the sequence number of the first record (default 1). */
  readonly firstSequenceNumber?: number;
  /**
   * Glucose only: the order a RACP report sends the selected records in (src/ble/sim/racp.ts). 'storage'
   * (default): the order they were made, as a meter keeps them; 'numeric': by sequence number, as some meters
   * may, which puts 0.. before 65535 when the memory spans the 16-bit wrap.
   */
  readonly racpOrder?: 'storage' | 'numeric';
  /**
   * The device's Current Time characteristic (SIG models with a clock): 'writable' (default; the gateway sets
   * the clock), 'read-only' (CTS 1.1 makes Write optional: the clock can be read, not set) or 'none' (no
   * Current Time Service: the gateway can only infer the clock from live readings).
   */
  readonly currentTime?: 'writable' | 'read-only' | 'none';
  /**
   * Spot devices (cuff, scale, thermometer, oximeter spot-checks): end the link this long after handing over
   * the stored records, as devices in transfer mode do. Default: stay connected.
   */
  readonly hangUpAfterTransferMs?: number;
}

/** One simulated device: a VirtualPeripheral whose GATT table and bytes follow one driver's device. */
export interface SimulatedDevice {
  readonly driverId: SimulatedDriverId;
  readonly peripheral: VirtualPeripheral;
  readonly subject: Subject;
  /** Where the driver's measurement values arrive. */
  readonly measurement: { readonly service: string; readonly characteristic: string };
  /** Sends values by itself while subscribed (after its start command, for Contec); else measures on demand. */
  readonly streams: boolean;
  /**
   * Takes a measurement now. Spot devices indicate it to a subscribed central or else keep it in memory for
   * the next connection (the glucose meter always keeps it: it is read through RACP); streaming devices send
   * their next frame at once.
   */
  measure(): void;
  /** Adds `count` historic measurements `everyMs` apart, the last `everyMs` before `endingAt` (default now). */
  preload(count: number, everyMs?: number, endingAt?: number): void;
  /** Glucose only: the meter's record store. */
  readonly racp?: RacpServer;
  /**
   * Glucose only: the meter's memory is reset (a factory reset, or a battery change on a meter that keeps its
   * records in RAM): every record is gone and sequence numbers start again at 1.
   */
  readonly resetMemory?: () => void;
}
