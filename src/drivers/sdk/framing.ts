import { DecodeError, FrameError } from '../../errors.js';
import { CHECKSUMS, type Checksum, type ChecksumName } from './checksums.js';

/**
 * Framed byte streams. Many vendor devices send a UART byte stream over one notify characteristic (Nordic UART,
 * Microchip/ISSC transparent UART, vendor services): a notification is whatever the radio's MTU allowed (20
 * bytes at the default ATT_MTU of 23, Bluetooth Core 5.4 Vol 3 Part F 3.2.9 and 3.4.7.1), so a frame can be split
 * across two notifications and one notification can carry several frames. A characteristic that declares
 * `framing` gets one Framer per connection: it buffers, reassembles, splits and checks frames, and its `decode`
 * sees exactly one whole frame at a time.
 *
 * Two ways to declare it:
 *   - a FrameFormat: sync bytes and/or the 7-bit sync rule, where the length comes from, the checksum;
 *   - a StreamFraming: a factory of small stateful decoders, for protocols the format cannot express.
 */

/** Where a frame's length comes from. */
export type FrameLength =
  /** Every frame has this many bytes. */
  | { readonly fixed: number }
  /** A length field inside the frame. */
  | { readonly field: LengthField }
  /** A type byte at `offset` whose value gives the frame's length (an unknown type starts no frame). */
  | { readonly byType: { readonly offset: number; readonly lengths: { readonly [type: number]: number } } };

export interface LengthField {
  /** Offset of the field from the frame's first byte. */
  readonly offset: number;
  /** 1 or 2 bytes. */
  readonly width: 1 | 2;
  /** Byte order of a 2-byte field; required for width 2. */
  readonly endian?: 'little' | 'big';
  /**
   * Which bytes the value counts. 'frame' (the default): the whole frame. `{ from, trailing }`: the bytes from
   * offset `from` to the end of the frame, less the last `trailing` ones (e.g. a checksum the length leaves out),
   * so the frame has `from + value + trailing` bytes. "Payload only" is `from` = the payload's offset and
   * `trailing` = the checksum's size.
   */
  readonly counts?: 'frame' | { readonly from: number; readonly trailing?: number };
}

/** The checksum of a frame: it sits in the frame's last bytes and covers the bytes from `from` up to itself. */
export interface FrameChecksum {
  /** A preset name (CHECKSUMS) or any Checksum, e.g. crc({...model}). */
  readonly algorithm: ChecksumName | Checksum;
  /** First byte covered (default 0: the sync bytes are covered too). */
  readonly from?: number;
  /** Byte order of a checksum wider than one byte; required then. */
  readonly endian?: 'little' | 'big';
}

/** A declarative frame format. It needs a sync rule: `sync` bytes, `highBitSync`, or both. */
export interface FrameFormat {
  /** The bytes every frame starts with, e.g. [0xaa, 0x55]. */
  readonly sync?: readonly number[];
  /**
   * The 7-bit rule of protocols such as BerryMed BCI and Contec: a frame's first byte has bit 7 set and every
   * other byte has it clear. A byte with bit 7 set inside a frame breaks the frame there and starts the next one.
   */
  readonly highBitSync?: boolean;
  readonly length: FrameLength;
  readonly checksum?: FrameChecksum;
  /**
   * The longest frame accepted; a length field announcing more is DECODE_FRAME_TOO_LONG. It bounds the buffer:
   * a framer never holds more than this many bytes between notifications. Required with a length field;
   * otherwise it defaults to the longest fixed or per-type length.
   */
  readonly maxLength?: number;
}

/** What a framer hands back, in stream order: a whole frame, or an error about some bytes of the stream. */
export type FrameEvent =
  | { readonly frame: Uint8Array; readonly error?: undefined }
  | { readonly error: DecodeError; readonly frame?: undefined };

/** A stateful decoder for one connection's stream, for protocols a FrameFormat cannot express. */
export interface StreamDecoder {
  /** Takes one notification; returns the frames it completed and the errors it found, in stream order. */
  push(bytes: Uint8Array): FrameEvent[];
  /** How many bytes it holds waiting for the rest of a frame. */
  readonly pending: number;
}

