import type { Driver } from '../drivers/sdk/define-driver.js';
import { measurementId } from '../model/ids.js';
import type { Measurement } from '../model/measurement.js';
import type { SessionReading } from '../session/device-session.js';

/**
 * The pipeline's stamping stage: a decoded reading from a session becomes a Measurement with its stable id
 * (src/model/ids.ts: derived from the device's own timestamp when there is one, so a re-sent stored record
 * gets the same id and is dropped by the outbox and the clinic).
 */
export function stamp(reading: SessionReading, driver: Driver, randomId?: () => string): Measurement {
  const deviceTime = reading.reading.time;
  const identity = {
    deviceId: reading.deviceId,
    characteristic: reading.characteristic,
    deviceTime,
    payload: reading.payload,
  };
  return {
    id: randomId ? measurementId(identity, randomId) : measurementId(identity),
    deviceId: reading.deviceId,
    driver: `${driver.id}@${driver.version}`,
    characteristic: reading.characteristic,
    time: reading.time,
    timeSource: reading.timeSource,
    deviceTime,
    receivedAt: new Date(reading.receivedAt).toISOString(),
    kind: reading.reading.kind ?? 'measurement',
    observations: reading.reading.observations,
    status: reading.reading.status ?? [],
    details: reading.reading.details ?? {},
    // Optional keys are left out rather than set to undefined: the wire item and the stored body then have
    // exactly the keys a reading has (docs/wire-format.md, 7.1).
    ...(reading.stored ? { stored: true as const } : {}),
  };
}
