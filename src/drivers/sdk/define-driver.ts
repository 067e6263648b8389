import { DriverError } from '../../errors.js';
import { normalizeUuid } from '../../gatt/uuid.js';
import type { MdcCode } from '../../model/codes.js';
import type { Reading } from '../../model/observation.js';
import type { UcumUnit } from '../../model/units.js';
import { type Framing, framingProblems } from './framing.js';

/** What a decoder may know besides the bytes. Decoders are pure: no I/O, no clock, no randomness. */
export interface DecodeContext {
  /** The characteristic the bytes came from (canonical form, see normalizeUuid). */
  readonly characteristic: string;
  /**
   * Values the session read earlier from the same device, keyed by characteristic UUID and already decoded
   * (e.g. PLX Features 2a60, which says whether the continuous measurement carries fast/slow fields).
   */
  readonly deviceState?: { readonly [uuid: string]: Reading | undefined };
}

/**
 * Turns one notification, indication or read (or, on a framed characteristic, one whole frame) into zero or more
 * readings; throws only DecodeError.
 */
export type Decoder = (bytes: Uint8Array, ctx: DecodeContext) => Reading[];

/** A code a characteristic may emit and the units it may carry it in (checked against the tables). */
export interface Emits {
  readonly code: MdcCode;
  readonly units: readonly UcumUnit[];
}

export interface CharacteristicSpec {
  /** 16-bit ("2a35") or 128-bit UUID. */
  readonly uuid: string;
  /** The service it lives in. */
  readonly service: string;
  /** How the gateway gets values: a read, notifications, or indications (acknowledged). */
  readonly access: 'read' | 'notify' | 'indicate';
  /** Profile-optional characteristics are used when present and not missed when absent. */
  readonly optional?: boolean;
  /** Human name, used in messages and docs. */
  readonly name: string;
  readonly decode: Decoder;
  /**
   * How a byte stream on this characteristic is cut into frames (framing.ts; notify/indicate only). With it,
   * the gateway keeps one framer per connection and `decode` receives one whole, checksum-verified frame at a
   * time; without it, `decode` receives each notification as it came.
   */
  readonly framing?: Framing;
  /**
   * At most one reading per `everyMs` per connection (notify/indicate only): for streams that repeat the
   * displayed values with every waveform sample (pleth at 10 Hz and more), which must not become one Measurement
   * per sample. Applied by the hub's session with its own clock (src/session/reading-thinner.ts has the rule:
   * per period, the first reading whose status changed, else the latest); `rpm-gateway decode`, fixtures and
   * the conformance kit have no clock and show every reading. Stored records are never thinned.
   */
  readonly thin?: Thinning;
  /** Every code/unit pair this characteristic can produce; empty for descriptive characteristics. */
  readonly emits: readonly Emits[];
}

/** A characteristic's declared thinning (CharacteristicSpec.thin). */
export interface Thinning {
  /** The period, ms (from MIN_THIN_MS to MAX_THIN_MS): at most one reading per period leaves the session. */
  readonly everyMs: number;
}

/** Below 100 ms thinning would keep 10 readings a second: that is the waveform rate it exists to avoid. */
export const MIN_THIN_MS = 100;
/** Above 10 minutes a status change would wait too long to reach the clinic. */
export const MAX_THIN_MS = 600_000;

/**
 * How the gateway recognises a device in an advertisement. All given parts must match. A rule that overlaps
 * another driver's must say which one it supersedes, so the choice is never silent or load-order dependent.
 */
export interface MatchRule {
  /** Any of these advertised service UUIDs. */
  readonly services?: readonly string[];
  /** The advertised local name. */
  readonly name?: RegExp;
  /** A manufacturer-specific data company id (Bluetooth SIG Assigned Numbers, "Company Identifiers"). */
  readonly manufacturerId?: number;
  /** Driver ids this rule takes precedence over when both match. */
  readonly supersedes?: readonly string[];
}

/** A deviation from the specification a real device shows, declared with its reason (zwave-js style). */
export interface Quirk {
  readonly reason: string;
}

/**
 * Which frame answers a setup write: a frame that starts with these bytes (`null` matches any byte), or a
 * predicate over the whole frame. On a framed characteristic a frame is one whole, checksum-verified frame; on
 * an unframed one, one notification.
 */
