import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningPostgres, startPostgres } from '../../../scripts/support/postgres.js';
import type { AlarmChange, AlarmStore } from '../../../src/clinic/alarms/alarm-store.js';
import { AlarmEngine } from '../../../src/clinic/alarms/engine.js';
import { AlarmError } from '../../../src/clinic/alarms/errors.js';
import { ALARM_CHANNEL, PgAlarmStore } from '../../../src/clinic/alarms/postgres/pg-alarm-store.js';
import { ALARM_SCHEMA_VERSION } from '../../../src/clinic/alarms/postgres/schema.js';
import { PgStaffStore } from '../../../src/clinic/staff/postgres/pg-staff-store.js';
import { ClinicStoreError } from '../../../src/clinic/storage/errors.js';
import { PgClinicStore } from '../../../src/clinic/storage/postgres/pg-clinic-store.js';
import { VirtualScheduler } from '../../../src/util/scheduler.js';
import { until } from '../../support/until.js';
import { alarmStoreContract } from './contract.js';

/**
 * PgAlarmStore against a real PostgreSQL 15 (scripts/support/postgres.ts). Each test gets its own database;
 * `reopen` opens another store with its own pool, as a second process would, so the contract's concurrency
 * tests race two pools on one row.
 */
let server: RunningPostgres;

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