export interface StreamFraming {
  /** Makes a fresh decoder: one per connection, and a new one after the old one failed or overflowed. */
  readonly stream: () => StreamDecoder;
  /** The most bytes a decoder may hold; beyond that: DECODE_FRAME_TOO_LONG, and a fresh decoder. */
  readonly maxLength: number;
}

export type Framing = FrameFormat | StreamFraming;

/** One connection's framer for one characteristic (createFramer). */
export interface Framer {
  /** Takes one notification; returns whole frames and errors in the order they occur in the stream. */
  push(bytes: Uint8Array): FrameEvent[];
  /** The stream ended (disconnect, end of input): an unfinished frame is reported as DECODE_TRUNCATED. */
  end(): FrameEvent[];
  /** Bytes held between notifications: never more than the declared maximum frame length. */
  readonly pending: number;
}

/** The longest frame any declaration may accept, so that a typo cannot make a buffer unbounded in practice. */
export const MAX_FRAME_LENGTH = 65_536;

export function isStreamFraming(framing: Framing): framing is StreamFraming {
  return typeof (framing as StreamFraming).stream === 'function';
}

/** A new framer for one connection. Throws (a driver bug) if the declaration is inconsistent: see framingProblems. */
export function createFramer(framing: Framing): Framer {
  const problems = framingProblems(framing);
  if (problems.length > 0) throw new TypeError(`invalid framing: ${problems.join('; ')}`);
  return isStreamFraming(framing) ? new GuardedStreamFramer(framing) : new FormatFramer(framing);
}

/** What is wrong with a framing declaration (empty when nothing); defineDriver refuses a driver with any. */
export function framingProblems(framing: Framing): string[] {
  const problems: string[] = [];
  const bound = (value: unknown, what: string, min: number) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_FRAME_LENGTH) {
      problems.push(`${what} must be an integer from ${min} to ${MAX_FRAME_LENGTH}`);
      return false;
    }
    return true;
  };
  if (typeof framing !== 'object' || framing === null) return ['framing must be an object'];
  if (isStreamFraming(framing)) {
    bound(framing.maxLength, 'maxLength', 1);
    return problems;
  }
  const f = framing as FrameFormat;
  const sync = f.sync ?? [];
  if (sync.length === 0 && f.highBitSync !== true) {
    problems.push('a frame format needs sync bytes or highBitSync (use a stream decoder otherwise)');
  }
  sync.forEach((b, i) => {
    if (!Number.isInteger(b) || b < 0 || b > 0xff) problems.push(`sync[${i}] is not a byte`);
    else if (f.highBitSync && (i === 0 ? b < 0x80 : b >= 0x80)) {
      problems.push(`sync[${i}] breaks the highBitSync rule (bit 7 set on the first byte only)`);
    }
  });
  const length = f.length as Partial<{ fixed: number; field: LengthField; byType: FrameLengthByType }>;
  let longest: number | undefined;
  if (length?.fixed !== undefined) {
    if (bound(length.fixed, 'length.fixed', 1)) longest = length.fixed;
  } else if (length?.field !== undefined) {
    const field = length.field;
    bound(field.offset, 'length.field.offset', 0);
    if (field.width !== 1 && field.width !== 2) problems.push('length.field.width must be 1 or 2');
    if (field.width === 2 && field.endian !== 'little' && field.endian !== 'big') {
      problems.push("a 2-byte length field needs endian 'little' or 'big'");
    }
    const counts = field.counts ?? 'frame';
    if (counts !== 'frame') {
      bound(counts.from, 'length.field.counts.from', 0);
      if (counts.trailing !== undefined) bound(counts.trailing, 'length.field.counts.trailing', 0);
    }
    if (f.maxLength === undefined) problems.push('a length field needs maxLength (it bounds the buffer)');
  } else if (length?.byType !== undefined) {
    bound(length.byType.offset, 'length.byType.offset', 0);
    const lengths = Object.values(length.byType.lengths ?? {});
    if (lengths.length === 0) problems.push('length.byType.lengths is empty');
    for (const [type, n] of Object.entries(length.byType.lengths ?? {})) {
      if (!/^\d+$/.test(type) || Number(type) > 0xff)
        problems.push(`length.byType type ${type} is not a byte`);
      bound(n, `length.byType.lengths[${type}]`, 1);
    }
    longest = Math.max(...lengths);
  } else {
    problems.push('length needs one of fixed, field or byType');
  }
  if (f.maxLength !== undefined && bound(f.maxLength, 'maxLength', 1)) {
    if (longest !== undefined && f.maxLength < longest) problems.push('maxLength is below the longest frame');
    if (f.maxLength < (f.sync?.length ?? 0)) problems.push('maxLength is below the sync bytes');
  }
  if (f.checksum !== undefined) {
    const algorithm = checksumOf(f.checksum.algorithm);
    if (algorithm === undefined) problems.push(`unknown checksum ${String(f.checksum.algorithm)}`);
    else if (algorithm.bytes > 1 && f.checksum.endian !== 'little' && f.checksum.endian !== 'big') {
      problems.push(`a ${algorithm.bytes}-byte checksum needs endian 'little' or 'big'`);
    }
    if (f.checksum.from !== undefined) bound(f.checksum.from, 'checksum.from', 0);
  }
  return problems;
}

