import { existsSync, statSync } from 'node:fs';
import Database from 'better-sqlite3-multiple-ciphers';
import {
  createOwnerOnly,
  keyCheckOf,
  readKeyCheck,
  type SqliteDatabase,
  writeKeyCheck,
} from '../../../store/encrypted-database.js';
import { StoreError } from '../../../store/errors.js';
import { ClinicStoreError } from '../errors.js';

/**
 * Opens the clinic's SQLite database, encrypted like the hub's store (src/store/encrypted-database.ts): a raw
 * 256-bit key, every page of the main file and the WAL encrypted and authenticated with a fresh nonce each time
 * it is written, and a `<file>.keycheck` commitment that tells a wrong key from a damaged file. It holds PHI
 * (every reading of every patient).
 *
 * Three differences from the hub's store, all because this is the clinic's record on a server rather than a
 * queue on a Raspberry Pi:
 * - The page cipher is SQLite3MultipleCiphers' AEGIS-256 (CLINIC_CIPHER), not ChaCha20-Poly1305. Both are
 *   authenticated ciphers with a random nonce per page write; AEGIS (draft-irtf-cfrg-aegis-aead) is built on
 *   the AES round function, so on a server with AES instructions (x86-64 AES-NI, ARMv8 Crypto Extensions) it
 *   costs a fraction of ChaCha20's software rounds, while a Raspberry Pi 3 or 4 has no AES instructions and the
 *   hub keeps ChaCha20. The intake's commits are mostly page writes (a reading lands in three indexes at
 *   places spread over the file), and the cipher was a third of the store's CPU: docs/clinic-intake.md,
 *   "The page cipher", has the figures. A database made with ChaCha20 (before this choice) still opens.
 * - Normal (not exclusive) locking, so a dashboard in another process can read through the WAL while the intake
 *   writes (https://www.sqlite.org/wal.html: readers do not block the writer, nor the writer readers).
 * - A database that fails its integrity check is refused (CLINIC_STORE_CORRUPT) and left where it is, never
 *   moved aside for a new empty one: an intake that started on an empty record would acknowledge readings
 *   into a database nobody restores from.
 */
export interface ClinicDatabaseOptions {
  /** The SQLite page cache, KiB. */
  readonly cacheKib: number;
  /** How long a write waits for another connection's write lock, ms (busy_timeout). */
  readonly busyTimeoutMs: number;
}

export function openClinicDatabase(
  path: string,
  key: Uint8Array,
  options: ClinicDatabaseOptions,
): SqliteDatabase {
  if (key.length !== 32) {
    throw new ClinicStoreError('CLINIC_STORE_KEY_MALFORMED', 'the clinic database key is not 256 bits');
  }
  const keyCheckPath = `${path}.keycheck`;
  const expected = keyCheckOf(key);
  const stored = fileStep(() => readKeyCheck(keyCheckPath), `reading ${keyCheckPath}`);
  if (stored !== undefined && stored !== expected) {
    throw new ClinicStoreError(
      'CLINIC_STORE_KEY_WRONG',
      `the clinic database ${path} was encrypted with another key; it was left untouched`,
    );
  }
  const exists = existsSync(path) && statSync(path).size > 0;
  if (stored === undefined && !exists) {
    // Before the database's first page, so a database always has its key check.
    fileStep(() => writeKeyCheck(keyCheckPath, expected), `writing ${keyCheckPath}`);
  }
  let db: SqliteDatabase | undefined;
  try {
    db = connect(path, key, options);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
      // With a matching key check the key is right, so the file is damaged; without one (deleted), an
      // unreadable file may as well be another key's: say so rather than call a healthy record corrupt.
      if (stored === undefined) {
        throw new ClinicStoreError(
          'CLINIC_STORE_KEY_WRONG',
          `the clinic database ${path} does not open with this key, and its key check file is missing`,
          { cause: error },
        );
      }
      throw new ClinicStoreError(
        'CLINIC_STORE_CORRUPT',
        `the clinic database ${path} is damaged (${(error as Error).message}); it was left untouched`,
        { cause: error },
      );
    }
    throw clinicErrorFrom(error, `opening the clinic database ${path}`);
  }
  if (stored === undefined && exists) {
    try {
      writeKeyCheck(keyCheckPath, expected); // the open proved the key
    } catch (error) {
      db.close();
      throw clinicErrorFrom(error, `writing ${keyCheckPath}`);
    }
  }
  return db;
}

/**
 * The page cipher of new clinic databases (https://utelle.github.io/SQLite3MultipleCiphers/docs/ciphers/cipher_aegis/),
 * with its default variant AEGIS-256: a 256-bit key, taken raw (no key derivation: the key is random already).
 */
export const CLINIC_CIPHER = 'aegis';
/** The cipher of clinic databases made before CLINIC_CIPHER: such a file is opened with it and stays so. */
export const EARLIER_CLINIC_CIPHER = 'chacha20';

