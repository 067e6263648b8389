import { DecodeError } from '../errors.js';
import { type DeviceDateTime, dateTimeFromFields } from './date-time.js';
import { decodeFloat, decodeSfloat, type MderNumber } from './mder-float.js';

/**
 * A cursor over one GATT payload. All Bluetooth SIG multi-byte fields are little-endian (Core Specification
 * Vol 3, Part G, 3.3.3.x; GATT Specification Supplement 2.1). Every read checks the length first and throws a
 * DecodeError naming the field and the byte offset, so a decoder never reads past the end or returns garbage.
 */
export class ByteReader {
  offset = 0;

  /** @param what names the payload in error messages, e.g. "Blood Pressure Measurement". */
  constructor(
    readonly bytes: Uint8Array,
    readonly what: string,
  ) {}

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  private need(count: number, field: string): number {
    const at = this.offset;
    if (at + count > this.bytes.length) {
      throw new DecodeError(
        'DECODE_TRUNCATED',
        `${this.what}: ${field} needs ${count} byte(s), ${this.bytes.length - at} left`,
        at,
      );
    }
    this.offset = at + count;
    return at;
  }

  u8(field: string): number {
    return this.bytes[this.need(1, field)] as number;
  }

  s8(field: string): number {
    return ((this.bytes[this.need(1, field)] as number) << 24) >> 24;
  }

  u16(field: string): number {
    const at = this.need(2, field);
    const b = this.bytes;
    return (b[at] as number) | ((b[at + 1] as number) << 8);
  }

  s16(field: string): number {
    return (this.u16(field) << 16) >> 16;
  }

  u24(field: string): number {
    const at = this.need(3, field);
    const b = this.bytes;
    return (b[at] as number) | ((b[at + 1] as number) << 8) | ((b[at + 2] as number) << 16);
  }

  u32(field: string): number {
    const at = this.need(4, field);
    const b = this.bytes;
    return (
      ((b[at] as number) |
        ((b[at + 1] as number) << 8) |
        ((b[at + 2] as number) << 16) |
        ((b[at + 3] as number) << 24)) >>>
      0
    );
  }

  /** 48-bit unsigned (e.g. PLX measurement status is 16, device status 24; System ID parts are 40 + 24). */
  u48(field: string): number {
    const low = this.u24(field);
    const high = this.u24(field);
    return high * 0x1000000 + low;
  }

  sfloat(field: string): MderNumber {
    return decodeSfloat(this.u16(field));
  }

  float(field: string): MderNumber {
    return decodeFloat(this.u32(field) | 0);
  }

  /** GATT Date Time, 7 bytes (see date-time.ts). */
  dateTime(field: string): DeviceDateTime {
    const at = this.need(7, field);
    const b = this.bytes;
    return dateTimeFromFields(
      (b[at] as number) | ((b[at + 1] as number) << 8),
      b[at + 2] as number,
      b[at + 3] as number,
      b[at + 4] as number,
      b[at + 5] as number,
      b[at + 6] as number,
    );
  }

  take(count: number, field: string): Uint8Array {
    const at = this.need(count, field);
    return this.bytes.subarray(at, at + count);
  }

  rest(): Uint8Array {
    const at = this.offset;
    this.offset = this.bytes.length;
    return this.bytes.subarray(at);
  }

  /** Asserts every byte was consumed: extra bytes mean the length disagrees with the flags. */
  end(): void {
    if (this.offset !== this.bytes.length) {
      throw new DecodeError(
        'DECODE_TRAILING_BYTES',
        `${this.what}: ${this.bytes.length - this.offset} byte(s) after the last field the flags announce`,
        this.offset,
      );
    }
  }

  /** Fails with DECODE_INVALID_FIELD at the given offset (defaults to the byte just read). */
  invalid(message: string, offset = this.offset - 1): never {
    throw new DecodeError('DECODE_INVALID_FIELD', `${this.what}: ${message}`, offset);
  }
}