type FrameLengthByType = { readonly offset: number; readonly lengths: { readonly [type: number]: number } };

function checksumOf(algorithm: ChecksumName | Checksum): Checksum | undefined {
  if (typeof algorithm === 'string')
    return Object.hasOwn(CHECKSUMS, algorithm) ? CHECKSUMS[algorithm] : undefined;
  return typeof algorithm?.compute === 'function' && Number.isInteger(algorithm.bytes)
    ? algorithm
    : undefined;
}

/** Not enough bytes yet to tell. */
const WAIT = -1;
/** The candidate cannot be a frame start (an unknown type, an impossible length). */
const NOT_A_FRAME = -2;

/**
 * The framer of a FrameFormat. Per notification it works on (held bytes + notification) from the front: find a
 * sync candidate, read the length, wait for the rest, check the 7-bit rule and the checksum, hand out the frame.
 * Resynchronising never skips a possible frame start: after a bad checksum or an oversized length it moves to
 * the next sync candidate inside the rejected bytes (a false sync in noise must not swallow the real frame that
 * follows), and bytes skipped in a row are reported once, as one DECODE_FRAME_GARBAGE.
 */
class FormatFramer implements Framer {
  private held = new Uint8Array(0);
  /** Stream offset of held[0]: bytes of this connection before it. */
  private base = 0;
  private garbage = 0;
  private garbageAt = 0;
  private readonly sync: readonly number[];
  private readonly highBit: boolean;
  private readonly checksum: Checksum | undefined;
  private readonly checksumFrom: number;
  private readonly checksumLittle: boolean;
  private readonly maxLength: number;
  private readonly minLength: number;

  constructor(private readonly format: FrameFormat) {
    this.sync = format.sync ?? [];
    this.highBit = format.highBitSync === true;
    this.checksum = format.checksum && checksumOf(format.checksum.algorithm);
    this.checksumFrom = format.checksum?.from ?? 0;
    this.checksumLittle = format.checksum?.endian === 'little';
    const length = format.length as Partial<{ fixed: number; field: LengthField; byType: FrameLengthByType }>;
    let headerEnd = 1;
    let longest = MAX_FRAME_LENGTH;
    if (length.fixed !== undefined) longest = length.fixed;
    if (length.field) headerEnd = length.field.offset + length.field.width;
    if (length.byType) {
      headerEnd = length.byType.offset + 1;
      longest = Math.max(...Object.values(length.byType.lengths));
    }
    this.maxLength = format.maxLength ?? longest;
    this.minLength = Math.max(
      1,
      this.sync.length,
      headerEnd,
      this.checksum ? this.checksumFrom + this.checksum.bytes : 0,
    );
  }

  get pending(): number {
    return this.held.length;
  }

