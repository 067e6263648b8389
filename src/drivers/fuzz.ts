import { DecodeError } from '../errors.js';
import { parseHex } from '../gatt/hex.js';
import { normalizeUuid } from '../gatt/uuid.js';
import { contractProblems } from './conformance.js';
import { type FixtureFile, fixturePayloads } from './fixtures.js';
import type { CharacteristicSpec, Driver } from './sdk/define-driver.js';

/**
 * The fuzz run of one characteristic's decoder: `payloads` inputs, half random bytes of random length, half
 * mutations of the driver's own fixtures (bit flips, random flag bytes, truncation, extension, byte
 * overwrites). Whatever the radio sends, a decoder either throws a DecodeError (with an offset inside the
 * payload) or returns readings that satisfy the decode contract (finite numbers or null with a reason, tabled
 * codes and units, JSON-serialisable). Deterministic: the seed is part of the result, so a failure replays.
 * Shared by the test suite (test/drivers/fuzz.test.ts) and `npm run driver:test`.
 */
export interface FuzzResult {
  /** `<driver id> <characteristic uuid>`. */
  readonly target: string;
  readonly seed: number;
  readonly payloads: number;
  /** Payloads that decoded to readings (the generator must reach the decoding paths, not only errors). */
  readonly decoded: number;
  /** Payloads refused with a DecodeError. */
  readonly refused: number;
  /** The first violation, with the payload that caused it; undefined when the run passed. */
  readonly failure?: string;
}

export interface FuzzTarget {
  readonly target: string;
  readonly spec: CharacteristicSpec;
  /** Fixture payloads of this characteristic, the starting points of mutations. */
  readonly seeds: readonly Uint8Array[];
}

/** The default number of payloads per characteristic (the suite's and driver:test's). */
export const FUZZ_PAYLOADS = 100_000;
export const FUZZ_SEED = 0x5eed_2026;

/** One target per declared characteristic of the driver, seeded with its fixtures. */
export function fuzzTargets(driver: Driver, file: FixtureFile): FuzzTarget[] {
  return driver.characteristics.map((spec) => {
    const uuid = normalizeUuid(spec.uuid);
    const seeds: Uint8Array[] = [];
    for (const fixture of file.fixtures) {
      try {
        if (normalizeUuid(fixture.char) !== uuid) continue;
        // A stream fixture seeds each of its notifications: a framed decoder sees one frame at a time, and
        // the fuzz run feeds the decoder directly, so whole frames and their pieces are both good starts.
        for (const hex of fixturePayloads(fixture)) seeds.push(parseHex(hex));
      } catch {
        // a malformed fixture is the conformance kit's finding; it seeds nothing here
      }
    }
    return { target: `${driver.id} ${uuid}`, spec, seeds };
  });
}

export function fuzzCharacteristic(
  { target, spec, seeds }: FuzzTarget,
  options: { readonly payloads?: number; readonly seed?: number } = {},
): FuzzResult {
  const payloads = options.payloads ?? FUZZ_PAYLOADS;
  const seed = options.seed ?? seedFor(target);
  const random = xorshift(seed);
  const ctx = { characteristic: normalizeUuid(spec.uuid) };
  let decoded = 0;
  let refused = 0;
  const fail = (what: string, payload: Uint8Array): FuzzResult => ({
    target,
    seed,
    payloads,
    decoded,
    refused,
    failure: `seed ${seed}: ${what} for ${Buffer.from(payload).toString('hex')}`,
  });
  for (let n = 0; n < payloads; n++) {
    const payload = mutate(random, seeds);
    let readings: ReturnType<CharacteristicSpec['decode']>;
    try {
      readings = spec.decode(payload, ctx);
    } catch (error) {
      if (!(error instanceof DecodeError)) {
        return fail(`threw ${describe(error)}; decoders may throw only DecodeError`, payload);
      }
      if (error.offset !== undefined && (error.offset < 0 || error.offset > payload.length)) {
        return fail(`${error.code} offset ${error.offset} outside the payload`, payload);
      }
      refused++;
      continue;
    }
    decoded++;
    for (const reading of readings) {
      const problems = contractProblems(reading, spec);
      if (problems.length > 0) return fail(problems.join('; '), payload);
      if (JSON.stringify(reading) === undefined) return fail('reading is not JSON-serialisable', payload);
    }
  }
  if (decoded === 0) {
    return {
      target,
      seed,
      payloads,
      decoded,
      refused,
      failure: `seed ${seed}: no payload decoded; the run reached only the error paths (add passing fixtures)`,
    };
  }
  return { target, seed, payloads, decoded, refused };
}

/**
 * The default seed of a target: FUZZ_SEED mixed with the target's name (FNV-1a), so a driver's run is the same
 * in the suite and in `driver:test`, whatever other drivers are bundled.
 */
export function seedFor(target: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(target)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return (FUZZ_SEED ^ hash) >>> 0;
}

function xorshift(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}

function mutate(random: () => number, seeds: readonly Uint8Array[]): Uint8Array {
  const int = (n: number) => Math.floor(random() * n);
  if (seeds.length === 0 || random() < 0.5) return Uint8Array.from({ length: int(41) }, () => int(256));
  const base = seeds[int(seeds.length)] as Uint8Array;
  const bytes = Uint8Array.from(base);
  switch (int(5)) {
    case 0: // flip 1-3 bits anywhere
      for (let i = int(3) + 1; i > 0 && bytes.length > 0; i--) {
        const at = int(bytes.length);
        bytes[at] = (bytes[at] as number) ^ (1 << int(8));
      }
      return bytes;
    case 1: // random flags byte: every layout the flags can announce
      if (bytes.length > 0) bytes[0] = int(256);
      return bytes;
    case 2: // truncate
      return bytes.subarray(0, int(bytes.length + 1));
    case 3: {
      // extend with random bytes
      const longer = new Uint8Array(bytes.length + int(8) + 1);
      longer.set(bytes);
      for (let i = bytes.length; i < longer.length; i++) longer[i] = int(256);
      return longer;
    }
    default: // overwrite a few bytes
      for (let i = int(4) + 1; i > 0 && bytes.length > 0; i--) bytes[int(bytes.length)] = int(256);
      return bytes;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
