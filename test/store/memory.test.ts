import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openEncryptedDatabase, PAGE_CACHE_KIB } from '../../src/store/encrypted-database.js';

/**
 * What bounds the store's share of the hub's resident memory (docs/runtime.md, "Memory"). SQLite's page cache
 * grows to its limit as pages are touched and is never given back while the connection is open, so its limit
 * is the hub's: 2000 KiB, not the 16 MB better-sqlite3 compiles in.
 */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-store-memory-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('store memory', () => {
  it('opens with a page cache of 2000 KiB, on a new store and on an existing one', () => {
    const path = join(dir, 'outbox.db');
    const key = new Uint8Array(32).fill(7);
    for (let open = 0; open < 2; open++) {
      const { db } = openEncryptedDatabase(path, key, { keyDescription: 'test key', now: () => 0 });
      try {
        expect(PAGE_CACHE_KIB).toBe(2000);
        expect(db.pragma('cache_size', { simple: true })).toBe(-2000);
        expect(db.pragma('mmap_size', { simple: true })).toBe(0);
        db.exec('CREATE TABLE IF NOT EXISTS t (x)');
      } finally {
        db.close();
      }
    }
  });
});
