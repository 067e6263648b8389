import { GatewayError } from '../errors.js';

/**
 * Stable codes for bytes that arrive over MQTT (docs/errors.md, "Wire format"; docs/wire-format.md says when
 * each is raised). Every refusal of an envelope, payload or command is one of these; nothing else escapes the
 * wire decoders, so a receiver can log the code and drop the message without a stack trace.
 */
export type WireErrorCode =
  /** The envelope is larger than the receiver's limit; refused before any byte was parsed. */
  | 'WIRE_TOO_LARGE'
  /** Not well-formed CBOR (RFC 8949), truncated, trailing bytes, or not the COSE_Sign1 / payload structure. */
  | 'WIRE_MALFORMED'
  /** The protected header names no algorithm or another one than ES256 (-7), or the key is not P-256. */
  | 'WIRE_UNSUPPORTED_ALG'
  /** No key is known for the envelope's kid. */
  | 'WIRE_UNKNOWN_KID'
  /** A command's signer certificate was not issued by the clinic CA. */
  | 'WIRE_SIGNER_UNTRUSTED'
  /** A command's signer certificate is not a clinic certificate (e.g. a gateway's). */
  | 'WIRE_SIGNER_NOT_CLINIC'
  /** A command's signer certificate is expired or not valid yet (60 s of clock difference allowed). */
  | 'WIRE_SIGNER_EXPIRED'
  /** The ES256 signature does not verify over the Sig_structure. */
  | 'WIRE_BAD_SIGNATURE'
  /** The payload's `v` is not a version this code reads. */
  | 'WIRE_UNSUPPORTED_VERSION'
  /** A payload field is missing or has the wrong type, format or range. */
  | 'WIRE_INVALID_FIELD'
  /** The gateway id inside a signed payload is not the one the topic or the signer's certificate names. */
  | 'WIRE_GATEWAY_MISMATCH'
  /** A topic is not one of `rpm/v1/<gatewayId>/{obs,alert,status,cmd,cmd/res}`. */
  | 'WIRE_BAD_TOPIC'
  /** A command is outside its validity window (expired, or issued in the future beyond the allowed skew). */
  | 'WIRE_CMD_EXPIRED'
  /** A command id was seen before. */
  | 'WIRE_CMD_REPLAYED'
  /** A command was signed for another gateway. */
  | 'WIRE_CMD_WRONG_TARGET'
  /** The command name is not in the closed list. */
  | 'WIRE_CMD_UNKNOWN'
  /** The command's arguments are not what the command takes (including a config key outside the whitelist). */
  | 'WIRE_CMD_BAD_ARGS';

/**
 * A refused wire message. Messages name the field path (`items[2].obs[0][1]`) and what was expected, never the
 * value found: payloads carry PHI. `offset` is the byte offset of a CBOR problem where one applies.
 * `commandId` is set once a command was authenticated and its id read, so the gateway can address its refusal.
 */
export class WireError extends GatewayError {
  declare readonly code: WireErrorCode;
  readonly offset: number | undefined;
  readonly commandId: string | undefined;

  constructor(
    code: WireErrorCode,
    message: string,
    options?: { offset?: number; commandId?: string; cause?: unknown },
  ) {
    super(
      code,
      options?.offset === undefined ? message : `${message} (at byte ${options.offset})`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.offset = options?.offset;
    this.commandId = options?.commandId;
  }
}

export function isWireError(error: unknown): error is WireError {
  return error instanceof WireError;
}
