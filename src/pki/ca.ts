import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { type Clock, systemClock } from '../util/clock.js';
import { PkiError } from './errors.js';
import { readPrivateKeyFile, readTextFile } from './files.js';
import {
  assertDnsName,
  assertIpAddress,
  assertValidId,
  EKU_CLIENT_AUTH,
  EKU_SERVER_AUTH,
  identityUri,
  toCertificate,
} from './identity.js';
import {
  certificateMatchesKey,
  generateKeyPair,
  importSigningKey,
  parsePrivateKey,
  privateKeyToPem,
} from './keys.js';
import { type CryptoKey, ECDSA_P256, x509 } from './x509.js';

const MINUTE = 60_000;
const DAY = 86_400_000;

/** Certificates start 5 minutes in the past so that a peer whose clock is slightly behind accepts them. */
export const CLOCK_SKEW_MS = 5 * MINUTE;
export const DEFAULT_CA_DAYS = 3650;
/** 397 days: the longest TLS leaf lifetime browsers accept (CA/Browser Forum BR 6.3.2), a familiar ceiling. */
export const DEFAULT_LEAF_DAYS = 397;
/**
 * The longest validity issued to a leaf: 825 days, the CA/Browser Forum Baseline Requirements ceiling for
 * subscriber certificates from March 2018 to September 2020 (BR 1.5.x, 6.3.2). Long enough for a hub to
 * outlast a missed renewal, short enough that a stolen hub key does not stay good for years. Anything longer
 * is refused, not shortened: a typo (`--days 99999999`) once produced a notAfter past the year 9999, which
 * no X.509 time can hold (RFC 5280 4.1.2.5: GeneralizedTime has four year digits) and OpenSSL rejects.
 */
export const MAX_LEAF_DAYS = 825;
/**
 * The longest validity of a CA: 9132 days (about 25 years), the CA/Browser Forum ceiling for root CA
 * certificates (BR 2.0.0, 7.1.2.1.1).
 */
export const MAX_CA_DAYS = 9132;

/** A CA able to sign: its certificate and its private key (non-extractable once loaded). */
export interface CertificateAuthority {
  readonly certificate: x509.X509Certificate;
  readonly certificatePem: string;
  readonly signingKey: CryptoKey;
}

/** A certificate just issued. */
export interface IssuedCertificate {
  readonly certificate: x509.X509Certificate;
  readonly certificatePem: string;
}

/** A certificate issued together with a key generated for it (development material, `certs init`). */
export interface IssuedCredentials extends IssuedCertificate {
  readonly privateKeyPem: string;
}

export interface ValidityOptions {
  readonly validityDays?: number;
  readonly clock?: Clock;
}

/** What goes into a leaf certificate; built only by the profile functions below, never from a request. */
export interface LeafProfile {
  readonly subject: x509.JsonName;
  readonly extendedKeyUsages: readonly string[];
  readonly subjectAltNames: x509.JsonGeneralNames;
}

export function gatewayProfile(gatewayId: string): LeafProfile {
  const id = assertValidId(gatewayId, 'gateway id');
  if (id.startsWith('clinic-')) {
    // The broker keeps client ids `clinic-...` for clinic receivers (src/broker/acl.ts): a gateway there
    // could take over a clinic's MQTT session, so such a gateway would be refused at every CONNECT.
    throw new PkiError('PKI_INVALID_ID', `gateway id ${JSON.stringify(id)} must not start with "clinic-"`);
  }
  return {
    subject: [{ OU: ['gateway'] }, { CN: [id] }],
    extendedKeyUsages: [EKU_CLIENT_AUTH],
    subjectAltNames: [{ type: 'url', value: identityUri('gateway', id) }],
  };
}

export function clinicProfile(name: string, organization: string): LeafProfile {
  const id = assertValidId(name, 'clinic name');
  return {
    subject: [{ O: [assertOrganization(organization)] }, { OU: ['clinic'] }, { CN: [id] }],
    extendedKeyUsages: [EKU_CLIENT_AUTH],
    subjectAltNames: [{ type: 'url', value: identityUri('clinic', id) }],
  };
}

export interface ServerOptions extends ValidityOptions {
  /** Extra DNS names besides "localhost" (the broker's host name as the hubs dial it). */
  readonly dnsNames?: readonly string[];
  /** Extra IP addresses besides 127.0.0.1. */
  readonly ipAddresses?: readonly string[];
}

