import { WireError } from './errors.js';

/**
 * A small, strict CBOR (RFC 8949) codec for the wire format.
 *
 * Why not cbor-x for this: cbor-x 1.6.9 writes integers above 2^32 (every epoch-ms timestamp) as float64,
 * tags JavaScript Maps with tag 259, turns integer map keys into strings (so COSE's label 1 and "1" collide)
 * and lets a duplicate map key silently win. A signature format needs one reading of every byte, so:
 *
 * Encoder: preferred serialization (RFC 8949 section 4.1): shortest head for every integer and length,
 * definite lengths only, floats in the shortest of float16/32/64 that keeps the value exactly. Plain objects
 * become maps with text keys in insertion order; `Map` keeps number keys as CBOR integers.
 *
 * Decoder: accepts well-formed CBOR (section 5.1) that is also valid (section 5.3: UTF-8 text, no duplicate
 * map keys) with these restrictions, each refused as WIRE_MALFORMED with the byte offset:
 * - indefinite-length items (section 3.2.2): the format's senders never write them;
 * - map keys other than integers (major types 0 and 1, within 2^53) and text strings: floats, byte strings,
 *   arrays, maps, tags and simple values are refused, even a float such as 1.0 that equals an integer;
 * - simple values other than false, true, null, undefined (section 3.3);
 * - nesting deeper than `maxDepth` (a stack guard against `[[[[...]]]]` bombs);
 * - bytes left after the top-level item.
 * Integers outside JavaScript's safe range come back as bigint (no precision is lost silently); tags come back
 * as CborTag for the caller to check.
 */

export type CborKey = number | string;
export type CborMap = Map<CborKey, CborValue>;
export type CborValue =
  | number
  | bigint
  | string
  | Uint8Array
  | boolean
  | null
  | undefined
  | CborValue[]
  | CborMap
  | CborTag
  | CborFloat;

/** A tagged data item (RFC 8949 section 3.4). */
export class CborTag<T = CborValue> {
  constructor(
    readonly tag: number,
    readonly value: T,
  ) {}
}

/** A float kept as a float, returned only with `keepFloats` (for diagnostic notation, section 8). */
export class CborFloat {
  constructor(
    readonly value: number,
    readonly bytes: 2 | 4 | 8,
  ) {}
}

/**
 * One data item already encoded by `encodeCbor`, written as it is: a batch is assembled from items encoded when
 * each reading was stored, without encoding them again. The encoder trusts these bytes; only pass what
 * encodeCbor produced.
 */
export class CborRaw {
  constructor(readonly bytes: Uint8Array) {}
}

/** What the encoder takes: plain objects are text-keyed maps; `undefined` object members are left out. */
export type CborInput =
  | number
  | bigint
  | string
  | Uint8Array
  | boolean
  | null
  | readonly CborInput[]
  | ReadonlyMap<CborKey, CborInput>
  | CborTag<CborInput>
  | CborRaw
  | { readonly [key: string]: CborInput | undefined };

// ---------------------------------------------------------------------------------------------- encoder

const MAX_UINT64 = 0xffff_ffff_ffff_ffffn;
/** A UTF-16 surrogate not in a pair: with the `u` flag a pair is one code point, so only lone ones match. */
export const LONE_SURROGATE = /\p{Cs}/u;
const textEncoder = new TextEncoder();

class Writer {
  private buffer = new Uint8Array(4096);
  private view = new DataView(this.buffer.buffer);
  length = 0;

  /** Starts a new item in the same buffer (the buffer only grows, up to the largest item written). */
  reset(): void {
    this.length = 0;
  }

  private ensure(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
    this.view = new DataView(next.buffer);
  }

  byte(value: number): void {
    this.ensure(1);
    this.view.setUint8(this.length++, value);
  }

  /** The head of a data item: major type and argument in the shortest form (section 3, preferred). */
  head(major: number, argument: number | bigint): void {
    const m = major << 5;
    if (typeof argument === 'bigint' || argument > 0xffff_ffff) {
      this.ensure(9);
      this.view.setUint8(this.length, m | 27);
      this.view.setBigUint64(this.length + 1, BigInt(argument));
      this.length += 9;
    } else if (argument < 24) {
      this.byte(m | argument);
    } else if (argument <= 0xff) {
      this.ensure(2);
      this.view.setUint8(this.length, m | 24);
      this.view.setUint8(this.length + 1, argument);
      this.length += 2;
    } else if (argument <= 0xffff) {
      this.ensure(3);
      this.view.setUint8(this.length, m | 25);
      this.view.setUint16(this.length + 1, argument);
      this.length += 3;
    } else {
      this.ensure(5);
      this.view.setUint8(this.length, m | 26);
      this.view.setUint32(this.length + 1, argument);
      this.length += 5;
    }
  }

