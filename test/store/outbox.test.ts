import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Outbox, type StoreEvent } from '../../src/store/outbox.js';
import { ManualClock } from '../../src/util/clock.js';
import { commitsBetween, readWal } from '../support/sqlite-wal.js';

const KEY = 'a'.repeat(64);
let dir: string;
let outbox: Outbox;
let clock: ManualClock;
let events: StoreEvent[];

async function openOutbox(retention = {}): Promise<Outbox> {
  const box = new Outbox({
    path: join(dir, 'outbox.db'),
    keys: new EnvKeyProvider('K', { K: KEY }),
    clock,
    retention,
    onEvent: (e) => events.push(e),
  });
  await box.open();
  return box;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-outbox-'));
  clock = new ManualClock();
  events = [];
  outbox = await openOutbox();
});

afterEach(async () => {
  outbox.close();
  await rm(dir, { recursive: true, force: true });
});

describe('Outbox', () => {
  it('stores, leases in lane order, and deletes only what was acknowledged', async () => {
    await Promise.all([
      outbox.append(spo2Measurement(1), 'backlog'),
      outbox.append(spo2Measurement(2), 'live'),
      outbox.append(spo2Measurement(3), 'alert'),
      outbox.append(spo2Measurement(4), 'live'),
    ]);
    const lease = outbox.lease({ maxRows: 10 });
    expect(lease.records.map((r) => [r.lane, r.id.slice(-1)])).toEqual([
      ['alert', '3'],
      ['live', '2'],
      ['live', '4'],
      ['backlog', '1'],
    ]);
    expect(outbox.lease({ maxRows: 10 }).records).toEqual([]); // all leased
    expect(outbox.ack([lease.records[0]?.seq as number, lease.records[1]?.seq as number])).toBe(2);
    expect(outbox.release(lease.leaseId)).toBe(2);
    const again = outbox.lease({ maxRows: 10 });
    expect(again.records.map((r) => r.id.slice(-1))).toEqual(['4', '1']);
    expect(again.records[0]?.payload).toEqual({ type: 'measurement', measurement: spo2Measurement(4) });
  });

  it('hands released rows out again first, and never leases a row twice', async () => {
    for (let i = 0; i < 6; i++) await outbox.append(spo2Measurement(i), 'backlog');
    const a = outbox.lease({ maxRows: 2 });
    const b = outbox.lease({ maxRows: 2 });
    expect(outbox.release(a.leaseId)).toBe(2);
    const c = outbox.lease({ maxRows: 10 });
    expect(c.records.map((r) => r.id.slice(-1))).toEqual(['0', '1', '4', '5']);
    const seqs = [...a.records, ...b.records, ...c.records].map((r) => r.seq);
    expect(new Set([...b.records, ...c.records].map((r) => r.seq)).size).toBe(6);
    expect(seqs).toHaveLength(8);
    expect(outbox.stats().leased).toBe(6);
  });

  it('is idempotent by measurement id, also after a stored record was acknowledged', async () => {
    const stored = spo2Measurement(7, { deviceTime: '2026-11-28T08:00:07' });
    expect(await outbox.append(stored)).toBe('stored');
    expect(await outbox.append(stored)).toBe('duplicate');
    const lease = outbox.lease({ maxRows: 10 });
    outbox.ack(lease.records.map((r) => r.seq));
    expect(await outbox.append(stored)).toBe('duplicate'); // the cuff sent its stored record again
    expect(outbox.stats()).toMatchObject({ rows: 0, duplicatesTotal: 2 });
  });

  it('commits a burst of appends in one transaction', async () => {
    await outbox.append(spo2Measurement(1000)); // any restart of the WAL a first write brings happens here
    const wal = join(dir, 'outbox.db-wal');
    const before = readWal(wal);
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) => outbox.append(spo2Measurement(i))),
    );
    // The commits as SQLite wrote them: commit records in the WAL (one per transaction, one fsync each).
    const commits = commitsBetween(before, readWal(wal));
    expect(results.every((r) => r === 'stored')).toBe(true);
    expect(outbox.stats().rows).toBe(501);
    expect(commits).toBe(1);
  });

  it('limits a lease by bytes but always leases at least one record', async () => {
    for (let i = 0; i < 5; i++) await outbox.append(spo2Measurement(i));
    const size = outbox.lease({ maxRows: 1 }).records[0]?.size as number;
    outbox.releaseAll();
    expect(outbox.lease({ maxRows: 10, maxBytes: size * 2 + 1 }).records).toHaveLength(2);
    outbox.releaseAll();
    expect(outbox.lease({ maxRows: 10, maxBytes: 1 }).records).toHaveLength(1);
  });

  it('returns leases left by a crash when it opens again', async () => {
    await outbox.append(spo2Measurement(1));
    outbox.lease({ maxRows: 10 });
    outbox.close();
    outbox = await openOutbox();
    expect(outbox.lease({ maxRows: 10 }).records).toHaveLength(1);
  });

  it('reports counts per lane, oldest pending age, bytes and evictions', async () => {
    await outbox.append(spo2Measurement(1), 'alert');
    clock.advance(5_000);
    await outbox.append(spo2Measurement(2), 'backlog');
    const stats = outbox.stats();
    expect(stats.pending).toEqual({ alert: 1, live: 0, backlog: 1 });
    expect(stats.oldestPendingAgeMs).toBe(5_000);
    expect(stats.bytesOnDisk).toBeGreaterThan(0);
    expect(stats.payloadBytes).toBeGreaterThan(200);
  });
});

