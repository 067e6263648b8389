import { GatewayError } from '../errors.js';

/**
 * The Central port: what the gateway needs from a Bluetooth LE stack, and nothing more. Backends: `bluez`
 * (node-ble over the system D-Bus, the default on Linux), `noble` (optional), `sim` (virtual peripherals
 * built from the drivers' fixtures). Sessions (src/session) talk only to this port, so every backend passes
 * the same contract suite (test/ble/central-contract.ts).
 *
 * Addresses are PHI-adjacent (they identify a patient's device): backends never log them; the gateway keeps
 * them only for enrolled devices.
 */
export interface Advertisement {
  /** The backend's stable handle for the device (a Bluetooth address on real stacks). */
  readonly address: string;
  readonly name?: string;
  /** Advertised service UUIDs, canonical form (src/gatt/uuid.ts). */
  readonly services: readonly string[];
  /** Manufacturer-specific data by company id. */
  readonly manufacturerData: ReadonlyMap<number, Uint8Array>;
  readonly rssi?: number;
}

export interface ScanOptions {
  /** Only devices advertising one of these services (canonical UUIDs); all when absent. */
  readonly services?: readonly string[];
  /** Ignore devices weaker than this (dBm). */
  readonly minRssi?: number;
  /** Stop after this long; the scan also stops when `signal` aborts. */
  readonly durationMs: number;
  readonly signal?: AbortSignal;
}

export interface CharacteristicInfo {
  readonly uuid: string;
  readonly properties: readonly ('read' | 'write' | 'write-without-response' | 'notify' | 'indicate')[];
}

export interface ServiceInfo {
  readonly uuid: string;
  readonly characteristics: readonly CharacteristicInfo[];
}

export type DisconnectReason = 'local' | 'remote' | 'link-loss' | 'adapter';

/** One connection to a peripheral. Every call has a timeout in the backend; none waits forever. */
export interface Connection {
  readonly address: string;
  /** Services and characteristics (from the backend's GATT cache or a fresh discovery). */
  discover(): Promise<readonly ServiceInfo[]>;
  read(service: string, characteristic: string): Promise<Uint8Array>;
  write(
    service: string,
    characteristic: string,
    value: Uint8Array,
    options?: { withResponse?: boolean },
  ): Promise<void>;
  /**
   * Enables notifications or indications (whichever the characteristic supports; indications are
   * acknowledged by the stack). Resolves with the function that disables them. Listeners never leak across
   * reconnects: a new connection starts with none.
   */
  subscribe(
    service: string,
    characteristic: string,
    listener: (value: Uint8Array) => void,
  ): Promise<() => Promise<void>>;
  /** Bonds (pairs) with the device; passkey entry goes through the backend's pairing agent. */
  bond(): Promise<void>;
  readonly bonded: boolean;
  disconnect(): Promise<void>;
  /** Called once when the link ends, for any reason. Returns the unsubscribe function. */
  onDisconnect(listener: (reason: DisconnectReason) => void): () => void;
}

export interface CentralPort {
  readonly backend: 'bluez' | 'noble' | 'sim';
  /** Powers the adapter on and checks it is usable (BLE_ADAPTER otherwise). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Scans; calls `onAdvertisement` for every matching advertisement; resolves when the scan ended. */
  scan(options: ScanOptions, onAdvertisement: (advertisement: Advertisement) => void): Promise<void>;
  connect(address: string, options: { readonly timeoutMs: number }): Promise<Connection>;
  /** Recovery of a wedged stack (discovery stuck, scans returning nothing): power the adapter off and on. */
  powerCycle(): Promise<void>;
  /**
   * Optional: forgets the services and characteristics the backend cached for a device, so the next
   * connection discovers them afresh. Stacks cache attributes across connections (BlueZ keeps them in
   * /var/lib/bluetooth/.../cache when main.conf [GATT] Cache is "always", its default); for a device that is
   * not bonded nothing tells the stack when the device's database changed (Core 5.x Vol 3 Part G 2.5.2: only
   * bonded clients get Service Changed indications, and Robust Caching is rare on medical devices), so after
   * a firmware update, or after a discovery that was cut short, the cached copy lacks characteristics the
   * device has. Sessions call this once when discovery looks stale (see src/session/gatt-check.ts).
   *
   * It must never remove a bond. A backend whose only way to drop the cache also removes the bond (BlueZ:
   * Adapter1.RemoveDevice deletes the pairing keys too) refuses a bonded device with BLE_NOT_SUPPORTED;
   * sessions never ask for one (a bonded device goes to needs-pairing instead). An address the backend
   * knows nothing about has nothing cached: that resolves. A live link to the device may be dropped.
   * Backends without a persistent cache (they discover on every connection) leave this out.
   */
  clearCache?(address: string): Promise<void>;
}

/**
 * Error classes a session backs off on differently (after Home Assistant's bleak-retry-connector):
 * a device out of range is retried slowly, a busy adapter soon, an authentication failure not at all
 * until the user pairs again.
 */
export type BleErrorCode =
  | 'BLE_TIMEOUT'
  | 'BLE_DEVICE_GONE'
  | 'BLE_NO_SLOTS'
  | 'BLE_ABORTED'
  | 'BLE_AUTH_FAILED'
  | 'BLE_NOT_FOUND'
  | 'BLE_NOT_SUPPORTED'
  | 'BLE_ADAPTER'
  | 'BLE_BACKEND_UNAVAILABLE'
  | 'BLE_NO_ANSWER'
  | 'BLE_REFUSED';

export class BleError extends GatewayError {
  declare readonly code: BleErrorCode;

  constructor(code: BleErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
