import { DecodeError } from '../errors.js';

/**
 * Bluetooth UUIDs. A 16-bit SIG UUID xxxx is shorthand for 0000xxxx-0000-1000-8000-00805f9b34fb (Core
 * Specification Vol 3, Part B, 2.5.1). The gateway's canonical form is the 4-digit lowercase hex for SIG
 * UUIDs and the 36-character lowercase form otherwise, so "0x2A35", "2a35" and
 * "00002a35-0000-1000-8000-00805F9B34FB" all name the same characteristic.
 */
const BASE_SUFFIX = '-0000-1000-8000-00805f9b34fb';
const SHORT = /^(?:0x)?([0-9a-f]{4})$/;
const SHORT32 = /^(?:0x)?([0-9a-f]{8})$/;
const LONG = /^([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})$/;

export function normalizeUuid(input: string): string {
  const text = input.trim().toLowerCase();
  const short = SHORT.exec(text);
  if (short) return short[1] as string;
  const short32 = SHORT32.exec(text);
  if (short32) return fromLong(`${short32[1]}${BASE_SUFFIX}`);
  const long = LONG.exec(text);
  if (long) return fromLong(`${long[1]}-${long[2]}-${long[3]}-${long[4]}-${long[5]}`);
  throw new DecodeError('DECODE_BAD_UUID', `not a Bluetooth UUID: ${JSON.stringify(input.slice(0, 40))}`);
}

function fromLong(uuid: string): string {
  if (uuid.startsWith('0000') && uuid.endsWith(BASE_SUFFIX)) return uuid.slice(4, 8);
  return uuid;
}

/** The 128-bit form, for backends that need it (BlueZ reports full UUIDs). */
export function longUuid(uuid: string): string {
  const canonical = normalizeUuid(uuid);
  return canonical.length === 4 ? `0000${canonical}${BASE_SUFFIX}` : canonical;
}
