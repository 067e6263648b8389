import { createHmac } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { StoreError, storeErrorFrom } from './errors.js';

export type SqliteDatabase = Database.Database;

/**
 * Opens (or creates) a SQLite3MultipleCiphers database encrypted with ChaCha20-Poly1305 (the library's
 * "chacha20" cipher, sqleet-compatible): every page, in the main file and in the WAL, is encrypted and carries a
 * Poly1305 tag, so a flipped bit on the SD card is detected rather than read as data. ChaCha20 rather than
 * SQLCipher's AES-256-CBC+HMAC because the Pi 3, 4 and Zero 2 W have no AES instructions (Raspberry Pi
 * product briefs: Cortex-A53/A72 without the ARMv8 Crypto Extensions);
 * `npm run bench:store` measures the cost against plain SQLite. The key is raw (256 random bits), so no KDF.
 *
 * SQLite says "file is not a database" both for a wrong key and for a damaged file. To tell them apart the store
 * keeps `<file>.keycheck`: an HMAC-SHA256 of a fixed label under the key (a commitment; it reveals nothing
 * about the key). A key that does not match it is STORE_KEY_WRONG and the file is left alone; a matching key
 * on an unreadable file means damage, and the file is moved aside, never deleted.
 */
export interface OpenedDatabase {
  readonly db: SqliteDatabase;
  /** Set when a damaged store was moved aside and a new one created. */
  readonly movedAside?: { readonly to: string; readonly reason: string };
}

export interface OpenOptions {
  /** Names the key provider in errors. */
  readonly keyDescription: string;
  /** For the name of a moved-aside file. */
  readonly now: () => number;
}

/**
 * The SQLite page cache limit, KiB (a negative cache_size is in KiB: the pragma documentation). Why 512 and not
 * 2000: see where it is set, and docs/runtime.md, "Memory".
 */
export const PAGE_CACHE_KIB = 512;

const KEY_CHECK_LABEL = 'rpm-gateway store key check v1';

export function keyCheckOf(key: Uint8Array): string {
  return createHmac('sha256', key).update(KEY_CHECK_LABEL).digest('hex');
}

export function openEncryptedDatabase(path: string, key: Uint8Array, options: OpenOptions): OpenedDatabase {
  if (key.length !== 32)
    throw new StoreError('STORE_KEY_MALFORMED', `${options.keyDescription}: not 256 bits`);
  const keyCheckPath = `${path}.keycheck`;
  const expected = keyCheckOf(key);
  const stored = readKeyCheck(keyCheckPath);
  const exists = existsSync(path) && statSync(path).size > 0;
  if (stored !== undefined && stored !== expected) {
    throw new StoreError(
      'STORE_KEY_WRONG',
      `the store ${path} was encrypted with another key than the one from ${options.keyDescription}`,
    );
  }
  if (stored === undefined) {
    if (exists) {
      // A store without its key check: either it was deleted, or the store predates it. Only a successful
      // open proves the key; anything else is reported as a key problem, because moving aside a healthy
      // store opened with the wrong key would hide the patient's data.
      const opened = tryOpen(path, key);
      if (!opened.ok) {
        const failure = storeErrorFrom(opened.error, `opening the store ${path}`);
        if (failure.code !== 'STORE_CORRUPT') throw failure;
        throw new StoreError(
          'STORE_KEY_WRONG',
          `the store ${path} does not open with the key from ${options.keyDescription}, and its key check file is missing`,
          { cause: opened.error },
        );
      }
      writeKeyCheck(keyCheckPath, expected);
      return { db: opened.db };
    }
    writeKeyCheck(keyCheckPath, expected); // before the store exists, so a store always has one
  }
  const opened = tryOpen(path, key);
  if (opened.ok) return { db: opened.db };
  const failure = storeErrorFrom(opened.error, `opening the store ${path}`);
  if (failure.code !== 'STORE_CORRUPT') throw failure;
  const to = moveAside(path, options.now());
  const fresh = tryOpen(path, key);
  if (!fresh.ok) throw storeErrorFrom(fresh.error, `creating a new store at ${path}`);
  return { db: fresh.db, movedAside: { to, reason: failure.message } };
}

type Attempt =
  | { readonly ok: true; readonly db: SqliteDatabase }
  | { readonly ok: false; readonly error: unknown };

