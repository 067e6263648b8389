import { isDeepStrictEqual } from 'node:util';
import { DecodeError, FrameError } from '../errors.js';
import { parseHex } from '../gatt/hex.js';
import { normalizeUuid } from '../gatt/uuid.js';
import { isMdcCode } from '../model/codes.js';
import type { JsonValue, Reading } from '../model/observation.js';
import { isUcumUnit } from '../model/units.js';
import { CharacteristicStream, type StreamStep } from './characteristic-stream.js';
import type { ExpectedFrameError, ExpectedReading, Fixture, FixtureFile } from './fixtures.js';
import type { CharacteristicSpec, DecodeContext, Driver } from './sdk/define-driver.js';

/**
 * The conformance kit: replays a driver's fixtures and checks every reading against the contract (declared
 * codes and units only, null exactly when invalid, finite numbers, ISO local time). Pure: it returns a report,
 * so the vitest suite, `npm run driver:test` and CI all share it.
 */
export interface FixtureResult {
  readonly fixture: Fixture;
  readonly ok: boolean;
  readonly problems: readonly string[];
}

export interface ConformanceReport {
  readonly driver: string;
  readonly results: readonly FixtureResult[];
  /** Problems that are not about one fixture (e.g. a declared characteristic without any fixture). */
  readonly driverProblems: readonly string[];
  readonly ok: boolean;
}

const LOCAL_ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/;

export function checkDriver(driver: Driver, file: FixtureFile): ConformanceReport {
  const byUuid = new Map(driver.characteristics.map((spec) => [normalizeUuid(spec.uuid), spec]));
  const results = file.fixtures.map((fixture) => checkFixture(driver, byUuid, fixture));
  const driverProblems: string[] = [];
  for (const [uuid, spec] of byUuid) {
    const covered = file.fixtures.some((f) => safeUuid(f.char) === uuid && f.expect !== undefined);
    if (!covered) driverProblems.push(`characteristic ${uuid} (${spec.name}) has no passing-case fixture`);
  }
  const ok = driverProblems.length === 0 && results.every((r) => r.ok);
  return { driver: `${driver.id}@${driver.version}`, results, driverProblems, ok };
}

function safeUuid(text: string): string | undefined {
  try {
    return normalizeUuid(text);
  } catch {
    return undefined;
  }
}

function checkFixture(
  driver: Driver,
  byUuid: Map<string, CharacteristicSpec>,
  fixture: Fixture,
): FixtureResult {
  const problems: string[] = [];
  const uuid = safeUuid(fixture.char);
  const spec = uuid === undefined ? undefined : byUuid.get(uuid);
  if (uuid === undefined || spec === undefined) {
    return {
      fixture,
      ok: false,
      problems: [`driver ${driver.id} declares no characteristic ${fixture.char}`],
    };
  }
  if (spec.framing !== undefined || fixture.stream !== undefined) {
    return { fixture, ...checkStream(driver, spec, uuid, fixture) };
  }
  let readings: Reading[] | undefined;
  let thrown: unknown;
  try {
    readings = spec.decode(parseHex(fixture.hex ?? ''), contextFor(driver, uuid, fixture));
  } catch (error) {
    thrown = error;
  }
  if (thrown !== undefined && !(thrown instanceof DecodeError)) {
    problems.push(`decoder threw ${describe(thrown)}; decoders may throw only DecodeError`);
  } else if (fixture.error) {
    if (thrown instanceof DecodeError) {
      if (thrown.code !== fixture.error.code)
        problems.push(`expected error ${fixture.error.code}, got ${thrown.code}`);
      if (fixture.error.offset !== undefined && thrown.offset !== fixture.error.offset) {
        problems.push(`expected error at byte ${fixture.error.offset}, got ${thrown.offset}`);
      }
    } else {
      problems.push(`expected error ${fixture.error.code}, but it decoded`);
    }
  } else if (thrown instanceof DecodeError) {
    problems.push(`unexpected ${thrown.code}: ${thrown.message}`);
  } else if (readings && fixture.expect) {
    problems.push(...readingProblems(readings, fixture.expect, spec));
  }
  return { fixture, ok: problems.length === 0, problems };
}

function readingProblems(
  readings: readonly Reading[],
  expect: ExpectedReading | readonly ExpectedReading[],
  spec: CharacteristicSpec,
): string[] {
  const problems: string[] = [];
  const expected: readonly ExpectedReading[] = Array.isArray(expect) ? expect : [expect as ExpectedReading];
  if (readings.length !== expected.length) {
    problems.push(`expected ${expected.length} reading(s), got ${readings.length}`);
  }
  readings.forEach((reading, i) => {
    problems.push(...contractProblems(reading, spec).map((p) => `reading ${i}: ${p}`));
    const want = expected[i];
    if (want) problems.push(...compareReading(reading, want).map((p) => `reading ${i}: ${p}`));
  });
  return problems;
}

/**
 * A framed characteristic's fixture (or any `stream` fixture): its notifications go through one connection's
 * CharacteristicStream, exactly as a hub feeds them, then the stream ends. Every reading is checked against
 * `expect` and every error against `errors` (or `error`, the only error of a fixture that decodes nothing):
 * a framer's errors are part of the behaviour, so an unexpected one is a problem, never noise.
 */
