/**
 * Why a TLS client was refused, as a stable reason for the log and the audit log (docs/errors.md, "Broker
 * refusals"). The input is what Node exposes: the certificate verification result OpenSSL left on the socket
 * (`authorizationError`, an X509_V_ERR_* name without the prefix, see openssl-verify(1) "Diagnostics") and the
 * handshake error's code. Node's server finishes the handshake whatever the verification result and then
 * destroys a socket whose client certificate failed; the socket still carries the result, so the reason is
 * exact, not the ECONNRESET that the teardown produces.
 */
export type TlsRefusalReason =
  | 'no-certificate'
  | 'unknown-ca'
  | 'expired'
  | 'not-yet-valid'
  | 'revoked'
  | 'wrong-purpose'
  | 'bad-signature'
  | 'crl-expired'
  | 'crl-not-yet-valid'
  | 'crl-missing'
  | 'crl-invalid'
  | 'protocol-version'
  | 'no-shared-cipher'
  | 'handshake-failed';

const BY_VERIFY_ERROR: Readonly<Record<string, TlsRefusalReason>> = {
  UNABLE_TO_GET_ISSUER_CERT: 'unknown-ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown-ca',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown-ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown-ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown-ca',
  CERT_UNTRUSTED: 'unknown-ca',
  CERT_REJECTED: 'unknown-ca',
  CERT_SIGNATURE_FAILURE: 'bad-signature',
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: 'bad-signature',
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not-yet-valid',
  CERT_REVOKED: 'revoked',
  INVALID_PURPOSE: 'wrong-purpose',
  CRL_HAS_EXPIRED: 'crl-expired',
  CRL_NOT_YET_VALID: 'crl-not-yet-valid',
  UNABLE_TO_GET_CRL: 'crl-missing',
  CRL_SIGNATURE_FAILURE: 'crl-invalid',
  UNABLE_TO_DECRYPT_CRL_SIGNATURE: 'crl-invalid',
  ERROR_IN_CRL_LAST_UPDATE_FIELD: 'crl-invalid',
  ERROR_IN_CRL_NEXT_UPDATE_FIELD: 'crl-invalid',
};

const BY_HANDSHAKE_ERROR: Readonly<Record<string, TlsRefusalReason>> = {
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'no-certificate',
  ERR_SSL_UNSUPPORTED_PROTOCOL: 'protocol-version',
  ERR_SSL_WRONG_VERSION_NUMBER: 'protocol-version',
  ERR_SSL_NO_SHARED_CIPHER: 'no-shared-cipher',
};

/**
 * The reason for a refused client; `detail` keeps the underlying code so nothing is lost. The verification
 * result wins over the handshake error: when a certificate fails, the handshake error is only the teardown.
 */
export function tlsRefusalReason(
  authorizationError: string | Error | null | undefined,
  handshakeErrorCode?: string,
): { reason: TlsRefusalReason; detail: string } {
  const verify =
    authorizationError instanceof Error
      ? ((authorizationError as NodeJS.ErrnoException).code ?? authorizationError.message)
      : (authorizationError ?? undefined);
  if (verify) return { reason: BY_VERIFY_ERROR[verify] ?? 'handshake-failed', detail: verify };
  const code = handshakeErrorCode ?? 'unknown';
  return { reason: BY_HANDSHAKE_ERROR[code] ?? 'handshake-failed', detail: code };
}