function tryOpen(path: string, key: Uint8Array): Attempt {
  let db: SqliteDatabase | undefined;
  try {
    // A short busy timeout: the store is owned by one process (exclusive locking below), so waiting on a lock
    // only delays the STORE_LOCKED answer.
    // Create the file owner-only before SQLite does (it would use the umask, typically 0644); the -wal file
    // inherits this mode. The content is encrypted either way: this is least privilege, not secrecy.
    createOwnerOnly(path);
    db = new Database(path, { timeout: 250 });
    db.pragma(`cipher = 'chacha20'`);
    db.pragma(`key = "raw:${Buffer.from(key).toString('hex')}"`);
    db.prepare('SELECT count(*) FROM sqlite_master').get(); // the first read proves the key (or fails)
    // One process owns the store, enforced by the kernel's file locks (released when the process dies, so a
    // crash leaves no stale lock): a second gateway, or `store rekey` while the gateway runs, gets
    // STORE_LOCKED instead of two writers.
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    // Readings are medical data: a committed transaction must survive a power cut (fsync at every commit).
    // Group commit in the outbox keeps the number of commits, and so of fsyncs, low.
    db.pragma('synchronous = FULL');
    // Freed pages (acknowledged readings) are overwritten with zeros, so nothing lingers in free pages.
    db.pragma('secure_delete = ON');
    db.pragma('foreign_keys = ON');
    // The page cache is part of the hub's resident memory, and it fills up to its limit as the outbox churns
    // (a backlog drain touches every page; live appends and deletes reach new pages slowly, which shows as RSS
    // growing for minutes). better-sqlite3 builds SQLite with SQLITE_DEFAULT_CACHE_SIZE=-16000, a 16 MB cache
    // (deps/defines.gypi of better-sqlite3-multiple-ciphers); the outbox reads in append order and deletes by
    // key. The cache never reaches a steady working set: measurement ids are mostly random (src/model/ids.ts),
    // so every acknowledgement inserts into the `acked` table's primary key at a random leaf, and that table
    // keeps ids for 30 days (millions from one 1 Hz oximeter), far more than a Pi's cache. A cache fills to its
    // bound and then recycles pages; its size buys little speed and costs resident memory. Measured
    // (`bench:runtime`, 2026-12-05): draining 100,000 readings ran at 16,540 and 14,153 readings/s with
    // 2000 KiB (SQLite's suggested default, https://www.sqlite.org/pragma.html#pragma_cache_size), 16,545 and
    // 16,525 with 512 KiB, 14,199 with 64 KiB; in the live benchmark, memory outside V8 rose 2.2 MB over minutes
    // 1-5 with 2000 KiB (the cache filling, one page at a time) and 0.1 MB with 64 KiB. 512 KiB bounds that
    // settling to about a quarter and still holds the hot tail of the outbox and its indexes.
    db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
    db.exec('BEGIN IMMEDIATE; COMMIT'); // take the exclusive lock now, not at the first append
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') {
      const error = Object.assign(new Error(`quick_check: ${String(check)}`), { code: 'SQLITE_CORRUPT' });
      throw error;
    }
    return { ok: true, db };
  } catch (error) {
    try {
      db?.close();
    } catch {
      // already failing; the first error is the one to report
    }
    return { ok: false, error };
  }
}

/** The stored key commitment, or undefined when there is none. */
export function readKeyCheck(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw storeErrorFrom(error, `reading ${path}`);
  }
}

/** Writes via a temporary file and rename, so the key check is either the old one or the new one. */
export function writeKeyCheck(path: string, value: string): void {
  try {
    const temporary = `${path}.tmp`;
    writeFileSync(temporary, `${value}\n`, { mode: 0o600 });
    const fd = openSync(temporary, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
    syncDirectorySync(dirname(path));
  } catch (error) {
    throw storeErrorFrom(error, `writing ${basename(path)}`);
  }
}

function syncDirectorySync(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Renames the store and its -wal/-shm companions to `<file>.corrupt-<time>`; returns the new main file name. */
function moveAside(path: string, now: number): string {
  const stamp = new Date(now).toISOString().replaceAll(':', '-');
  const to = `${path}.corrupt-${stamp}`;
  try {
    for (const suffix of ['', '-wal', '-shm']) {
      if (existsSync(`${path}${suffix}`)) renameSync(`${path}${suffix}`, `${to}${suffix}`);
    }
    syncDirectorySync(dirname(path));
  } catch (error) {
    throw storeErrorFrom(error, `moving the damaged store ${path} aside`);
  }
  return to;
}

/**
 * Whether a store already exists at `path`: its key commitment or high-water mark (src/store/high-water.ts), a
 * non-empty main file or WAL, or a committed key rotation. The key check is written before the store's first page, so it is there from the first start on.
 * Once a store exists, its key is never made anew (KeyLoadOptions.create in src/store/keys.ts).
 */
export function storeExists(path: string): boolean {
  const nonEmpty = (file: string) => existsSync(file) && statSync(file).size > 0;
  return (
    existsSync(`${path}.keycheck`) ||
    existsSync(`${path}.hwm`) ||
    nonEmpty(path) ||
    nonEmpty(`${path}-wal`) ||
    existsSync(`${path}.rekey.json`)
  );
}

/**
 * Creates `path` empty with mode 0600 if it does not exist, and never opens an existing file: closing any
 * descriptor of a file drops every POSIX record lock the process holds on it (fcntl(2): "If a process closes
 * any file descriptor referring to a file, then all of the process's locks on that file are released"), so
 * opening and closing the store beside a connection that holds its lock would silently release that lock.
 */
export function createOwnerOnly(path: string): void {
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}
