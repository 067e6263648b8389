import { type KeyObject, X509Certificate } from 'node:crypto';
import { type Clock, systemClock } from '../util/clock.js';
import { PkiError } from './errors.js';
import { checkExpiry, type Expiry } from './expiry.js';
import { readPrivateKeyFile, readTextFile } from './files.js';
import { type CertificateIdentity, identityOf, toCertificate } from './identity.js';
import { certificateMatchesKey, parsePrivateKey } from './keys.js';
import { x509 } from './x509.js';

export interface TlsFiles {
  /** PEM CA certificate(s) that the peer's certificate must chain to. */
  readonly caFile: string;
  /** PEM certificate of this end (the gateway's, the receiver's, the broker's). */
  readonly certFile: string;
  /** PEM PKCS#8 private key of this end, mode 0600. */
  readonly keyFile: string;
}

/** Ready for `tls.connect`, `mqtt.connect` or `tls.createServer`: `{ ca, cert, key }` are PEM strings. */
export interface TlsCredentials {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly identity: CertificateIdentity;
  readonly expiry: Expiry;
}

export interface LoadOptions {
  readonly clock?: Clock;
  /** Days before notAfter from which `expiry.status` is 'expiring' (default 30). */
  readonly warnDays?: number;
}

/**
 * Reads the CA, certificate and key files afresh and checks them before they are used for a connection:
 *   - the key file is mode 0600 or tighter (PKI_KEY_PERMISSIONS), PEM PKCS#8 ECDSA P-256 (PKI_BAD_KEY);
 *   - the CA file holds at least one certificate and the certificate file parses (PKI_BAD_CERTIFICATE);
 *   - the certificate certifies that key (PKI_MISMATCH: e.g. a renewal that replaced one file but not yet
 *     the other; the caller retries at the next reconnect);
 *   - the certificate is within its validity at the clock's time (PKI_EXPIRED, PKI_NOT_YET_VALID). A
 *     certificate that is merely 'expiring' is returned, with that status, for the caller to warn about.
 * The chain to the CA is not checked here: the CA file says whom this end trusts (e.g. the broker's issuer),
 * which need not be the issuer of its own certificate. TLS verifies the chains on both ends.
 */
export async function loadTlsCredentials(
  files: TlsFiles,
  options: LoadOptions = {},
): Promise<TlsCredentials> {
  const key = await readPrivateKeyFile(files.keyFile);
  const cert = await readTextFile(files.certFile, 'certificate');
  const ca = await readTextFile(files.caFile, 'CA certificate');
  const keyObject = parsePrivateKey(key, `private key ${files.keyFile}`);
  const certificate = toCertificate(cert, `certificate ${files.certFile}`);
  const authorities = x509.PemConverter.decodeWithHeaders(ca).filter((block) => block.type === 'CERTIFICATE');
  if (authorities.length === 0) {
    throw new PkiError('PKI_BAD_CERTIFICATE', `CA file ${files.caFile} holds no PEM certificate`);
  }
  for (const block of authorities) toCertificate(block.rawData, `a certificate in ${files.caFile}`);
  if (!certificateMatchesKey(certificate, keyObject)) {
    throw new PkiError(
      'PKI_MISMATCH',
      `certificate ${files.certFile} does not belong to the private key ${files.keyFile}`,
    );
  }
  const now = (options.clock ?? systemClock).now();
  const expiry = checkExpiry(certificate, now, { warnDays: options.warnDays });
  if (expiry.status === 'expired') {
    throw new PkiError(
      'PKI_EXPIRED',
      `certificate ${files.certFile} expired on ${expiry.notAfter.toISOString()}; install a renewed one`,
    );
  }
  if (expiry.status === 'not-yet-valid') {
    throw new PkiError(
      'PKI_NOT_YET_VALID',
      `certificate ${files.certFile} is valid only from ${expiry.notBefore.toISOString()}; is this clock (${new Date(now).toISOString()}) set?`,
    );
  }
  return { ca, cert, key, identity: identityOf(certificate), expiry };
}

export type CertificateEvent =
  /** First successful load. */
  | { readonly type: 'loaded'; readonly identity: CertificateIdentity; readonly expiry: Expiry }
  /** A different certificate than last time was loaded: a renewal was picked up (audit it as cert.changed). */
  | {
      readonly type: 'changed';
      readonly identity: CertificateIdentity;
      readonly previous: CertificateIdentity;
      readonly expiry: Expiry;
    }
  /** The certificate has less than `warnDays` left; told once per certificate. */
  | { readonly type: 'expiring'; readonly identity: CertificateIdentity; readonly expiry: Expiry };

