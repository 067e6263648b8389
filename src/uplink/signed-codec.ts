import type { KeyObject } from 'node:crypto';
import type { Outbox } from '../store/outbox.js';
import { kidForCertificate } from '../wire/index.js';
import { type GatewayCodec, gatewayCodec } from './gateway-codec.js';
import type { UplinkCodec } from './uplink.js';

/**
 * The uplink's codec (gateway-codec.ts) bound to credentials that can change while the gateway runs:
 * `credentials()` is read at each use, so a renewed certificate signs from the next batch on, with its own kid.
 * The status carries the outbox backlog and the certificate's expiry.
 */
export interface SigningCredentials {
  readonly key: KeyObject;
  /** The gateway certificate, DER. */
  readonly certificateDer: Uint8Array;
  /** notAfter of the certificate (epoch ms), reported in the status. */
  readonly expiresAt?: number;
}

export function signedCodec(options: {
  gatewayId: string;
  version: string;
  outbox: Outbox;
  credentials: () => SigningCredentials;
  auditHead?: () => string | undefined;
}): UplinkCodec {
  let cached: { der: Uint8Array; codec: GatewayCodec } | undefined;
  const current = (): GatewayCodec => {
    const credentials = options.credentials();
    if (cached?.der !== credentials.certificateDer) {
      const codec = gatewayCodec({
        gatewayId: options.gatewayId,
        key: credentials.key,
        kid: kidForCertificate(credentials.certificateDer),
        version: options.version,
        statusInfo: () => {
          const auditHead = options.auditHead?.();
          return {
            backlog: options.outbox.stats().pending,
            ...(credentials.expiresAt === undefined ? {} : { certExpiresAt: credentials.expiresAt }),
            ...(auditHead === undefined ? {} : { auditHead }),
          };
        },
      });
      cached = { der: credentials.certificateDer, codec };
    }
    return cached.codec;
  };
  return {
    batch: (records, sequence, sentAt) => current().batch(records, sequence, sentAt),
    status: (state, sentAt) => current().status(state, sentAt),
  };
}
