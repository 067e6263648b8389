import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { PkiError } from './errors.js';
import { type CryptoKey, type CryptoKeyPair, ECDSA_P256, subtle, x509 } from './x509.js';

/** A fresh ECDSA P-256 key pair. The private key is extractable only so it can be written to its 0600 file. */
export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
}

/** PEM "PRIVATE KEY" (PKCS#8, RFC 5208/5958): what OpenSSL, Node's tls and Mosquitto all read. */
export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/**
 * Parses a PEM PKCS#8 private key and checks that it is ECDSA P-256; PKI_BAD_KEY otherwise. `what` names the
 * file in messages (never the key).
 */
export function parsePrivateKey(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (error) {
    throw new PkiError('PKI_BAD_KEY', `${what} is not a readable PEM private key`, { cause: error });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new PkiError('PKI_BAD_KEY', `${what} is not an ECDSA P-256 key (the only kind this gateway uses)`);
  }
  return key;
}

/** Imports a PEM private key for signing certificates (the CA key). */
export async function importSigningKey(pem: string, what: string): Promise<CryptoKey> {
  const der = parsePrivateKey(pem, what).export({ type: 'pkcs8', format: 'der' });
  return subtle.importKey('pkcs8', der, ECDSA_P256, false, ['sign']);
}

/** True when `certificate` certifies the public half of `privateKey` (compared as DER SubjectPublicKeyInfo). */
export function certificateMatchesKey(certificate: x509.X509Certificate, privateKey: KeyObject): boolean {
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  return Buffer.from(certificate.publicKey.rawData).equals(spki);
}

/** True for a SubjectPublicKeyInfo of an ECDSA P-256 key. */
export function isP256(publicKey: x509.PublicKey): boolean {
  const algorithm = publicKey.algorithm as { name?: string; namedCurve?: string };
  return algorithm.name === 'ECDSA' && algorithm.namedCurve === 'P-256';
}

/**
 * SHA-256 of the DER SubjectPublicKeyInfo, lower-case hex: printed by `certs csr` on the hub and by
 * `certs sign` at the clinic so that an operator can compare the two over another channel (phone, provisioning
 * sheet) and know the request was not swapped in transit.
 */
export function publicKeySha256(publicKey: x509.PublicKey): string {
  return createHash('sha256').update(new Uint8Array(publicKey.rawData)).digest('hex');
}
