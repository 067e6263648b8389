import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import { StoreError } from '../../src/store/errors.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { type Lane, type Lease, Outbox } from '../../src/store/outbox.js';
import { wireItemRecords } from '../../src/uplink/record-codec.js';
import { thrownBy } from '../support/errors.js';

// Outbox.onStaged: the uplink leases and publishes live readings inside the append transaction, before its
// fsync. These tests pin the bookkeeping that makes that safe: acknowledgements by lease, and leases of a
// transaction that failed becoming void.

let dir: string;
let outbox: Outbox;

const open = async () => {
  const box = new Outbox({
    path: join(dir, 'outbox.db'),
    keys: new EnvKeyProvider('K', { K: 'd'.repeat(64) }),
    recordCodec: wireItemRecords,
  });
  await box.open();
  return box;
};

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-staged-'));
  outbox = await open();
});

afterEach(async () => {
  outbox.close();
  await rm(dir, { recursive: true, force: true });
});

describe('Outbox.onStaged', () => {
  it('lets a listener lease the new rows before the commit; they are deleted by lease after it', async () => {
    const seen: { lanes: Lane[]; lease: Lease }[] = [];
    outbox.onStaged((lanes) =>
      seen.push({ lanes: [...lanes], lease: outbox.lease({ maxRows: 10, lane: 'live' }) }),
    );
    expect(await outbox.append(spo2Measurement(1), 'live')).toBe('stored');
    expect(seen).toHaveLength(1);
    expect(seen[0]?.lanes).toEqual(['live']);
    expect(seen[0]?.lease.records.map((r) => r.id)).toEqual([spo2Measurement(1).id]);
    expect(outbox.stats().leased).toBe(1);
    expect(outbox.ackLeases([seen[0]?.lease.leaseId as number])).toBe(1);
    expect(outbox.stats()).toMatchObject({ rows: 0, leased: 0 });
  });

  it('is not called for duplicates, and a listener that throws does not fail the append', async () => {
    const stored = spo2Measurement(2, { deviceTime: '2026-11-28T08:00:02' });
    await outbox.append(stored);
    let calls = 0;
    outbox.onStaged(() => {
      calls++;
      throw new Error('publish failed');
    });
    expect(await outbox.append(stored)).toBe('duplicate');
    expect(calls).toBe(0);
    expect(await outbox.append(spo2Measurement(3))).toBe('stored');
    expect(calls).toBe(1);
    expect(outbox.stats().rows).toBe(2);
  });

  it('voids the leases of a transaction that did not commit: a late acknowledgement deletes nothing', async () => {
    let staged: Lease | undefined;
    let sequence = 0;
    const stop = outbox.onStaged(() => {
      staged = outbox.lease({ maxRows: 10, lane: 'live' });
      sequence = outbox.nextBatchSequence(); // reserves the first block inside this transaction
      outbox.database.exec('ROLLBACK'); // what a failed commit leaves: nothing of this transaction
    });
    await expect(outbox.append(spo2Measurement(4), 'live')).rejects.toMatchObject({ code: 'STORE_IO' });
    stop();
    expect(staged?.records).toHaveLength(1);
    expect(outbox.stats()).toMatchObject({ rows: 0, leased: 0 });

    // The next reading may get the same seq (the AUTOINCREMENT counter was rolled back too): the void lease
    // must not delete it when the PUBACK of the first publish arrives late.
    await outbox.append(spo2Measurement(5), 'live');
    const fresh = outbox.lease({ maxRows: 10 });
    expect(fresh.records.map((r) => r.id)).toEqual([spo2Measurement(5).id]);
    expect(outbox.ackLeases([staged?.leaseId as number])).toBe(0);
    expect(outbox.stats().rows).toBe(1);
    expect(outbox.ackLeases([fresh.leaseId])).toBe(1);

    // Batch numbers never go back, even though the block reserved in the failed transaction was rolled back.
    const next = outbox.nextBatchSequence();
    expect(next).toBeGreaterThan(sequence);
    outbox.close();
    outbox = await open();
    expect(outbox.nextBatchSequence()).toBeGreaterThan(next);
  });

  it('acknowledges by lease: a released lease deletes nothing, the lease that took its rows over does', async () => {
    for (let n = 10; n < 13; n++) await outbox.append(spo2Measurement(n));
    const first = outbox.lease({ maxRows: 10 });
    expect(outbox.release(first.leaseId)).toBe(3);
    const second = outbox.lease({ maxRows: 10 });
    expect(second.records.map((r) => r.seq)).toEqual(first.records.map((r) => r.seq));
    expect(outbox.ackLeases([first.leaseId])).toBe(0);
    expect(outbox.ackLeases([second.leaseId])).toBe(3);
    expect(outbox.ackLeases([second.leaseId])).toBe(0);
    expect(outbox.releaseAll()).toBe(0);
  });
});

