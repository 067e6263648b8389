import { X509Certificate as NodeX509, verify as verifySignature } from 'node:crypto';
import { type Clock, systemClock } from '../util/clock.js';
import type { CertificateAuthority } from './ca.js';
import { PkiError } from './errors.js';
import { ECDSA_P256, x509 } from './x509.js';

/**
 * Certificate revocation lists: X.509 v2 CRLs (RFC 5280 section 5) signed by the clinic CA. `certs revoke`
 * adds a certificate to the CA's CRL and signs a new one; the broker hands it to OpenSSL (which then refuses a
 * revoked client certificate with CERT_REVOKED) and the clinic's gateway directory refuses a revoked signer.
 *
 * Every CRL carries a nextUpdate (RFC 5280 5.1.2.5: conforming CAs MUST include it). OpenSSL treats a CRL
 * whose nextUpdate has passed as an error (X509_V_ERR_CRL_HAS_EXPIRED) for every certificate it covers, so
 * the broker then refuses EVERY client: re-sign the CRL well before that (`rpm-gateway certs crl`).
 */
export const DEFAULT_CRL_DAYS = 30;
/** The CRL's file name beside ca.crt and ca.key. */
export const CRL_FILE = 'crl.pem';

const DAY = 86_400_000;
const OID_CRL_NUMBER = '2.5.29.20';
const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';

/** RFC 5280 5.3.1 reason codes a CA may state (certificateHold is not offered: revocation here is final). */
export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'privilegeWithdrawn',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

export interface RevokedEntry {
  /** Lower-case hex without leading zeros. */
  readonly serialNumber: string;
  readonly revocationDate: Date;
  readonly reason: RevocationReason;
}

/** A CRL that parsed and whose signature the CA's key verifies. */
export interface RevocationList {
  readonly pem: string;
  readonly issuer: string;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /** The cRLNumber extension (RFC 5280 5.2.3): grows with every CRL the CA signs. */
  readonly number: bigint;
  readonly entries: ReadonlyMap<string, RevokedEntry>;
}

/** Serial numbers compared as OpenSSL prints them, whatever the parser's padding or case. */
export function normalizeSerial(hex: string): string {
  const lower = hex.toLowerCase().replace(/[^0-9a-f]/g, '');
  return lower.replace(/^0+(?=.)/, '');
}

/**
 * Parses a PEM or DER CRL and checks it is the CA's: issuer name equal to the CA's subject and signature
 * (ECDSA P-256 / SHA-256, the only algorithm this PKI uses) verified with the CA's key. Synchronous, so that
 * a lookup can re-read a changed file on the spot. PKI_BAD_CRL otherwise.
 */
export function parseRevocationList(input: string | Uint8Array, caPem: string | Buffer): RevocationList {
  let crl: x509.X509Crl;
  try {
    crl = new x509.X509Crl(typeof input === 'string' ? input : new Uint8Array(input));
  } catch (error) {
    throw new PkiError('PKI_BAD_CRL', 'the CRL is not a readable X.509 CRL', { cause: error });
  }
  const ca = new NodeX509(caPem);
  const caName = new x509.X509Certificate(new Uint8Array(ca.raw)).subjectName;
  if (!sameBytes(crl.issuerName.toArrayBuffer(), caName.toArrayBuffer())) {
    throw new PkiError(
      'PKI_BAD_CRL',
      `the CRL was issued by ${crl.issuer}, not by the CA ${caName.toString()}`,
    );
  }
  const { tbs, algorithm, signature } = splitCertificateList(new Uint8Array(crl.rawData));
  if (algorithm !== OID_ECDSA_SHA256 || !verifySignature('sha256', tbs, ca.publicKey, signature)) {
    throw new PkiError('PKI_BAD_CRL', `the CRL's signature does not verify with the CA ${caName.toString()}`);
  }
  if (!crl.nextUpdate) throw new PkiError('PKI_BAD_CRL', 'the CRL has no nextUpdate (RFC 5280 5.1.2.5)');
  const numberExtension = crl.extensions.find((e) => e.type === OID_CRL_NUMBER);
  if (!numberExtension) throw new PkiError('PKI_BAD_CRL', 'the CRL has no CRL number (RFC 5280 5.2.3)');
  const entries = new Map<string, RevokedEntry>();
  for (const entry of crl.entries) {
    const serialNumber = normalizeSerial(entry.serialNumber);
    entries.set(serialNumber, {
      serialNumber,
      revocationDate: entry.revocationDate,
      reason: REVOCATION_REASONS.find((r) => x509.X509CrlReason[r] === entry.reason) ?? 'unspecified',
    });
  }
  return {
    // RFC 7468 section 6: the label is "X509 CRL" (OpenSSL reads no other); the library writes "CRL".
    pem: `${x509.PemConverter.encode(crl.rawData, 'X509 CRL')}\n`,
    issuer: crl.issuer,
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate,
    number: decodeInteger(new Uint8Array(numberExtension.value)),
    entries,
  };
}

/** The entry revoking this certificate, if the list holds one (same issuer is the caller's check). */
export function findRevocation(list: RevocationList, serialNumber: string): RevokedEntry | undefined {
  return list.entries.get(normalizeSerial(serialNumber));
}

