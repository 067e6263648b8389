import { describe, expect, it } from 'vitest';
import type { OutboxRecord } from '../../src/store/outbox.js';
import { decodeBatch } from '../../src/wire/batch.js';
import { gatewayCodec } from '../../src/wire/codec.js';
import { verifyEnvelope } from '../../src/wire/cose.js';
import { decodeStatus } from '../../src/wire/status.js';
import { topicFor } from '../../src/wire/topics.js';
import { spo2Measurement } from '../support/measurements.js';
import { newSigner, resolverFor } from './support.js';

describe('gatewayCodec (the uplink codec)', () => {
  const signer = newSigner('gateway');
  const codec = gatewayCodec({
    gatewayId: 'gw-test-01',
    key: signer.privateKey,
    kid: signer.kid,
    version: '0.1.0',
    statusInfo: () => ({ backlog: { alert: 1, live: 2, backlog: 3 }, auditHead: '0'.repeat(64) }),
  });

  it('signs a batch of leased outbox records', () => {
    const records: OutboxRecord[] = [1, 2].map((n) => ({
      seq: n,
      id: spo2Measurement(n).id,
      lane: 'live',
      deviceId: 'dev-ox-1',
      appendedAt: 0,
      size: 300,
      payload: { type: 'measurement', measurement: spo2Measurement(n) },
    }));
    const { payload } = verifyEnvelope(codec.batch(records, 9, 1_000), resolverFor(signer));
    const batch = decodeBatch(payload, { gatewayId: 'gw-test-01' });
    expect(batch.seq).toBe(9);
    expect(batch.sentAt).toBe(1_000);
    expect(batch.items).toEqual(records.map((r) => r.payload));
    expect(topicFor('gw-test-01', 'obs')).toBe('rpm/v1/gw-test-01/obs');
  });

  it('signs a status; the Last Will carries the connect time', () => {
    const connectedAt = Date.UTC(2026, 10, 28, 12);
    const { payload } = verifyEnvelope(codec.status('offline', connectedAt), resolverFor(signer));
    expect(decodeStatus(payload)).toEqual({
      gatewayId: 'gw-test-01',
      state: 'offline',
      version: '0.1.0',
      sentAt: connectedAt,
      backlog: { alert: 1, live: 2, backlog: 3 },
      auditHead: '0'.repeat(64),
    });
  });
});
