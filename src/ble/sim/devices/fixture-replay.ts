import type { ExpectedReading, FixtureFile } from '../../../drivers/fixtures.js';
import type { CharacteristicSpec, Driver } from '../../../drivers/sdk/define-driver.js';
import { parseHex } from '../../../gatt/hex.js';
import { normalizeUuid } from '../../../gatt/uuid.js';
import type {
  CharacteristicDefinition,
  CharacteristicProperty,
  ServiceDefinition,
} from '../virtual-peripheral.js';
import type { DeviceModelContext, DeviceModelParts } from './define-model.js';
import { sendOrStore, Ticker } from './model-context.js';

/** How often a replayed notify characteristic sends its next fixture unless the options say otherwise. */
export const REPLAY_EVERY_MS = 1_000;

/**
 * The generic device of a driver that has no model of its own: it advertises what the driver's match rule
 * looks for, serves the driver's characteristics, and sends the bytes of the driver's passing fixtures in
 * turn (a notify characteristic once a second while subscribed, an indicate characteristic one per
 * measurement, kept in memory while nobody listens; a read characteristic answers its first fixture). Writes
 * (the driver's setup commands) are accepted and ignored.
 *
 * It proves that the driver's own fixtures travel through a real session (discovery, subscriptions, setup
 * writes, stored-record handover) and decode as the fixtures say; it knows nothing of the patient, so its
 * values repeat the fixtures' and do not follow the simulated physiology. A model in the driver's folder
 * (sim.ts, `build`) does that.
 */
export function fixtureReplay(
  driver: Driver,
  file: FixtureFile,
): (c: DeviceModelContext) => DeviceModelParts {
  const frames = replayFrames(driver, file);
  const measurement = measurementSpec(driver, frames);
  if (!measurement) {
    throw new Error(
      `driver ${driver.id} has no passing fixture of a notify or indicate characteristic to replay; write a sim.ts`,
    );
  }
  return (c) => {
    const cursors = new Map<string, number>();
    const next = (uuid: string): Uint8Array => {
      const list = frames.get(uuid) ?? [];
      const at = cursors.get(uuid) ?? 0;
      cursors.set(uuid, (at + 1) % list.length);
      return list[at] as Uint8Array;
    };
    const p = c.peripheral(advertisedServices(driver), gattOf(driver, frames, c));
    const every = c.streamEvery(REPLAY_EVERY_MS);
    const tickers = new Map<string, Ticker>();
    p.addHooks({
      onSubscribe: (char) => {
        const uuid = normalizeUuid(char);
        const spec = driver.characteristics.find((s) => normalizeUuid(s.uuid) === uuid);
        if (spec?.access !== 'notify' || !frames.has(uuid)) return;
        const ticker = tickers.get(uuid) ?? new Ticker(c.scheduler);
        tickers.set(uuid, ticker);
        ticker.start(every, () => p.emit(spec.uuid, next(uuid)));
      },
      onUnsubscribe: (char) => tickers.get(normalizeUuid(char))?.stop(),
      onDisconnect: () => {
        for (const ticker of tickers.values()) ticker.stop();
      },
    });
    const uuid = normalizeUuid(measurement.uuid);
    const spot = measurement.access === 'indicate';
    return {
      peripheral: p,
      measurement: { service: measurement.service, characteristic: measurement.uuid },
      streams: !spot,
      measure: () => {
        if (spot) sendOrStore(p, measurement.uuid, next(uuid));
        else p.emit(measurement.uuid, next(uuid));
      },
      preload: (count) => {
        if (!spot) return; // a stream keeps no history
        for (let i = 0; i < count; i++) p.storeRecord(measurement.uuid, next(uuid));
      },
    };
  };
}

/**
 * The bytes to replay per characteristic (canonical UUID): every fixture that must decode (`expect`), given
 * as one payload (`hex`), needing no earlier read (`deviceState`).
 */
export function replayFrames(driver: Driver, file: FixtureFile): Map<string, Uint8Array[]> {
  const declared = new Set(driver.characteristics.map((s) => normalizeUuid(s.uuid)));
  const frames = new Map<string, Uint8Array[]>();
  for (const fixture of file.fixtures) {
    if (fixture.expect === undefined || fixture.deviceState !== undefined) continue;
    if (typeof fixture.hex !== 'string') continue;
    let uuid: string;
    let bytes: Uint8Array;
    try {
      uuid = normalizeUuid(fixture.char);
      bytes = parseHex(fixture.hex);
    } catch {
      continue; // the conformance kit reports a malformed fixture; the replay just leaves it out
    }
    if (!declared.has(uuid)) continue;
    frames.set(uuid, [...(frames.get(uuid) ?? []), bytes]);
  }
  return frames;
}

