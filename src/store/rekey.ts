import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { writeFileAtomically } from '../util/secret-file.js';
import { assessDamage, copyDamagedAside, hadHighWater, survivingSeq } from './damage.js';
import { keyCheckOf, openEncryptedDatabase, writeKeyCheck } from './encrypted-database.js';
import { StoreError, storeErrorFrom } from './errors.js';
import {
  highWaterFileBytes,
  highWaterKeyOf,
  highWaterPathOf,
  readHighWater,
  replaceHighWaterFile,
} from './high-water.js';
import type { KeyFileProvider } from './keys.js';
import { StoreLock } from './store-lock.js';

/**
 * `rpm-gateway store rekey`: rotates the store key in place, crash-safely.
 *
 * The store and its key file must change together, and no file system renames two files atomically. So the
 * rotation works on a copy and commits with a marker file, like a journal:
 *   0. take the store's owner lock (src/store/store-lock.ts: a running gateway makes this fail), and only then
 *      finish or discard what an interrupted rotation left;
 *   1. open the store with the old key, checkpoint the WAL, check integrity;
 *   2. copy it to `<store>.rekey`, re-encrypt the copy under a new random key (PRAGMA rekey), reopen the copy
 *      with the new key and check it holds the same rows;
 *   3. write the new key to `<key>.new` (mode 0600, fsync; created exclusively: it was cleared under the lock);
 *   4. COMMIT: write `<store>.rekey.json` (a temporary file, fsync, link: it appears whole or not at all).
 *      Before this point a crash leaves the old store and key in place and the leftovers are removed; after it,
 *      the swap is finished on the next open (roll forward);
 *   5. swap: `<store>.rekey` -> `<store>`, new key check, `<key>.new` -> `<key>`, remove the marker.
 * Every step of 5 is idempotent, so recovery can repeat it after a crash at any point. The lock is held from
 * step 0 to the end of 5, so no other command sees the rotation's files half-way.
 */
export interface RekeyOptions {
  readonly path: string;
  readonly keys: KeyFileProvider;
  readonly now: () => number;
  /** Test hook: throw at the named step to simulate a power cut there. */
  readonly crashAt?: RekeyStep;
  /** Told as the long steps go (for a progress display); called synchronously, so keep it cheap. */
  readonly onProgress?: (progress: RekeyProgress) => void;
}

/**
 * The long steps of a rotation. The copy is counted in bytes; the re-encryption is one `PRAGMA rekey`, which
 * rewrites every page inside SQLite without telling how far it is, so it is told once as it starts; the check
 * then reads every row back under the new key and counts them.
 */
export type RekeyProgress =
  | { readonly step: 'copying'; readonly done: number; readonly total: number }
  | { readonly step: 're-encrypting' }
  | { readonly step: 'checking'; readonly done: number; readonly total: number };

export type RekeyStep =
  | 'copied'
  | 'reencrypted'
  | 'key-written'
  | 'committed'
  | 'store-swapped'
  | 'keycheck-written';

export interface RekeyResult {
  readonly rows: number;
  readonly durationMs: number;
}

interface Marker {
  readonly version: 1;
  readonly keyCheck: string;
  /**
   * The store's high-water mark (src/store/high-water.ts) authenticated under the new key, hex: carried over
   * as it is, so damage the store had before the rotation is still found after it.
   */
  readonly highWater?: string;
}

const paths = (store: string, keyFile: string) => ({
  copy: `${store}.rekey`,
  marker: `${store}.rekey.json`,
  newKey: `${keyFile}.new`,
});

export async function rekeyStore(options: RekeyOptions): Promise<RekeyResult> {
  const started = options.now();
  const { path } = options;
  const lock = StoreLock.acquire(path);
  try {
    return await rekeyLocked(options, lock, started);
  } finally {
    lock.release();
  }
}