describe('Outbox.stats without a table scan', () => {
  it('keeps per-lane counts that agree with the table through appends, acks, quarantine and evictions', async () => {
    outbox.close();
    outbox = new Outbox({
      path: join(dir, 'counted.db'),
      keys: new EnvKeyProvider('K', { K: 'd'.repeat(64) }),
      recordCodec: wireItemRecords,
      retention: { maxRows: 40 },
    });
    await outbox.open();
    const lanes: Lane[] = ['alert', 'live', 'backlog'];
    const check = () => {
      const counted = Object.fromEntries(
        (
          outbox.database.prepare('SELECT lane, count(*) AS n FROM outbox GROUP BY lane').all() as {
            lane: number;
            n: number;
          }[]
        ).map((r) => [lanes[r.lane], r.n]),
      );
      const stats = outbox.stats();
      for (const lane of lanes) {
        expect(stats.pending[lane]).toBeLessThanOrEqual(counted[lane] ?? 0);
      }
      expect(stats.pending.alert + stats.pending.live + stats.pending.backlog + stats.leased).toBe(
        Object.values(counted).reduce((a: number, b) => a + (b as number), 0),
      );
      expect(stats.rows).toBe(
        stats.pending.alert + stats.pending.live + stats.pending.backlog + stats.leased,
      );
    };
    for (let n = 0; n < 60; n++) await outbox.append(spo2Measurement(100 + n), lanes[n % 3]); // evicts
    check();
    const lease = outbox.lease({ maxRows: 7 });
    check();
    outbox.ackLeases([lease.leaseId]);
    check();
    const bad = outbox.lease({ maxRows: 2, lane: 'backlog' });
    outbox.quarantine(
      bad.records.map((r) => r.seq),
      'test',
    );
    check();
    outbox.close();
    outbox = new Outbox({
      path: join(dir, 'counted.db'),
      keys: new EnvKeyProvider('K', { K: 'd'.repeat(64) }),
      recordCodec: wireItemRecords,
    });
    await outbox.open();
    check();
    expect(outbox.stats().oldestPendingAgeMs).not.toBeNull();
  });
});

describe('Outbox failures leave nothing stranded', () => {
  it('a failed append does not hide a later reading that takes over a rolled-back seq', async () => {
    const stop = outbox.onStaged(() => {
      outbox.lease({ maxRows: 10, lane: 'live' }); // the live row's seq is above the backlog row's
      outbox.database.exec('ROLLBACK');
    });
    const backlog = outbox.append(spo2Measurement(40), 'backlog');
    const live = outbox.append(spo2Measurement(41), 'live');
    await expect(Promise.all([backlog, live])).rejects.toMatchObject({ code: 'STORE_IO' });
    stop();
    await outbox.append(spo2Measurement(42), 'live'); // may get the seq the backlog row had
    expect(outbox.lease({ maxRows: 10, lane: 'live' }).records.map((r) => r.id)).toEqual([
      spo2Measurement(42).id,
    ]);
  });

  it('a failed acknowledgement leaves its rows pending, to be leased and sent again', async () => {
    await outbox.append(spo2Measurement(50, { deviceTime: '2026-11-28T08:00:50' }), 'live');
    await outbox.append(spo2Measurement(51), 'live');
    const lease = outbox.lease({ maxRows: 10 });
    outbox.database.exec('DROP TABLE acked'); // remembering the stable id fails mid-transaction
    const failure = thrownBy(StoreError, () => outbox.ackLeases([lease.leaseId]));
    expect(failure.code).toBe('STORE_IO');
    expect((failure.cause as Error).message).toBe('no such table: acked'); // failed where the test broke it
    expect(outbox.stats()).toMatchObject({ rows: 2, leased: 0 });
    expect(outbox.stats().pending.live).toBe(2);
    expect(outbox.lease({ maxRows: 10 }).records).toHaveLength(2);
    expect(outbox.database.pragma('synchronous', { simple: true })).toBe(2); // back to FULL
  });

  it('an event listener that throws neither fails the housekeeping nor skews the counts', async () => {
    outbox.close();
    let now = Date.UTC(2026, 10, 28);
    outbox = new Outbox({
      path: join(dir, 'expiring.db'),
      keys: new EnvKeyProvider('K', { K: 'd'.repeat(64) }),
      recordCodec: wireItemRecords,
      clock: { now: () => now },
      retention: { maxAgeMs: 60_000 },
      onEvent: (event) => {
        if (event.type === 'store.evicted') throw new Error('audit log disk full');
      },
    });
    await outbox.open();
    for (let n = 0; n < 4; n++) await outbox.append(spo2Measurement(60 + n), 'backlog');
    now += 120_000;
    outbox.maintain();
    const counted = outbox.database.prepare('SELECT count(*) FROM outbox').pluck().get();
    expect(outbox.stats().rows).toBe(counted);
    expect(outbox.stats().evictedTotal).toBe(4);
  });
});
