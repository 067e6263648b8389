import type { JsonValue } from '../model/observation.js';
import { type CborMap, type CborValue, decodeCbor, LONE_SURROGATE } from './cbor.js';
import { WireError } from './errors.js';

/**
 * Typed reads of decoded CBOR maps. Every payload field goes through here, so every refusal names the field's
 * path and what was expected (never the value: payloads carry PHI). Unknown keys are never looked at, which is
 * the forward-compatibility rule of docs/wire-format.md ("ignore what you do not know").
 */

/** The wire format version this code writes and reads. */
export const WIRE_VERSION = 1;

export const GATEWAY_ID = /^[a-z0-9][a-z0-9-]{2,62}$/;
/** ISO-8601 / RFC 3339 date-time; the offset is optional because GATT device times have none. */
export const DATE_TIME =
  /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?$/;
/** The same in UTC with `Z`: what `Date.prototype.toISOString` writes. */
export const UTC_DATE_TIME =
  /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?Z$/;

export function invalid(path: string, expected: string): never {
  throw new WireError('WIRE_INVALID_FIELD', `${path}: expected ${expected}`);
}

/** Decodes a payload and checks that it is a map with a supported `v` (checked before anything else). */
export function decodePayload(bytes: Uint8Array, what: string): Fields {
  const value = decodeCbor(bytes);
  if (!(value instanceof Map))
    throw new WireError('WIRE_MALFORMED', `${what}: the payload is not a CBOR map`);
  const fields = new Fields(value, what);
  const version = fields.get('v');
  if (version === undefined) invalid(`${what}.v`, 'the format version (uint)');
  if (version !== WIRE_VERSION) {
    throw new WireError(
      'WIRE_UNSUPPORTED_VERSION',
      typeof version === 'number' && Number.isSafeInteger(version) && version >= 0
        ? `${what}: format version ${version} is not supported (this code reads ${WIRE_VERSION})`
        : `${what}.v: expected the format version (uint)`,
    );
  }
  return fields;
}

export interface TextRule {
  readonly min?: number;
  readonly max?: number;
  readonly pattern?: RegExp;
  readonly oneOf?: readonly string[];
  /** Said in the error message when the text does not match. */
  readonly describe?: string;
}

export class Fields {
  constructor(
    readonly map: CborMap,
    readonly path: string,
  ) {}

  static of(value: CborValue, path: string): Fields {
    if (!(value instanceof Map)) invalid(path, 'a map');
    return new Fields(value, path);
  }

  get(key: string): CborValue {
    return this.map.get(key);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  at(key: string): string {
    return `${this.path}.${key}`;
  }

  text(key: string, rule: TextRule = {}): string {
    return checkText(this.get(key), this.at(key), rule);
  }

  optionalText(key: string, rule: TextRule = {}): string | undefined {
    return this.has(key) ? this.text(key, rule) : undefined;
  }

  nullableText(key: string, rule: TextRule = {}): string | null {
    const value = this.get(key);
    if (value === null && this.has(key)) return null;
    return checkText(value, this.at(key), { ...rule, describe: `${rule.describe ?? 'text'} or null` });
  }

  uint(key: string, describe = 'an unsigned integer'): number {
    return checkUint(this.get(key), this.at(key), describe);
  }

  optionalUint(key: string, describe?: string): number | undefined {
    return this.has(key) ? this.uint(key, describe) : undefined;
  }

  bool(key: string): boolean {
    const value = this.get(key);
    if (typeof value !== 'boolean') invalid(this.at(key), 'true or false');
    return value;
  }

  array(key: string): CborValue[] {
    const value = this.get(key);
    if (!Array.isArray(value)) invalid(this.at(key), 'an array');
    return value;
  }

  fields(key: string): Fields {
    return Fields.of(this.get(key), this.at(key));
  }
}

export function checkText(value: CborValue, path: string, rule: TextRule = {}): string {
  const describe = rule.describe ?? 'text';
  if (typeof value !== 'string') invalid(path, describe);
  if (value.length < (rule.min ?? 0) || value.length > (rule.max ?? 1024)) invalid(path, describe);
  if (rule.pattern && !rule.pattern.test(value)) invalid(path, describe);
  if (rule.oneOf && !rule.oneOf.includes(value)) invalid(path, `one of ${rule.oneOf.join(', ')}`);
  if (LONE_SURROGATE.test(value)) invalid(path, `${describe} (valid Unicode)`);
  return value;
}

export function checkUint(value: CborValue, path: string, describe = 'an unsigned integer'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) invalid(path, describe);
  return value;
}

/**
 * A JSON value from CBOR: text, finite number, bool, null, array, map with text keys. Objects are built with
 * Object.fromEntries so that a key named "__proto__" becomes an own property, never the prototype.
 */
export function toJson(value: CborValue, path: string): JsonValue {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) invalid(path, 'a finite number');
      return value;
    default:
      break;
  }
  if (value === null) return null;
  if (Array.isArray(value)) return value.map((item, i) => toJson(item, `${path}[${i}]`));
  if (value instanceof Map) {
    const entries: [string, JsonValue][] = [];
    for (const [key, item] of value) {
      if (typeof key !== 'string') invalid(path, 'a map with text keys');
      entries.push([key, toJson(item, `${path}.${key}`)]);
    }
    return Object.fromEntries(entries);
  }
  return invalid(path, 'a JSON-like value (text, number, bool, null, array, map)');
}

/** Checks that a JavaScript value is JSON-like before it is encoded (the encoder's side of toJson). */
export function checkJson(value: unknown, path: string, depth = 0): void {
  if (depth > 16) invalid(path, 'JSON nested at most 16 deep');
  switch (typeof value) {
    case 'string':
      if (LONE_SURROGATE.test(value)) invalid(path, 'valid Unicode text');
      return;
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) invalid(path, 'a finite number');
      return;
    case 'object':
      break;
    default:
      invalid(path, 'a JSON value');
  }
  if (value === null) return;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) checkJson(item, `${path}[${i}]`, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) {
    invalid(path, 'a plain object');
  }
  for (const [key, item] of Object.entries(value)) {
    if (LONE_SURROGATE.test(key)) invalid(path, 'keys in valid Unicode');
    checkJson(item, `${path}.${key}`, depth + 1);
  }
}
