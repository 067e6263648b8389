import { normalizeUuid } from '../../gatt/uuid.js';
import { normalizeAddress } from '../address.js';
import type { Advertisement } from '../central.js';
import { addressFromPath, unwrap } from './dbus.js';

/** What BlueZ has told us about one device (Device1 properties), from GetManagedObjects and signals. */
export interface DeviceState {
  address: string;
  name?: string;
  uuids: string[];
  manufacturerData: Map<number, Uint8Array>;
  rssi?: number;
}

/** Device1 properties that change when an advertisement arrives (Device.rst). */
export const ADVERTISEMENT_PROPERTIES = [
  'RSSI',
  'ManufacturerData',
  'ServiceData',
  'UUIDs',
  'TxPower',
  'Name',
];

/** A D-Bus dictionary (a{sv}, a{oa{sa{sv}}}) as dbus-next unmarshals it, or an empty one for anything else. */
export function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

/** The state of a device object that just appeared (InterfacesAdded, or GetManagedObjects at start). */
export function newDeviceState(path: string, properties: Record<string, unknown>): DeviceState {
  const address = unwrap(properties['Address']);
  const state: DeviceState = {
    address: typeof address === 'string' ? normalizeAddress(address) : (addressFromPath(path) ?? ''),
    uuids: [],
    manufacturerData: new Map(),
  };
  updateDevice(state, properties);
  return state;
}

/** Applies changed Device1 properties (Device.rst: Name, Alias, RSSI, UUIDs, ManufacturerData). */
export function updateDevice(state: DeviceState, changed: Record<string, unknown>): void {
  const name = unwrap(changed['Name']) ?? unwrap(changed['Alias']);
  if (typeof name === 'string' && 'Name' in changed) state.name = name;
  const rssi = unwrap(changed['RSSI']);
  if (typeof rssi === 'number') state.rssi = rssi;
  const uuids = unwrap(changed['UUIDs']);
  if (Array.isArray(uuids)) {
    state.uuids = uuids.flatMap((uuid) => {
      try {
        return [normalizeUuid(String(uuid))];
      } catch {
        return [];
      }
    });
  }
  if ('ManufacturerData' in changed) {
    state.manufacturerData = new Map();
    for (const [id, value] of Object.entries(record(unwrap(changed['ManufacturerData'])))) {
      const bytes = unwrap(value);
      if (bytes instanceof Uint8Array) state.manufacturerData.set(Number(id), Uint8Array.from(bytes));
    }
  }
}

/** The port's view of what the device last advertised (copies, so a later update does not change it). */
export function advertisementOf(state: DeviceState): Advertisement {
  return {
    address: state.address,
    ...(state.name === undefined ? {} : { name: state.name }),
    services: [...state.uuids],
    manufacturerData: new Map(state.manufacturerData),
    ...(state.rssi === undefined ? {} : { rssi: state.rssi }),
  };
}
