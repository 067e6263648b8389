import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import { openEncryptedDatabase, PAGE_CACHE_KIB } from '../../src/store/encrypted-database.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';
import { oldSpaceBytesPerAsyncOperation, oldSpaceBytesPerOperation } from '../support/old-space.js';

/**
 * What bounds the store's share of the hub's resident memory (docs/runtime.md, "Memory"). SQLite's page cache
 * grows to its limit as pages are touched and is never given back while the connection is open, so its limit
 * is the hub's: 512 KiB, not the 16 MB better-sqlite3 compiles in (docs/runtime.md, "Memory").
 */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-store-memory-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('store memory', () => {
  it('opens with a page cache of 512 KiB, on a new store and on an existing one', () => {
    const path = join(dir, 'outbox.db');
    const key = new Uint8Array(32).fill(7);
    for (let open = 0; open < 2; open++) {
      const { db } = openEncryptedDatabase(path, key, { keyDescription: 'test key', now: () => 0 });
      try {
        expect(PAGE_CACHE_KIB).toBe(512);
        expect(db.pragma('cache_size', { simple: true })).toBe(-512);
        expect(db.pragma('mmap_size', { simple: true })).toBe(0);
        db.exec('CREATE TABLE IF NOT EXISTS t (x)');
      } finally {
        db.close();
      }
    }
  });

  it('leases and releases without making garbage in the old generation (the live hub does this per reading)', async () => {
    const outbox = new Outbox({
      path: join(dir, 'outbox.db'),
      keys: new EnvKeyProvider('K', { K: 'a'.repeat(64) }),
    });
    await outbox.open();
    try {
      await Promise.all([1, 2, 3].map((n) => outbox.append(spo2Measurement(n), 'live')));
      // One row leased throughout (a batch awaiting its PUBACK); two leased and returned per operation, so
      // the lease bookkeeping adds and deletes entries each time and the records are made and dropped. Before,
      // Maps that lived as long as the outbox and records with their own getter made ~450 bytes of
      // old-generation garbage per leased row, which only a major collection frees (docs/runtime.md, "Memory").
      const held = outbox.lease({ maxRows: 1, lane: 'live' });
      const perLease = oldSpaceBytesPerOperation(
        () => outbox,
        (box) => {
          const lease = box.lease({ maxRows: 2, lane: 'live' });
          if (lease.records.length !== 2 || box.release(lease.leaseId) !== 2) {
            throw new Error('the lease did not take the two free rows');
          }
        },
        10_000,
      );
      expect(outbox.isLeased(held.records[0]?.seq as number)).toBe(true);
      expect(perLease).toBeLessThan(50);
    } finally {
      outbox.close();
    }
  });

  it('takes a reading through the store (append, lease, acknowledge) with next to no old-generation garbage', async () => {
    const outbox = new Outbox({
      path: join(dir, 'outbox.db'),
      keys: new EnvKeyProvider('K', { K: 'a'.repeat(64) }),
    });
    await outbox.open();
    try {
      // A live reading's way through the store, as the uplink takes it: the append's group commit, a lease of
      // the live lane, the PUBACK's acknowledgement. Before: ~600-800 bytes per reading reached the old
      // generation (the lease Maps, the records' own getters); the hub makes 8 readings a second.
      const perReading = await oldSpaceBytesPerAsyncOperation(
        outbox,
        async (box, i) => {
          await box.append(spo2Measurement(i), 'live');
          const lease = box.lease({ maxRows: 1_000, maxBytes: 16 * 1024, lane: 'live' });
          if (box.ackLeases([lease.leaseId]) !== 1) throw new Error('the reading was not acknowledged');
        },
        2_000,
        2_000,
      );
      expect(outbox.stats().rows).toBe(0);
      expect(perReading).toBeLessThan(150);
    } finally {
      outbox.close();
    }
  });
});
