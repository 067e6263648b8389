import { DecodeError } from '../errors.js';
import { parseHex } from '../gatt/hex.js';
import { normalizeUuid } from '../gatt/uuid.js';
import type { JsonValue, Observation, Reading } from '../model/observation.js';
import { CharacteristicStream, type StreamStep } from './characteristic-stream.js';
import type { DecoderChoice, DriverRegistry } from './registry.js';

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
  /** Frame errors of a framed characteristic's payload that also gave readings (bad checksum, garbage). */
  readonly errors?: readonly ErrorJson[];
}

/** The answer to a `stream` request: every reading in the order its frame completed, and every error. */
export interface StreamOutput {
  readonly readings: readonly Reading[];
  readonly errors: readonly ErrorJson[];
  readonly characteristic: string;
  readonly driver: string;
}

export type ErrorJson = ReturnType<DecodeError['toJSON']>;

/**
 * Which driver decodes: the one a hub would pick for a device advertising `service` and `name` (either may be
 * given alone), else the one named by `driverId`, else the characteristic's SIG driver (or its only driver).
 */
export interface DriverSelection {
  readonly driverId?: string | undefined;
  readonly service?: string | undefined;
  readonly name?: string | undefined;
}

/**
 * The decoder for a characteristic under a selection. With `service`/`name`, the registry's own advertisement
 * match (DriverRegistry.match, the function the hub runs on every advertisement) picks the driver, so a vendor
 * device whose frames ride a SIG characteristic decodes as it would in the hub, and without them the strict SIG
 * driver keeps the characteristic.
 */
export function selectDecoder(
  registry: DriverRegistry,
  char: string,
  selection: DriverSelection = {},
): DecoderChoice {
  const characteristic = normalizeUuid(char);
  const { service, name } = selection;
  if (service === undefined && name === undefined)
    return registry.decoderFor(characteristic, selection.driverId);
  const services = service === undefined ? [] : [normalizeUuid(service)];
  const driver = registry.match({ services, ...(name === undefined ? {} : { name }) });
  if (!driver) {
    throw new DecodeError(
      'DECODE_NO_DRIVER',
      'no bundled driver matches a device advertising this service and name (see: rpm-gateway drivers)',
    );
  }
  return registry.decoderFor(characteristic, driver.id);
}

/**
 * Decodes one payload given as text, the way the CLI and the vendor tools see it. Throws only DecodeError:
 * anything else escaping a driver is a driver bug, and is reported as one rather than as a crash. On a framed
 * characteristic the payload is one notification of a fresh connection whose stream then ends: it may hold
 * several frames (several readings); frame errors come back in `errors` next to the readings, or, when nothing
 * decoded, the first of them is thrown.
 */
export function decodePayload(
  registry: DriverRegistry,
  char: string,
  hex: string,
  selection: DriverSelection = {},
): DecodeOutput {
  const characteristic = normalizeUuid(char);
  const choice = selectDecoder(registry, characteristic, selection);
  const bytes = parseHex(hex);
  const steps = run(choice, characteristic, [bytes]);
  const readings = steps.flatMap((s) => s.readings ?? []);
  const errors = steps.flatMap((s) => (s.error ? [s.error] : []));
  if (errors.length > 0 && readings.length === 0) throw errors[0] as DecodeError;
  const provenance = {
    characteristic,
    driver: `${choice.driver.id}@${choice.driver.version}`,
    ...(errors.length > 0 ? { errors: errors.map((e) => e.toJSON()) } : {}),
  };
  if (readings.length === 1) return { ...(readings[0] as Reading), ...provenance };
  return {
    observations: readings.flatMap((r) => r.observations),
    time: readings[0]?.time ?? null,
    ...provenance,
    ...(readings.length > 1 ? { readings } : {}),
  };
}

/**
 * Decodes a sequence of notifications of one connection: through the characteristic's framer when it declares
 * one (frames split across notifications or merged into one decode as if sent whole), else one by one. Bad hex
 * anywhere refuses the whole request; decode and frame errors are answered in `errors`, in stream order.
 */
export function decodeStream(
  registry: DriverRegistry,
  char: string,
  hexes: readonly string[],
  selection: DriverSelection = {},
): StreamOutput {
  const characteristic = normalizeUuid(char);
  const choice = selectDecoder(registry, characteristic, selection);
  const notifications = hexes.map((hex) => parseHex(hex));
  const steps = run(choice, characteristic, notifications);
  return {
    readings: steps.flatMap((s) => s.readings ?? []),
    errors: steps.flatMap((s) => (s.error ? [s.error.toJSON()] : [])),
    characteristic,
    driver: `${choice.driver.id}@${choice.driver.version}`,
  };
}

function run(
  choice: DecoderChoice,
  characteristic: string,
  notifications: readonly Uint8Array[],
): StreamStep[] {
  const stream = new CharacteristicStream(choice.driver, choice.spec);
  const ctx = { characteristic };
  const steps = notifications.flatMap((bytes) => stream.push(bytes, ctx));
  steps.push(...stream.end(ctx));
  return steps;
}
