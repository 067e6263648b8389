import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../../scripts/support/measurements.js';
import { StaffStoreError } from '../../../src/clinic/staff/errors.js';
import { STAFF_SCHEMA_VERSION } from '../../../src/clinic/staff/sqlite/migrations.js';
import { SqliteStaffStore } from '../../../src/clinic/staff/sqlite/sqlite-staff-store.js';
import type { StaffStore } from '../../../src/clinic/staff/staff-store.js';
import { ClinicStoreError } from '../../../src/clinic/storage/errors.js';
import { openClinicDatabase } from '../../../src/clinic/storage/sqlite/database.js';
import { SqliteClinicStore } from '../../../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import { staffStoreContract } from './contract.js';

const KEY = Uint8Array.from(Buffer.from('4c'.repeat(32), 'hex'));
const OTHER_KEY = Uint8Array.from(Buffer.from('7d'.repeat(32), 'hex'));
const T0 = Date.UTC(2026, 2, 1, 9, 0, 0);
const HASH =
  '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';

staffStoreContract('SQLite (encrypted clinic file)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rpm-staff-sqlite-'));
  const opened: StaffStore[] = [];
  const openStore = async () => {
    const store = await SqliteStaffStore.open({ path: join(dir, 'clinic.db'), key: KEY });
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

describe('SqliteStaffStore beside the clinic record', () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rpm-staff-sqlite-'));
    path = join(dir, 'clinic.db');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('shares the encrypted file with SqliteClinicStore, both connections open and writing, each on its own schema track', async () => {
    const clinic = await SqliteClinicStore.open({ path, key: KEY });
    const staff = await SqliteStaffStore.open({ path, key: KEY });
    try {
      const marker = 'STAFF-MARKER-91d2';
      const user = await staff.addUser({
        username: 'dr.marker',
        role: 'clinician',
        passwordHash: HASH,
        createdBy: marker,
        at: T0,
      });
      await staff.addToCareTeam(`${marker}-MRN`, user.id, marker, T0);
      const measurement = spo2Measurement(1);
      await clinic.commit({
        measurements: [
          {
            measurement,
            measuredAt: T0,
            receipt: {
              gatewayId: 'gw-a',
              topic: 'obs',
              batchSeq: 1,
              sentAt: T0,
              signerSerial: '01',
              receivedAt: T0,
            },
          },
        ],
        gaps: [],
        statuses: [],
        rejections: [],
      });
      expect(await clinic.countMeasurements()).toBe(1);
      expect(await staff.patientsOf(user.id)).toEqual([`${marker}-MRN`]);
      // Encrypted at rest like the readings: no staff data in the file or its WAL.
      for (const suffix of ['', '-wal']) {
        const bytes = await readFile(`${path}${suffix}`).catch(() => Buffer.alloc(0));
        expect(bytes.includes(Buffer.from(marker))).toBe(false);
        expect(bytes.includes(Buffer.from('dr.marker'))).toBe(false);
      }
      const db = openClinicDatabase(path, KEY, { cacheKib: 1024, busyTimeoutMs: 1000 });
      try {
        expect(db.prepare('SELECT max(version) FROM staff_schema_version').pluck().get()).toBe(
          STAFF_SCHEMA_VERSION,
        );
        expect(db.prepare('SELECT count(*) FROM schema_version').pluck().get()).toBeGreaterThan(0);
        expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      } finally {
        db.close();
      }
    } finally {
      await staff.close();
      await clinic.close();
    }
    // Either opens a file the other made.
    const again = await SqliteClinicStore.open({ path, key: KEY });
    expect(await again.countMeasurements()).toBe(1);
    await again.close();
  });

  it('refuses another key and leaves the file untouched', async () => {
    const staff = await SqliteStaffStore.open({ path, key: KEY });
    await staff.close();
    const before = await readFile(path);
    const error = await SqliteStaffStore.open({ path, key: OTHER_KEY }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClinicStoreError);
    expect((error as ClinicStoreError).code).toBe('CLINIC_STORE_KEY_WRONG');
    expect((await readFile(path)).equals(before)).toBe(true);
  });

  it('refuses staff tables written by newer software, without touching them', async () => {
    await (await SqliteStaffStore.open({ path, key: KEY })).close();
    const db = openClinicDatabase(path, KEY, { cacheKib: 1024, busyTimeoutMs: 1000 });
    db.prepare('INSERT INTO staff_schema_version (version, applied_ms) VALUES (?, ?)').run(
      STAFF_SCHEMA_VERSION + 1,
      T0,
    );
    db.close();
    const error = await SqliteStaffStore.open({ path, key: KEY }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StaffStoreError);
    expect((error as StaffStoreError).code).toBe('STAFF_SCHEMA_TOO_NEW');
    // The clinic record's own track is not the staff's: the intake still opens.
    const clinic = await SqliteClinicStore.open({ path, key: KEY });
    await clinic.close();
  });

  it('refuses use after close with the clinic database code', async () => {
    const staff = await SqliteStaffStore.open({ path, key: KEY });
    await staff.close();
    const error = await staff.listUsers().catch((e: unknown) => e);
    expect((error as ClinicStoreError).code).toBe('CLINIC_STORE_CLOSED');
  });
});
