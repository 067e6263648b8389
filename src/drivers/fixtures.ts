import { readFile } from 'node:fs/promises';
import { DriverError } from '../errors.js';
import type { JsonValue, Observation } from '../model/observation.js';

/**
 * A driver's recorded byte fixtures (devices/<id>/fixtures.json): the bytes a real device sends and what they
 * must decode to. They are the driver's tests, the simulator's source of realistic frames, and the vendor's
 * proof of conformance.
 */
export interface FixtureFile {
  /**
   * Where the vectors come from: id -> provenance. The plain-string form of older files (just the citation) is
   * read as `{ kind: 'constructed', cite }`: a string cannot claim to be a capture, so an old file never counts
   * as evidence it does not state.
   */
  readonly sources: { readonly [id: string]: FixtureSource | string };
  readonly fixtures: readonly Fixture[];
}

/**
 * Where a real capture was published. A vector from a public project's unit tests is a capture only when that
 * project says it was recorded from a device (then `reader-test-data`); otherwise it is `constructed`.
 */
export const CAPTURE_PUBLISHED = [
  'vendor-sample-app', // the vendor's own demo app or SDK ships the bytes
  'reader-test-data', // an open-source reader's test data that its authors say was recorded from a device
  'reader-log', // a log or reverse-engineering notes of an open-source reader, showing a device's bytes
  'forum', // an issue tracker, forum or Q&A post quoting bytes from a device
  'vendor-capture', // captured by the driver's author from the device (name device, firmware and tool)
] as const;

export type CapturePublished = (typeof CAPTURE_PUBLISHED)[number];

/**
 * The provenance of one fixture source: bytes a real device sent (`capture`, with where they were published),
 * or bytes built by hand or by a program from a cited document (`constructed`). A driver, its constructed
 * fixtures and a simulator replaying them can all repeat one wrong reading of a document; only a capture
 * checks the driver against a device.
 */
export type FixtureSource =
  | { readonly kind: 'capture'; readonly published: CapturePublished; readonly cite: string }
  | { readonly kind: 'constructed'; readonly cite: string };

/** A source entry in its full form (old plain strings are constructed; see FixtureFile.sources). */
export function sourceOf(entry: FixtureSource | string): FixtureSource {
  return typeof entry === 'string' ? { kind: 'constructed', cite: entry } : entry;
}

/** The evidence a fixture file gives for a driver: fixtures per source kind. */
export interface Provenance {
  readonly capture: number;
  readonly constructed: number;
  /**
   * False when no fixture of a characteristic that emits observations comes from a capture: a driver then is
   * `unverified` (in `rpm-gateway drivers` and its conformance report).
   */
  readonly verified: boolean;
}

/**
 * Counts fixtures by the kind of their source. `measures(char)` says whether a characteristic emits
 * observations (captures of descriptive characteristics alone, e.g. a model name, verify nothing clinical).
 */
export function provenanceOf(file: FixtureFile, measures: (char: string) => boolean): Provenance {
  let capture = 0;
  let constructed = 0;
  let verified = false;
  for (const fixture of file.fixtures) {
    const entry = file.sources[fixture.source];
    if (entry !== undefined && sourceOf(entry).kind === 'capture') {
      capture++;
      if (measures(fixture.char)) verified = true;
    } else {
      constructed++;
    }
  }
  return { capture, constructed, verified };
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
  for (const [id, entry] of Object.entries(file.sources ?? {})) {
    const problem = sourceProblem(entry);
    if (problem) throw new DriverError('DRIVER_INVALID', `${path}: sources.${id}: ${problem}`);
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

function sourceProblem(entry: unknown): string | undefined {
  if (typeof entry === 'string') return entry.trim() ? undefined : 'the citation is empty';
  if (typeof entry !== 'object' || entry === null)
    return 'expected {"kind":...,"cite":...} or a citation string';
  const { kind, cite, published } = entry as Record<string, unknown>;
  if (typeof cite !== 'string' || !cite.trim()) return 'cite must say where the bytes come from';
  if (kind === 'constructed')
    return published === undefined ? undefined : 'published belongs to captures only';
  if (kind !== 'capture') return 'kind must be "capture" or "constructed"';
  if (!(CAPTURE_PUBLISHED as readonly unknown[]).includes(published)) {
    return `a capture says where it was published: one of ${CAPTURE_PUBLISHED.join(', ')}`;
  }
  return undefined;
}

/** The notifications a fixture stands for: its stream, or its one hex payload. */
export function fixturePayloads(fixture: Fixture): readonly string[] {
  return fixture.stream ?? (fixture.hex === undefined ? [] : [fixture.hex]);
}