/**
 * What the uplink calls before each (re)connect: `await watcher.load()` re-reads the files, so a renewed
 * certificate installed on disk is used at the next reconnect without restarting the hub. It reports a
 * changed certificate and an approaching expiry through `onEvent`; load errors (PKI_*) are thrown for the
 * caller's backoff to retry. Holds no timers: the uplink's reconnect schedule is the only clock that matters.
 */
export class CertificateWatcher {
  private last: CertificateIdentity | undefined;
  private warned: string | undefined;

  constructor(
    readonly files: TlsFiles,
    private readonly options: LoadOptions & { onEvent?: (event: CertificateEvent) => void } = {},
  ) {}

  /** The identity of the certificate loaded last, if any. */
  get current(): CertificateIdentity | undefined {
    return this.last;
  }

  async load(): Promise<TlsCredentials> {
    const credentials = await loadTlsCredentials(this.files, this.options);
    const { identity, expiry } = credentials;
    const previous = this.last;
    this.last = identity;
    if (previous === undefined) this.emit({ type: 'loaded', identity, expiry });
    else if (previous.sha256 !== identity.sha256) this.emit({ type: 'changed', identity, previous, expiry });
    if (expiry.status === 'expiring' && this.warned !== identity.sha256) {
      this.warned = identity.sha256;
      this.emit({ type: 'expiring', identity, expiry });
    }
    return credentials;
  }

  private emit(event: CertificateEvent): void {
    this.options.onEvent?.(event);
  }
}

/**
 * The gateway's signing material for the wire format (COSE_Sign1 ES256, docs/wire-format.md): the private key of
 * its TLS client certificate and that certificate, so the one pair of files that authenticates the connection
 * also signs what is sent over it. The shape of src/uplink/signed-codec.ts's SigningCredentials.
 */
export interface SigningMaterial {
  readonly key: KeyObject;
  /** The certificate, DER: its SHA-256 is the kid the clinic looks the key up by. */
  readonly certificateDer: Uint8Array;
  /** notAfter of the certificate (epoch ms), reported in the gateway status. */
  readonly expiresAt: number;
}

/** Signing material from the PEM text of the certificate and its key (checked as loadTlsCredentials does). */
export function signingCredentials(certificatePem: string, keyPem: string): SigningMaterial {
  const key = parsePrivateKey(keyPem, 'private key');
  const certificate = new X509Certificate(certificatePem);
  return {
    key,
    certificateDer: new Uint8Array(certificate.raw),
    expiresAt: Date.parse(certificate.validTo),
  };
}

/**
 * The gateway's one source of credentials: the TLS client certificate and key that authenticate its broker
 * connection are also the COSE signing key and certificate of what it sends (docs/wire-format.md), so both come
 * from the same files, read by the same load. `load()` (the uplink calls it before every connection attempt)
 * re-reads and checks the files (CertificateWatcher: renewal events, expiry warning) and, from the same text,
 * replaces the signing material `signing()` returns: a renewed certificate and key installed on disk are used
 * for TLS and for signatures from the next reconnect on, without a restart, and never one without the other.
 */
export class GatewayCredentials {
  private readonly watcher: CertificateWatcher;
  private material: SigningMaterial | undefined;
  private loaded: TlsCredentials | undefined;

  constructor(files: TlsFiles, options: LoadOptions & { onEvent?: (event: CertificateEvent) => void } = {}) {
    this.watcher = new CertificateWatcher(files, options);
  }

  get files(): TlsFiles {
    return this.watcher.files;
  }

  /** Reads the files afresh; the TLS material for a connection (PKI_* errors for the caller's backoff). */
  async load(): Promise<TlsCredentials> {
    const credentials = await this.watcher.load();
    this.material = signingCredentials(credentials.cert, credentials.key);
    this.loaded = credentials;
    return credentials;
  }

  /** The signing material of the last successful load; PKI_BAD_KEY before any. */
  signing(): SigningMaterial {
    if (this.material === undefined) {
      throw new PkiError('PKI_BAD_KEY', 'the gateway credentials have not been loaded yet');
    }
    return this.material;
  }

  /**
   * What the last successful load found: identity, expiry as of that load, and the certificate (public) so a
   * status can judge its validity again at any later time (checkExpiry), or undefined.
   */
  get current(): Pick<TlsCredentials, 'identity' | 'expiry' | 'cert'> | undefined {
    return this.loaded
      ? { identity: this.loaded.identity, expiry: this.loaded.expiry, cert: this.loaded.cert }
      : undefined;
  }
}
