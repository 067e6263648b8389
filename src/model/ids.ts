import { createHash, randomUUID } from 'node:crypto';

/** What makes a measurement the same measurement when a device sends it again. */
export interface MeasurementIdentity {
  readonly deviceId: string;
  readonly characteristic: string;
  /** The device's own timestamp, or null when the payload has none. */
  readonly deviceTime: string | null;
  readonly payload: Uint8Array;
}

/**
 * Stable measurement id. A device that stamps its readings resends stored records byte for byte (Omron-style
 * cuffs, glucose meters over RACP), so a hash of device + characteristic + device time + payload gives the
 * re-sent record the same id and the outbox and the clinic drop the duplicate. Without a device timestamp two
 * identical payloads are two real readings (SpO2 98% twice), so those get a random (v4 UUID) id.
 *
 * Format: `m1-` + 32 hex digits (the first 128 bits of SHA-256), or `m1-` + a UUID without dashes. The fields
 * are length-prefixed before hashing so that no two different identities share an input.
 */
export function measurementId(identity: MeasurementIdentity, randomId: () => string = randomUUID): string {
  if (identity.deviceTime === null) return `m1-${randomId().replaceAll('-', '')}`;
  const hash = createHash('sha256');
  for (const part of [identity.deviceId, identity.characteristic, identity.deviceTime]) {
    const bytes = Buffer.from(part, 'utf8');
    hash.update(lengthPrefix(bytes.length)).update(bytes);
  }
  hash.update(lengthPrefix(identity.payload.length)).update(identity.payload);
  return `m1-${hash.digest('hex').slice(0, 32)}`;
}

function lengthPrefix(length: number): Uint8Array {
  const prefix = new Uint8Array(4);
  new DataView(prefix.buffer).setUint32(0, length);
  return prefix;
}
