import { describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import type { OutboxRecord } from '../../src/store/outbox.js';
import { JSON_FORMAT, jsonRecords } from '../../src/store/record-codec.js';
import { gatewayCodec } from '../../src/uplink/gateway-codec.js';
import { WIRE_ITEM_FORMAT, wireItemRecords } from '../../src/uplink/record-codec.js';
import { decodeBatch, encodeBatch, encodeBatchOfItems } from '../../src/wire/batch.js';
import { verifyEnvelope } from '../../src/wire/cose.js';
import { decodeStatus } from '../../src/wire/status.js';
import { topicFor } from '../../src/wire/topics.js';
import { newSigner, resolverFor } from '../wire/support.js';

describe('gatewayCodec (the uplink codec)', () => {
  const signer = newSigner('gateway');
  const codec = gatewayCodec({
    gatewayId: 'gw-test-01',
    key: signer.privateKey,
    kid: signer.kid,
    version: '0.1.0',
    statusInfo: () => ({ backlog: { alert: 1, live: 2, backlog: 3 }, auditHead: '0'.repeat(64) }),
  });

  const record = (n: number, format: 'json' | 'wire'): OutboxRecord => {
    const payload = { type: 'measurement', measurement: spo2Measurement(n) } as const;
    const body = format === 'wire' ? wireItemRecords.encode(payload) : jsonRecords.encode(payload);
    return {
      seq: n,
      id: payload.measurement.id,
      lane: 'live',
      deviceId: 'dev-ox-1',
      appendedAt: 0,
      size: body.length,
      format: format === 'wire' ? WIRE_ITEM_FORMAT : JSON_FORMAT,
      body,
      payload,
    };
  };

  it('signs a batch of leased outbox records, whichever format they were stored in', () => {
    const records = [record(1, 'wire'), record(2, 'json'), record(3, 'wire')];
    const { payload } = verifyEnvelope(codec.batch(records, 9, 1_000), resolverFor(signer));
    const batch = decodeBatch(payload, { gatewayId: 'gw-test-01' });
    expect(batch.seq).toBe(9);
    expect(batch.sentAt).toBe(1_000);
    expect(batch.items).toEqual(records.map((r) => r.payload));
    expect(topicFor('gw-test-01', 'obs')).toBe('rpm/v1/gw-test-01/obs');
  });

  it('splices stored wire items as they are: the same bytes as encoding the batch from scratch', () => {
    const records = [1, 2, 3].map((n) => record(n, 'wire'));
    const spliced = encodeBatchOfItems(
      { gatewayId: 'gw-test-01', seq: 4, sentAt: 5 },
      records.map((r) => r.body),
    );
    const fresh = encodeBatch({
      gatewayId: 'gw-test-01',
      seq: 4,
      sentAt: 5,
      items: records.map((r) => r.payload),
    });
    expect(Buffer.from(spliced).equals(Buffer.from(fresh))).toBe(true);
    // The stored body is used, not re-encoded from the decoded payload.
    const stale = {
      ...records[0],
      body: wireItemRecords.encode({ type: 'measurement', measurement: spo2Measurement(7) }),
    } as OutboxRecord;
    const { payload } = verifyEnvelope(codec.batch([stale], 1, 1), resolverFor(signer));
    const item = decodeBatch(payload).items[0] as { measurement: { id: string } };
    expect(item.measurement.id).toBe(spo2Measurement(7).id);
  });

  it('refuses a JSON-stored record that is out of the wire contract (the uplink quarantines it)', () => {
    const bad = record(1, 'json');
    const broken = {
      ...bad,
      payload: { type: 'measurement', measurement: spo2Measurement(1, { id: 'nope' }) },
    } as OutboxRecord;
    expect(() => codec.batch([broken], 1, 1)).toThrow(/batch\.items\[0\]\.id/);
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
