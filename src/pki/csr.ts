import type { ValidityOptions } from './ca.js';
import {
  type CertificateAuthority,
  clinicProfile,
  gatewayProfile,
  type IssuedCertificate,
  issueLeaf,
} from './ca.js';
import { PkiError } from './errors.js';
import { assertValidId, identityUri, parseIdentityUri, URN_PREFIX } from './identity.js';
import { generateKeyPair, isP256, privateKeyToPem, publicKeySha256 } from './keys.js';
import { ECDSA_P256, x509 } from './x509.js';

/** A PKCS#10 request (RFC 2986) and the private key that stays on the hub. */
export interface CertificateRequest {
  readonly csrPem: string;
  readonly privateKeyPem: string;
  /** SHA-256 of the public key (SubjectPublicKeyInfo), to compare out of band with what the CA signs. */
  readonly publicKeySha256: string;
}

/**
 * Makes a new key on the hub and a PKCS#10 CSR for it (RFC 2986), naming the gateway id in the subject
 * (OU=gateway, CN=<id>) and in a requested SAN URI. Only the CSR leaves the hub; the CA takes nothing but
 * the identity and the public key from it (see signCsr).
 */
export async function createGatewayCsr(gatewayId: string): Promise<CertificateRequest> {
  return createCsr('gateway', gatewayId);
}

/** The same for a clinic receiver (its key made on the receiver's host). */
export async function createCsr(role: 'gateway' | 'clinic', id: string): Promise<CertificateRequest> {
  assertValidId(id, role === 'gateway' ? 'gateway id' : 'clinic name');
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ OU: [role] }, { CN: [id] }],
    keys,
    signingAlgorithm: ECDSA_P256,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identityUri(role, id) }])],
  });
  return {
    csrPem: csr.toString('pem'),
    privateKeyPem: await privateKeyToPem(keys.privateKey),
    publicKeySha256: publicKeySha256(csr.publicKey),
  };
}

export interface SignCsrOptions extends ValidityOptions {
  readonly role: 'gateway' | 'clinic';
  /** Clinic certificates only: O=; default the CA's own organization. Never taken from the CSR. */
  readonly organization?: string;
}

/** CSRs are small; refusing big ones before parsing bounds what untrusted input can make the parser do. */
const MAX_CSR_BYTES = 16 * 1024;

/**
 * Issues a certificate for a CSR. The CSR must be PEM, signed by its own key (proof of possession, RFC 2986
 * section 3), with an ECDSA P-256 key and an ECDSA-with-SHA-256 signature. From it the CA takes only:
 *   - the public key, and
 *   - the identity: the id in its `urn:rpm-gateway:<role>:<id>` SAN URI, or else its CN; when both are
 *     present they must agree and name the requested role.
 * Everything else (requested extensions such as CA:true, serverAuth, other SANs, other subject fields) is
 * ignored: the certificate is built from the role's profile and the validated id, exactly as
 * issueGatewayCertificate/issueClinicCertificate would build it.
 */
export async function signCsr(
  ca: CertificateAuthority,
  csrPem: string,
  options: SignCsrOptions,
): Promise<IssuedCertificate> {
  const csr = await verifiedCsr(csrPem);
  const id = requestedId(csr, options.role);
  const profile =
    options.role === 'gateway'
      ? gatewayProfile(id)
      : clinicProfile(
          id,
          options.organization ?? ca.certificate.subjectName.getField('O')[0] ?? 'rpm-gateway',
        );
  return issueLeaf(ca, csr.publicKey, profile, options);
}

/** Parses and verifies a CSR; PKI_BAD_CSR for anything that is not a well-signed P-256 request. */
export async function verifiedCsr(csrPem: string): Promise<x509.Pkcs10CertificateRequest> {
  if (csrPem.length > MAX_CSR_BYTES || !csrPem.includes('-----BEGIN CERTIFICATE REQUEST-----')) {
    throw new PkiError(
      'PKI_BAD_CSR',
      'not a PEM certificate request ("-----BEGIN CERTIFICATE REQUEST-----")',
    );
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (error) {
    throw new PkiError('PKI_BAD_CSR', 'the certificate request cannot be parsed', { cause: error });
  }
  if (!isP256(csr.publicKey)) {
    throw new PkiError('PKI_BAD_CSR', 'the certificate request is not for an ECDSA P-256 key');
  }
  // Typed against the DOM's Algorithm, which this project does not compile with; the fields are plain strings.
  const signature = csr.signatureAlgorithm as { name?: string; hash?: { name?: string } };
  if (signature.name !== 'ECDSA' || signature.hash?.name !== 'SHA-256') {
    throw new PkiError('PKI_BAD_CSR', 'the certificate request is not signed with ECDSA and SHA-256');
  }
  let valid = false;
  try {
    valid = await csr.verify();
  } catch (error) {
    throw new PkiError('PKI_BAD_CSR', 'the certificate request signature cannot be checked', {
      cause: error,
    });
  }
  if (!valid) {
    throw new PkiError(
      'PKI_BAD_CSR',
      'the certificate request signature does not verify (altered in transit?)',
    );
  }
  return csr;
}

/** The one identity a CSR asks for, validated; PKI_BAD_CSR when it names none, two, or another role's. */
function requestedId(csr: x509.Pkcs10CertificateRequest, role: 'gateway' | 'clinic'): string {
  const uris: string[] = [];
  for (const extension of csr.extensions) {
    if (extension instanceof x509.SubjectAlternativeNameExtension) {
      for (const name of extension.names.items) {
        if (name.type === 'url' && name.value.startsWith(URN_PREFIX)) uris.push(name.value);
      }
    }
  }
  const commonNames = csr.subjectName.getField('CN');
  if (uris.length > 1 || commonNames.length > 1) {
    throw new PkiError('PKI_BAD_CSR', 'the certificate request names more than one identity');
  }
  const [uri] = uris;
  const [commonName] = commonNames;
  if (uri !== undefined) {
    const parsed = parseIdentityUri(uri);
    if (!parsed)
      throw new PkiError('PKI_INVALID_ID', `the certificate request names an invalid identity ${uri}`);
    if (parsed.role !== role) {
      throw new PkiError('PKI_BAD_CSR', `the certificate request is for a ${parsed.role}, not a ${role}`);
    }
    if (commonName !== undefined && commonName !== parsed.id) {
      throw new PkiError(
        'PKI_BAD_CSR',
        `the request's CN ${JSON.stringify(commonName)} disagrees with its ${uri}`,
      );
    }
    return parsed.id;
  }
  if (commonName === undefined)
    throw new PkiError('PKI_BAD_CSR', 'the certificate request names no identity');
  return assertValidId(commonName, role === 'gateway' ? 'gateway id' : 'clinic name');
}
