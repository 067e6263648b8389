import { readFile } from 'node:fs/promises';
import { DriverError } from '../errors.js';
import type { JsonValue, Observation } from '../model/observation.js';

/**
 * A driver's recorded byte fixtures (devices/<id>/fixtures.json): the bytes a real device sends and what they
 * must decode to. They are the driver's tests, the simulator's source of realistic frames, and the vendor's
 * proof of conformance.
 */
export interface FixtureFile {
  /** Documents the vectors come from: id -> citation (spec section, public implementation's test, capture). */
  readonly sources: { readonly [id: string]: string };
  readonly fixtures: readonly Fixture[];
}

export interface ExpectedReading {
  readonly observations: readonly Observation[];
  readonly time: string | null;
  readonly status?: readonly string[];
  readonly kind?: 'measurement' | 'intermediate' | 'info';
  /** Compared key by key: only the keys listed here must match. */
  readonly details?: { readonly [k: string]: JsonValue };
}

/** A frame error a fixture expects (framed characteristics): its code, and optionally its size and position. */
export interface ExpectedFrameError {
  readonly code: string;
  /** Stream bytes the error covers (FrameError.bytes). */
  readonly bytes?: number;
  readonly offset?: number;
}

export interface Fixture {
  readonly name: string;
  /** Characteristic UUID. */
  readonly char: string;
  /** One notification (or read value), as hex. Exactly one of `hex` and `stream` is given. */
  readonly hex?: string;
  /**
   * Several notifications in a row on one connection, each as hex, fed through the characteristic's framer
   * (devices/README.md, "Framed streams"); `expect` lists every reading in the order their frames completed.
   */
  readonly stream?: readonly string[];
  /** A key of `sources`. */
  readonly source: string;
  /** One reading, or the list when the payload carries several. Absent when `error` is given. */
  readonly expect?: ExpectedReading | readonly ExpectedReading[];
  /** The DecodeError the bytes must produce. */
  readonly error?: { readonly code: string; readonly offset?: number };
  /**
   * On a framed characteristic (or with `stream`): every error the stream must report besides the readings in
   * `expect`, in order (bad checksums, garbage, an unfinished frame at the end). Absent means none.
   */
  readonly errors?: readonly ExpectedFrameError[];
  /** Readings of other characteristics the decoder may consult (DecodeContext.deviceState), as uuid -> hex. */
  readonly deviceState?: { readonly [uuid: string]: string };
}

export async function readFixtureFile(path: string): Promise<FixtureFile> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (cause) {
    throw new DriverError(
      'DRIVER_INVALID',
      `cannot read fixtures ${path}: ${(cause as Error).message}`,
      undefined,
      {
        cause,
      },
    );
  }
  const file = parsed as Partial<FixtureFile>;
  if (
    typeof file !== 'object' ||
    file === null ||
    !Array.isArray(file.fixtures) ||
    typeof file.sources !== 'object'
  ) {
    throw new DriverError('DRIVER_INVALID', `${path}: expected {"sources":{...},"fixtures":[...]}`);
  }
  file.fixtures.forEach((fixture, index) => {
    const where = `${path}: fixtures[${index}]`;
    if (typeof fixture.name !== 'string' || typeof fixture.char !== 'string') {
      throw new DriverError('DRIVER_INVALID', `${where}: name and char are required strings`);
    }
    const stream = fixture.stream;
    const isStream =
      Array.isArray(stream) && stream.length > 0 && stream.every((hex) => typeof hex === 'string');
    if ((typeof fixture.hex === 'string') === (stream !== undefined) || (stream !== undefined && !isStream)) {
      throw new DriverError(
        'DRIVER_INVALID',
        `${where} (${fixture.name}): give hex (a string) or stream (a non-empty array of hex strings), not both`,
      );
    }
    if (
      fixture.errors !== undefined &&
      !(
        Array.isArray(fixture.errors) &&
        (fixture.errors as unknown[]).every(
          (e) => typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string',
        )
      )
    ) {
      throw new DriverError(
        'DRIVER_INVALID',
        `${where} (${fixture.name}): errors must be [{"code":...}, ...]`,
      );
    }
    if (fixture.error !== undefined && fixture.errors !== undefined) {
      throw new DriverError('DRIVER_INVALID', `${where} (${fixture.name}): give error or errors, not both`);
    }
    if ((fixture.expect === undefined) === (fixture.error === undefined)) {
      throw new DriverError(
        'DRIVER_INVALID',
        `${where} (${fixture.name}): give exactly one of expect or error`,
      );
    }
    if (typeof fixture.source !== 'string' || !Object.hasOwn(file.sources ?? {}, fixture.source)) {
      throw new DriverError(
        'DRIVER_INVALID',
        `${where} (${fixture.name}): source must name an entry of sources`,
      );
    }
  });
  return file as FixtureFile;
}

/** The notifications a fixture stands for: its stream, or its one hex payload. */
export function fixturePayloads(fixture: Fixture): readonly string[] {
  return fixture.stream ?? (fixture.hex === undefined ? [] : [fixture.hex]);
}