export type FramePattern = readonly (number | null)[] | ((frame: Uint8Array) => boolean);

/**
 * The answer a setup write waits for (a request/response protocol: an unlock, a start command that is
 * acknowledged, a real-time parameter poll). The answer arrives on one of the driver's notify/indicate
 * characteristics; every frame there goes to the waiting step's patterns AND to the characteristic's decoder, so
 * an answer that carries a reading (a poll's response) is still delivered as one.
 */
export interface SetupAnswer {
  /** The notify/indicate characteristic the answer arrives on (one this driver declares). */
  readonly characteristic: string;
  /** The frame that answers the write. */
  readonly match: FramePattern;
  /**
   * A frame that says the device refused (a wrong unlock key, a command it rejects): the connection fails at
   * once with BLE_REFUSED, without retries.
   */
  readonly refused?: FramePattern;
  /** How long to wait for the answer after the write, ms (at most repeatEveryMs for a repeating write). */
  readonly timeoutMs: number;
  /**
   * Unanswered writes tolerated before the connection fails with BLE_NO_ANSWER (the session's retry policy
   * then reconnects later). A step in the sequence is written again up to this many times; a repeating write
   * (a poll) may go unanswered this many times in a row. Default 0.
   */
  readonly retries?: number;
}

/**
 * What a computed setup value may know: the hub's clock as the session has it. Like a decoder, the function is
 * pure (no I/O, no clock of its own, no randomness): the same context gives the same bytes.
 */
export interface SetupContext {
  /**
   * The time of the write by the session's clock, or null while the hub's own clock is not known to be
   * synchronised (a Pi boots with a wrong clock: writing it into a device would stamp its next readings wrongly
   * for good). A device that must be sent something then gets a value that says "not set", where it has one.
   */
  readonly now: Date | null;
  /** The hub's offset from UTC in minutes (east positive), for a device whose clock runs on local time. */
  readonly utcOffsetMinutes: number;
}

/** A setup write's bytes: fixed, or computed by the session at each write from the context it provides. */
export type SetupValue = Uint8Array | ((ctx: SetupContext) => Uint8Array);

/** Longest setup value: one ATT write of the largest attribute value (Bluetooth Core 5.4, Vol 3, Part F, 3.2.9). */
export const MAX_SETUP_VALUE_BYTES = 512;

/**
 * The contexts defineDriver computes a value function with, to refuse one that throws or returns no bytes
 * before it ever reaches a device: a synchronised clock, and one that is not.
 */
export const SAMPLE_SETUP_CONTEXTS: readonly SetupContext[] = Object.freeze([
  Object.freeze({ now: new Date(Date.UTC(2026, 0, 1, 0, 0, 0)), utcOffsetMinutes: 60 }),
  Object.freeze({ now: null, utcOffsetMinutes: 0 }),
]);

/**
 * The bytes of a setup write in `ctx`. Throws a DriverError (DRIVER_SETUP_VALUE) when a value function throws or
 * returns anything but 1 to MAX_SETUP_VALUE_BYTES bytes: a driver bug, named without the bytes.
 */
export function setupValue(write: SetupWrite, ctx: SetupContext, driverId?: string): Uint8Array {
  const { value } = write;
  if (value instanceof Uint8Array) return value;
  const fail = (why: string, cause?: unknown): never => {
    throw new DriverError(
      'DRIVER_SETUP_VALUE',
      `setup write to ${write.characteristic} (${write.reason}): its value function ${why}`,
      driverId,
      cause === undefined ? undefined : { cause },
    );
  };
  let bytes: unknown;
  try {
    bytes = value({
      now: ctx.now === null ? null : new Date(ctx.now.getTime()),
      utcOffsetMinutes: ctx.utcOffsetMinutes,
    });
  } catch (error) {
    return fail('threw (a driver bug)', error);
  }
  if (!(bytes instanceof Uint8Array) || bytes.length === 0 || bytes.length > MAX_SETUP_VALUE_BYTES) {
    return fail(`must return 1 to ${MAX_SETUP_VALUE_BYTES} bytes (a Uint8Array)`);
  }
  return bytes;
}