/** The replayed measurement: a notify or indicate characteristic with fixtures, one that measures first. */
function measurementSpec(
  driver: Driver,
  frames: ReadonlyMap<string, readonly Uint8Array[]>,
): CharacteristicSpec | undefined {
  const sending = driver.characteristics.filter(
    (s) => s.access !== 'read' && frames.has(normalizeUuid(s.uuid)),
  );
  return sending.find((s) => s.emits.length > 0) ?? sending[0];
}

/** The services the match rule looks for, else the services of the driver's characteristics. */
function advertisedServices(driver: Driver): string[] {
  if (driver.match.services?.length) return [...driver.match.services];
  return [...new Set(driver.characteristics.map((s) => normalizeUuid(s.service)))];
}

function gattOf(
  driver: Driver,
  frames: ReadonlyMap<string, readonly Uint8Array[]>,
  c: DeviceModelContext,
): ServiceDefinition[] {
  const services = new Map<string, Map<string, CharacteristicDefinition>>();
  const put = (service: string, definition: CharacteristicDefinition) => {
    const chars = services.get(service) ?? new Map<string, CharacteristicDefinition>();
    services.set(service, chars);
    const uuid = normalizeUuid(definition.uuid);
    const existing = chars.get(uuid);
    const properties = [...new Set([...(existing?.properties ?? []), ...definition.properties])];
    chars.set(uuid, { ...existing, ...definition, properties });
  };
  for (const spec of driver.characteristics) {
    const service = normalizeUuid(spec.service);
    const first = frames.get(normalizeUuid(spec.uuid))?.[0];
    if (spec.access === 'read') {
      if (first) put(service, { uuid: spec.uuid, properties: ['read'], value: first });
    } else {
      put(service, c.measurementChar(spec.uuid, [spec.access]));
    }
  }
  const writable: CharacteristicProperty[] = ['write', 'write-without-response'];
  for (const write of driver.setup ?? []) {
    put(normalizeUuid(write.service), { uuid: write.characteristic, properties: writable });
  }
  return [...services].map(([uuid, chars]) => ({ uuid, characteristics: [...chars.values()] }));
}

/** What a replay of these frames must decode to, in order (the sim check compares against it). */
export function expectedReplay(file: FixtureFile, characteristic: string): ExpectedReading[][] {
  const uuid = normalizeUuid(characteristic);
  return file.fixtures
    .filter(
      (f) =>
        f.expect !== undefined &&
        f.deviceState === undefined &&
        typeof f.hex === 'string' &&
        safeUuid(f.char) === uuid,
    )
    .map((f) => (Array.isArray(f.expect) ? [...f.expect] : [f.expect as ExpectedReading]));
}

function safeUuid(text: string): string | undefined {
  try {
    return normalizeUuid(text);
  } catch {
    return undefined;
  }
}

/**
 * An advertised name a name pattern accepts: its literal start (`/^PC-60F/` gives "PC-60F", `/^BM8\d/i`
 * gives nothing, since "BM8" alone does not match). Undefined when there is none; the driver's folder then
 * gives the name in sim.ts.
 */
export function nameFor(pattern: RegExp): string | undefined {
  const source = pattern.source.startsWith('^') ? pattern.source.slice(1) : pattern.source;
  let literal = '';
  for (let i = 0; i < source.length; i++) {
    const ch = source[i] as string;
    if (ch === '\\') {
      const escaped = source[i + 1];
      if (escaped === undefined || /[A-Za-z0-9]/.test(escaped)) break; // \d, \s, \w...: not a literal
      literal += escaped;
      i++;
    } else if ('*?{'.includes(ch)) {
      literal = literal.slice(0, -1); // the quantifier makes the last character optional or repeated
      break;
    } else if ('.[]()+|$^'.includes(ch)) {
      break;
    } else {
      literal += ch;
    }
  }
  const tester = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
  return literal && tester.test(literal) ? literal : undefined;
}
