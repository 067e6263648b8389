/** Public surface of the PKI module: development CA, enrolment (CSR), identities, expiry, TLS credentials. */
export {
  type CertificateAuthority,
  CLOCK_SKEW_MS,
  createDevelopmentCa,
  DEFAULT_CA_DAYS,
  DEFAULT_LEAF_DAYS,
  type IssuedCertificate,
  type IssuedCredentials,
  issueClinicCertificate,
  issueGatewayCertificate,
  issueServerCertificate,
  loadCertificateAuthority,
  loadCertificateAuthorityDir,
  MAX_CA_DAYS,
  MAX_LEAF_DAYS,
  randomSerial,
  type ServerOptions,
  type ValidityOptions,
} from './ca.js';
export {
  type CertificateEvent,
  CertificateWatcher,
  GatewayCredentials,
  type LoadOptions,
  loadTlsCredentials,
  type SigningMaterial,
  signingCredentials,
  type TlsCredentials,
  type TlsFiles,
} from './credentials.js';
export {
  CRL_FILE,
  DEFAULT_CRL_DAYS,
  findRevocation,
  normalizeSerial,
  parseRevocationList,
  REVOCATION_REASONS,
  type RevocationList,
  type RevocationReason,
  type RevokedEntry,
  signRevocationList,
} from './crl.js';
export {
  CrlFile,
  type CrlState,
  type CrlUpdate,
  renewRevocationList,
  revokeCertificate,
} from './crl-file.js';
export { type CertificateRequest, createCsr, createGatewayCsr, type SignCsrOptions, signCsr } from './csr.js';
export { createDevelopmentPki, type DevelopmentPki, type DevelopmentPkiFile } from './dev-pki.js';
export { PkiError, type PkiErrorCode } from './errors.js';
export { checkExpiry, type Expiry, type ExpiryStatus } from './expiry.js';
export { CERT_MODE, KEY_MODE, writeCertificateFile, writePrivateKeyFile } from './files.js';
export {
  assertValidId,
  type CertificateIdentity,
  type CertificateInput,
  type CertificateRole,
  ID_PATTERN,
  identityOf,
  identityUri,
} from './identity.js';
export { publicKeySha256 } from './keys.js';
export {
  checkClientCertificate,
  checkServerCertificate,
  mqttsConnection,
  TLS_MIN_VERSION,
  TLS12_AEAD_CIPHERS,
  type TlsMaterial,
} from './tls.js';