describe('Outbox retention', () => {
  it('evicts the oldest backlog first, never alerts, and forwards a gap record', async () => {
    outbox.close();
    outbox = await openOutbox({ maxRows: 100 });
    for (let i = 0; i < 20; i++) await outbox.append(spo2Measurement(i), 'alert');
    for (let i = 20; i < 60; i++) await outbox.append(spo2Measurement(i), 'live');
    for (let i = 60; i < 100; i++) await outbox.append(spo2Measurement(i), 'backlog');
    expect(outbox.stats().evictedTotal).toBe(0);
    await outbox.append(spo2Measurement(100), 'backlog'); // 101 rows > 100
    const stats = outbox.stats();
    expect(stats.rows).toBeLessThanOrEqual(100);
    expect(stats.evictedTotal).toBeGreaterThan(0);
    expect(stats.gapsTotal).toBe(1);
    expect(stats.pending.alert).toBe(20);
    expect(stats.pending.live).toBe(41); // 40 live readings and the gap record
    const records = outbox.lease({ maxRows: 200 }).records;
    const ids = new Set(records.map((r) => r.id));
    expect(ids.has(spo2Measurement(60).id)).toBe(false); // the oldest backlog went first
    expect(ids.has(spo2Measurement(100).id)).toBe(true);
    const gap = records.find((r) => r.payload.type === 'gap')?.payload;
    expect(gap).toMatchObject({
      type: 'gap',
      deviceId: 'dev-ox-1',
      count: stats.evictedTotal,
      firstTime: spo2Measurement(60).time,
      reason: 'evicted-full',
    });
    expect(events.some((e) => e.type === 'store.evicted')).toBe(true);
  });

  it('never evicts a record that is being sent', async () => {
    outbox.close();
    outbox = await openOutbox({ maxRows: 10 });
    for (let i = 0; i < 10; i++) await outbox.append(spo2Measurement(i), 'backlog');
    const inFlight = outbox.lease({ maxRows: 3 }); // the three oldest
    await outbox.append(spo2Measurement(10), 'backlog');
    const left = new Set(outbox.lease({ maxRows: 100 }).records.map((r) => r.id));
    for (const record of inFlight.records) expect(left.has(record.id)).toBe(false); // still leased...
    expect(outbox.ack(inFlight.records.map((r) => r.seq))).toBe(3); // ...and still there to acknowledge
    expect(left.has(spo2Measurement(3).id)).toBe(false); // the oldest pending one went instead
  });

  it('keeps alerts even when nothing else is left to evict', async () => {
    outbox.close();
    outbox = await openOutbox({ maxRows: 10 });
    for (let i = 0; i < 15; i++) await outbox.append(spo2Measurement(i), 'alert');
    expect(outbox.stats().pending.alert).toBe(15);
    expect(outbox.stats().evictedTotal).toBe(0);
  });

  it('refuses new readings with STORE_FULL under the "reject" policy, keeping what is stored', async () => {
    outbox.close();
    outbox = await openOutbox({ maxRows: 3, whenFull: 'reject' });
    for (let i = 0; i < 3; i++) await outbox.append(spo2Measurement(i));
    await expect(outbox.append(spo2Measurement(3))).rejects.toMatchObject({ code: 'STORE_FULL' });
    expect(outbox.stats().rows).toBe(3);
  });

  it('expires readings past the age limit (not alerts) with a gap record', async () => {
    outbox.close();
    outbox = await openOutbox({ maxAgeMs: 60_000 });
    await outbox.append(spo2Measurement(1), 'live');
    await outbox.append(spo2Measurement(2), 'alert');
    clock.advance(61_000);
    await outbox.append(spo2Measurement(3), 'live');
    outbox.maintain();
    const records = outbox.lease({ maxRows: 10 }).records;
    expect(
      records.map((r) => (r.payload.type === 'gap' ? `gap:${r.payload.reason}:${r.payload.count}` : r.id)),
    ).toEqual([spo2Measurement(2).id, spo2Measurement(3).id, 'gap:expired:1']);
  });
});
