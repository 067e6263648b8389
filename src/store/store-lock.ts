import Database from 'better-sqlite3-multiple-ciphers';
import { createOwnerOnly } from './encrypted-database.js';
import { StoreError, storeErrorFrom } from './errors.js';

/**
 * The store's owner lock, held by whoever opens the store (the gateway, `store status`, `pair`, `store rekey`)
 * from before it looks at the store's files until it closes it.
 *
 * The store's own SQLite lock (locking_mode=EXCLUSIVE on outbox.db) is not enough for that: it needs the key
 * to be taken (the first page must decrypt), and `store rekey` replaces outbox.db and the key file by rename,
 * so a lock on the old file says nothing about the new one. Without an outer lock, a second command opening
 * the store during a rotation took the rotation's `<key>.new` for a leftover of a crash and deleted it.
 *
 * The lock is `<store>.lock`, an empty, unencrypted SQLite database held in EXCLUSIVE locking mode after an
 * exclusive transaction (https://sqlite.org/pragma.html#pragma_locking_mode: "The first time the database is
 * written, an exclusive lock is obtained and held"). SQLite's locks are POSIX advisory record locks (fcntl(2)),
 * which the kernel drops when the process dies, so a crash leaves no stale lock; and SQLite arbitrates them
 * between connections of one process too, so two opens in one process also exclude each other.
 */
export class StoreLock {
  private constructor(private db: Database.Database | undefined) {}

  static acquire(storePath: string): StoreLock {
    const path = `${storePath}.lock`;
    let db: Database.Database | undefined;
    try {
      createOwnerOnly(path); // owner-only, like the store (SQLite would use the umask)
      db = new Database(path, { timeout: 250 });
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE; COMMIT');
      return new StoreLock(db);
    } catch (error) {
      try {
        db?.close();
      } catch {
        // already failing; the first error is the one to report
      }
      const failure = storeErrorFrom(error, `locking the store ${storePath}`);
      if (failure.code === 'STORE_LOCKED') {
        throw new StoreError(
          'STORE_LOCKED',
          `the store ${storePath} is in use by another process (a running gateway, or a key rotation)`,
          { cause: error },
        );
      }
      throw failure;
    }
  }

  release(): void {
    const db = this.db;
    this.db = undefined;
    db?.close();
  }
}
