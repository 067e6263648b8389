import type { Connection, ServiceInfo } from '../ble/central.js';
import type { Driver } from '../drivers/sdk/define-driver.js';
import { DecodeError } from '../errors.js';
import { normalizeUuid } from '../gatt/uuid.js';
import type { Reading } from '../model/observation.js';
import type { Scheduler } from '../util/scheduler.js';

/**
 * The setup steps of a fresh link that do not decide the session's state: reading the driver's 'read'
 * characteristics and subscribing to its notify/indicate ones (the driver's setup writes are in
 * setup-sequence.ts). The session (device-session.ts) calls them in order and owns the transitions between them.
 */

/** The characteristics a discovery found, by normalized UUID: their service and properties. */
export type PresentCharacteristics = ReadonlyMap<
  string,
  { readonly service: string; readonly properties: readonly string[] }
>;

/** The decoded values of the driver's 'read' characteristics (ctx.deviceState of the notification decoders). */
export type DeviceState = Record<string, Reading | undefined>;

export function presentCharacteristics(services: readonly ServiceInfo[]): PresentCharacteristics {
  const present = new Map<string, { service: string; properties: readonly string[] }>();
  for (const service of services) {
    for (const c of service.characteristics)
      present.set(normalizeUuid(c.uuid), { service: service.uuid, properties: c.properties });
  }
  return present;
}

export interface DeviceStateReads {
  readonly scheduler: Scheduler;
  /** A read characteristic's payload did not decode: reported and skipped. */
  readonly onDecodeError: (characteristic: string, error: DecodeError) => void;
  /**
   * A read value carried a device time (ISO-8601 local, as Reading.time; Current Time among them): when it was
   * read, and its fraction of a second in 1/256 s (CTS 1.1 Exact Time 256).
   */
  readonly onDeviceTime: (uuid: string, time: string, readAt: number, fractions256: number) => void;
}

/**
 * Reads the driver's 'read' characteristics the device has, one at a time. A failed read of an optional one is
 * skipped; of a required one, it fails the setup. Decoders of later notifications see the results.
 */
export async function readDeviceState(
  connection: Connection,
  driver: Driver,
  present: PresentCharacteristics,
  hooks: DeviceStateReads,
): Promise<DeviceState> {
  const deviceState: DeviceState = {};
  for (const spec of driver.characteristics) {
    const uuid = normalizeUuid(spec.uuid);
    if (spec.access !== 'read' || !present.has(uuid)) continue;
    try {
      const value = await connection.read(normalizeUuid(spec.service), uuid);
      const readAt = hooks.scheduler.now();
      const state = spec.decode(value, { characteristic: uuid })[0];
      deviceState[uuid] = state;
      if (state?.time) {
        const fractions = state.details?.['fractions256'];
        hooks.onDeviceTime(uuid, state.time, readAt, typeof fractions === 'number' ? fractions : 0);
      }
    } catch (error) {
      if (error instanceof DecodeError) hooks.onDecodeError(uuid, error);
      else if (!spec.optional) throw error;
    }
  }
  return deviceState;
}

/**
 * Subscribes to every notify/indicate characteristic of the driver that the device has, in the driver's order.
 * `beforeSubscribe` runs just before each CCCD write (a device may start replaying stored records at once).
 */
export async function subscribeDriverCharacteristics(
  connection: Connection,
  driver: Driver,
  present: PresentCharacteristics,
  beforeSubscribe: (uuid: string) => void,
  onValue: (uuid: string, value: Uint8Array) => void,
): Promise<void> {
  for (const spec of driver.characteristics) {
    const uuid = normalizeUuid(spec.uuid);
    if (spec.access === 'read' || !present.has(uuid)) continue;
    beforeSubscribe(uuid);
    await connection.subscribe(normalizeUuid(spec.service), uuid, (value) => onValue(uuid, value));
  }
}
