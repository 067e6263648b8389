import { CharacteristicStream, type StreamStep } from '../../drivers/characteristic-stream.js';
import { compareReading, contractProblems } from '../../drivers/conformance.js';
import type { ExpectedReading } from '../../drivers/fixtures.js';
import type { DriverRegistry } from '../../drivers/registry.js';
import { type CharacteristicSpec, type Driver, setupValue } from '../../drivers/sdk/define-driver.js';
import { DecodeError, FrameError } from '../../errors.js';
import { encodeRacpReportAll } from '../../gatt/glucose.js';
import { normalizeUuid } from '../../gatt/uuid.js';
import type { Reading } from '../../model/observation.js';
import { VirtualScheduler } from '../../util/scheduler.js';
import type { Advertisement, Connection } from '../central.js';
import {
  DEFAULT_GLUCOSE_PASSKEY,
  type SimulatedDevice,
  type SimulatedDeviceOptions,
} from './devices/types.js';
import { SimCentral } from './sim-central.js';

/**
 * The simulator model check of `npm run driver:test` (and of the suite for fixture replays): the driver's
 * simulated device, on a simulated radio in virtual time, goes through what a session does (scan, connect,
 * bond when asked, read, subscribe, the driver's setup writes and their repeats) until it has sent `payloads`
 * values on its measurement characteristic; every value is decoded with the driver.
 */
export interface ModelCheckResult {
  /** Values received on the measurement characteristic. */
  readonly payloads: number;
  /** Readings with observations decoded from them. */
  readonly readings: number;
  /** Values the driver refused with a DecodeError (a model's bytes should all decode). */
  readonly refused: number;
  readonly problems: readonly string[];
  readonly ok: boolean;
}

export interface ModelCheckOptions {
  /** Measurement values to collect (default 200). */
  readonly payloads?: number;
  /** When given, the advertisement must pick this driver, as a hub's scan would. */
  readonly registry?: DriverRegistry;
  /**
   * For a fixture replay: what each replayed value must decode to, in the order the replay sends them (it
   * cycles through them).
   */
  readonly expected?: readonly (readonly ExpectedReading[])[];
}

interface Payload {
  readonly characteristic: string;
  readonly bytes: Uint8Array;
}

export async function checkDeviceModel(
  driver: Driver,
  build: (options: SimulatedDeviceOptions) => SimulatedDevice,
  options: ModelCheckOptions = {},
): Promise<ModelCheckResult> {
  const count = options.payloads ?? 200;
  const problems: string[] = [];
  const scheduler = new VirtualScheduler();
  const device = build({ scheduler, seed: 11 });
  const central = new SimCentral({
    scheduler,
    peripherals: [device.peripheral],
    passkeyProvider: () => DEFAULT_GLUCOSE_PASSKEY,
  });
  await central.start();

  const ads: Advertisement[] = [];
  const scan = central.scan({ durationMs: 500 }, (ad) => ads.push(ad));
  await scheduler.advanceAsync(500);
  await scan;
  const [ad] = ads;
  if (ad === undefined) problems.push('the device did not advertise');
  else if (options.registry) {
    // As enrolment reads an advertisement (src/enrolment/pairing.ts).
    const picked = options.registry.match({
      services: ad.services,
      ...(ad.name === undefined ? {} : { name: ad.name }),
      manufacturerIds: [...ad.manufacturerData.keys()],
    })?.id;
    if (picked !== driver.id)
      problems.push(`its advertisement picks ${picked ?? 'no driver'}, not ${driver.id}`);
  }

  const payloads: Payload[] = [];
  const target = normalizeUuid(device.measurement.characteristic);
  const have = () => payloads.filter((p) => p.characteristic === target).length;
  try {
    const connection = await openSession(driver, device, scheduler, central, payloads, problems);
    if (device.racp) {
      device.preload(count, 30 * 60_000);
      await connection.write(device.measurement.service, '2a52', encodeRacpReportAll());
      await scheduler.advanceAsync(count * 20 + 1_000);
    }
    for (let guard = 0; have() < count && guard < count * 10; guard++) {
      if (device.streams) await scheduler.advanceAsync(1_000);
      else {
        device.measure();
        await scheduler.advanceAsync(7 * 60_000);
      }
    }
  } catch (error) {
    problems.push(`the session failed: ${(error as Error).message}`);
  }
  if (have() < count) problems.push(`the device sent ${have()} of ${count} measurement values`);

  let readings = 0;
  let refused = 0;
  let frameErrors = 0;
  let index = 0;
  // One connection's decoding per characteristic, as the session does it (characteristic-stream.ts): a model's
  // framed characteristic is cut into notifications regardless of frame boundaries (20 bytes at the default
  // ATT_MTU), so its frames may be split across notifications or merged in one. A replay sends each fixture as
  // the fixture file defines it: one notification of a fresh connection whose stream then ends.
  const streams = new Map<string, CharacteristicStream>();
  for (const payload of payloads) {
    const spec = driver.characteristics.find((c) => normalizeUuid(c.uuid) === payload.characteristic);
    if (!spec) continue;
    const ctx = { characteristic: payload.characteristic };
    let steps: StreamStep[];
    if (options.expected !== undefined) {
      const fresh = new CharacteristicStream(driver, spec);
      steps = [...fresh.push(payload.bytes, ctx), ...fresh.end(ctx)];
    } else {
      let stream = streams.get(payload.characteristic);
      if (!stream) {
        stream = new CharacteristicStream(driver, spec);
        streams.set(payload.characteristic, stream);
      }
      steps = stream.push(payload.bytes, ctx);
    }
    const decoded: Reading[] = [];
    for (const step of steps) {
      if (!step.error) {
        decoded.push(...step.readings);
        continue;
      }
      const cause: unknown = step.error.cause;
      if (cause !== undefined && !(cause instanceof DecodeError)) {
        problems.push(`the decoder threw ${(cause as Error).name}; decoders may throw only DecodeError`);
      } else if (step.error instanceof FrameError) {
        // A replay sends the fixtures' bad frames on purpose; a model's own frames must all be whole and sound.
        if (!options.expected) frameErrors++;
      } else {
        refused++;
      }
    }
    readings += decoded.filter((r) => r.observations.length > 0).length;
    for (const reading of decoded) problems.push(...contractProblems(reading, spec));
    if (options.expected?.length && payload.characteristic === target) {
      const want = options.expected[index++ % options.expected.length] as readonly ExpectedReading[];
      problems.push(...replayProblems(decoded, want, index));
    }
  }
  if (refused > 0) problems.push(`${refused} value(s) the driver refused with a DecodeError`);
  if (frameErrors > 0) {
    problems.push(`${frameErrors} frame error(s) in the model's own stream (checksum, garbage or length)`);
  }
  if (readings === 0) problems.push('no value decoded to a reading with observations');
  const unique = [...new Set(problems)];
  return { payloads: have(), readings, refused, problems: unique, ok: unique.length === 0 };
}

