import { GatewayError } from '../errors.js';

/** Stable codes for certificates, keys and enrolment (docs/errors.md, "Certificates"). */
export type PkiErrorCode =
  /** A value for a certificate is not acceptable: gateway id, clinic name, organization, DNS name, IP, validity. */
  | 'PKI_INVALID_ID'
  /** A certificate signing request is unreadable, badly signed, of the wrong algorithm or names no identity. */
  | 'PKI_BAD_CSR'
  /** A file that should hold a PEM certificate does not (or holds one of another algorithm). */
  | 'PKI_BAD_CERTIFICATE'
  /** A file that should hold a PEM PKCS#8 ECDSA P-256 private key does not. */
  | 'PKI_BAD_KEY'
  /** A private key file is readable or writable by group or others (mode looser than 0600). */
  | 'PKI_KEY_PERMISSIONS'
  /** A private key file is a symbolic link, not a regular file, or owned by another user than the reader's (or root). */
  | 'PKI_KEY_UNSAFE'
  /** The certificate's notAfter is in the past. */
  | 'PKI_EXPIRED'
  /** The certificate's notBefore is in the future (often: the hub's clock is not set yet). */
  | 'PKI_NOT_YET_VALID'
  /** A certificate does not match its private key, or lacks the extended key usage its use needs. */
  | 'PKI_MISMATCH'
  /** Refused to overwrite an existing key (or key pair) without --force. */
  | 'PKI_EXISTS'
  /** A certificate revocation list is unreadable, not the CA's, not signed by its key, or lacks a required field. */
  | 'PKI_BAD_CRL'
  /** Any other file-system failure reading or writing certificate material. */
  | 'PKI_IO';

export class PkiError extends GatewayError {
  declare readonly code: PkiErrorCode;

  constructor(code: PkiErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