  bytes(data: Uint8Array): void {
    this.ensure(data.length);
    this.buffer.set(data, this.length);
    this.length += data.length;
  }

  text(value: string): void {
    // Keys, ids, codes and ISO times are ASCII: copy them without a TextEncoder allocation per string.
    const n = value.length;
    if (n < 256) {
      let ascii = true;
      for (let i = 0; i < n; i++) {
        if (value.charCodeAt(i) > 0x7f) {
          ascii = false;
          break;
        }
      }
      if (ascii) {
        this.head(3, n);
        this.ensure(n);
        const buffer = this.buffer;
        for (let i = 0; i < n; i++) buffer[this.length + i] = value.charCodeAt(i);
        this.length += n;
        return;
      }
    }
    // TextEncoder would turn a lone surrogate into U+FFFD silently (two keys could then collide): refuse it.
    if (LONE_SURROGATE.test(value)) {
      throw new WireError('WIRE_INVALID_FIELD', 'text with a lone surrogate is not valid Unicode');
    }
    const encoded = textEncoder.encode(value);
    this.head(3, encoded.length);
    this.bytes(encoded);
  }

  float(value: number): void {
    const half = toFloat16(value);
    if (half !== undefined) {
      this.ensure(3);
      this.view.setUint8(this.length, 0xf9);
      this.view.setUint16(this.length + 1, half);
      this.length += 3;
    } else if (Math.fround(value) === value) {
      this.ensure(5);
      this.view.setUint8(this.length, 0xfa);
      this.view.setFloat32(this.length + 1, value);
      this.length += 5;
    } else {
      this.ensure(9);
      this.view.setUint8(this.length, 0xfb);
      this.view.setFloat64(this.length + 1, value);
      this.length += 9;
    }
  }