function checkStream(
  driver: Driver,
  spec: CharacteristicSpec,
  uuid: string,
  fixture: Fixture,
): { ok: boolean; problems: string[] } {
  const problems: string[] = [];
  const ctx = contextFor(driver, uuid, fixture);
  const stream = new CharacteristicStream(driver, spec);
  const steps: StreamStep[] = [];
  try {
    for (const hex of fixture.stream ?? [fixture.hex ?? '']) steps.push(...stream.push(parseHex(hex), ctx));
  } catch (error) {
    return { ok: false, problems: [`fixture hex: ${describe(error)}`] };
  }
  steps.push(...stream.end(ctx));
  const readings = steps.flatMap((s) => s.readings ?? []);
  const errors = steps.flatMap((s) => (s.error ? [s.error] : []));
  for (const error of errors) {
    const cause: unknown = error.cause;
    if (cause !== undefined && !(cause instanceof DecodeError)) {
      problems.push(`decoder threw ${describe(cause)}; decoders may throw only DecodeError`);
    }
  }
  const wantErrors: readonly ExpectedFrameError[] = fixture.errors ?? (fixture.error ? [fixture.error] : []);
  const got = errors.map((e) => ({
    code: e.code,
    ...(e instanceof FrameError ? { bytes: e.bytes } : {}),
    ...(e.offset === undefined ? {} : { offset: e.offset }),
  }));
  const errorsMatch =
    got.length === wantErrors.length &&
    wantErrors.every((want, i) => {
      const have = got[i];
      return (
        have !== undefined &&
        have.code === want.code &&
        (want.bytes === undefined || have.bytes === want.bytes) &&
        (want.offset === undefined || have.offset === want.offset)
      );
    });
  if (!errorsMatch) problems.push(`errors ${JSON.stringify(got)} != expected ${JSON.stringify(wantErrors)}`);
  problems.push(...readingProblems(readings, fixture.expect ?? [], spec));
  return { ok: problems.length === 0, problems };
}

function contextFor(driver: Driver, uuid: string, fixture: Fixture): DecodeContext {
  if (!fixture.deviceState) return { characteristic: uuid };
  const deviceState: Record<string, Reading | undefined> = {};
  for (const [stateUuid, hex] of Object.entries(fixture.deviceState)) {
    const key = normalizeUuid(stateUuid);
    const spec = driver.characteristics.find((c) => normalizeUuid(c.uuid) === key);
    deviceState[key] = spec?.decode(parseHex(hex), { characteristic: key })[0];
  }
  return { characteristic: uuid, deviceState };
}

/** Checks one reading against the decode contract and the characteristic's declared `emits`. */
export function contractProblems(reading: Reading, spec: CharacteristicSpec): string[] {
  const problems: string[] = [];
  if (reading.time !== null && !LOCAL_ISO.test(reading.time)) {
    problems.push(`time ${JSON.stringify(reading.time)} is not ISO-8601 local time`);
  }
  for (const o of reading.observations) {
    if (!isMdcCode(o.code)) problems.push(`code ${o.code} is not in the MDC table`);
    if (!isUcumUnit(o.unit)) problems.push(`unit ${o.unit} is not in the UCUM table`);
    if (!spec.emits.some((e) => e.code === o.code && e.units.includes(o.unit))) {
      problems.push(`${o.code} in ${o.unit} is not declared in emits of ${spec.uuid}`);
    }
    if (o.value === null ? o.invalid === undefined : !Number.isFinite(o.value) || o.invalid !== undefined) {
      problems.push(`${o.code}: value must be a finite number, or null with an invalid reason`);
    }
  }
  return problems;
}

/** How a decoded reading differs from a fixture's expectation (only the keys the expectation gives). */
export function compareReading(actual: Reading, want: ExpectedReading): string[] {
  const problems: string[] = [];
  if (!isDeepStrictEqual(strip(actual.observations), strip(want.observations))) {
    problems.push(
      `observations ${JSON.stringify(actual.observations)} != ${JSON.stringify(want.observations)}`,
    );
  }
  if (actual.time !== want.time) problems.push(`time ${actual.time} != ${want.time}`);
  if (want.status !== undefined && !isDeepStrictEqual(actual.status ?? [], want.status)) {
    problems.push(`status ${JSON.stringify(actual.status ?? [])} != ${JSON.stringify(want.status)}`);
  }
  if (want.kind !== undefined && (actual.kind ?? 'measurement') !== want.kind) {
    problems.push(`kind ${actual.kind ?? 'measurement'} != ${want.kind}`);
  }
  for (const [key, value] of Object.entries(want.details ?? {})) {
    const got: JsonValue | undefined = actual.details?.[key];
    if (!isDeepStrictEqual(strip(got), value)) {
      problems.push(`details.${key} ${JSON.stringify(got)} != ${JSON.stringify(value)}`);
    }
  }
  return problems;
}

/** JSON round trip: drops undefined keys so that `{a: 1, b: undefined}` equals `{a: 1}`. */
function strip<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