export function serverProfile(options: Pick<ServerOptions, 'dnsNames' | 'ipAddresses'> = {}): LeafProfile {
  const dns = unique(['localhost', ...(options.dnsNames ?? []).map(assertDnsName)]);
  const ips = unique(['127.0.0.1', ...(options.ipAddresses ?? []).map(assertIpAddress)]);
  // The CN is informational (RFC 6125 6.4.4: clients match the SAN); the first extra name is the real one.
  const commonName = dns[1] ?? dns[0] ?? 'localhost';
  return {
    subject: [{ OU: ['broker'] }, { CN: [commonName] }],
    extendedKeyUsages: [EKU_SERVER_AUTH],
    subjectAltNames: [
      ...dns.map((value) => ({ type: 'dns' as const, value })),
      ...ips.map((value) => ({ type: 'ip' as const, value })),
    ],
  };
}

/**
 * A self-signed development CA (RFC 5280 4.2.1.9 basicConstraints CA:true critical with pathLen 0, so it can
 * sign leaves but no intermediate; 4.2.1.3 keyUsage keyCertSign + cRLSign critical; 4.2.1.2 subject key
 * identifier). For development and tests only: production hubs are enrolled by the clinic's real CA.
 */
export async function createDevelopmentCa(
  options: ValidityOptions & { commonName?: string; organization?: string } = {},
): Promise<CertificateAuthority & { privateKeyPem: string }> {
  const organization = assertOrganization(options.organization ?? 'rpm-gateway development');
  const keys = await generateKeyPair();
  const { notBefore, notAfter } = validity(
    options.clock,
    options.validityDays ?? DEFAULT_CA_DAYS,
    MAX_CA_DAYS,
  );
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [
      { O: [organization] },
      { OU: ['development CA - do not ship'] },
      { CN: [options.commonName ?? 'rpm-gateway development clinic CA'] },
    ],
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certificate,
    certificatePem: certificate.toString('pem'),
    signingKey: keys.privateKey,
    privateKeyPem: await privateKeyToPem(keys.privateKey),
  };
}

/**
 * Loads a CA from PEM text, checking that the certificate is a CA allowed to sign certificates and that the
 * key is its key (PKI_MISMATCH otherwise: signing with the wrong key gives certificates nobody can verify).
 */
