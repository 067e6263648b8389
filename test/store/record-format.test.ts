import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import { openEncryptedDatabase } from '../../src/store/encrypted-database.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { Outbox } from '../../src/store/outbox.js';
import { JSON_FORMAT, jsonRecords } from '../../src/store/record-codec.js';
import { WIRE_ITEM_FORMAT, wireItemRecords } from '../../src/uplink/record-codec.js';
import { decodeBatchItem, encodeBatchItem } from '../../src/wire/batch.js';

const KEY = 'c'.repeat(64);
let dir: string;
let path: string;

const keys = () => new EnvKeyProvider('K', { K: KEY });

async function open(recordCodec = wireItemRecords): Promise<Outbox> {
  const outbox = new Outbox({ path, keys: keys(), recordCodec });
  await outbox.open();
  return outbox;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-format-'));
  path = join(dir, 'outbox.db');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('outbox record formats', () => {
  it('stores each reading as its wire batch item, leased as the same bytes', async () => {
    const outbox = await open();
    await outbox.append(spo2Measurement(1));
    const [record] = outbox.lease({ maxRows: 10 }).records;
    expect(record?.format).toBe(WIRE_ITEM_FORMAT);
    const item = { type: 'measurement', measurement: spo2Measurement(1) } as const;
    expect(Buffer.from(record?.body ?? []).equals(Buffer.from(encodeBatchItem(item)))).toBe(true);
    expect(record?.size).toBe(record?.body.length);
    expect(record?.payload).toEqual(item);
    expect(decodeBatchItem(record?.body ?? new Uint8Array())).toEqual(item);
    outbox.close();
  });

  it('keeps a reading the wire format refuses as JSON instead of losing it', async () => {
    const outbox = await open();
    const bad = spo2Measurement(2, {
      observations: [{ code: 'MDC_NOT_IN_TABLE' as 'MDC_TEMP_BODY', value: 1, unit: 'Cel' }],
    });
    expect(await outbox.append(bad)).toBe('stored');
    const [record] = outbox.lease({ maxRows: 10 }).records;
    expect(record?.format).toBe(JSON_FORMAT);
    expect(record?.payload).toEqual({ type: 'measurement', measurement: bad });
    outbox.close();
  });

  it('reads rows of both formats from one store when the codec changes between runs', async () => {
    const first = await open(jsonRecords); // the default: JSON
    await first.append(spo2Measurement(1));
    first.close();
    const second = await open();
    await second.append(spo2Measurement(2));
    const records = second.lease({ maxRows: 10 }).records;
    expect(records.map((r) => r.format)).toEqual([JSON_FORMAT, WIRE_ITEM_FORMAT]);
    expect(records.map((r) => r.payload)).toEqual(
      [1, 2].map((n) => ({ type: 'measurement', measurement: spo2Measurement(n) })),
    );
    second.close();
  });

  it('says which format it cannot read, and keeps the row', async () => {
    const writer = await open();
    await writer.append(spo2Measurement(1));
    writer.close();
    const reader = await open(jsonRecords);
    const [record] = reader.lease({ maxRows: 10 }).records;
    expect(() => record?.payload).toThrow(expect.objectContaining({ code: 'STORE_RECORD_FORMAT' }));
    expect(reader.stats().rows).toBe(1);
    reader.close();
  });

  it('writes gap records in the configured format too', async () => {
    const outbox = new Outbox({
      path,
      keys: keys(),
      recordCodec: wireItemRecords,
      retention: { maxRows: 2 },
    });
    await outbox.open();
    for (let n = 1; n <= 4; n++) await outbox.append(spo2Measurement(n), 'backlog');
    const gaps = outbox.lease({ maxRows: 10, lane: 'live' }).records;
    expect(gaps.length).toBeGreaterThan(0);
    for (const gap of gaps) {
      expect(gap.format).toBe(WIRE_ITEM_FORMAT);
      expect(gap.payload.type).toBe('gap');
    }
    outbox.close();
  });

  it('migrates a schema-2 store: its rows become format 0 (JSON) and stay readable', async () => {
    // A store as a schema-2 gateway left it, built from the migrations of that time.
    const key = await keys().load();
    const { db } = openEncryptedDatabase(path, key, { keyDescription: 'test', now: Date.now });
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL, applied_ms INTEGER NOT NULL)');
    for (const migration of MIGRATIONS.filter((m) => m.version <= 2)) {
      db.exec(migration.sql);
      db.prepare('INSERT INTO schema_version VALUES (?, 0)').run(migration.version);
    }
    const m = spo2Measurement(5);
    const body = Buffer.from(JSON.stringify({ type: 'measurement', measurement: m }));
    db.prepare(
      `INSERT INTO outbox (id, kind, lane, device, stable, measured_at, appended_ms, size, body)
       VALUES (?, 0, 1, ?, 0, ?, 0, ?, ?)`,
    ).run(m.id, m.deviceId, m.time, body.length, body);
    db.close();
    const migrated = await open();
    const [record] = migrated.lease({ maxRows: 10 }).records;
    expect(record?.format).toBe(JSON_FORMAT);
    expect(record?.payload).toEqual({ type: 'measurement', measurement: m });
    migrated.close();
  });

  it('acknowledges without an fsync but leaves appends fully durable', async () => {
    const outbox = await open();
    await outbox.append(spo2Measurement(1));
    const lease = outbox.lease({ maxRows: 10 });
    outbox.ack(lease.records.map((r) => r.seq));
    // PRAGMA synchronous: 2 = FULL (the append default), 1 = NORMAL (only inside ack).
    expect(outbox.database.pragma('synchronous', { simple: true })).toBe(2);
    outbox.close();
  });
});
