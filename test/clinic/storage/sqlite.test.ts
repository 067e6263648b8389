import { mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../../scripts/support/measurements.js';
import type { ClinicStore, IntakeWrite } from '../../../src/clinic/storage/clinic-store.js';
import { ClinicStoreError } from '../../../src/clinic/storage/errors.js';
import {
  CLINIC_CIPHER,
  EARLIER_CLINIC_CIPHER,
  openClinicDatabase,
} from '../../../src/clinic/storage/sqlite/database.js';
import { CLINIC_SCHEMA_VERSION } from '../../../src/clinic/storage/sqlite/migrations.js';
import { SqliteClinicStore } from '../../../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import type { SqliteDatabase } from '../../../src/store/encrypted-database.js';
import { clinicStoreContract } from './contract.js';

const KEY = Uint8Array.from(Buffer.from('4c'.repeat(32), 'hex'));

clinicStoreContract('SQLite (encrypted file)', async (options) => {
  const dir = await mkdtemp(join(tmpdir(), 'rpm-clinic-sqlite-'));
  const opened: ClinicStore[] = [];
  const openStore = async () => {
    const store = await SqliteClinicStore.open({ path: join(dir, 'clinic.db'), key: KEY, ...options });
    opened.push(store);
    return store;
  };
  return {
    store: await openStore(),
    reopen: openStore,
    cleanup: async () => {
      for (const store of opened) await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

const T0 = Date.UTC(2026, 0, 10, 8, 0, 0);
const OTHER_KEY = Uint8Array.from(Buffer.from('7d'.repeat(32), 'hex'));

describe('SqliteClinicStore on disk', () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rpm-clinic-sqlite-'));
    path = join(dir, 'clinic.db');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const marked = (n: number, marker: string): IntakeWrite => {
    const measurement = spo2Measurement(n, {
      deviceId: `${marker}-device`,
      details: { note: `${marker}-${n}` },
    });
    return {
      measurements: [
        {
          measurement,
          measuredAt: T0 + n,
          receipt: {
            gatewayId: 'gw-alpha',
            topic: 'obs',
            batchSeq: n,
            sentAt: T0,
            signerSerial: '01',
            receivedAt: T0,
          },
        },
      ],
      gaps: [],
      statuses: [],
      rejections: [],
    };
  };

  const fileBytes = (suffix: string) => readFile(`${path}${suffix}`).catch(() => Buffer.alloc(0));

  /**
   * Opening the database at `path` with another key fails with CLINIC_STORE_KEY_WRONG, with its key check file
   * and without it (then it is still a key problem, never called damage), and leaves the file as it was.
   */
  const expectWrongKeyRefused = async () => {
    const before = await readFile(path);
    await expect(SqliteClinicStore.open({ path, key: OTHER_KEY })).rejects.toMatchObject({
      code: 'CLINIC_STORE_KEY_WRONG',
    });
    await unlink(`${path}.keycheck`);
    await expect(SqliteClinicStore.open({ path, key: OTHER_KEY })).rejects.toMatchObject({
      code: 'CLINIC_STORE_KEY_WRONG',
    });
    expect((await readFile(path)).equals(before)).toBe(true);
  };

  it('leaves no plaintext in the main file, the WAL or the shared-memory file', async () => {
    const store = await SqliteClinicStore.open({ path, key: KEY });
    const marker = 'PATIENT-MARKER-5e1c';
    for (let n = 0; n < 100; n++) await store.commit(marked(n, marker));
    await store.assign({ gatewayId: 'gw-alpha', mrn: `${marker}-MRN`, from: T0, createdBy: 'admin', at: T0 });
    // While the WAL holds the pages (before close checkpoints them), then after close.
    expect((await fileBytes('-wal')).length).toBeGreaterThan(0);
    for (const suffix of ['', '-wal', '-shm']) {
      const bytes = await fileBytes(suffix);
      expect(bytes.includes(marker), `plaintext in ${suffix || 'main file'}`).toBe(false);
      expect(bytes.includes('MDC_PULS_OXIM'), `plaintext codes in ${suffix || 'main file'}`).toBe(false);
    }
    await store.close();
    const main = await readFile(path);
    expect(main.length).toBeGreaterThan(4096);
    expect(main.includes(marker)).toBe(false);
    expect(main.subarray(0, 16).toString('latin1')).not.toBe('SQLite format 3\0');
    expect((await stat(path)).mode & 0o077).toBe(0); // owner-only
  });

  it('refuses a wrong key with CLINIC_STORE_KEY_WRONG and leaves the file untouched', async () => {
    const store = await SqliteClinicStore.open({ path, key: KEY });
    await store.commit(marked(1, 'x'));
    await store.close();
    await expectWrongKeyRefused();
    // The right key still opens it (and writes the key check again).
    const again = await SqliteClinicStore.open({ path, key: KEY });
    expect(await again.countMeasurements()).toBe(1);
    await again.close();
    expect(await readFile(`${path}.keycheck`, 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
  });

  /** Whether page 1 of `path` opens under `cipher` with `key`: the error code when it does not. */
  const opensWith = (cipher: string, key: Uint8Array = KEY): string => {
    const db = new Database(path, { readonly: true });
    try {
      db.pragma(`cipher = '${cipher}'`);
      db.pragma(`key = "raw:${Buffer.from(key).toString('hex')}"`);
      db.prepare('SELECT count(*) FROM sqlite_master').get();
      return 'opens';
    } catch (error) {
      return String((error as { code?: unknown }).code);
    } finally {
      db.close();
    }
  };

  it('encrypts a new database with AEGIS-256, not ChaCha20', async () => {
    const store = await SqliteClinicStore.open({ path, key: KEY });
    await store.commit(marked(1, 'x'));
    await store.close();
    expect(CLINIC_CIPHER).toBe('aegis');
    expect(opensWith(CLINIC_CIPHER)).toBe('opens');
    expect(opensWith(EARLIER_CLINIC_CIPHER)).toBe('SQLITE_NOTADB');
    expect(opensWith(CLINIC_CIPHER, OTHER_KEY)).toBe('SQLITE_NOTADB');
  });

  it('opens a database made with ChaCha20 before AEGIS, keeps it in ChaCha20, and still refuses a wrong key', async () => {
    // A clinic database as this project made it before: ChaCha20 under the raw key, WAL, no key check file.
    const earlier = new Database(path);
    earlier.pragma(`cipher = '${EARLIER_CLINIC_CIPHER}'`);
    earlier.pragma(`key = "raw:${Buffer.from(KEY).toString('hex')}"`);
    earlier.pragma('journal_mode = WAL');
    earlier.exec('CREATE TABLE earlier_marker (n INTEGER)');
    earlier.close();

    const store = await SqliteClinicStore.open({ path, key: KEY });
    await store.commit(marked(1, 'x'));
    await store.close();
    const again = await SqliteClinicStore.open({ path, key: KEY });
    expect(await again.countMeasurements()).toBe(1);
    await again.close();
    expect(opensWith(EARLIER_CLINIC_CIPHER)).toBe('opens');
    expect(opensWith(CLINIC_CIPHER)).toBe('SQLITE_NOTADB');
    const raw = openClinicDatabase(path, KEY, { cacheKib: 1024, busyTimeoutMs: 1000 });
    expect(raw.prepare("SELECT name FROM sqlite_master WHERE name = 'earlier_marker'").pluck().get()).toBe(
      'earlier_marker',
    );
    raw.close();

    await expectWrongKeyRefused();
  });

  it('refuses a key that is not 256 bits', async () => {
    await expect(SqliteClinicStore.open({ path, key: new Uint8Array(16) })).rejects.toMatchObject({
      code: 'CLINIC_STORE_KEY_MALFORMED',
    });
  });

  it('refuses a damaged database with CLINIC_STORE_CORRUPT and leaves it where it is', async () => {
    const store = await SqliteClinicStore.open({ path, key: KEY });
    for (let n = 0; n < 50; n++) await store.commit(marked(n, 'x'));
    await store.close();
    const bytes = await readFile(path);
    bytes.fill(0x5a, 4096 + 200, 4096 + 400); // inside page 2: its authentication tag no longer matches
    await writeFile(path, bytes);
    const error = await SqliteClinicStore.open({ path, key: KEY }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ClinicStoreError);
    expect((error as ClinicStoreError).code).toBe('CLINIC_STORE_CORRUPT');
    expect((await readFile(path)).equals(bytes)).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(['clinic.db', 'clinic.db.keycheck']);
  });

  it('applies its migrations once, and refuses a database with a newer schema', async () => {
    const store = await SqliteClinicStore.open({ path, key: KEY, clock: { now: () => T0 } });
    await store.commit(marked(1, 'x'));
    await store.close();
    const reopened = await SqliteClinicStore.open({ path, key: KEY });
    await reopened.close();
    const raw = openClinicDatabase(path, KEY, { cacheKib: 1024, busyTimeoutMs: 1000 });
    expect(raw.prepare('SELECT version, applied_ms FROM schema_version ORDER BY version').all()).toEqual(
      Array.from({ length: CLINIC_SCHEMA_VERSION }, (_, i) => ({ version: i + 1, applied_ms: T0 })),
    );
    raw
      .prepare('INSERT INTO schema_version (version, applied_ms) VALUES (?, ?)')
      .run(CLINIC_SCHEMA_VERSION + 1, T0);
    raw.close();
    await expect(SqliteClinicStore.open({ path, key: KEY })).rejects.toMatchObject({
      code: 'CLINIC_STORE_SCHEMA_TOO_NEW',
    });
    // Refused without writing: the newer version is still there, the data too.
    const check = openClinicDatabase(path, KEY, { cacheKib: 1024, busyTimeoutMs: 1000 });
    expect(check.prepare('SELECT max(version) AS v FROM schema_version').get()).toEqual({
      v: CLINIC_SCHEMA_VERSION + 1,
    });
    expect(check.prepare('SELECT count(*) AS n FROM measurements').get()).toEqual({ n: 1 });
    check.close();
  });

  it('opens in WAL mode with synchronous=FULL and a bounded page cache, readable by a second connection', async () => {
    const store = await SqliteClinicStore.open({ path, key: KEY });
    await store.commit(marked(1, 'x'));
    // A dashboard's connection reads while the intake's is open (normal locking, WAL), and sees its commits.
    const reader = openClinicDatabase(path, KEY, { cacheKib: 2048, busyTimeoutMs: 1000 });
    expect(reader.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(reader.pragma('synchronous', { simple: true })).toBe(2); // FULL
    expect(reader.pragma('cache_size', { simple: true })).toBe(-2048);
    expect(reader.prepare('SELECT count(*) AS n FROM measurements').get()).toEqual({ n: 1 });
    await store.commit(marked(2, 'x'));
    expect(reader.prepare('SELECT count(*) AS n FROM measurements').get()).toEqual({ n: 2 });
    reader.close();
    await store.close();
  });

  it('keeps synchronous=FULL for intake commits around the unsynced export-queue transactions, also when one fails', async () => {
    const store = await SqliteClinicStore.open({ path, key: KEY });
    // The store's own connection: synchronous is a per-connection setting, so a second one would not tell.
    const own = (store as unknown as { readonly db: SqliteDatabase }).db;
    await store.commit(marked(1, 'x'));
    await store.assign({ gatewayId: 'gw-alpha', mrn: 'MRN-1', from: T0, createdBy: 'admin', at: T0 });
    const leased = await store.leaseExports(10, T0 + 1_000, 60_000);
    expect(leased).toHaveLength(1);
    expect(own.pragma('synchronous', { simple: true })).toBe(2);
    const id = leased[0]?.stored.measurement.id as string;
    await store.completeExports([{ measurementId: id, outcome: 'exported', at: T0 + 2_000 }]);
    expect(own.pragma('synchronous', { simple: true })).toBe(2);
    // A lease the database refuses (LIMIT takes no text: datatype mismatch) throws inside the lowered setting.
    await expect(store.leaseExports('many' as unknown as number, T0, 60_000)).rejects.toBeInstanceOf(
      ClinicStoreError,
    );
    expect(own.pragma('synchronous', { simple: true })).toBe(2);
    expect(await store.exportCounts()).toEqual({ pending: 0, exported: 1, skipped: 0, failing: 0 });
    await store.close();
  });
});