export async function loadCertificateAuthority(
  certificatePem: string,
  keyPem: string,
): Promise<CertificateAuthority> {
  const certificate = toCertificate(certificatePem, 'the CA certificate');
  const key = parsePrivateKey(keyPem, 'the CA key');
  const constraints = certificate.getExtension(x509.BasicConstraintsExtension);
  const usage = certificate.getExtension(x509.KeyUsagesExtension);
  if (!constraints?.ca || (usage && (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0)) {
    throw new PkiError(
      'PKI_BAD_CERTIFICATE',
      `${certificate.subject} is not a CA certificate (RFC 5280 4.2.1.9)`,
    );
  }
  if (!certificateMatchesKey(certificate, key)) {
    throw new PkiError(
      'PKI_MISMATCH',
      `the CA key does not belong to the CA certificate ${certificate.subject}`,
    );
  }
  return {
    certificate,
    certificatePem: certificate.toString('pem'),
    signingKey: await importSigningKey(keyPem, 'the CA key'),
  };
}

/** Loads `ca.crt` and `ca.key` (0600 enforced) from a folder written by `certs init`. */
export async function loadCertificateAuthorityDir(dir: string): Promise<CertificateAuthority> {
  const certificatePem = await readTextFile(join(dir, 'ca.crt'), 'CA certificate');
  const keyPem = await readPrivateKeyFile(join(dir, 'ca.key'));
  return loadCertificateAuthority(certificatePem, keyPem);
}

/** Broker (MQTT server) certificate: EKU serverAuth only; SAN DNS localhost, IP 127.0.0.1 and the extras. */
export async function issueServerCertificate(
  ca: CertificateAuthority,
  options: ServerOptions = {},
): Promise<IssuedCredentials> {
  return issueWithNewKey(ca, serverProfile(options), options);
}

/** Clinic receiver certificate: EKU clientAuth; O=<org>, OU=clinic, CN=<name>; SAN urn:rpm-gateway:clinic:<name>. */
export async function issueClinicCertificate(
  ca: CertificateAuthority,
  options: ValidityOptions & { name: string; organization?: string },
): Promise<IssuedCredentials> {
  const organization = options.organization ?? caOrganization(ca);
  return issueWithNewKey(ca, clinicProfile(options.name, organization), options);
}

/**
 * Gateway certificate with a key made here (development; a fleet uses createGatewayCsr + signCsr so the key
 * never leaves the hub): EKU clientAuth only; OU=gateway, CN=<id>; SAN urn:rpm-gateway:gateway:<id>.
 */
export async function issueGatewayCertificate(
  ca: CertificateAuthority,
  options: ValidityOptions & { gatewayId: string },
): Promise<IssuedCredentials> {
  return issueWithNewKey(ca, gatewayProfile(options.gatewayId), options);
}

async function issueWithNewKey(
  ca: CertificateAuthority,
  profile: LeafProfile,
  options: ValidityOptions,
): Promise<IssuedCredentials> {
  const keys = await generateKeyPair();
  const issued = await issueLeaf(ca, keys.publicKey, profile, options);
  return { ...issued, privateKeyPem: await privateKeyToPem(keys.privateKey) };
}

/**
 * Signs a leaf certificate for `publicKey` with exactly the extensions of `profile` (RFC 5280 4.2.1):
 * basicConstraints CA:false (critical), keyUsage digitalSignature (critical; ECDSA keys sign, they never
 * encrypt), the profile's EKUs and SANs, subject key identifier, and the authority key identifier copied from
 * the CA's subject key identifier so path building finds the issuer by key (4.2.1.1).
 */
export async function issueLeaf(
  ca: CertificateAuthority,
  publicKey: CryptoKey | x509.PublicKey,
  profile: LeafProfile,
  options: ValidityOptions = {},
): Promise<IssuedCertificate> {
  const { notBefore, notAfter: wanted } = validity(
    options.clock,
    options.validityDays ?? DEFAULT_LEAF_DAYS,
    MAX_LEAF_DAYS,
  );
  // A leaf that outlives its CA would be unverifiable at the end anyway; say so in the certificate itself.
  const notAfter = new Date(Math.min(wanted.getTime(), ca.certificate.notAfter.getTime()));
  const caKeyId =
    ca.certificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ??
    Buffer.from(await ca.certificate.publicKey.getKeyIdentifier()).toString('hex');
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: profile.subject,
    issuer: ca.certificate.subjectName,
    notBefore,
    notAfter,
    publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([...profile.extendedKeyUsages], false),
      new x509.SubjectAlternativeNameExtension(profile.subjectAltNames, false),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      new x509.AuthorityKeyIdentifierExtension(caKeyId, false),
    ],
  });
  return { certificate, certificatePem: certificate.toString('pem') };
}

/**
 * 128 random bits as a positive serial (RFC 5280 4.1.2.2: positive, at most 20 octets; CA/B BR 7.1: at least
 * 64 bits from a CSPRNG). The top bit set would make the DER INTEGER negative, so the encoder prefixes 0x00
 * (17 octets); a serial of all zero bits is not positive, so it is redrawn.
 */
export function randomSerial(): string {
  for (;;) {
    const bytes = randomBytes(16);
    if (bytes.some((b) => b !== 0)) return bytes.toString('hex');
  }
}

function validity(
  clock: Clock | undefined,
  days: number,
  maxDays: number,
): { notBefore: Date; notAfter: Date } {
  if (!Number.isInteger(days) || days < 1 || days > maxDays) {
    throw new PkiError(
      'PKI_INVALID_ID',
      `validity must be a whole number of days from 1 to ${maxDays} (got ${days})`,
    );
  }
  // X.509 times have whole seconds; truncating here makes notAfter exactly now + days as encoded.
  const now = Math.floor((clock ?? systemClock).now() / 1000) * 1000;
  return { notBefore: new Date(now - CLOCK_SKEW_MS), notAfter: new Date(now + days * DAY) };
}

function caOrganization(ca: CertificateAuthority): string {
  return ca.certificate.subjectName.getField('O')[0] ?? 'rpm-gateway';
}

function assertOrganization(organization: string): string {
  // RFC 5280 Appendix A: ub-organization-name 64. Printable, no control characters.
  if (organization.length < 1 || organization.length > 64 || /\p{Cc}/u.test(organization)) {
    throw new PkiError(
      'PKI_INVALID_ID',
      `organization ${JSON.stringify(organization)} must be 1-64 printable characters`,
    );
  }
  return organization;
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
