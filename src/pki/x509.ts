// Order matters: tsyringe (under @peculiar/x509) needs the Reflect metadata API when it is evaluated.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * The one place that loads @peculiar/x509. It runs over Node's own WebCrypto (OpenSSL underneath), so no
 * JavaScript implementation of the primitives is involved. Import `x509` from here, never '@peculiar/x509'
 * directly: a module that did, and was evaluated first, would meet tsyringe without its Reflect polyfill.
 */
x509.cryptoProvider.set(webcrypto);

export { x509 };

// The project compiles without the DOM library, so WebCrypto's types come from node:crypto.
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export const subtle = webcrypto.subtle;

/** The only algorithm this PKI issues or accepts: ECDSA on P-256 with SHA-256 (RFC 5480, RFC 5758). */
export const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