/**
 * A write the session performs after subscribing (e.g. a vendor "start streaming" command, an unlock, a poll).
 * The writes run in order, each waiting for its `expect`ed answer when it has one; the repeating ones
 * (`repeatEveryMs`: keep-alives and polls) start repeating once the whole sequence is through.
 */
export interface SetupWrite {
  readonly characteristic: string;
  readonly service: string;
  /**
   * The bytes: fixed, or a pure function of the session's context computed at each write (a device that is
   * given the time in its start command, say). A repeating write computes it again at every repeat.
   */
  readonly value: SetupValue;
  readonly reason: string;
  /**
   * Repeat the write at this period while connected (a keep-alive or a poll some vendor protocols need).
   * Consecutive writes with the same period repeat together as one transaction (start, reads, end): in order,
   * each waiting for its answer and written again up to its `retries` as in the first run, the next run one
   * period after the previous one ended. A lone repeating write with `expect` is a poll: its `retries` are the
   * answers it may miss in a row.
   */
  readonly repeatEveryMs?: number;
  /** Write with response (ATT Write Request) rather than without (Write Command). Default: with response. */
  readonly withResponse?: boolean;
  /** The answer to wait for before the next step (and, for a repeating write, after each repeat). */
  readonly expect?: SetupAnswer;
}

export type DeviceCategory =
  | 'pulse-oximeter'
  | 'blood-pressure'
  | 'thermometer'
  | 'weight-scale'
  | 'glucose-meter'
  | 'heart-rate'
  | 'other';

export interface DriverDefinition {
  /** The driver's folder under devices/, e.g. "sig/blood-pressure" or "vendor/contec-cms50d-bt". */
  readonly id: string;
  /** Semantic version of the driver; part of every Measurement's provenance. */
  readonly version: string;
  readonly name: string;
  readonly category: DeviceCategory;
  readonly match: MatchRule;
  readonly characteristics: readonly CharacteristicSpec[];
  readonly quirks?: { readonly [name: string]: Quirk };
  readonly setup?: readonly SetupWrite[];
  /** Documents the driver was written from (spec sections, vendor protocol notes). */
  readonly sources: readonly string[];
}

const DRIVER_BRAND = Symbol.for('rpm-gateway.driver');

export type Driver = DriverDefinition & { readonly [DRIVER_BRAND]: true };

const ID = /^(sig|vendor)\/[a-z0-9]+(?:-[a-z0-9]+)*$/;
const SEMVER = /^\d+\.\d+\.\d+(?:-[0-9a-z.-]+)?$/i;

/**
 * Declares a driver. Checks the parts that need no other driver (shape, id, version, quirk reasons); the
 * registry checks the rest (unique ids, overlaps, codes and units) when it loads every driver together.
 */