async function rekeyLocked(options: RekeyOptions, lock: StoreLock, started: number): Promise<RekeyResult> {
  const { path, keys } = options;
  const p = paths(path, keys.path);
  completePendingRekey(lock, path, keys.path);
  const oldKey = await keys.load({ create: false });
  const opened = openEncryptedDatabase(path, oldKey, { keyDescription: keys.description, now: options.now });
  if (opened.movedAside) {
    opened.db.close();
    throw new StoreError(
      'STORE_REKEY_FAILED',
      `the store was damaged and moved aside to ${opened.movedAside.to}; nothing to rekey`,
    );
  }
  const db = opened.db;
  let rows: number;
  const newKey = randomBytes(32);
  const mark = readHighWater(highWaterPathOf(path), highWaterKeyOf(oldKey));
  try {
    // Damage the outbox has not recorded yet (it finds it at open) must not be folded into the store by the
    // checkpoint below, nor hidden under a new key: keep the files and let the outbox record it first.
    if (assessDamage(mark, survivingSeq(db), hadHighWater(db), undefined)) {
      const kept = copyDamagedAside(path, highWaterPathOf(path), options.now());
      throw new StoreError(
        'STORE_REKEY_FAILED',
        `the store lost stored readings (its files were kept as ${kept}); run \`rpm-gateway store status\` to record the damage, then rotate the key`,
      );
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
    if (db.pragma('integrity_check', { simple: true }) !== 'ok') {
      throw new StoreError(
        'STORE_REKEY_FAILED',
        'the store fails integrity_check; fix that before rotating the key',
      );
    }
    rows = countRows(db);
    // The copy is consistent: the WAL is checkpointed and we hold the exclusive lock, so nothing writes.
    copyWithProgress(path, p.copy, options.onProgress);
    crashPoint(options, 'copied');
    reencrypt(p.copy, oldKey, newKey, rows, options.onProgress);
    crashPoint(options, 'reencrypted');
    await writeFileAtomically(p.newKey, `${newKey.toString('hex')}\n`, {
      mode: 0o600,
      existing: 'exclusive',
    });
    crashPoint(options, 'key-written');
    const marker: Marker = {
      version: 1,
      keyCheck: keyCheckOf(newKey),
      ...(mark.state === 'ok'
        ? {
            highWater: highWaterFileBytes(mark.value, highWaterKeyOf(newKey), mark.generation).toString(
              'hex',
            ),
          }
        : {}),
    };
    await writeFileAtomically(p.marker, JSON.stringify(marker), { mode: 0o600, existing: 'exclusive' });
  } catch (error) {
    db.close();
    // Before the commit point: the old store and key stay; remove what was made.
    if (!existsSync(p.marker)) discardLeftovers(p);
    if (error instanceof SimulatedCrash) throw error;
    throw error instanceof StoreError && error.code === 'STORE_REKEY_FAILED'
      ? error
      : new StoreError(
          'STORE_REKEY_FAILED',
          `key rotation failed, the store is unchanged: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
  } finally {
    oldKey.fill(0);
  }
  db.close();
  crashPoint(options, 'committed');
  rollForward(path, keys.path, options);
  newKey.fill(0);
  return { rows, durationMs: options.now() - started };
}

/**
 * Finishes or discards a rotation interrupted by a crash. Called before every open of a store whose key comes
 * from a key file, by the holder of the store's owner lock only (the parameter is the proof): without the
 * lock, a running rotation's files look exactly like a crashed one's.
 */
export function completePendingRekey(
  _lock: StoreLock,
  path: string,
  keyFile: string,
): 'none' | 'rolled-forward' | 'discarded' {
  const p = paths(path, keyFile);
  if (existsSync(p.marker)) {
    rollForward(path, keyFile);
    return 'rolled-forward';
  }
  if (existsSync(p.copy) || existsSync(p.newKey)) {
    discardLeftovers(p);
    return 'discarded';
  }
  return 'none';
}

function rollForward(path: string, keyFile: string, options?: RekeyOptions): void {
  const p = paths(path, keyFile);
  try {
    const marker = JSON.parse(readFileSync(p.marker, 'utf8')) as Marker;
    if (existsSync(p.copy)) {
      // The old WAL was checkpointed and truncated; it must not be replayed onto the new file.
      rmSync(`${path}-wal`, { force: true });
      rmSync(`${path}-shm`, { force: true });
      renameSync(p.copy, path);
      fsyncFile(dirname(path));
    }
    if (options) crashPoint(options, 'store-swapped');
    if (marker.highWater !== undefined) {
      replaceHighWaterFile(highWaterPathOf(path), Buffer.from(marker.highWater, 'hex'));
    }
    writeKeyCheck(`${path}.keycheck`, marker.keyCheck);
    if (options) crashPoint(options, 'keycheck-written');
    if (existsSync(p.newKey)) {
      renameSync(p.newKey, keyFile);
      fsyncFile(dirname(keyFile));
    }
    rmSync(p.marker);
    fsyncFile(dirname(path));
  } catch (error) {
    if (error instanceof SimulatedCrash) throw error;
    throw storeErrorFrom(error, 'completing a key rotation');
  }
}

function reencrypt(
  copy: string,
  oldKey: Uint8Array,
  newKey: Uint8Array,
  rows: number,
  onProgress: RekeyOptions['onProgress'],
): void {
  onProgress?.({ step: 're-encrypting' });
  const db = new Database(copy);
  try {
    db.pragma(`cipher = 'chacha20'`);
    db.pragma(`key = "raw:${Buffer.from(oldKey).toString('hex')}"`);
    db.pragma('journal_mode = DELETE'); // rekey rewrites every page; a rollback journal keeps that atomic
    db.pragma(`rekey = "raw:${Buffer.from(newKey).toString('hex')}"`);
    db.pragma('journal_mode = WAL');
  } finally {
    db.close();
  }
  const check = new Database(copy);
  try {
    check.pragma(`cipher = 'chacha20'`);
    check.pragma(`key = "raw:${Buffer.from(newKey).toString('hex')}"`);
    if (
      check.pragma('integrity_check', { simple: true }) !== 'ok' ||
      readBack(check, rows, onProgress) !== rows
    ) {
      throw new StoreError('STORE_REKEY_FAILED', 're-encrypted copy does not match the store');
    }
  } finally {
    check.close();
  }
  fsyncFile(copy);
}

function countRows(db: Database.Database): number {
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").get();
  return exists ? (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n : 0;
}

/** How often (in rows) the check reports progress: often enough to move a bar, rarely enough to cost nothing. */
const CHECK_REPORT_ROWS = 1024;

/**
 * Reads every outbox row's body under the new key (which decrypts every page that holds a reading, overflow
 * pages included) and counts them.
 */
function readBack(db: Database.Database, total: number, onProgress: RekeyOptions['onProgress']): number {
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").get();
  let done = 0;
  onProgress?.({ step: 'checking', done, total });
  if (!exists) return 0;
  for (const _row of db.prepare('SELECT length(body) FROM outbox ORDER BY seq').raw().iterate()) {
    done++;
    if (done % CHECK_REPORT_ROWS === 0) onProgress?.({ step: 'checking', done, total });
  }
  if (done % CHECK_REPORT_ROWS !== 0) onProgress?.({ step: 'checking', done, total });
  return done;
}

/** Copy chunk: large enough for sequential I/O on an SD card, small enough to report progress often. */
const COPY_CHUNK = 4 * 1024 * 1024;

/**
 * Copies the (checkpointed, locked) store byte for byte with the same permissions, and fsyncs the copy. Done
 * by hand rather than with copyFileSync only so the progress can be told.
 */
function copyWithProgress(from: string, to: string, onProgress: RekeyOptions['onProgress']): void {
  const source = openSync(from, 'r');
  try {
    const { size, mode } = fstatSync(source);
    const target = openSync(to, 'w', mode & 0o777);
    try {
      // The umask may have narrowed the mode given to open(2); the copy must be exactly as private as the store.
      fchmodSync(target, mode & 0o777);
      const buffer = Buffer.allocUnsafe(COPY_CHUNK);
      let done = 0;
      onProgress?.({ step: 'copying', done, total: size });
      for (;;) {
        const n = readSync(source, buffer, 0, COPY_CHUNK, done);
        if (n === 0) break;
        let written = 0;
        while (written < n) written += writeSync(target, buffer, written, n - written, done + written);
        done += n;
        onProgress?.({ step: 'copying', done, total: Math.max(size, done) });
      }
      fsyncSync(target);
    } finally {
      closeSync(target);
    }
  } finally {
    closeSync(source);
  }
}

function discardLeftovers(p: ReturnType<typeof paths>): void {
  for (const file of [p.copy, `${p.copy}-journal`, `${p.copy}-wal`, p.newKey]) rmSync(file, { force: true });
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Thrown by the test hook; never caught by the recovery code, like a real power cut. */
export class SimulatedCrash extends Error {}

function crashPoint(options: RekeyOptions, step: RekeyStep): void {
  if (options.crashAt === step) throw new SimulatedCrash(`simulated crash after ${step}`);
}
