import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { certificateDerProblem } from './der.js';
import { PkiError } from './errors.js';
import { x509 } from './x509.js';

/**
 * The identity conventions shared by the CA, the broker and the receiver (certs/README.md):
 *
 * | role    | subject                          | SAN                                   | EKU                 |
 * | ------- | -------------------------------- | ------------------------------------- | ------------------- |
 * | gateway | OU=gateway, CN=<gatewayId>       | URI urn:rpm-gateway:gateway:<id>      | clientAuth          |
 * | clinic  | O=<org>, OU=clinic, CN=<name>    | URI urn:rpm-gateway:clinic:<name>     | clientAuth          |
 * | server  | OU=broker, CN=<first DNS name>   | DNS localhost, IP 127.0.0.1, extras   | serverAuth          |
 *
 * The SAN URI is the identity (RFC 5280 4.2.1.6: subject alternative names are the place for identities
 * bound to the key); the CN repeats it because Mosquitto's use_identity_as_username and many dashboards only
 * look at the CN. The role is part of the URI, so a clinic named like a gateway can never pass as one.
 */
export type CertificateRole = 'gateway' | 'clinic' | 'server';

export const URN_PREFIX = 'urn:rpm-gateway:';

/**
 * Gateway ids and clinic names: lower-case letters, digits and '-', 3 to 63 characters, starting with a
 * letter or digit. Safe as one MQTT topic level (no '/', '+', '#'), as a CN, in a URN (RFC 8141 NSS) and
 * in a file name.
 */
export const ID_PATTERN = /^[a-z0-9][a-z0-9-]{2,62}$/;

/** Throws PKI_INVALID_ID unless `id` is a valid gateway id (or clinic name, same rule). */
export function assertValidId(id: string, what: 'gateway id' | 'clinic name' = 'gateway id'): string {
  if (!ID_PATTERN.test(id)) {
    throw new PkiError(
      'PKI_INVALID_ID',
      `${JSON.stringify(id)} is not a valid ${what}: use 3-63 characters a-z, 0-9 and '-', starting with a letter or digit`,
    );
  }
  return id;
}

export function identityUri(role: 'gateway' | 'clinic', id: string): string {
  return `${URN_PREFIX}${role}:${id}`;
}

/** Parses `urn:rpm-gateway:<role>:<id>`; undefined for any other URI or an invalid id. */
export function parseIdentityUri(uri: string): { role: 'gateway' | 'clinic'; id: string } | undefined {
  const match = /^urn:rpm-gateway:(gateway|clinic):(.*)$/.exec(uri);
  if (!match) return undefined;
  const [, role, id] = match;
  if (id === undefined || !ID_PATTERN.test(id)) return undefined;
  return { role: role as 'gateway' | 'clinic', id };
}

// RFC 1123 host names: labels of 1-63 letters, digits and '-', not starting or ending with '-'; 253 in all.
const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Throws PKI_INVALID_ID unless `name` is a DNS host name fit for a server certificate (no wildcards). */
export function assertDnsName(name: string): string {
  const lower = name.toLowerCase();
  if (lower.length > 253 || !lower.split('.').every((label) => DNS_LABEL.test(label))) {
    throw new PkiError('PKI_INVALID_ID', `${JSON.stringify(name)} is not a valid DNS host name`);
  }
  return lower;
}

export function assertIpAddress(ip: string): string {
  if (isIP(ip) === 0) throw new PkiError('PKI_INVALID_ID', `${JSON.stringify(ip)} is not an IP address`);
  return ip;
}

/**
 * Anything that holds one certificate: PEM text, DER bytes, a parsed @peculiar/x509 certificate, or an object
 * with the DER in `raw` (Node's `tls.PeerCertificate` from getPeerCertificate(), `crypto.X509Certificate`).
 */
export type CertificateInput =
  | string
  | Uint8Array
  | ArrayBuffer
  | x509.X509Certificate
  | { readonly raw: Uint8Array };

/**
 * Parses a certificate in any of the accepted forms, strictly: PKI_BAD_CERTIFICATE unless the bytes are one
 * DER certificate that OpenSSL reads as well (see certificateDerProblem). Every certificate the project loads
 * (files, CA, TLS peers, `certs check`) comes through here.
 */
