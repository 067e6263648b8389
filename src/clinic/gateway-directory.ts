import { createHash, type KeyObject, X509Certificate } from 'node:crypto';
import { GatewayError } from '../errors.js';
import { CrlFile, type CrlState, findRevocation, identityOf } from '../pki/index.js';

/**
 * The clinic's inventory of gateway certificates: kid (SHA-256 of the certificate DER, docs/wire-format.md)
 * -> gateway id and public key. A certificate is admitted only if the clinic CA issued it and it names a
 * gateway, so a signature verifies only with a key the clinic vouched for, and the receiver can check that the
 * signer is the gateway the topic and payload name.
 *
 * With the CA's CRL (`crlFile`, written by `rpm-gateway certs revoke`) a revoked certificate is refused when
 * added (CLINIC_REVOKED_CERT) and is no longer found by `lookup` once revoked, so its signatures stop
 * verifying (WIRE_UNKNOWN_KID at the receiver). The file is re-read when it changes, checked at each lookup
 * (one stat). A CRL past its nextUpdate still applies here: revocations never lapse, and the broker in front
 * (OpenSSL) already refuses every connection then.
 */
export interface DirectoryEntry {
  readonly gatewayId: string;
  readonly key: KeyObject;
  readonly notAfter: number;
  /** The certificate's serial number, lower-case hex; the CA is the directory's, so serial + issuer is unique. */
  readonly serialNumber: string;
}

export interface DirectoryOptions {
  /** The CA's CRL (PEM). Absent file: nothing revoked yet. */
  readonly crlFile?: string;
  /** Told when the CRL is loaded, changes or becomes unusable (the last good list then stays in force). */
  readonly onCrl?: (state: CrlState) => void;
}

export class GatewayDirectory {
  private readonly byKid = new Map<string, DirectoryEntry>();
  private readonly ca: X509Certificate;
  private readonly crl: CrlFile | undefined;

  constructor(caPem: string | Buffer, options: DirectoryOptions = {}) {
    this.ca = new X509Certificate(caPem);
    this.crl = options.crlFile ? new CrlFile(options.crlFile, caPem, options.onCrl) : undefined;
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
      serialNumber: identity.serialNumber,
    };
    if (this.isRevoked(entry)) {
      throw new GatewayError(
        'CLINIC_REVOKED_CERT',
        `certificate ${cert.serialNumber} of gateway ${identity.id} is on the clinic CA's revocation list`,
      );
    }
    this.byKid.set(createHash('sha256').update(cert.raw).digest('hex'), entry);
    return entry;
  }

  /** The entry for a kid, unless its certificate has been revoked since it was added. */
  lookup(kid: Uint8Array): DirectoryEntry | undefined {
    const entry = this.byKid.get(Buffer.from(kid).toString('hex'));
    return entry && !this.isRevoked(entry) ? entry : undefined;
  }

  private isRevoked(entry: DirectoryEntry): boolean {
    const list = this.crl?.list();
    return list !== undefined && findRevocation(list, entry.serialNumber) !== undefined;
  }
}