function replayProblems(actual: readonly Reading[], want: readonly ExpectedReading[], n: number): string[] {
  if (actual.length !== want.length)
    return [`replayed value ${n}: ${actual.length} reading(s), fixture says ${want.length}`];
  return actual.flatMap((reading, i) =>
    compareReading(reading, want[i] as ExpectedReading).map((p) => `replayed value ${n}: ${p}`),
  );
}

function decode(
  spec: CharacteristicSpec,
  payload: Payload,
  problems: string[],
): Reading[] | 'refused' | undefined {
  try {
    return spec.decode(payload.bytes, { characteristic: payload.characteristic });
  } catch (error) {
    if (error instanceof DecodeError) return 'refused';
    problems.push(`the decoder threw ${(error as Error).name}; decoders may throw only DecodeError`);
    return undefined;
  }
}

/** What a session does with a driver: see src/session/device-session.ts; repeats end with the link. */
async function openSession(
  driver: Driver,
  device: SimulatedDevice,
  scheduler: VirtualScheduler,
  central: SimCentral,
  payloads: Payload[],
  problems: string[],
): Promise<Connection> {
  const connection = await central.connect(device.peripheral.address, { timeoutMs: 1_000 });
  const present = new Set(
    (await connection.discover()).flatMap((s) =>
      s.characteristics.map((c) => `${normalizeUuid(s.uuid)}/${normalizeUuid(c.uuid)}`),
    ),
  );
  const declared = driver.characteristics.filter((c) =>
    present.has(`${normalizeUuid(c.service)}/${normalizeUuid(c.uuid)}`),
  );
  for (const spec of driver.characteristics) {
    if (!spec.optional && !declared.includes(spec)) {
      problems.push(`the device lacks the required characteristic ${spec.uuid} (${spec.name})`);
    }
  }
  if (device.peripheral.passkey !== undefined) await connection.bond();
  for (const spec of declared) {
    const characteristic = normalizeUuid(spec.uuid);
    if (spec.access === 'read') {
      const bytes = await connection.read(spec.service, spec.uuid);
      if (decode(spec, { characteristic, bytes }, problems) === 'refused') {
        problems.push(`the driver refused the value read from ${spec.uuid} (${spec.name})`);
      }
    } else {
      await connection.subscribe(spec.service, spec.uuid, (bytes) =>
        payloads.push({ characteristic, bytes }),
      );
    }
  }
  let ended = false;
  connection.onDisconnect(() => {
    ended = true;
  });
  for (const write of driver.setup ?? []) {
    const send = () =>
      connection
        // A computed value sees the virtual clock, as a session's would see its scheduler (on UTC).
        .write(
          write.service,
          write.characteristic,
          setupValue(write, { now: new Date(scheduler.now()), utcOffsetMinutes: 0 }, driver.id),
          { withResponse: write.withResponse ?? true },
        )
        .catch((error: Error) => {
          if (!ended) problems.push(`setup write to ${write.characteristic} failed: ${error.message}`);
        });
    await send();
    const every = write.repeatEveryMs;
    if (every !== undefined) {
      const again = () => {
        if (ended) return;
        void send();
        scheduler.setTimeout(again, every);
      };
      scheduler.setTimeout(again, every);
    }
  }
  return connection;
}
