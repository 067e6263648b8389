import { createHash, type KeyObject, X509Certificate } from 'node:crypto';
import { GatewayError } from '../errors.js';
import { identityOf } from '../pki/index.js';

/**
 * The clinic's inventory of gateway certificates: kid (SHA-256 of the certificate DER, docs/wire-format.md)
 * -> gateway id and public key. A certificate is admitted only if the clinic CA issued it and it names a
 * gateway, so a signature verifies only with a key the clinic vouched for, and the receiver can check that the
 * signer is the gateway the topic and payload name.
 */
export interface DirectoryEntry {
  readonly gatewayId: string;
  readonly key: KeyObject;
  readonly notAfter: number;
}

export class GatewayDirectory {
  private readonly byKid = new Map<string, DirectoryEntry>();
  private readonly ca: X509Certificate;

  constructor(caPem: string | Buffer) {
    this.ca = new X509Certificate(caPem);
  }

  /** Admits a gateway certificate (PEM or DER); throws when the CA did not issue it or it is not a gateway's. */
  add(certificate: string | Buffer | Uint8Array): DirectoryEntry {
    const cert = new X509Certificate(
      typeof certificate === 'string' ? certificate : Buffer.from(certificate),
    );
    if (!cert.checkIssued(this.ca) || !cert.verify(this.ca.publicKey)) {
      throw new GatewayError(
        'CLINIC_UNTRUSTED_CERT',
        `certificate ${cert.serialNumber} was not issued by the clinic CA`,
      );
    }
    const identity = identityOf(cert.raw);
    if (identity.role !== 'gateway') {
      throw new GatewayError(
        'CLINIC_UNTRUSTED_CERT',
        `certificate ${cert.serialNumber} is not a gateway certificate`,
      );
    }
    const entry: DirectoryEntry = {
      gatewayId: identity.id,
      key: cert.publicKey,
      notAfter: Date.parse(cert.validTo),
    };
    this.byKid.set(createHash('sha256').update(cert.raw).digest('hex'), entry);
    return entry;
  }

  lookup(kid: Uint8Array): DirectoryEntry | undefined {
    return this.byKid.get(Buffer.from(kid).toString('hex'));
  }
}