export function toCertificate(input: CertificateInput, what = 'certificate'): x509.X509Certificate {
  if (input instanceof x509.X509Certificate) return input;
  let certificate: x509.X509Certificate;
  try {
    certificate = parseLenient(input);
  } catch (error) {
    throw new PkiError('PKI_BAD_CERTIFICATE', `${what} is not a readable X.509 certificate`, {
      cause: error,
    });
  }
  const problem = certificateDerProblem(new Uint8Array(certificate.rawData));
  if (problem) {
    throw new PkiError('PKI_BAD_CERTIFICATE', `${what} is not a valid DER X.509 certificate: ${problem}`);
  }
  return certificate;
}

function parseLenient(input: Exclude<CertificateInput, x509.X509Certificate>): x509.X509Certificate {
  if (typeof input === 'string') {
    if (!input.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM CERTIFICATE block');
    return new x509.X509Certificate(input);
  }
  if (input instanceof Uint8Array || input instanceof ArrayBuffer) return new x509.X509Certificate(input);
  if (input !== null && typeof input === 'object' && input.raw instanceof Uint8Array) {
    return new x509.X509Certificate(input.raw);
  }
  throw new Error('unsupported input type');
}

/** Who a certificate speaks for, as the broker and the receiver see it. */
export type CertificateIdentity = {
  /** RFC 4514 string of the subject, in the certificate's order ("OU=gateway, CN=gw-demo-0001"). */
  readonly subject: string;
  /** Lower-case hex, as OpenSSL and the audit log print it. */
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Lower-case hex SHA-256 of the DER: the certificate's fingerprint, for logs and pinning. */
  readonly sha256: string;
} & (
  | { readonly role: CertificateRole; readonly id: string }
  | { readonly role: 'unknown'; readonly id: null }
);

export const EKU_SERVER_AUTH = x509.ExtendedKeyUsage.serverAuth;
export const EKU_CLIENT_AUTH = x509.ExtendedKeyUsage.clientAuth;

/** The certificate's extended key usages (OIDs); empty when it has no EKU extension. */
export function extendedKeyUsages(certificate: x509.X509Certificate): string[] {
  const eku = certificate.getExtension(x509.ExtendedKeyUsageExtension);
  return eku ? eku.usages.map(String) : [];
}

/** URIs and DNS names from the subject alternative name extension. */
export function subjectAltNames(certificate: x509.X509Certificate): { type: string; value: string }[] {
  const san = certificate.getExtension(x509.SubjectAlternativeNameExtension);
  return san ? san.names.items.map((name) => ({ type: name.type, value: name.value })) : [];
}

/**
 * Maps a (verified) certificate to an identity. The SAN URI decides: exactly one `urn:rpm-gateway:` URI with
 * a valid id, on a certificate whose EKU allows clientAuth, gives role gateway or clinic. Without such a URI,
 * a certificate for serverAuth is a server (id: its CN, else its first DNS name). Anything else, including
 * two identity URIs, is 'unknown': the broker refuses it rather than guess.
 *
 * This does not verify anything: call it on a certificate TLS has already verified against the clinic CA.
 */
export function identityOf(input: CertificateInput): CertificateIdentity {
  const certificate = toCertificate(input);
  const base = {
    subject: certificate.subject,
    serialNumber: certificate.serialNumber.toLowerCase(),
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
    sha256: createHash('sha256').update(new Uint8Array(certificate.rawData)).digest('hex'),
  };
  const names = subjectAltNames(certificate);
  const usages = extendedKeyUsages(certificate);
  const ours = names.filter((n) => n.type === 'url' && n.value.startsWith(URN_PREFIX));
  if (ours.length === 1 && ours[0] !== undefined) {
    const parsed = parseIdentityUri(ours[0].value);
    if (parsed && usages.includes(EKU_CLIENT_AUTH)) return { ...base, role: parsed.role, id: parsed.id };
    return { ...base, role: 'unknown', id: null };
  }
  if (ours.length === 0 && usages.includes(EKU_SERVER_AUTH)) {
    const cn = certificate.subjectName.getField('CN')[0];
    const dns = names.find((n) => n.type === 'dns')?.value;
    const id = cn ?? dns;
    if (id !== undefined) return { ...base, role: 'server', id };
  }
  return { ...base, role: 'unknown', id: null };
}