  push(chunk: Uint8Array): FrameEvent[] {
    const data = this.held.length === 0 ? chunk : concat(this.held, chunk);
    const n = data.length;
    const out: FrameEvent[] = [];
    let i = 0;
    while (i < n) {
      const sync = this.syncAt(data, i, n);
      if (sync === 'no') {
        this.skip(i, 1);
        i++;
        continue;
      }
      if (sync === 'partial') break;
      const length = this.lengthAt(data, i, n);
      if (length === NOT_A_FRAME) {
        this.skip(i, 1);
        i++;
        continue;
      }
      if (length > this.maxLength) {
        const k = this.nextCandidate(data, i, n) - i;
        this.flushGarbage(out);
        out.push({
          error: new FrameError(
            'DECODE_FRAME_TOO_LONG',
            `a frame announces ${length} bytes, more than the driver's maximum of ${this.maxLength}; ${k} byte(s) skipped`,
            { bytes: k, offset: this.base + i },
          ),
        });
        i += k;
        continue;
      }
      const end = length === WAIT ? n : Math.min(n, i + length);
      const broken = this.highBitBreak(data, i, end);
      if (broken > 0) {
        this.skip(i, broken);
        i += broken;
        continue;
      }
      if (length === WAIT || i + length > n) break;
      if (!this.checksumOk(data, i, length)) {
        const k = this.nextCandidate(data, i, i + length) - i;
        this.flushGarbage(out);
        out.push({
          error: new FrameError(
            'DECODE_CHECKSUM',
            `a ${length}-byte frame fails its ${this.checksum?.name} checksum and is dropped`,
            { bytes: k, offset: this.base + i },
          ),
        });
        i += k;
        continue;
      }
      this.flushGarbage(out);
      out.push({ frame: data.slice(i, i + length) });
      i += length;
    }
    this.flushGarbage(out);
    // A copy: the radio backend may reuse the notification's buffer.
    this.held = data.slice(i);
    this.base += i;
    return out;
  }

  end(): FrameEvent[] {
    // The held bytes start with a candidate that can no longer complete. Whole frames may still sit behind it
    // (a false sync in noise announced a long frame), so drop it up to the next candidate and look again.
    const out: FrameEvent[] = [];
    while (this.held.length > 0) {
      const k = this.nextCandidate(this.held, 0, this.held.length);
      out.push({
        error: new FrameError(
          'DECODE_TRUNCATED',
          `the stream ended inside a frame; its ${k} byte(s) are dropped`,
          { bytes: k, offset: this.base },
        ),
      });
      this.held = this.held.slice(k);
      this.base += k;
      out.push(...this.push(new Uint8Array(0)));
    }
    return out;
  }

  /** 'yes' when a frame may start at i, 'partial' when the sync bytes so far match but the rest is not here yet. */
  private syncAt(data: Uint8Array, i: number, n: number): 'yes' | 'partial' | 'no' {
    if (this.highBit && ((data[i] as number) & 0x80) === 0) return 'no';
    const sync = this.sync;
    for (let k = 0; k < sync.length; k++) {
      if (i + k >= n) return 'partial';
      if (data[i + k] !== sync[k]) return 'no';
    }
    return 'yes';
  }

  /** The frame's length in bytes, WAIT or NOT_A_FRAME. */
  private lengthAt(data: Uint8Array, i: number, n: number): number {
    const length = this.format.length as Partial<{
      fixed: number;
      field: LengthField;
      byType: FrameLengthByType;
    }>;
    let total: number;
    if (length.fixed !== undefined) {
      total = length.fixed;
    } else if (length.byType) {
      const at = i + length.byType.offset;
      if (at >= n) return WAIT;
      const byType = length.byType.lengths[data[at] as number];
      if (byType === undefined) return NOT_A_FRAME;
      total = byType;
    } else {
      const field = length.field as LengthField;
      const at = i + field.offset;
      if (at + field.width > n) return WAIT;
      const b0 = data[at] as number;
      const value =
        field.width === 1
          ? b0
          : field.endian === 'little'
            ? b0 | ((data[at + 1] as number) << 8)
            : (b0 << 8) | (data[at + 1] as number);
      const counts = field.counts ?? 'frame';
      total = counts === 'frame' ? value : counts.from + value + (counts.trailing ?? 0);
    }
    return total < this.minLength ? NOT_A_FRAME : total;
  }

