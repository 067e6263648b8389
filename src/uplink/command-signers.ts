import { createHash, type KeyObject, X509Certificate } from 'node:crypto';
import { identityOf, PkiError } from '../pki/index.js';
import { CLOCK_SKEW_MS, type KeyResolver, WireError } from '../wire/index.js';

/**
 * The clinic certificates whose keys may sign commands for this gateway (docs/wire-format.md sections 4 and
 * 9.2). The gateway is configured with the clinic CA and one or more command-signing certificates (several, so
 * they can be rotated with an overlap). A command's kid selects a certificate; its key is used only when, at
 * the moment the command arrives:
 *
 * 1. the clinic CA issued it: its issuer is the CA's subject and the CA's key verifies its signature
 *    [WIRE_SIGNER_UNTRUSTED]. The anchor is the clinic CA given here, not whatever CA the TLS connection
 *    trusts: a gateway may one day reach its broker through another CA, and that must not widen who may
 *    command it. As in RFC 5280 section 6.1, the trust anchor's own validity is not checked;
 * 2. it is a clinic certificate: SAN URI `urn:rpm-gateway:clinic:<name>` with clientAuth (src/pki/identity.ts)
 *    [WIRE_SIGNER_NOT_CLINIC]. A gateway certificate from the same CA never signs a command, even if it was
 *    listed here by mistake;
 * 3. it is valid now, with the 60 s of clock difference the format allows between clinic and gateway
 *    (section 9.4): notBefore - 60 s <= now <= notAfter + 60 s, bounds included as in RFC 5280 section
 *    4.1.2.5 [WIRE_SIGNER_EXPIRED].
 *
 * The checks run at every use, not once at load: a certificate expires while the gateway runs, and a wrong
 * certificate in the configuration must still not be able to sign. A kid that names none of the configured
 * certificates is WIRE_UNKNOWN_KID. All of these are refusals of step 2 of section 9.2 (the command is not
 * authenticated), so the gateway records them and publishes no reply.
 */
export class CommandSigners {
  private readonly ca: X509Certificate;
  private readonly byKid = new Map<string, X509Certificate>();

  /**
   * `clinicCa` and `certificates` are PEM text or DER bytes. Throws PKI_BAD_CERTIFICATE for one that cannot be
   * read; whether a readable one may sign is decided per command (see above).
   */
  constructor(options: {
    readonly clinicCa: string | Uint8Array;
    readonly certificates: readonly (string | Uint8Array)[];
  }) {
    this.ca = parse(options.clinicCa, 'the clinic CA certificate');
    for (const input of options.certificates) {
      const certificate = parse(input, 'a command-signing certificate');
      this.byKid.set(createHash('sha256').update(certificate.raw).digest('hex'), certificate);
    }
  }

  /** The signer's public key for `kid` at `now` (epoch ms); undefined for an unknown kid; throws a refusal. */
  keyFor(kid: Uint8Array, now: number): KeyObject | undefined {
    const certificate = this.byKid.get(Buffer.from(kid).toString('hex'));
    if (certificate === undefined) return undefined;
    if (!certificate.checkIssued(this.ca) || !certificate.verify(this.ca.publicKey)) {
      throw new WireError(
        'WIRE_SIGNER_UNTRUSTED',
        `the command signer (certificate ${certificate.serialNumber}) was not issued by the clinic CA`,
      );
    }
    if (identityOf(certificate).role !== 'clinic') {
      throw new WireError(
        'WIRE_SIGNER_NOT_CLINIC',
        `the command signer (certificate ${certificate.serialNumber}) is not a clinic certificate`,
      );
    }
    const notBefore = Date.parse(certificate.validFrom);
    const notAfter = Date.parse(certificate.validTo);
    if (now < notBefore - CLOCK_SKEW_MS || now > notAfter + CLOCK_SKEW_MS) {
      throw new WireError(
        'WIRE_SIGNER_EXPIRED',
        `the command signer (certificate ${certificate.serialNumber}) is ${now < notBefore ? 'not valid yet' : 'expired'}`,
      );
    }
    return certificate.publicKey;
  }

  /** A resolver for verifyCommand that applies these checks at `now`. */
  resolverAt(now: number): KeyResolver {
    return (kid) => this.keyFor(kid, now);
  }
}

function parse(input: string | Uint8Array, what: string): X509Certificate {
  try {
    return new X509Certificate(typeof input === 'string' ? input : Buffer.from(input));
  } catch (error) {
    throw new PkiError('PKI_BAD_CERTIFICATE', `${what} is not a readable X.509 certificate`, {
      cause: error,
    });
  }
}
