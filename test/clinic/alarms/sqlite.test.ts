import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlarmStore } from '../../../src/clinic/alarms/alarm-store.js';
import { AlarmError } from '../../../src/clinic/alarms/errors.js';
import { ALARM_SCHEMA_VERSION } from '../../../src/clinic/alarms/sqlite/migrations.js';
import { SqliteAlarmStore } from '../../../src/clinic/alarms/sqlite/sqlite-alarm-store.js';
import { SqliteStaffStore } from '../../../src/clinic/staff/sqlite/sqlite-staff-store.js';
import type { ClinicStoreError } from '../../../src/clinic/storage/errors.js';
import { openClinicDatabase } from '../../../src/clinic/storage/sqlite/database.js';
import { SqliteClinicStore } from '../../../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import { alarmStoreContract } from './contract.js';

const KEY = Uint8Array.from(Buffer.from('3e'.repeat(32), 'hex'));
const T0 = Date.UTC(2026, 2, 2, 8, 0, 0);

alarmStoreContract('SQLite (encrypted clinic file)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rpm-alarm-sqlite-'));
  const opened: AlarmStore[] = [];
  const openStore = async () => {
    const store = await SqliteAlarmStore.open({ path: join(dir, 'clinic.db'), key: KEY });
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

describe('SqliteAlarmStore beside the clinic record and the staff', () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rpm-alarm-sqlite-'));
    path = join(dir, 'clinic.db');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('shares the encrypted file, each part on its own schema track; alarm values are encrypted at rest', async () => {
    const clinic = await SqliteClinicStore.open({ path, key: KEY });
    const staff = await SqliteStaffStore.open({ path, key: KEY });
    const alarms = await SqliteAlarmStore.open({ path, key: KEY });
    try {
      const marker = 'ALARM-MARKER-7c1e';
      await alarms.raise({
        conditionKey: marker,
        mrn: `${marker}-MRN`,
        gatewayId: 'gw-a',
        kind: 'physiological',
        priority: 'high',
        late: false,
        raisedAt: T0,
        value: 12345.678,
        details: { note: marker },
      });
      for (const suffix of ['', '-wal']) {
        const bytes = await readFile(`${path}${suffix}`).catch(() => Buffer.alloc(0));
        expect(bytes.includes(Buffer.from(marker))).toBe(false);
      }
      const db = openClinicDatabase(path, KEY, { cacheKib: 1024, busyTimeoutMs: 1000 });
      try {
        expect(db.prepare('SELECT max(version) FROM alarm_schema_version').pluck().get()).toBe(
          ALARM_SCHEMA_VERSION,
        );
        expect(db.prepare('SELECT count(*) FROM staff_schema_version').pluck().get()).toBeGreaterThan(0);
        expect(db.prepare('SELECT count(*) FROM schema_version').pluck().get()).toBeGreaterThan(0);
      } finally {
        db.close();
      }
    } finally {
      await alarms.close();
      await staff.close();
      await clinic.close();
    }
  });

  it('refuses alarm tables written by newer software; the clinic record still opens', async () => {
    await (await SqliteAlarmStore.open({ path, key: KEY })).close();
    const db = openClinicDatabase(path, KEY, { cacheKib: 1024, busyTimeoutMs: 1000 });
    db.prepare('INSERT INTO alarm_schema_version (version, applied_ms) VALUES (?, ?)').run(
      ALARM_SCHEMA_VERSION + 1,
      T0,
    );
    db.close();
    const error = await SqliteAlarmStore.open({ path, key: KEY }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AlarmError);
    expect((error as AlarmError).code).toBe('ALARM_SCHEMA_TOO_NEW');
    await (await SqliteClinicStore.open({ path, key: KEY })).close();
  });

  it('refuses another key, and use after close with the clinic database codes', async () => {
    const alarms = await SqliteAlarmStore.open({ path, key: KEY });
    await alarms.close();
    const closed = await alarms.openAlarms().catch((e: unknown) => e);
    expect((closed as ClinicStoreError).code).toBe('CLINIC_STORE_CLOSED');
    const wrong = await SqliteAlarmStore.open({ path, key: new Uint8Array(32).fill(1) }).catch(
      (e: unknown) => e,
    );
    expect((wrong as ClinicStoreError).code).toBe('CLINIC_STORE_KEY_WRONG');
  });
});
