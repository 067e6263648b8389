import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningPostgres, startPostgres } from '../../../scripts/support/postgres.js';
import { StaffStoreError } from '../../../src/clinic/staff/errors.js';
import { PgStaffStore } from '../../../src/clinic/staff/postgres/pg-staff-store.js';
import { STAFF_SCHEMA_VERSION } from '../../../src/clinic/staff/postgres/schema.js';
import type { StaffStore } from '../../../src/clinic/staff/staff-store.js';
import { PgClinicStore } from '../../../src/clinic/storage/postgres/pg-clinic-store.js';
import { staffStoreContract } from './contract.js';

/**
 * PgStaffStore against a real PostgreSQL 15 (scripts/support/postgres.ts). Each test gets its own database;
 * `reopen` opens another store with its own pool, as a second dashboard process would, so the contract's
 * concurrency tests race two connection pools on one row.
 */
let server: RunningPostgres;

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

staffStoreContract('PostgreSQL', async () => {
  const database = await server.createDatabase('staff');
  const opened: StaffStore[] = [];
  const open = async () => {
    // Pools large enough that concurrent calls really run on separate connections at once.
    const store = await PgStaffStore.open({ connection: { ...server.connection(database), max: 10 } });
    opened.push(store);
    return store;
  };
  return {
    store: await open(),
    reopen: open,
    cleanup: async () => {
      await Promise.all(opened.map((s) => s.close()));
      await dropDatabase(database);
    },
  };
});

const T0 = Date.UTC(2026, 2, 1, 9, 0, 0);
const HASH =
  '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';

async function withClient<T>(database: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(server.connection(database));
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function dropDatabase(database: string): Promise<void> {
  await withClient('postgres', (c) => c.query(`DROP DATABASE ${pg.escapeIdentifier(database)} WITH (FORCE)`));
}

describe('PgStaffStore in the clinic database', () => {
  it('several processes migrate one new database at once: the staff migrations run once', async () => {
    const database = await server.createDatabase('migrate');
    const stores = await Promise.all(
      Array.from({ length: 4 }, () => PgStaffStore.open({ connection: server.connection(database) })),
    );
    const clinic = await PgClinicStore.open({ connection: server.connection(database) });
    try {
      const rows = await withClient(database, (c) =>
        c.query<{ version: number }>('SELECT version FROM staff_schema ORDER BY version'),
      );
      expect(rows.rows.map((r) => r.version)).toEqual(
        Array.from({ length: STAFF_SCHEMA_VERSION }, (_, i) => i + 1),
      );
      // Both tracks live side by side in one database.
      const tables = await withClient(database, (c) =>
        c.query<{ n: string }>(
          `SELECT count(*) AS n FROM information_schema.tables WHERE table_name IN ('clinic_schema', 'staff_schema')`,
        ),
      );
      expect(Number(tables.rows[0]?.n)).toBe(2);
    } finally {
      await Promise.all([...stores, clinic].map((s) => s.close()));
      await dropDatabase(database);
    }
  });

  it('shares a pool with the caller, who ends it', async () => {
    const database = await server.createDatabase('pool');
    const pool = new pg.Pool(server.connection(database));
    try {
      const store = await PgStaffStore.open({ pool });
      const u = await store.addUser({
        username: 'pooled',
        role: 'admin',
        passwordHash: HASH,
        createdBy: 'root',
        at: T0,
      });
      await store.close();
      const { rows } = await pool.query<{ username: string }>(
        'SELECT username FROM staff_users WHERE id = $1',
        [u.id],
      );
      expect(rows[0]?.username).toBe('pooled');
    } finally {
      await pool.end();
      await dropDatabase(database);
    }
  });

  it('refuses staff tables written by newer software, changing nothing', async () => {
    const database = await server.createDatabase('newer');
    try {
      await (await PgStaffStore.open({ connection: server.connection(database) })).close();
      await withClient(database, (c) =>
        c.query('INSERT INTO staff_schema (version, applied_at) VALUES ($1, $2)', [
          STAFF_SCHEMA_VERSION + 1,
          T0,
        ]),
      );
      const error = await PgStaffStore.open({ connection: server.connection(database) }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StaffStoreError);
      expect((error as StaffStoreError).code).toBe('STAFF_SCHEMA_TOO_NEW');
    } finally {
      await dropDatabase(database);
    }
  });
});