/** Opens `path` with `cipher` and reads page 1, which proves the key and the cipher, or throws. */
function openWithCipher(
  path: string,
  key: Uint8Array,
  options: ClinicDatabaseOptions,
  cipher: string,
): SqliteDatabase {
  const db = new Database(path, { timeout: options.busyTimeoutMs });
  try {
    db.pragma(`cipher = '${cipher}'`);
    db.pragma(`key = "raw:${Buffer.from(key).toString('hex')}"`);
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

function connect(path: string, key: Uint8Array, options: ClinicDatabaseOptions): SqliteDatabase {
  let db: SqliteDatabase | undefined;
  try {
    // Owner-only before SQLite creates it (it would use the umask); the -wal and -shm files inherit the mode.
    createOwnerOnly(path);
    try {
      db = openWithCipher(path, key, options, CLINIC_CIPHER);
    } catch (error) {
      // Page 1 does not open under AEGIS: a ChaCha20 database, or a wrong key or a damaged page 1, which the
      // first error reports when ChaCha20 does not open it either.
      if ((error as { code?: unknown }).code !== 'SQLITE_NOTADB') throw error;
      try {
        db = openWithCipher(path, key, options, EARLIER_CLINIC_CIPHER);
      } catch {
        throw error;
      }
    }
    db.pragma('journal_mode = WAL');
    // The intake acknowledges a message to the broker once its commit resolved, and the hub then deletes the
    // reading: a resolved commit must survive a power cut, so every commit is fsynced, WAL included
    // (https://www.sqlite.org/pragma.html#pragma_synchronous: NORMAL in WAL mode may lose the last commits).
    // Group commit in the intake keeps the number of commits, and so of fsyncs, low.
    db.pragma('synchronous = FULL');
    // Deleted rows (released quarantine, rejections beyond the bound) are overwritten, so no PHI lingers in
    // free pages.
    db.pragma('secure_delete = ON');
    db.pragma('foreign_keys = ON');
    // A negative cache_size is in KiB (pragma documentation): a bound on the page cache, which is resident
    // memory of the intake process.
    db.pragma(`cache_size = -${options.cacheKib}`);
    // SQLite checkpoints automatically (copies the WAL's pages into the file) in the commit that takes the WAL
    // past this many pages (https://www.sqlite.org/wal.html#automatic_checkpoint; default 1,000). A page a
    // later commit changes again is copied once per checkpoint, not once per commit, and the intake's index
    // pages (per gateway, per id) change in nearly every commit: 10,000 pages (40 MiB at 4 KiB) cut the store's
    // CPU per reading by 15-25% in scripts/bench-clinic-store.ts. The store also checkpoints when the intake is
    // idle (sqlite-clinic-store.ts), so under a load it keeps up with this automatic one rarely runs.
    db.pragma('wal_autocheckpoint = 10000');
    // The WAL is truncated to this after a checkpoint, so a burst (a backlog drain) does not leave a large
    // file; above the checkpoint size, so a WAL that just reached it is not cut and regrown each time.
    db.pragma('journal_size_limit = 67108864');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') {
      throw Object.assign(new Error(`quick_check: ${String(check)}`), { code: 'SQLITE_CORRUPT' });
    }
    return db;
  } catch (error) {
    try {
      db?.close();
    } catch {
      // already failing; the first error is the one to report
    }
    throw error;
  }
}

function fileStep<T>(step: () => T, what: string): T {
  try {
    return step();
  } catch (error) {
    throw clinicErrorFrom(error, what);
  }
}

/** Maps a SQLite or file-system failure to a typed error; `what` says what the database was doing. */
export function clinicErrorFrom(error: unknown, what: string): ClinicStoreError {
  if (error instanceof ClinicStoreError) return error;
  const inner = error instanceof StoreError && error.cause !== undefined ? error.cause : error;
  const code = (inner as { code?: unknown } | undefined)?.code;
  const message = (inner as Error | undefined)?.message ?? String(inner);
  switch (code) {
    case 'SQLITE_FULL':
    case 'ENOSPC':
      return new ClinicStoreError('CLINIC_STORE_DISK_FULL', `${what}: the disk is full`, { cause: error });
    case 'SQLITE_READONLY':
    case 'SQLITE_READONLY_DIRECTORY':
    case 'SQLITE_READONLY_DBMOVED':
    case 'SQLITE_CANTOPEN':
    case 'EACCES':
    case 'EROFS':
    case 'EPERM':
      return new ClinicStoreError('CLINIC_STORE_READ_ONLY', `${what}: cannot write (${message})`, {
        cause: error,
      });
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return new ClinicStoreError('CLINIC_STORE_BUSY', `${what}: another connection holds the write lock`, {
        cause: error,
      });
    case 'SQLITE_CORRUPT':
    case 'SQLITE_NOTADB':
      return new ClinicStoreError('CLINIC_STORE_CORRUPT', `${what}: the database is damaged (${message})`, {
        cause: error,
      });
    default:
      return new ClinicStoreError('CLINIC_STORE_IO', `${what}: ${message}`, { cause: error });
  }
}
