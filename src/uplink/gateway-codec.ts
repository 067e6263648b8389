import type { KeyObject } from 'node:crypto';
import type { OutboxRecord } from '../store/outbox.js';
import { encodeBatchOfItems } from '../wire/batch.js';
import { signEnvelope } from '../wire/cose.js';
import { encodeStatus, type GatewayStatus } from '../wire/status.js';
import { batchItemOf } from './record-codec.js';

/**
 * The gateway's signing codec: outbox records and status in, signed envelopes out. Its shape matches the
 * uplink's `UplinkCodec`, so the uplink publishes bytes without knowing the format.
 */
export interface GatewayCodecOptions {
  readonly gatewayId: string;
  /** The private key of the gateway's client certificate (P-256). */
  readonly key: KeyObject;
  /** SHA-256 of that certificate's DER (kidForCertificate). */
  readonly kid: Uint8Array;
  readonly version: string;
  /** The current backlog, certificate expiry and audit head, read when a status is built. */
  readonly statusInfo: () => Pick<GatewayStatus, 'backlog' | 'certExpiresAt' | 'auditHead'>;
}

export interface GatewayCodec {
  batch(records: readonly OutboxRecord[], sequence: number, sentAt: number): Uint8Array;
  /** For the Last Will call it at connect time with state "offline": its `sent` is the connect time. */
  status(state: 'online' | 'offline', sentAt: number): Uint8Array;
}

export function gatewayCodec(options: GatewayCodecOptions): GatewayCodec {
  return {
    batch: (records, sequence, sentAt) =>
      signEnvelope(
        encodeBatchOfItems(
          { gatewayId: options.gatewayId, seq: sequence, sentAt },
          records.map((record, i) => batchItemOf(record, `batch.items[${i}]`)),
        ),
        options.key,
        options.kid,
      ),
    status: (state, sentAt) =>
      signEnvelope(
        encodeStatus({
          gatewayId: options.gatewayId,
          state,
          version: options.version,
          sentAt,
          ...options.statusInfo(),
        }),
        options.key,
        options.kid,
      ),
  };
}
