import { DecodeError } from '../../errors.js';
import { normalizeUuid } from '../../gatt/uuid.js';

/**
 * The part of @abandonware/noble (1.9.2-26: index.d.ts, lib/noble.js, lib/peripheral.js, lib/service.js,
 * lib/characteristic.js) the noble backend uses, typed exactly as noble behaves, and nothing more. The backend
 * talks only to this interface, so tests drive it with a fake radio (test/ble/fake-noble.ts) and the optional
 * package is loaded only when the backend starts.
 */

/** noble's `state` and 'stateChange' values (lib/hci-socket/hci.js, lib/mac/bindings.js). */
export type NobleState =
  | 'unknown'
  | 'resetting'
  | 'unsupported'
  | 'unauthorized'
  | 'poweredOff'
  | 'poweredOn';

/** Characteristic properties as noble names them (lib/hci-socket/gatt.js, from the declaration's bit field). */
export type NobleProperty =
  | 'broadcast'
  | 'read'
  | 'writeWithoutResponse'
  | 'write'
  | 'notify'
  | 'indicate'
  | 'authenticatedSignedWrites'
  | 'extendedProperties';

/** What noble parsed from advertising and scan-response data (lib/hci-socket/gap.js). */
export interface NobleAdvertisement {
  readonly localName?: string | undefined;
  /** Lowercase hex without dashes; 16-bit ones as noble prints them (`toString(16)`, so unpadded). */
  readonly serviceUuids?: readonly string[] | undefined;
  readonly serviceData?: readonly { readonly uuid: string; readonly data: Buffer }[] | undefined;
  /** The raw Manufacturer Specific Data AD structure: company id (little-endian), then the data. */
  readonly manufacturerData?: Buffer | undefined;
  readonly txPowerLevel?: number | undefined;
}

/**
 * A characteristic of one GATT discovery. noble makes new objects at every discovery (lib/noble.js
 * onCharacteristicsDiscover), so an object belongs to one link.
 */
export interface NobleCharacteristic {
  readonly uuid: string;
  readonly properties: readonly string[];
  /** Resolves with the next value that is not a notification; noble never reports an ATT error here. */
  readAsync(): Promise<Buffer>;
  writeAsync(data: Buffer, withoutResponse: boolean): Promise<void>;
  /** Writes the CCCD (0x2902): notifications when the characteristic notifies, else indications. */
  subscribeAsync(): Promise<void>;
  unsubscribeAsync(): Promise<void>;
  /** Values read and values notified or indicated; `isNotification` tells them apart. */
  on(event: 'data', listener: (data: Buffer, isNotification: boolean) => void): unknown;
  removeListener(event: 'data', listener: (data: Buffer, isNotification: boolean) => void): unknown;
  /** Clears what noble's promisified calls leave behind when no answer came (their 'read'/'notify' listeners). */
  removeAllListeners(): unknown;
}

export interface NobleService {
  readonly uuid: string;
  discoverCharacteristicsAsync(characteristicUuids: string[]): Promise<NobleCharacteristic[]>;
}

/** One device; noble keeps one object per device for the life of the process (lib/noble.js onDiscover). */
export interface NoblePeripheral {
  /** Linux: the address without colons; macOS: CoreBluetooth's identifier. */
  readonly id: string;
  /** Linux: lowercase with colons; macOS: '' or 'unknown' (CoreBluetooth hides addresses). */
  readonly address: string;
  readonly advertisement: NobleAdvertisement;
  readonly rssi: number;
  readonly state: 'error' | 'connecting' | 'connected' | 'disconnecting' | 'disconnected';
  /** Rejects with an Error whose message is the HCI status text and code, e.g. "Connection Timeout (0x8)". */
  connectAsync(): Promise<void>;
  /** Ends a pending connect; noble then rejects it with "connection canceled!". */
  cancelConnect(): void;
  disconnectAsync(): Promise<void>;
  discoverServicesAsync(serviceUuids: string[]): Promise<NobleService[]>;
  /** `reason` is the HCI reason code of the Disconnection Complete event on Linux; absent elsewhere. */
  on(event: 'disconnect', listener: (reason?: number | string) => void): unknown;
  removeListener(event: 'disconnect', listener: (reason?: number | string) => void): unknown;
  removeAllListeners(): unknown;
}

/** The noble module's singleton (one per process: it owns the HCI socket). */
export interface NobleApi {
  /** Reading it initialises the bindings when nothing else has (lib/noble.js, the `state` getter). */
  readonly state: string;
  on(event: 'stateChange', listener: (state: string) => void): unknown;
  on(event: 'discover', listener: (peripheral: NoblePeripheral) => void): unknown;
  on(event: 'scanStop', listener: () => void): unknown;
  on(event: 'warning', listener: (message: string) => void): unknown;
  removeListener(event: 'stateChange', listener: (state: string) => void): unknown;
  removeListener(event: 'discover', listener: (peripheral: NoblePeripheral) => void): unknown;
  removeListener(event: 'scanStop', listener: () => void): unknown;
  removeListener(event: 'warning', listener: (message: string) => void): unknown;
  startScanningAsync(serviceUuids: string[], allowDuplicates: boolean): Promise<void>;
  stopScanningAsync(): Promise<void>;
  /** HCI_Reset on Linux (lib/hci-socket/hci.js); macOS and Windows bindings have none and throw. */
  reset(): void;
}

const NOBLE_PACKAGE = '@abandonware/noble';

/**
 * The default loader: imports the optional package. The specifier is a variable so that TypeScript neither
 * needs the package's types nor fails where it is not installed. noble opens its HCI socket while the module
 * loads, so import errors are the "no Bluetooth here" errors (errors.ts loadFailure).
 */
export async function importNoble(): Promise<NobleApi> {
  const specifier: string = NOBLE_PACKAGE;
  const loaded: unknown = await import(specifier);
  // A CommonJS module seen from ESM: `module.exports` (noble's singleton) is the default export.
  const candidate = (loaded as { default?: unknown }).default ?? loaded;
  if (!isNobleApi(candidate)) {
    throw new TypeError(`${NOBLE_PACKAGE} did not export the noble API this backend was written for`);
  }
  return candidate;
}

function isNobleApi(value: unknown): value is NobleApi {
  if (typeof value !== 'object' || value === null) return false;
  const api = value as Record<string, unknown>;
  return ['on', 'removeListener', 'startScanningAsync', 'stopScanningAsync', 'reset'].every(
    (name) => typeof api[name] === 'function',
  );
}

// ---- UUIDs ---------------------------------------------------------------------------------------------------

/**
 * noble's UUID text to the canonical form (src/gatt/uuid.ts). The HCI bindings print 16- and 32-bit UUIDs with
 * `toString(16)`, which drops leading zeros (0x0180 becomes "180"), and 128-bit ones as 32 hex digits.
 * Returns undefined for text that is no UUID at all.
 */
export function fromNobleUuid(uuid: string): string | undefined {
  const text = uuid.trim().toLowerCase();
  try {
    if (/^[0-9a-f]{1,4}$/.test(text)) return normalizeUuid(text.padStart(4, '0'));
    if (/^[0-9a-f]{5,8}$/.test(text)) return normalizeUuid(text.padStart(8, '0'));
    return normalizeUuid(text);
  } catch (error) {
    if (error instanceof DecodeError) return undefined;
    throw error;
  }
}

/** A canonical UUID in noble's form: lowercase hex without dashes, 16-bit ones as 4 digits. */
export function toNobleUuid(uuid: string): string {
  return normalizeUuid(uuid).replaceAll('-', '');
}
