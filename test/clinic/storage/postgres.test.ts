import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../../scripts/support/measurements.js';
import { type RunningPostgres, startPostgres } from '../../../scripts/support/postgres.js';
import type {
  ClinicStore,
  CommittedEvent,
  IncomingMeasurement,
  IntakeWrite,
} from '../../../src/clinic/storage/clinic-store.js';
import { ClinicStoreError } from '../../../src/clinic/storage/errors.js';
import {
  PgClinicStore,
  type PgClinicStoreOptions,
} from '../../../src/clinic/storage/postgres/pg-clinic-store.js';
import { SCHEMA_VERSION } from '../../../src/clinic/storage/postgres/schema.js';
import { ManualClock } from '../../../src/util/clock.js';
import { until } from '../../support/until.js';
import { clinicStoreContract } from './contract.js';

/**
 * PgClinicStore against a real PostgreSQL 15 (scripts/support/postgres.ts starts one for this file). Each test
 * gets its own database. Besides the shared contract, the PostgreSQL-only promises: several stores (as several
 * intake processes would hold) on one database, with their own connection pools.
 */
let server: RunningPostgres;

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

clinicStoreContract('PostgreSQL', async (options) => {
  const database = await server.createDatabase('contract');
  const opened: ClinicStore[] = [];
  const open = async () => {
    const store = await PgClinicStore.open({
      connection: server.connection(database),
      clock: options.clock,
      maxRejectedRows: options.maxRejectedRows,
      maxQuarantineBytes: options.maxQuarantineBytes,
    });
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

const T0 = Date.UTC(2026, 0, 10, 8, 0, 0);
const GW = 'gw-alpha';

function reading(n: number, gatewayId = GW): IncomingMeasurement {
  const at = T0 + n * 1000;
  const base = spo2Measurement(n, { time: new Date(at).toISOString() });
  return {
    measurement: { ...base, id: `${base.id}-${gatewayId}` },
    measuredAt: at,
    receipt: {
      gatewayId,
      topic: 'obs',
      batchSeq: n,
      sentAt: at,
      signerSerial: '3f9a01',
      receivedAt: at + 100,
    },
  };
}

const write = (measurements: readonly IncomingMeasurement[]): IntakeWrite => ({
  measurements,
  gaps: [],
  statuses: [],
  rejections: [],
});

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

/** `count` stores on one new database, each with its own pool (as separate intake processes). */
async function stores(
  count: number,
  options: Partial<PgClinicStoreOptions> = {},
): Promise<{ database: string; stores: PgClinicStore[]; close: () => Promise<void> }> {
  const database = await server.createDatabase('multi');
  const clock = new ManualClock(T0 + 86_400_000);
  const opened = await Promise.all(
    Array.from({ length: count }, () =>
      PgClinicStore.open({ connection: { ...server.connection(database), max: 4 }, clock, ...options }),
    ),
  );
  return {
    database,
    stores: opened,
    close: async () => {
      await Promise.all(opened.map((s) => s.close()));
      await dropDatabase(database);
    },
  };
}

describe('PgClinicStore: several intake processes on one database', () => {
  it('migrates exactly once when several processes open a new database at once', async () => {
    const { database, close } = await stores(5);
    try {
      const versions = await withClient(database, (c) =>
        c.query<{ version: number }>('SELECT version FROM clinic_schema ORDER BY version'),
      );
      expect(versions.rows.map((r) => r.version)).toEqual(
        Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1),
      );
    } finally {
      await close();
    }
  });

  it('refuses a database written by newer software, and changes nothing in it', async () => {
    const {
      database,
      stores: [first],
      close,
    } = await stores(1);
    try {
      await first?.commit(write([reading(1)]));
      await withClient(database, (c) =>
        c.query('INSERT INTO clinic_schema (version, applied_at) VALUES ($1, 0)', [SCHEMA_VERSION + 1]),
      );
      const error = await PgClinicStore.open({ connection: server.connection(database) }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ClinicStoreError);
      expect((error as ClinicStoreError).code).toBe('CLINIC_STORE_SCHEMA_TOO_NEW');
      expect(await first?.countMeasurements()).toBe(1);
    } finally {
      await close();
    }
  });

  it('two processes committing overlapping batches at once store every id exactly once, without deadlocks', async () => {
    const {
      stores: [a, b],
      close,
    } = await stores(2);
    if (a === undefined || b === undefined) throw new Error('unreachable');
    try {
      const rounds = 8;
      const all = Array.from({ length: rounds * 2000 }, (_, n) => reading(n));
      const inserted: string[] = [];
      let duplicates = 0;
      // Each round the two processes commit the same 2,000 items in opposite orders: a deadlock if rows were
      // locked in input order (each would hold ids the other waits for).
      for (let round = 0; round < rounds; round++) {
        const items = all.slice(round * 2000, (round + 1) * 2000);
        const outcomes = await Promise.all([a.commit(write(items)), b.commit(write([...items].reverse()))]);
        for (const outcome of outcomes) {
          inserted.push(...outcome.inserted);
          duplicates += outcome.duplicates;
        }
      }
      const unique = new Set(all.map((r) => r.measurement.id));
      expect(inserted.length).toBe(unique.size);
      expect(new Set(inserted).size).toBe(unique.size);
      expect(duplicates).toBe(rounds * 2000);
      expect((await b.measurementIds()).sort()).toEqual([...unique].sort());
    } finally {
      await close();
    }
  });

  it('a subscriber on one process is told what another process committed, large commits in full and in order', async () => {
    const {
      stores: [listener, writer],
      close,
    } = await stores(2);
    if (listener === undefined || writer === undefined) throw new Error('unreachable');
    try {
      const events: CommittedEvent[] = [];
      const stop = await listener.subscribe((event) => events.push(event));
      // 400 ids of ~40 bytes: more than one 8000-byte NOTIFY payload.
      const big = Array.from({ length: 400 }, (_, n) => reading(n));
      const last = reading(1000);
      await writer.commit(write(big));
      await writer.commit(write([last]));
      await until('the listener was told the last commit', () =>
        events.some((e) => e.measurements.some((m) => m.measurement.id === last.measurement.id)),
      );
      expect(events.length).toBeGreaterThan(2); // the big commit came in chunks
      const told = events.flatMap((e) => e.measurements.map((m) => m.measurement.id));
      expect(told).toEqual([...big, last].map((r) => r.measurement.id));
      expect(events.at(-1)?.measurements[0]?.measurement).toEqual(last.measurement);
      await stop();
    } finally {
      await close();
    }
  });

  it('the live feed reconnects when its connection is lost, and says so', async () => {
    const errors: ClinicStoreError[] = [];
    const {
      database,
      stores: [store],
      close,
    } = await stores(1, {
      feedReconnectDelayMs: 20,
      onError: (error) => errors.push(error),
    });
    if (store === undefined) throw new Error('unreachable');
    const listeners = () =>
      withClient(database, async (c) =>
        (
          await c.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN %'`,
            [database],
          )
        ).rows.map((r) => r.pid),
      );
    try {
      const events: CommittedEvent[] = [];
      const stop = await store.subscribe((event) => events.push(event));
      const [before] = await listeners();
      await withClient(database, (c) => c.query('SELECT pg_terminate_backend($1)', [before]));
      await until('the feed told about the lost connection', () => errors.length > 0);
      expect(errors[0]?.code).toBe('CLINIC_STORE_UNREACHABLE');
      await until('the feed listens again on a new connection', async () => {
        const now = await listeners();
        return now.length === 1 && now[0] !== before;
      });
      const r = reading(1);
      await store.commit(write([r]));
      await until('the feed told the commit made after reconnecting', () => events.length > 0);
      expect(events[0]?.measurements.map((m) => m.measurement.id)).toEqual([r.measurement.id]);
      await stop();
      expect(await listeners()).toEqual([]);
    } finally {
      await close();
    }
  });

  it('a commit that fails stores nothing and tells the feed nothing; the error names no value', async () => {
    const {
      stores: [store],
      close,
    } = await stores(1);
    if (store === undefined) throw new Error('unreachable');
    try {
      const events: CommittedEvent[] = [];
      const stop = await store.subscribe((event) => events.push(event));
      const good = reading(1);
      // 1.5 is not epoch milliseconds: the bigint column refuses it, and the whole transaction goes.
      const bad = { ...reading(2), measuredAt: 1.5 };
      const error = await store.commit(write([good, bad])).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ClinicStoreError);
      expect((error as ClinicStoreError).code).toBe('CLINIC_STORE_IO');
      expect((error as ClinicStoreError).message).not.toContain('1.5');
      expect(await store.countMeasurements()).toBe(0);
      // The feed's next event is the next commit's: nothing of the failed one came before it.
      const after = reading(3);
      await store.commit(write([after]));
      await until('the feed told the next commit', () => events.length > 0);
      expect(events.map((e) => e.measurements.map((m) => m.measurement.id))).toEqual([
        [after.measurement.id],
      ]);
      await stop();
    } finally {
      await close();
    }
  });

  it('three exporters leasing at once never lease the same item', async () => {
    const { stores: exporters, close } = await stores(3);
    const [first] = exporters;
    if (first === undefined) throw new Error('unreachable');
    try {
      const items = Array.from({ length: 300 }, (_, n) => reading(n));
      await first.commit(write(items));
      await first.assign({ gatewayId: GW, mrn: 'MRN-1', from: 0, createdBy: 'admin', at: T0 });
      const now = T0 + 2 * 86_400_000;
      const leasedBy = await Promise.all(
        exporters.map(async (store) => {
          const mine: string[] = [];
          for (;;) {
            const batch = await store.leaseExports(7, now, 600_000);
            if (batch.length === 0) return mine;
            mine.push(...batch.map((i) => i.stored.measurement.id));
          }
        }),
      );
      const all = leasedBy.flat();
      expect(all.length).toBe(items.length);
      expect(new Set(all).size).toBe(items.length);
      // Each of them got some: they really did lease side by side.
      expect(leasedBy.filter((mine) => mine.length > 0).length).toBeGreaterThan(1);
    } finally {
      await close();
    }
  });

  it("works on the caller's pool, whose options also open the feed's connection, and leaves the pool open", async () => {
    const database = await server.createDatabase('pool');
    const pool = new pg.Pool({ ...server.connection(database), max: 2 });
    try {
      const store = await PgClinicStore.open({ pool });
      const events: CommittedEvent[] = [];
      const stop = await store.subscribe((event) => events.push(event));
      const r = reading(1);
      await store.commit(write([r]));
      await until('the feed told the commit', () => events.length > 0);
      await stop();
      await store.close();
      expect((await pool.query<{ n: string }>('SELECT count(*) AS n FROM measurements')).rows[0]?.n).toBe(
        '1',
      );
    } finally {
      await pool.end();
      await dropDatabase(database);
    }
  });

  it('prepareCommits opens the commit connections with their staging tables, and keeps them while idle', async () => {
    const database = await server.createDatabase('prepare');
    const application = 'rpm-prepare-test';
    const idleMs = 10;
    const store = await PgClinicStore.open({
      connection: {
        ...server.connection(database),
        application_name: application,
        idleTimeoutMillis: idleMs,
      },
    });
    const backends = () =>
      withClient(database, async (c) =>
        (
          await c.query<{ pid: number }>(
            'SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid',
            [application],
          )
        ).rows.map((r) => r.pid),
      );
    try {
      await store.prepareCommits(2);
      const prepared = await backends();
      expect(prepared).toHaveLength(2);
      // Each has its session's staging tables (temporary tables live in one temporary schema per backend).
      const staging = await withClient(database, (c) =>
        c.query<{ n: string }>(
          "SELECT count(*) AS n FROM pg_class WHERE relname = 'intake_measurements' AND relpersistence = 't'",
        ),
      );
      expect(staging.rows[0]?.n).toBe('2');
      // The pool's idle timers were armed when prepareCommits released the connections; a timer of the same
      // duration armed now fires after them (Node runs timers of one duration in the order they were made).
      await new Promise((resolve) => setTimeout(resolve, idleMs));
      // Two commits at once run on the prepared connections: no backend was opened for them.
      await Promise.all([store.commit(write([reading(1)])), store.commit(write([reading(2)]))]);
      expect(await backends()).toEqual(prepared);
      expect(await store.countMeasurements()).toBe(2);
    } finally {
      await store.close();
      await dropDatabase(database);
    }
  });

  it('prepareCommits refuses a count that is not a whole number of connections, 1 or more', async () => {
    const {
      stores: [store],
      close,
    } = await stores(1);
    try {
      for (const count of [0, -1, 1.5]) {
        await expect(store?.prepareCommits(count)).rejects.toMatchObject({ code: 'CLINIC_STORE_IO' });
      }
    } finally {
      await close();
    }
  });

  it('refuses bad options with a typed error, before connecting', async () => {
    for (const options of [
      {},
      { connection: server.connection(), pool: new pg.Pool(server.connection()) },
      { connection: server.connection(), maxRejectedRows: -1 },
      { connection: server.connection(), maxQuarantineBytes: 1.5 },
    ]) {
      const error = await PgClinicStore.open(options).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ClinicStoreError);
      expect((error as ClinicStoreError).code).toBe('CLINIC_STORE_IO');
      await options.pool?.end();
    }
  });

  it('connects with a password, and a wrong one is a typed error without the password in it', async () => {
    const error = await PgClinicStore.open({
      connection: { ...server.connection(), password: 'not-the-password' },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ClinicStoreError);
    expect((error as ClinicStoreError).code).toBe('CLINIC_STORE_UNREACHABLE');
    expect((error as ClinicStoreError).message).not.toContain('not-the-password');
    expect((error as ClinicStoreError).message).toMatch(/password authentication failed/);
  });
});