alarmStoreContract('PostgreSQL', async () => {
  const database = await server.createDatabase('alarms');
  const opened: AlarmStore[] = [];
  const open = async () => {
    const store = await PgAlarmStore.open({ connection: { ...server.connection(database), max: 10 } });
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

const T0 = Date.UTC(2026, 2, 2, 8, 0, 0);

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

describe('PgAlarmStore in the clinic database', () => {
  it('several processes migrate one new database at once, beside the clinic record and the staff', async () => {
    const database = await server.createDatabase('migrate');
    const stores = await Promise.all(
      Array.from({ length: 4 }, () => PgAlarmStore.open({ connection: server.connection(database) })),
    );
    const clinic = await PgClinicStore.open({ connection: server.connection(database) });
    const staff = await PgStaffStore.open({ connection: server.connection(database) });
    try {
      const rows = await withClient(database, (c) =>
        c.query<{ version: number }>('SELECT version FROM alarm_schema ORDER BY version'),
      );
      expect(rows.rows.map((r) => r.version)).toEqual(
        Array.from({ length: ALARM_SCHEMA_VERSION }, (_, i) => i + 1),
      );
    } finally {
      await Promise.all([...stores, clinic, staff].map((s) => s.close()));
      await dropDatabase(database);
    }
  });

  it('refuses alarm tables written by newer software, changing nothing', async () => {
    const database = await server.createDatabase('newer');
    try {
      await (await PgAlarmStore.open({ connection: server.connection(database) })).close();
      await withClient(database, (c) =>
        c.query('INSERT INTO alarm_schema (version, applied_at) VALUES ($1, $2)', [
          ALARM_SCHEMA_VERSION + 1,
          T0,
        ]),
      );
      const error = await PgAlarmStore.open({ connection: server.connection(database) }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(AlarmError);
      expect((error as AlarmError).code).toBe('ALARM_SCHEMA_TOO_NEW');
    } finally {
      await dropDatabase(database);
    }
  });

  it('one leader at a time: a second process waits until the first releases or its session ends', async () => {
    const database = await server.createDatabase('leader');
    const a = await PgAlarmStore.open({ connection: server.connection(database) });
    const b = await PgAlarmStore.open({ connection: server.connection(database) });
    try {
      const first = await a.lead(() => undefined);
      expect(first).toBeDefined();
      expect(await b.lead(() => undefined)).toBeUndefined();
      await first?.release();
      let tell: (error: Error) => void = () => undefined;
      const lost = new Promise<Error>((resolve) => {
        tell = resolve;
      });
      const second = await b.lead((error) => tell(error));
      expect(second).toBeDefined();
      expect(await a.lead(() => undefined)).toBeUndefined();
      // The leader's session is killed (as when its process crashes): the loss is told, and the lock is gone.
      // pg_terminate_backend with a timeout waits until the session ended (PostgreSQL 14 and later).
      await withClient(database, (c) =>
        c.query(
          "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks WHERE locktype = 'advisory' AND granted",
        ),
      );
      expect(await lost).toBeInstanceOf(ClinicStoreError);
      const third = await a.lead(() => undefined);
      expect(third).toBeDefined();
      await third?.release();
      await second?.release();
    } finally {
      await a.close();
      await b.close();
      await dropDatabase(database);
    }
  });

  it('of two engines on one database, one leads and tells each alarm once; the standby takes over when it stops', async () => {
    const database = await server.createDatabase('engines');
    const scheduler = new VirtualScheduler(T0);
    const clinics = [
      await PgClinicStore.open({ connection: server.connection(database) }),
      await PgClinicStore.open({ connection: server.connection(database) }),
    ];
    const stores = [
      await PgAlarmStore.open({ connection: server.connection(database) }),
      await PgAlarmStore.open({ connection: server.connection(database) }),
    ];
    const told: string[][] = [[], []];
    const engines = [0, 1].map(
      (i) =>
        new AlarmEngine({
          clinic: clinics[i] as PgClinicStore,
          alarms: stores[i] as AlarmStore,
          scheduler,
          settings: { leaderRetryMs: 10_000 },
        }),
    );
    for (const [i, engine] of engines.entries()) {
      engine.subscribe((e) => told[i]?.push(`${e.type}:${e.alarm.kind}`));
    }
    try {
      await clinics[0]?.assign({
        gatewayId: 'gw-pg-1',
        mrn: 'MRN-PG',
        from: T0 - 3_600_000,
        createdBy: 'admin',
        at: T0,
      });
      expect(await engines[0]?.start()).toBe('leading');
      expect(await engines[1]?.start()).toBe('standby');
      const gapRaised = new Promise<void>((resolve) =>
        engines[0]?.subscribe((e) => {
          if (e.alarm.kind === 'gap') resolve();
        }),
      );
      // Committed through the second process's store: the live feed (LISTEN/NOTIFY) reaches the leader.
      await clinics[1]?.commit({
        measurements: [],
        gaps: [
          {
            gap: {
              type: 'gap',
              id: 'g-pg-1',
              deviceId: 'dev-ox-1',
              count: 3,
              firstTime: new Date(T0 - 60_000).toISOString(),
              lastTime: new Date(T0 - 30_000).toISOString(),
              reason: 'evicted-full',
              recordedAt: new Date(T0).toISOString(),
            },
            receipt: {
              gatewayId: 'gw-pg-1',
              topic: 'obs',
              batchSeq: 1,
              sentAt: T0,
              signerSerial: '0a',
              receivedAt: T0,
            },
          },
        ],
        statuses: [],
        rejections: [],
      });
      await gapRaised;
      await engines[0]?.idle();
      await engines[1]?.idle();
      expect(told).toEqual([['raised:gap'], []]);
      await engines[0]?.stop();
      await scheduler.advanceAsync(10_000);
      await engines[1]?.leading;
      expect(engines[1]?.role).toBe('leading');
    } finally {
      for (const engine of engines) await engine.stop();
      for (const s of [...stores, ...clinics]) await s.close();
      await dropDatabase(database);
    }
  });

  it("tells a store's alarm feed the changes another process stored; the channel carries no value or MRN", async () => {
    const database = await server.createDatabase('feed');
    const dashboard = await PgAlarmStore.open({ connection: server.connection(database) });
    const leader = await PgAlarmStore.open({ connection: server.connection(database) });
    const heard: AlarmChange[] = [];
    const payloads: string[] = [];
    const spy = new pg.Client(server.connection(database));
    try {
      await spy.connect();
      spy.on('notification', (n) => payloads.push(n.payload ?? ''));
      await spy.query(`LISTEN ${ALARM_CHANNEL}`);
      await dashboard.subscribe((change) => heard.push(change));
      // Garbage on the channel (by hand, another tool) is ignored, and the feed goes on.
      await withClient(database, (c) => c.query(`NOTIFY ${ALARM_CHANNEL}, '{"id":"x"}'`));
      const raised = await leader.raise({
        conditionKey: 'feed-pg',
        mrn: 'MRN-FEED-77',
        gatewayId: 'gw-pg-1',
        deviceId: 'dev-ox-1',
        kind: 'physiological',
        code: 'MDC_PULS_OXIM_PULS_RATE',
        priority: 'high',
        late: false,
        raisedAt: T0,
        measuredAt: T0,
        value: 141.5,
        unit: '/min',
        details: { side: 'above', limit: 120 },
      });
      await until('the raise at the other process', () => heard.length === 1);
      expect(heard[0]).toEqual({ type: 'raised', alarm: raised.alarm });
      await dashboard.acknowledge(raised.alarm.id, 'dr.lee', T0 + 1000);
      await leader.endCondition('feed-pg', T0 + 2000);
      await until('the acknowledgement and the end', () => heard.length === 3);
      expect(heard.map((c) => [c.type, c.alarm.state, c.alarm.acknowledgedBy])).toEqual([
        ['raised', 'active', undefined],
        ['acknowledged', 'active', 'dr.lee'],
        ['cleared', 'cleared', 'dr.lee'],
      ]);
      // The channel carries ids, what happened and the state fields as each change left them, never a value
      // or an MRN: any session of the database may LISTEN.
      await until('every notification at the spy', () => payloads.length === 4);
      const id = raised.alarm.id;
      expect(payloads.slice(1).map((p) => JSON.parse(p))).toEqual([
        { id, type: 'raised', state: 'active' },
        { id, type: 'acknowledged', state: 'active', acknowledgedBy: 'dr.lee', acknowledgedAt: T0 + 1000 },
        {
          id,
          type: 'cleared',
          state: 'cleared',
          conditionEndedAt: T0 + 2000,
          clearedAt: T0 + 2000,
          acknowledgedBy: 'dr.lee',
          acknowledgedAt: T0 + 1000,
        },
      ]);
      expect(payloads.join()).not.toMatch(/MRN-FEED|141/);
    } finally {
      await spy.end();
      await dashboard.close();
      await leader.close();
      await dropDatabase(database);
    }
  });
});