export interface SignCrlOptions {
  readonly entries: readonly RevokedEntry[];
  readonly number: bigint;
  /** Days until nextUpdate (default 30). */
  readonly days?: number;
  readonly clock?: Clock;
}

/**
 * Signs a v2 CRL with the CA key: thisUpdate now, nextUpdate now + days, the entries with their reason code
 * (omitted for 'unspecified', RFC 5280 5.3.1), the authority key identifier (5.2.1: MUST) and the CRL
 * number (5.2.3: MUST).
 */
export async function signRevocationList(
  ca: CertificateAuthority,
  options: SignCrlOptions,
): Promise<RevocationList> {
  const days = options.days ?? DEFAULT_CRL_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > 366) {
    throw new PkiError('PKI_INVALID_ID', `CRL validity must be 1 to 366 whole days (got ${days})`);
  }
  const now = Math.floor((options.clock ?? systemClock).now() / 1000) * 1000;
  const caKeyId =
    ca.certificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ??
    Buffer.from(await ca.certificate.publicKey.getKeyIdentifier()).toString('hex');
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.certificate.subjectName,
    thisUpdate: new Date(now),
    nextUpdate: new Date(now + days * DAY),
    signingKey: ca.signingKey,
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.AuthorityKeyIdentifierExtension(caKeyId, false),
      new x509.Extension(OID_CRL_NUMBER, false, encodeInteger(options.number)),
    ],
    entries: options.entries.map((entry) => ({
      serialNumber: entry.serialNumber.length % 2 === 0 ? entry.serialNumber : `0${entry.serialNumber}`,
      revocationDate: entry.revocationDate,
      ...(entry.reason === 'unspecified' ? {} : { reason: x509.X509CrlReason[entry.reason] }),
    })),
  });
  return parseRevocationList(new Uint8Array(crl.rawData), ca.certificatePem);
}

/** DER INTEGER (X.690 8.3) for a non-negative bigint: minimal big-endian octets, 0x00 first if the top bit is set. */
function encodeInteger(value: bigint): Uint8Array {
  if (value < 0n) throw new RangeError('CRL numbers are non-negative');
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  let body = Buffer.from(hex, 'hex');
  if ((body[0] ?? 0) & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  if (body.length > 20) throw new RangeError('CRL numbers have at most 20 octets (RFC 5280 5.2.3)');
  return new Uint8Array([0x02, body.length, ...body]);
}

function decodeInteger(der: Uint8Array): bigint {
  if (der[0] !== 0x02 || der[1] === undefined || der[1] > 21 || der.length !== der[1] + 2) {
    throw new PkiError('PKI_BAD_CRL', 'the CRL number is not a DER INTEGER');
  }
  const body = der.subarray(2);
  if (body.length === 0 || (body[0] ?? 0) & 0x80)
    throw new PkiError('PKI_BAD_CRL', 'the CRL number is negative');
  return BigInt(`0x${Buffer.from(body).toString('hex')}`);
}

/**
 * CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING } (RFC 5280 5.1):
 * the signed bytes, the algorithm OID and the DER ECDSA signature. The parser above already accepted the DER.
 */
function splitCertificateList(der: Uint8Array): {
  tbs: Uint8Array;
  algorithm: string;
  signature: Uint8Array;
} {
  const outer = readTlv(der, 0);
  const tbs = readTlv(der, outer.contentStart);
  const algorithmSequence = readTlv(der, tbs.end);
  const oid = readTlv(der, algorithmSequence.contentStart);
  const bits = readTlv(der, algorithmSequence.end);
  if (outer.tag !== 0x30 || tbs.tag !== 0x30 || oid.tag !== 0x06 || bits.tag !== 0x03) {
    throw new PkiError('PKI_BAD_CRL', 'the CRL is not a CertificateList');
  }
  return {
    tbs: der.subarray(tbs.start, tbs.end),
    algorithm: decodeOid(der.subarray(oid.contentStart, oid.end)),
    // The first octet of a BIT STRING counts unused bits: 0 for a signature.
    signature: der.subarray(bits.contentStart + 1, bits.end),
  };
}

function readTlv(
  der: Uint8Array,
  start: number,
): { tag: number; start: number; contentStart: number; end: number } {
  const tag = der[start];
  let length = der[start + 1];
  if (tag === undefined || length === undefined) throw new PkiError('PKI_BAD_CRL', 'the CRL is truncated');
  let contentStart = start + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets < 1 || octets > 4) throw new PkiError('PKI_BAD_CRL', 'the CRL has a bad length');
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (der[contentStart + i] ?? 0);
    contentStart += octets;
  }
  const end = contentStart + length;
  if (end > der.length) throw new PkiError('PKI_BAD_CRL', 'the CRL is truncated');
  return { tag, start, contentStart, end };
}

function decodeOid(bytes: Uint8Array): string {
  const arcs: number[] = [];
  let value = 0;
  for (const byte of bytes) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      arcs.push(value);
      value = 0;
    }
  }
  const first = arcs.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs].join('.');
}

function sameBytes(a: ArrayBuffer, b: ArrayBuffer): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}