  result(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

const scratch = new Writer();

/** Encodes one data item. Throws WIRE_INVALID_FIELD for values CBOR cannot carry (functions, symbols...). */
export function encodeCbor(value: CborInput): Uint8Array {
  // One writer for every call: encoding is synchronous and never re-enters itself, and a fresh buffer per item
  // (allocated, grown, copied out) cost more than the encoding of a small item.
  scratch.reset();
  write(scratch, value, 0);
  return scratch.result();
}

function write(w: Writer, value: CborInput, depth: number): void {
  if (depth > 64) throw new WireError('WIRE_INVALID_FIELD', 'value nested too deeply to encode');
  switch (typeof value) {
    case 'number':
      writeNumber(w, value);
      return;
    case 'bigint':
      if (value >= 0n && value <= MAX_UINT64) w.head(0, value);
      else if (value < 0n && -1n - value <= MAX_UINT64) w.head(1, -1n - value);
      else throw new WireError('WIRE_INVALID_FIELD', 'integer outside the 64-bit range of CBOR');
      return;
    case 'string':
      w.text(value);
      return;
    case 'boolean':
      w.byte(value ? 0xf5 : 0xf4);
      return;
    case 'object':
      break;
    default:
      throw new WireError('WIRE_INVALID_FIELD', `cannot encode a ${typeof value} as CBOR`);
  }
  if (value === null) {
    w.byte(0xf6);
  } else if (value instanceof Uint8Array) {
    w.head(2, value.length);
    w.bytes(value);
  } else if (Array.isArray(value)) {
    const items = value as readonly CborInput[];
    w.head(4, items.length);
    for (const item of items) write(w, item, depth + 1);
  } else if (value instanceof Map) {
    const map = value as ReadonlyMap<CborKey, CborInput>;
    w.head(5, map.size);
    for (const [key, item] of map) {
      write(w, key, depth + 1);
      write(w, item, depth + 1);
    }
  } else if (value instanceof CborTag) {
    w.head(6, value.tag);
    write(w, value.value, depth + 1);
  } else if (value instanceof CborRaw) {
    w.bytes(value.bytes);
  } else {
    const object = value as { readonly [key: string]: CborInput | undefined };
    const keys = Object.keys(object);
    let count = 0;
    for (const key of keys) if (object[key] !== undefined) count++;
    w.head(5, count);
    for (const key of keys) {
      const item = object[key];
      if (item === undefined) continue;
      w.text(key);
      write(w, item, depth + 1);
    }
  }
}

function writeNumber(w: Writer, value: number): void {
  // Integral doubles are integers on the wire (an epoch-ms time is uint, not float64); -0 becomes 0. Beyond
  // 2^53 a JavaScript number is no longer an exact integer, and the decoder returns such integers as bigint, so
  // those stay floats (exactly the same double); an exact 64-bit integer is written from a bigint.
  if (Number.isInteger(value) && Math.abs(value) <= Number.MAX_SAFE_INTEGER) {
    if (value >= 0) w.head(0, value);
    else w.head(1, -1 - value);
  } else {
    w.float(value);
  }
}

const f32 = new DataView(new ArrayBuffer(4));

/** The IEEE 754 binary16 bits of `value` when it is exactly representable there (section 4.1), else undefined. */
function toFloat16(value: number): number | undefined {
  if (Number.isNaN(value)) return 0x7e00;
  if (value === Number.POSITIVE_INFINITY) return 0x7c00;
  if (value === Number.NEGATIVE_INFINITY) return 0xfc00;
  if (Math.fround(value) !== value) return undefined;
  f32.setFloat32(0, value);
  const bits = f32.getUint32(0);
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127;
  const mantissa = bits & 0x7fffff;
  if (exponent === -127) return mantissa === 0 ? sign : undefined; // zero, or a float32 subnormal (too small)
  if (exponent >= -14 && exponent <= 15) {
    if ((mantissa & 0x1fff) !== 0) return undefined;
    return sign | ((exponent + 15) << 10) | (mantissa >>> 13);
  }
  if (exponent >= -24 && exponent < -14) {
    const significand = 0x800000 | mantissa;
    const shift = -1 - exponent;
    if ((significand & ((1 << shift) - 1)) !== 0) return undefined;
    return sign | (significand >>> shift);
  }
  return undefined;
}

function fromFloat16(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >>> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

// ---------------------------------------------------------------------------------------------- decoder

export interface CborDecodeOptions {
  /** Deepest nesting of arrays, maps and tags; deeper input is WIRE_MALFORMED. */
  readonly maxDepth?: number;
  /** Return floats as CborFloat (for diagnostic notation) instead of numbers. */
  readonly keepFloats?: boolean;
}

const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

class Reader {
  offset = 0;
  private readonly view: DataView;
  /** The same bytes as a Buffer (no copy), for its native Latin-1 slicing. */
  private readonly buffer: Buffer;

  constructor(
    readonly bytes: Uint8Array,
    readonly maxDepth: number,
    readonly keepFloats: boolean,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(message: string, at = this.offset): never {
    throw new WireError('WIRE_MALFORMED', `CBOR: ${message}`, { offset: at });
  }

  need(count: number): number {
    if (this.offset + count > this.bytes.length) {
      this.fail('truncated: the data ends inside an item', this.bytes.length);
    }
    return count;
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.offset++);
  }

  /** The argument of a head (section 3): a number, or a bigint beyond 2^53. */
  argument(info: number, start: number): number | bigint {
    if (info < 24) return info;
    switch (info) {
      case 24: {
        return this.u8();
      }
      case 25: {
        this.need(2);
        const value = this.view.getUint16(this.offset);
        this.offset += 2;
        return value;
      }
      case 26: {
        this.need(4);
        const value = this.view.getUint32(this.offset);
        this.offset += 4;
        return value;
      }
      case 27: {
        this.need(8);
        const value = this.view.getBigUint64(this.offset);
        this.offset += 8;
        return value <= MAX_SAFE ? Number(value) : value;
      }
      case 31:
        return this.fail('indefinite-length items are not accepted', start);
      default:
        return this.fail(`reserved additional information ${info}`, start);
    }
  }

  /** A length or count: it must fit in what is left, each element taking at least `unit` bytes. */
  length(info: number, start: number, unit: number): number {
    const value = this.argument(info, start);
    const left = this.bytes.length - this.offset;
    if (typeof value === 'bigint' || value * unit > left) {
      this.fail('truncated: a length runs past the end of the data', this.bytes.length);
    }
    return value;
  }

  item(depth: number): CborValue {
    const start = this.offset;
    const initial = this.u8();
    const major = initial >>> 5;
    const info = initial & 0x1f;
    switch (major) {
      case 0:
        return this.argument(info, start);
      case 1: {
        const n = this.argument(info, start);
        if (typeof n === 'bigint') {
          const value = -1n - n;
          return value >= -MAX_SAFE ? Number(value) : value;
        }
        // -1 - n with n <= 2^53 - 1 is at least -2^53, one past the safe range: keep it exact as bigint.
        return n === Number.MAX_SAFE_INTEGER ? -1n - BigInt(n) : -1 - n;
      }
      case 2: {
        const length = this.length(info, start, 1);
        const value = this.bytes.subarray(this.offset, this.offset + length);
        this.offset += length;
        return value;
      }
      case 3: {
        const length = this.length(info, start, 1);
        const text = shortAscii(this.buffer, this.offset, length) ?? this.utf8(length, start);
        this.offset += length;
        return text;
      }
      case 4: {
        if (depth >= this.maxDepth) this.fail('nested too deeply', start);
        const count = this.length(info, start, 1);
        const items: CborValue[] = [];
        for (let i = 0; i < count; i++) items.push(this.item(depth + 1));
        return items;
      }
      case 5: {
        if (depth >= this.maxDepth) this.fail('nested too deeply', start);
        const count = this.length(info, start, 2);
        const map: CborMap = new Map();
        for (let i = 0; i < count; i++) {
          const keyAt = this.offset;
          // Decided by the key's major type, not by the JavaScript value it decodes to: a float key (f93c00,
          // 1.0) decodes to the number 1 and would pass for the integer key 1. Integer keys beyond 2^53 come
          // back as bigint and are refused too (no label of this format is that large).
          this.need(1);
          const keyMajor = (this.bytes[keyAt] as number) >>> 5;
          if (keyMajor !== 0 && keyMajor !== 1 && keyMajor !== 3) {
            this.fail('map keys must be integers or text strings', keyAt);
          }
          const key = this.item(depth + 1);
          if (typeof key !== 'string' && typeof key !== 'number') {
            this.fail('map keys must be integers or text strings', keyAt);
          }
          if (map.has(key)) this.fail('duplicate map key', keyAt);
          map.set(key, this.item(depth + 1));
        }
        return map;
      }
      case 6: {
        if (depth >= this.maxDepth) this.fail('nested too deeply', start);
        const tag = this.argument(info, start);
        if (typeof tag === 'bigint') return this.fail('tag number out of range', start);
        return new CborTag(tag, this.item(depth + 1));
      }
      default:
        return this.simple(info, start);
    }
  }

  utf8(length: number, start: number): string {
    try {
      return textDecoder.decode(this.bytes.subarray(this.offset, this.offset + length));
    } catch {
      return this.fail('text string is not valid UTF-8', start);
    }
  }

  simple(info: number, start: number): CborValue {
    switch (info) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        return undefined;
      case 25: {
        this.need(2);
        const value = fromFloat16(this.view.getUint16(this.offset));
        this.offset += 2;
        return this.keepFloats ? new CborFloat(value, 2) : value;
      }
      case 26: {
        this.need(4);
        const value = this.view.getFloat32(this.offset);
        this.offset += 4;
        return this.keepFloats ? new CborFloat(value, 4) : value;
      }
      case 27: {
        this.need(8);
        const value = this.view.getFloat64(this.offset);
        this.offset += 8;
        return this.keepFloats ? new CborFloat(value, 8) : value;
      }
      case 24:
        this.u8();
        return this.fail('unsupported simple value', start);
      case 31:
        return this.fail('unexpected "break" (indefinite-length items are not accepted)', start);
      default:
        return this.fail(
          info >= 28 ? `reserved additional information ${info}` : 'unsupported simple value',
          start,
        );
    }
  }
}

/**
 * Most text in the format is short ASCII (keys, ids, codes, times), for which TextDecoder's call costs more than
 * the decoding: copy those out as Latin-1, which for bytes below 0x80 is the same string. ASCII is valid UTF-8,
 * so nothing the strict decoder would refuse gets through; any byte above 0x7f (or a long string) goes to
 * TextDecoder.
 */
function shortAscii(bytes: Buffer, offset: number, length: number): string | undefined {
  if (length > 64) return undefined;
  for (let i = offset; i < offset + length; i++) if ((bytes[i] as number) > 0x7f) return undefined;
  return bytes.toString('latin1', offset, offset + length);
}

/** Decodes exactly one data item filling all of `bytes`; anything else is WIRE_MALFORMED. */
export function decodeCbor(bytes: Uint8Array, options: CborDecodeOptions = {}): CborValue {
  const reader = new Reader(bytes, options.maxDepth ?? 32, options.keepFloats ?? false);
  if (bytes.length === 0) reader.fail('no data', 0);
  const value = reader.item(0);
  if (reader.offset !== bytes.length) reader.fail('bytes left after the data item');
  return value;
}
