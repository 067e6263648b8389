import { checkServerIdentity as checkHostName, type PeerCertificate } from 'node:tls';
import { PkiError } from './errors.js';
import { EKU_CLIENT_AUTH, EKU_SERVER_AUTH, extendedKeyUsages, toCertificate } from './identity.js';

/**
 * The only TLS 1.2 cipher suites offered or accepted, by the broker and by every client here: ECDHE key
 * exchange (forward secrecy) with an AEAD cipher (AES-GCM or ChaCha20-Poly1305), as RFC 9325 section 4.2
 * recommends and BSI TR-02102-2 / NIST SP 800-52r2 allow. Left out on purpose: CBC suites (SHA-1 and SHA-2
 * MACs, mac-then-encrypt: Lucky 13 and its kin), AES-CCM_8 (a 64-bit tag), ARIA and Camellia (no
 * reason to carry them), non-ECDHE key exchange. The PKI issues ECDSA keys only, so the broker's certificate
 * selects the ECDSA suites; the RSA ones stay for hubs that dial a third-party broker with an RSA certificate
 * (AWS IoT's default endpoint certificates are RSA). TLS 1.3 suites are all AEAD and keep OpenSSL's default
 * list: a cipher string without TLS_ names leaves them alone (Node, tls.createSecureContext "ciphers").
 */
export const TLS12_AEAD_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** TLS 1.2 is the floor everywhere (RFC 8996 deprecates 1.0 and 1.1). */
export const TLS_MIN_VERSION = 'TLSv1.2' as const;

/**
 * Purpose checks on top of what TLS already verified. OpenSSL, under Node's tls, applies the "SSL server"
 * purpose when a client verifies a server and "SSL client" when a server verifies a client, so a certificate
 * whose EKU lacks serverAuth (resp. clientAuth) already fails the handshake (test/pki/tls.test.ts proves it
 * for this Node). These helpers make the rule explicit in our own code as well, so it does not rest on a
 * library default, and give a typed error that names the certificate.
 */

/**
 * For `tls.connect({ checkServerIdentity })` / `mqtt.connect({ checkServerIdentity })`: the host name check
 * Node does by default (RFC 6125 against the SAN), then an EKU check: the server's certificate must carry an
 * extendedKeyUsage with serverAuth (RFC 5280 4.2.1.12). A certificate without any EKU is refused too: every
 * certificate this PKI issues has one, and a missing EKU would let any leaf of the CA act as the broker.
 */
export function checkServerCertificate(host: string, certificate: PeerCertificate): Error | undefined {
  const hostError = checkHostName(host, certificate);
  if (hostError) return hostError;
  return purposeError(certificate, EKU_SERVER_AUTH, 'serverAuth');
}

/** For the broker: the client certificate must allow clientAuth. Returns the error, or undefined when fine. */
export function checkClientCertificate(
  certificate: PeerCertificate | { raw: Uint8Array },
): Error | undefined {
  return purposeError(certificate, EKU_CLIENT_AUTH, 'clientAuth');
}

function purposeError(certificate: { raw: Uint8Array }, eku: string, name: string): PkiError | undefined {
  let usages: string[];
  let subject = 'the peer certificate';
  try {
    const parsed = toCertificate(certificate, 'the peer certificate');
    usages = extendedKeyUsages(parsed);
    subject = parsed.subject;
  } catch (error) {
    return error instanceof PkiError ? error : new PkiError('PKI_BAD_CERTIFICATE', String(error));
  }
  if (usages.includes(eku)) return undefined;
  return new PkiError('PKI_MISMATCH', `${subject} is not a certificate for ${name} (RFC 5280 4.2.1.12)`);
}

/**
 * What one end of a mutual-TLS connection presents and trusts, as `tls.connect` and mqtt.js take it: the CA
 * certificate(s) the peer must chain to, this end's certificate, and its private key (PEM). loadTlsCredentials
 * (credentials.ts) gives it checked, from files.
 */
export interface TlsMaterial {
  readonly ca: string | Buffer;
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

/**
 * The mutual-TLS half of every MQTT connection the project makes to a broker (the hub's uplink, the clinic's
 * intake and command connections), as mqtt.js hands it to `tls.connect`: TLS 1.2 at least, ECDHE + AEAD suites
 * only in TLS 1.2, the broker's name and serverAuth usage checked (so a client certificate cannot pose as the
 * broker), and never an unverified peer. Callers add the MQTT half (client id, protocol version, session).
 */
export function mqttsConnection(
  broker: { readonly host: string; readonly port: number; readonly servername?: string },
  material: TlsMaterial,
) {
  return {
    protocol: 'mqtts' as const,
    host: broker.host,
    port: broker.port,
    servername: broker.servername ?? broker.host,
    ca: material.ca,
    cert: material.cert,
    key: material.key,
    rejectUnauthorized: true,
    checkServerIdentity: checkServerCertificate,
    minVersion: TLS_MIN_VERSION,
    ciphers: TLS12_AEAD_CIPHERS,
  };
}
