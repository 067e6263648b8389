import { GatewayError } from '../../errors.js';

/**
 * Stable codes of the clinic intake (docs/errors.md, "Clinic intake"). The refusal codes name why a message was
 * refused and stored as a rejection (next to the WIRE_* codes of src/wire); INTAKE_BAD_OPTIONS is a wrong
 * option given to the service, found when it is built.
 */
export type IntakeErrorCode =
  /** The signer's certificate is on the clinic CA's revocation list. */
  | 'INTAKE_SIGNER_REVOKED'
  /** The message arrived later than the signer certificate's notAfter plus the configured grace. */
  | 'INTAKE_SIGNER_EXPIRED'
  /** The payload's `sent` is after the signer certificate's notAfter: it claims to be signed after expiry. */
  | 'INTAKE_SIGNED_AFTER_EXPIRY'
  /** The signer certificate is not valid yet at receipt (its notBefore, less 5 minutes of skew, is ahead). */
  | 'INTAKE_SIGNER_NOT_YET_VALID'
  /** A message on a topic the intake does not read (only obs, alert and status carry data to it). */
  | 'INTAKE_UNEXPECTED_TOPIC'
  /** An option of the intake is out of range (a grace over the maximum, an unknown time zone, ...). */
  | 'INTAKE_BAD_OPTIONS';

export class IntakeError extends GatewayError {
  declare readonly code: IntakeErrorCode;

  constructor(code: IntakeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