  /** With highBitSync: how far into [i, end) the first byte after i with bit 7 set is (0 if none). */
  private highBitBreak(data: Uint8Array, i: number, end: number): number {
    if (!this.highBit) return 0;
    for (let j = i + 1; j < end; j++) if (((data[j] as number) & 0x80) !== 0) return j - i;
    return 0;
  }

  private checksumOk(data: Uint8Array, i: number, length: number): boolean {
    const checksum = this.checksum;
    if (!checksum) return true;
    const at = i + length - checksum.bytes;
    let sent = 0;
    for (let k = 0; k < checksum.bytes; k++) {
      const b = data[at + (this.checksumLittle ? checksum.bytes - 1 - k : k)] as number;
      sent = sent * 256 + b;
    }
    return checksum.compute(data, i + this.checksumFrom, at) === sent;
  }

  /** The next possible frame start after i and before end (end itself when there is none). */
  private nextCandidate(data: Uint8Array, i: number, end: number): number {
    for (let j = i + 1; j < end; j++) if (this.syncAt(data, j, data.length) !== 'no') return j;
    return end;
  }

  private skip(at: number, count: number): void {
    if (this.garbage === 0) this.garbageAt = this.base + at;
    this.garbage += count;
  }

  private flushGarbage(out: FrameEvent[]): void {
    if (this.garbage === 0) return;
    out.push({
      error: new FrameError(
        'DECODE_FRAME_GARBAGE',
        `${this.garbage} byte(s) that start no frame were skipped`,
        { bytes: this.garbage, offset: this.garbageAt },
      ),
    });
    this.garbage = 0;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * Runs a driver's own StreamDecoder with the guarantees a FrameFormat has: bounded (more than maxLength held is
 * DECODE_FRAME_TOO_LONG and a fresh decoder), and a decoder that throws or returns something other than frames
 * and DecodeErrors (a driver bug) is replaced by a fresh one after one DECODE_INVALID_FIELD, never a crash.
 */
class GuardedStreamFramer implements Framer {
  private decoder: StreamDecoder;
  private base = 0;

  constructor(private readonly framing: StreamFraming) {
    this.decoder = framing.stream();
  }

  get pending(): number {
    return this.decoder.pending;
  }

  push(bytes: Uint8Array): FrameEvent[] {
    const before = this.decoder.pending;
    let events: FrameEvent[];
    try {
      events = this.decoder.push(bytes);
      if (!Array.isArray(events) || !events.every(isEvent)) throw new TypeError('not a FrameEvent[]');
    } catch (error) {
      const dropped = before + bytes.length;
      const at = this.base;
      this.base += dropped;
      this.decoder = this.framing.stream();
      return [
        {
          error:
            error instanceof DecodeError
              ? error
              : new FrameError(
                  'DECODE_INVALID_FIELD',
                  `the driver's stream decoder failed (a driver bug; please report it); ${dropped} byte(s) dropped`,
                  { bytes: dropped, offset: at },
                ),
        },
      ];
    }
    const pending = this.decoder.pending;
    this.base += before + bytes.length - pending;
    if (pending > this.framing.maxLength) {
      events.push({
        error: new FrameError(
          'DECODE_FRAME_TOO_LONG',
          `the stream decoder holds ${pending} bytes, more than the driver's maximum of ${this.framing.maxLength}; they are dropped`,
          { bytes: pending, offset: this.base },
        ),
      });
      this.base += pending;
      this.decoder = this.framing.stream();
    }
    return events;
  }

  end(): FrameEvent[] {
    const pending = this.decoder.pending;
    this.decoder = this.framing.stream();
    if (pending === 0) return [];
    const at = this.base;
    this.base += pending;
    return [
      {
        error: new FrameError(
          'DECODE_TRUNCATED',
          `the stream ended inside a frame; its ${pending} byte(s) are dropped`,
          { bytes: pending, offset: at },
        ),
      },
    ];
  }
}

function isEvent(event: unknown): event is FrameEvent {
  if (typeof event !== 'object' || event === null) return false;
  const { frame, error } = event as { frame?: unknown; error?: unknown };
  return frame instanceof Uint8Array !== error instanceof DecodeError;
}
