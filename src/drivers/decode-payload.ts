import { DecodeError } from '../errors.js';
import { parseHex } from '../gatt/hex.js';
import { normalizeUuid } from '../gatt/uuid.js';
import type { JsonValue, Observation, Reading } from '../model/observation.js';
import type { DriverRegistry } from './registry.js';

/** The `decode` contract's output object (devices/README.md, "Checking by hand"); extra fields are allowed there. */
export interface DecodeOutput {
  readonly observations: readonly Observation[];
  readonly time: string | null;
  readonly status?: readonly string[];
  readonly kind?: string;
  readonly details?: { readonly [k: string]: JsonValue };
  readonly characteristic: string;
  readonly driver: string;
  /** Present only when one payload carried several readings (e.g. a vendor frame with several samples). */
  readonly readings?: readonly Reading[];
}

/**
 * Decodes one payload given as text, the way the CLI and the vendor tools see it. Throws only DecodeError:
 * anything else escaping a driver is a driver bug, and is reported as one rather than as a crash.
 */
export function decodePayload(
  registry: DriverRegistry,
  char: string,
  hex: string,
  driverId?: string,
): DecodeOutput {
  const characteristic = normalizeUuid(char);
  const { driver, spec } = registry.decoderFor(characteristic, driverId);
  const bytes = parseHex(hex);
  let readings: Reading[];
  try {
    readings = spec.decode(bytes, { characteristic });
  } catch (error) {
    if (error instanceof DecodeError) throw error;
    throw new DecodeError(
      'DECODE_INVALID_FIELD',
      `driver ${driver.id} failed on this payload (a driver bug; please report it)`,
      undefined,
      { cause: error },
    );
  }
  const provenance = { characteristic, driver: `${driver.id}@${driver.version}` };
  if (readings.length === 1) return { ...(readings[0] as Reading), ...provenance };
  return {
    observations: readings.flatMap((r) => r.observations),
    time: readings[0]?.time ?? null,
    ...provenance,
    ...(readings.length > 1 ? { readings } : {}),
  };
}
