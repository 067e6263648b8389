/**
 * One error base class for the whole gateway. Every error a user or an operator can see carries a stable,
 * machine-readable `code` (documented in docs/errors.md) and, where it wraps another failure, the original as
 * `cause`. Messages are written for people and never contain PHI (measurement values, device addresses).
 */
export class GatewayError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Stable codes for bad bytes from the radio or bad decoder input. */
export type DecodeErrorCode =
  /** The payload ended before a field its flags promise. */
  | 'DECODE_TRUNCATED'
  /** Bytes are left over after every field the flags announce (a length that disagrees with the flags). */
  | 'DECODE_TRAILING_BYTES'
  /** A field holds a value the specification does not allow here (e.g. an unknown RACP op code). */
  | 'DECODE_INVALID_FIELD'
  /** No decoder is known for this characteristic UUID. */
  | 'DECODE_UNKNOWN_CHARACTERISTIC'
  /** No driver matches the advertised service / local name a `decode` request gives. */
  | 'DECODE_NO_DRIVER'
  /** The characteristic UUID is not a 16-bit or 128-bit UUID. */
  | 'DECODE_BAD_UUID'
  /** The payload text is not an even number of hex digits. */
  | 'DECODE_BAD_HEX'
  /** There is nothing to decode. */
  | 'DECODE_EMPTY_INPUT'
  /** An NDJSON input line is not the `{"char":..,"hex":..}` object the contract asks for. */
  | 'DECODE_BAD_REQUEST'
  /** A framed stream: a frame whose checksum does not match its bytes (dropped, with its byte count). */
  | 'DECODE_CHECKSUM'
  /** A framed stream: bytes that start no frame (noise, a broken frame, an unknown reply), skipped to resync. */
  | 'DECODE_FRAME_GARBAGE'
  /** A framed stream: a frame longer than the driver's declared maximum (or a stream decoder holding more). */
  | 'DECODE_FRAME_TOO_LONG';

/**
 * Bad input to a decoder. `offset` is the byte offset in the payload where the problem was found (the first
 * byte that is missing, extra or wrong), or undefined where the problem is not about a byte.
 */
export class DecodeError extends GatewayError {
  declare readonly code: DecodeErrorCode;
  readonly offset: number | undefined;

  constructor(code: DecodeErrorCode, message: string, offset?: number, options?: { cause?: unknown }) {
    super(code, offset === undefined ? message : `${message} (at byte ${offset})`, options);
    this.offset = offset;
  }

  override toJSON(): { code: string; message: string; offset?: number } {
    return this.offset === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, offset: this.offset };
  }
}

/**
 * A problem the framer of a byte stream found (src/drivers/sdk/framing.ts): a bad checksum, skipped garbage, an
 * oversized frame, a stream that ended inside a frame. `bytes` is how many stream bytes it covers (they were
 * dropped); `offset` is where they start, counted from the first byte of the connection.
 */
export class FrameError extends DecodeError {
  readonly bytes: number;

  constructor(code: DecodeErrorCode, message: string, where: { bytes: number; offset?: number }) {
    super(code, message, where.offset);
    this.bytes = where.bytes;
  }

  override toJSON(): { code: string; message: string; offset?: number; bytes: number } {
    return { ...super.toJSON(), bytes: this.bytes };
  }
}

/** A driver definition or the driver registry is inconsistent; found at load time, never at decode time. */
export type DriverErrorCode =
  | 'DRIVER_INVALID'
  | 'DRIVER_DUPLICATE_ID'
  | 'DRIVER_MATCH_OVERLAP'
  | 'DRIVER_UNKNOWN_UNIT'
  | 'DRIVER_UNKNOWN_CODE'
  | 'DRIVER_LOAD_FAILED'
  | 'DRIVER_SETUP_VALUE';

export class DriverError extends GatewayError {
  declare readonly code: DriverErrorCode;
  readonly driverId: string | undefined;

  constructor(code: DriverErrorCode, message: string, driverId?: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.driverId = driverId;
  }
}

/** A command-line usage mistake: exit status 2 with a short message, never a stack trace. */
export class UsageError extends GatewayError {
  /** The help to show under the message, when not the command's own (e.g. a `certs` action's). */
  readonly help: string | undefined;

  constructor(message: string, options?: { help?: string }) {
    super('USAGE', message);
    this.help = options?.help;
  }
}