export function defineDriver(definition: DriverDefinition): Driver {
  const fail = (message: string): never => {
    throw new DriverError(
      'DRIVER_INVALID',
      `driver ${definition.id ?? '(no id)'}: ${message}`,
      definition.id,
    );
  };
  if (typeof definition.id !== 'string' || !ID.test(definition.id)) {
    fail('id must be "sig/<name>" or "vendor/<vendor>-<model>" in lowercase kebab-case');
  }
  if (!SEMVER.test(definition.version)) fail(`version ${JSON.stringify(definition.version)} is not semver`);
  if (!definition.name) fail('name is required');
  if (!Array.isArray(definition.characteristics) || definition.characteristics.length === 0) {
    fail('declares no characteristics');
  }
  for (const spec of definition.characteristics) {
    if (typeof spec.decode !== 'function') fail(`characteristic ${spec.uuid} has no decoder`);
    if (!Array.isArray(spec.emits)) fail(`characteristic ${spec.uuid} must declare emits (may be empty)`);
    if (spec.framing !== undefined) {
      if (spec.access === 'read')
        fail(`characteristic ${spec.uuid}: framing applies to notify/indicate only`);
      const problems = framingProblems(spec.framing);
      if (problems.length > 0) fail(`characteristic ${spec.uuid}: ${problems.join('; ')}`);
    }
    if (spec.thin !== undefined) {
      if (spec.access === 'read') fail(`characteristic ${spec.uuid}: thin applies to notify/indicate only`);
      const every = spec.thin?.everyMs;
      if (!Number.isInteger(every) || every < MIN_THIN_MS || every > MAX_THIN_MS) {
        fail(
          `characteristic ${spec.uuid}: thin.everyMs must be a whole number of ms from ${MIN_THIN_MS} to ${MAX_THIN_MS}`,
        );
      }
    }
  }
  const m = definition.match;
  if (!m || (!m.services?.length && !m.name && m.manufacturerId === undefined)) {
    fail('match rule needs services, a name pattern or a manufacturer id');
  }
  for (const [quirk, { reason }] of Object.entries(definition.quirks ?? {})) {
    if (!reason || reason.includes('\n')) fail(`quirk ${quirk} needs a one-line reason`);
  }
  for (const write of definition.setup ?? []) {
    if (!write.reason) fail(`setup write to ${write.characteristic} needs a reason`);
    if (typeof write.value === 'function') {
      for (const ctx of SAMPLE_SETUP_CONTEXTS) {
        try {
          setupValue(write, ctx, definition.id);
        } catch (error) {
          fail(
            `${(error as Error).message}, for ${ctx.now === null ? 'a clock not synchronised' : 'a synchronised clock'}`,
          );
        }
      }
    } else if (
      !(write.value instanceof Uint8Array) ||
      write.value.length === 0 ||
      write.value.length > MAX_SETUP_VALUE_BYTES
    ) {
      fail(
        `setup write to ${write.characteristic}: value must be 1 to ${MAX_SETUP_VALUE_BYTES} bytes or a function of the setup context`,
      );
    }
    const every = write.repeatEveryMs;
    if (every !== undefined && (!Number.isFinite(every) || every < 500)) {
      fail(`setup write to ${write.characteristic}: repeatEveryMs must be at least 500`);
    }
    if (write.expect !== undefined) {
      for (const problem of answerProblems(write.expect, every, definition.characteristics)) {
        fail(`setup write to ${write.characteristic}: ${problem}`);
      }
    }
  }
  if (!definition.sources?.length) fail('name at least one source document');
  return Object.freeze({ ...definition, [DRIVER_BRAND]: true as const });
}

/** Longest wait for an answer: a device that has not answered in a minute is not going to. */
const MAX_ANSWER_TIMEOUT_MS = 60_000;
const MAX_ANSWER_RETRIES = 10;

function answerProblems(
  answer: SetupAnswer,
  repeatEveryMs: number | undefined,
  characteristics: readonly CharacteristicSpec[],
): string[] {
  const problems: string[] = [];
  const canonical = (uuid: string): string | undefined => {
    try {
      return normalizeUuid(String(uuid));
    } catch {
      return undefined;
    }
  };
  const on = canonical(answer.characteristic);
  const spec = on === undefined ? undefined : characteristics.find((c) => canonical(c.uuid) === on);
  if (!spec || spec.access === 'read') {
    problems.push("expect.characteristic must be one of the driver's notify/indicate characteristics");
  }
  for (const [name, pattern] of [
    ['match', answer.match],
    ['refused', answer.refused],
  ] as const) {
    if (pattern === undefined && name === 'refused') continue;
    if (typeof pattern === 'function') continue;
    const bytesOk =
      Array.isArray(pattern) &&
      pattern.length > 0 &&
      pattern.every((b) => b === null || (Number.isInteger(b) && b >= 0 && b <= 255));
    if (!bytesOk) problems.push(`expect.${name} must be a predicate or a non-empty list of bytes (or null)`);
  }
  const timeout = answer.timeoutMs;
  if (!Number.isFinite(timeout) || timeout < 1 || timeout > MAX_ANSWER_TIMEOUT_MS) {
    problems.push(`expect.timeoutMs must be between 1 and ${MAX_ANSWER_TIMEOUT_MS}`);
  } else if (repeatEveryMs !== undefined && timeout > repeatEveryMs) {
    // One request in flight at a time: the answer to one poll is awaited before the next is sent.
    problems.push('expect.timeoutMs must not exceed repeatEveryMs');
  }
  const retries = answer.retries ?? 0;
  if (!Number.isInteger(retries) || retries < 0 || retries > MAX_ANSWER_RETRIES) {
    problems.push(`expect.retries must be an integer from 0 to ${MAX_ANSWER_RETRIES}`);
  }
  return problems;
}

export function isDriver(value: unknown): value is Driver {
  return (
    typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[DRIVER_BRAND] === true
  );
}
