import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { contractProblems } from '../../src/drivers/conformance.js';
import { fixturePayloads, readFixtureFile } from '../../src/drivers/fixtures.js';
import { loadDriverModules } from '../../src/drivers/loader.js';
import type { CharacteristicSpec } from '../../src/drivers/sdk/define-driver.js';
import { DecodeError } from '../../src/errors.js';
import { parseHex } from '../../src/gatt/hex.js';
import { normalizeUuid } from '../../src/gatt/uuid.js';

/**
 * Property test over every characteristic of every bundled driver: 100,000 payloads each, half random bytes
 * of random length, half mutations of the driver's own fixtures (bit flips, random flag bytes, truncation,
 * extension, byte overwrites). Whatever the radio sends, a decoder either throws a DecodeError or returns
 * readings that satisfy the contract (finite numbers or null with a reason, tabled codes and units).
 * Deterministic: the seed is fixed and printed with any failure.
 */
const PAYLOADS_PER_CHARACTERISTIC = 100_000;
const SEED = 0x5eed_2026;

function xorshift(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}

const root = join(import.meta.dirname, '../../devices');
const targets: { id: string; spec: CharacteristicSpec; seeds: Uint8Array[] }[] = [];
for (const { driver, dir } of await loadDriverModules(root)) {
  const file = await readFixtureFile(join(dir, 'fixtures.json'));
  for (const spec of driver.characteristics) {
    const uuid = normalizeUuid(spec.uuid);
    const seeds = file.fixtures
      .filter((f) => normalizeUuid(f.char) === uuid)
      .flatMap((f) => fixturePayloads(f).map(parseHex));
    targets.push({ id: `${driver.id} ${uuid}`, spec, seeds });
  }
}

function mutate(random: () => number, seeds: Uint8Array[]): Uint8Array {
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

describe('decoders under random and mutated payloads', () => {
  it('covers every characteristic of every bundled driver', () => {
    expect(targets.length).toBeGreaterThan(0);
  });

  for (const [index, { id, spec, seeds }] of targets.entries()) {
    it(`${id}: ${PAYLOADS_PER_CHARACTERISTIC} payloads, only DecodeErrors, only valid readings`, () => {
      const random = xorshift(SEED + index);
      const ctx = { characteristic: normalizeUuid(spec.uuid) };
      let decoded = 0;
      for (let n = 0; n < PAYLOADS_PER_CHARACTERISTIC; n++) {
        const payload = mutate(random, seeds);
        let readings: ReturnType<CharacteristicSpec['decode']>;
        try {
          readings = spec.decode(payload, ctx);
        } catch (error) {
          if (error instanceof DecodeError) {
            if (error.offset !== undefined && (error.offset < 0 || error.offset > payload.length)) {
              throw new Error(
                `seed ${SEED + index}: offset ${error.offset} outside ${Buffer.from(payload).toString('hex')}`,
              );
            }
            continue;
          }
          throw new Error(
            `seed ${SEED + index}: ${String(error)} for ${Buffer.from(payload).toString('hex')}`,
          );
        }
        decoded++;
        for (const reading of readings) {
          const problems = contractProblems(reading, spec);
          if (problems.length > 0) {
            throw new Error(
              `seed ${SEED + index}: ${problems.join('; ')} for ${Buffer.from(payload).toString('hex')}`,
            );
          }
          if (JSON.stringify(reading) === undefined) throw new Error('reading is not JSON-serialisable');
        }
      }
      // the generator must reach the decoding paths too, not only the error paths
      expect(decoded).toBeGreaterThan(0);
    });
  }
});
