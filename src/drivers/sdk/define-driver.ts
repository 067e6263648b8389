import { DriverError } from '../../errors.js';
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
  /** Every code/unit pair this characteristic can produce; empty for descriptive characteristics. */
  readonly emits: readonly Emits[];
}

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

/** A write the session performs after subscribing (e.g. a vendor "start streaming" command). */
export interface SetupWrite {
  readonly characteristic: string;
  readonly service: string;
  readonly value: Uint8Array;
  readonly reason: string;
  /** Repeat the write at this period while connected (a keep-alive some vendor protocols need). */
  readonly repeatEveryMs?: number;
  /** Write with response (ATT Write Request) rather than without (Write Command). Default: with response. */
  readonly withResponse?: boolean;
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
    const every = write.repeatEveryMs;
    if (every !== undefined && (!Number.isFinite(every) || every < 500)) {
      fail(`setup write to ${write.characteristic}: repeatEveryMs must be at least 500`);
    }
  }
  if (!definition.sources?.length) fail('name at least one source document');
  return Object.freeze({ ...definition, [DRIVER_BRAND]: true as const });
}

export function isDriver(value: unknown): value is Driver {
  return (
    typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[DRIVER_BRAND] === true
  );
}
