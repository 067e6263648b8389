import pg from 'pg';
import { type Clock, systemClock } from '../../../util/clock.js';
import { ClinicStoreError } from '../../storage/errors.js';
import { pgErrorFrom } from '../../storage/postgres/errors.js';
import { listenChannel } from '../../storage/postgres/live-feed.js';
import type {
  AcknowledgeChange,
  AlarmChange,
  AlarmChangeType,
  AlarmListQuery,
  AlarmStore,
  Contact,
  EndChange,
  Leadership,
  RaiseChange,
} from '../alarm-store.js';
import { AlarmError } from '../errors.js';
import { type Alarm, latches, type NewAlarm, type PatientLimits } from '../model.js';
import {
  ALARM_COLUMNS,
  type AlarmRow,
  alarmOf,
  checkActor,
  checkAlarmId,
  checkMrn,
  checkNewAlarm,
  checkPatientLimits,
  checkTime,
  LIST_ORDER,
  type LimitRow,
  limitsOf,
  listLimit,
} from '../rows.js';
import { ALARM_LEADER_LOCK_KEY, migrateAlarms } from './migrate.js';

export interface PgAlarmStoreOptions {
  /** A pool the caller owns (and ends after close()), e.g. the clinic record's, or options for one of its own. */
  readonly pool?: pg.Pool;
  readonly connection?: pg.PoolConfig;
  /** Stamps the migration record only. Default the system clock. */
  readonly clock?: Clock;
  /**
   * Failures nobody awaits: an idle pooled connection that broke, the alarm feed's connection dropping (it
   * reconnects), a changed alarm that could not be read. Default: ignored.
   */
  readonly onError?: (error: ClinicStoreError) => void;
  /** Told when an alarm-feed listener throws; the change is stored either way. Default: ignored. */
  readonly onListenerError?: (error: unknown) => void;
  /** How long the alarm feed waits before reconnecting. Default 1 s. */
  readonly feedReconnectDelayMs?: number;
}

/**
 * The alarm feed's channel (PostgreSQL docs, NOTIFY): each change's transaction sends the alarm's id, what
 * happened and the alarm's state fields as that change left them (state, condition end, clearing and who
 * acknowledged when), never a value or an MRN (any session of the database may LISTEN). Listeners read the
 * alarm by id for the rest, which never changes, and take the state fields from the notification: the row may
 * have changed again by the time it is read, and each change must be told as it was.
 */
export const ALARM_CHANNEL = 'rpm_clinic_alarm_changed';

const CHANGE_TYPES: readonly AlarmChangeType[] = [
  'raised',
  'reactivated',
  'latched',
  'cleared',
  'acknowledged',
];

/** The fields of an alarm that its changes change, as a change left them (carried by its notification). */
type AlarmStateFields = Pick<
  Alarm,
  'state' | 'conditionEndedAt' | 'clearedAt' | 'acknowledgedBy' | 'acknowledgedAt'
>;

const STATES: readonly Alarm['state'][] = ['active', 'latched', 'cleared'];

/** A notification's payload, or undefined for anything else on the channel (sent by hand, by another tool). */
export function parseAlarmNotification(
  payload: string | undefined,
): { readonly id: number; readonly type: AlarmChangeType; readonly fields: AlarmStateFields } | undefined {
  if (payload === undefined) return undefined;
  try {
    const value = JSON.parse(payload) as Record<string, unknown> | null;
    const id = value?.id;
    const type = value?.type;
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) return undefined;
    if (!CHANGE_TYPES.includes(type as AlarmChangeType)) return undefined;
    const state = value?.state;
    if (!STATES.includes(state as Alarm['state'])) return undefined;
    const time = (key: string): number | undefined | null => {
      const t = value?.[key];
      if (t === undefined) return undefined;
      return typeof t === 'number' && Number.isSafeInteger(t) ? t : null;
    };
    const conditionEndedAt = time('conditionEndedAt');
    const clearedAt = time('clearedAt');
    const acknowledgedAt = time('acknowledgedAt');
    const acknowledgedBy = value?.acknowledgedBy;
    if (conditionEndedAt === null || clearedAt === null || acknowledgedAt === null) return undefined;
    if (acknowledgedBy !== undefined && typeof acknowledgedBy !== 'string') return undefined;
    return {
      id,
      type: type as AlarmChangeType,
      fields: {
        state: state as Alarm['state'],
        ...(conditionEndedAt === undefined ? {} : { conditionEndedAt }),
        ...(clearedAt === undefined ? {} : { clearedAt }),
        ...(acknowledgedBy === undefined ? {} : { acknowledgedBy }),
        ...(acknowledgedAt === undefined ? {} : { acknowledgedAt }),
      },
    };
  } catch {
    return undefined;
  }
}

const LIMIT_SELECT = `SELECT s.mrn, l.code, l.unit, l.below, l.above, l.for_ms, l.hysteresis, l.priority, s.set_by, s.set_at
  FROM alarm_limit_sets s LEFT JOIN alarm_limits l ON l.mrn = s.mrn`;
const OPEN_BY_KEY = `SELECT ${ALARM_COLUMNS} FROM alarms WHERE condition_key = $1 AND state <> 'cleared' FOR UPDATE`;

/**
 * The AlarmStore (src/clinic/alarms/alarm-store.ts has the contract) in the clinic's PostgreSQL database.
 *
 * Each change is one transaction that locks the row it changes (SELECT ... FOR UPDATE) before deciding, so two
 * processes acknowledging one alarm, or raising and ending one condition, take turns. A raise that finds no
 * open alarm inserts with ON CONFLICT DO NOTHING on the partial unique index of open conditions: when another
 * transaction inserted the same condition first, the insert waits for it and does nothing, and the next
 * statement (READ COMMITTED: a new snapshot per statement, PostgreSQL docs 13.2.1) finds that alarm.
 *
 * Leading: `lead` takes a session-level advisory lock (pg_try_advisory_lock) on a connection it keeps; the
 * lock lasts as long as that session, so a process that dies or loses its connection gives it up, and another
 * engine's next try gets it.
 */
export class PgAlarmStore implements AlarmStore {
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #onError: (error: ClinicStoreError) => void;
  readonly #onListenerError: (error: unknown) => void;
  readonly #feedReconnectDelayMs: number;
  readonly #subscriptions = new Set<() => Promise<void>>();
  #closed = false;

  private constructor(pool: pg.Pool, ownsPool: boolean, options: PgAlarmStoreOptions) {
    this.#pool = pool;
    this.#ownsPool = ownsPool;
    this.#onError = options.onError ?? (() => undefined);
    this.#onListenerError = options.onListenerError ?? (() => undefined);
    this.#feedReconnectDelayMs = options.feedReconnectDelayMs ?? 1000;
  }

  static async open(options: PgAlarmStoreOptions): Promise<PgAlarmStore> {
    if ((options.pool === undefined) === (options.connection === undefined)) {
      throw new ClinicStoreError(
        'CLINIC_STORE_IO',
        'PgAlarmStore.open needs exactly one of `pool` and `connection`',
      );
    }
    const ownsPool = options.pool === undefined;
    const pool = options.pool ?? new pg.Pool(options.connection);
    const store = new PgAlarmStore(pool, ownsPool, options);
    pool.on('error', store.#poolError);
    try {
      const client = await pool.connect();
      try {
        await migrateAlarms(client, (options.clock ?? systemClock).now());
      } finally {
        client.release();
      }
    } catch (error) {
      pool.off('error', store.#poolError);
      if (ownsPool) await pool.end().catch(() => undefined);
      if (error instanceof AlarmError) throw error;
      throw pgErrorFrom(error, 'opening the alarm tables');
    }
    return store;
  }

  readonly #poolError = (error: Error) => this.#onError(pgErrorFrom(error, 'an idle database connection'));

  async setLimits(limits: PatientLimits): Promise<void> {
    checkPatientLimits(limits);
    await this.#tx('setting limits', async (c) => {
      await c.query('DELETE FROM alarm_limits WHERE mrn = $1', [limits.mrn]);
      await c.query(
        `INSERT INTO alarm_limit_sets (mrn, set_by, set_at) VALUES ($1, $2, $3)
         ON CONFLICT (mrn) DO UPDATE SET set_by = excluded.set_by, set_at = excluded.set_at`,
        [limits.mrn, limits.setBy, limits.setAt],
      );
      for (const l of limits.limits) {
        await c.query(
          `INSERT INTO alarm_limits (mrn, code, unit, below, above, for_ms, hysteresis, priority)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [limits.mrn, l.code, l.unit, l.below ?? null, l.above ?? null, l.forMs, l.hysteresis, l.priority],
        );
      }
    });
  }

  async limitsOf(mrn: string): Promise<PatientLimits | undefined> {
    checkMrn(mrn);
    const { rows } = await this.#query<LimitRow>(
      'reading limits',
      `${LIMIT_SELECT} WHERE s.mrn = $1 ORDER BY l.code COLLATE "C"`,
      [mrn],
    );
    return limitsOf(rows)[0];
  }

  async allLimits(): Promise<PatientLimits[]> {
    const { rows } = await this.#query<LimitRow>(
      'reading limits',
      `${LIMIT_SELECT} ORDER BY s.mrn COLLATE "C", l.code COLLATE "C"`,
    );
    return limitsOf(rows);
  }

  async raise(alarm: NewAlarm): Promise<{ alarm: Alarm; change: RaiseChange }> {
    checkNewAlarm(alarm);
    return this.#tx('raising an alarm', async (c) => {
      const existing = async () => {
        const open = (await c.query<AlarmRow>(OPEN_BY_KEY, [alarm.conditionKey])).rows[0];
        if (open === undefined) return undefined;
        if (open.state !== 'latched') return { alarm: alarmOf(open), change: 'unchanged' as const };
        const { rows } = await c.query<AlarmRow>(
          `UPDATE alarms SET state = 'active', condition_ended_at = NULL WHERE id = $1 RETURNING ${ALARM_COLUMNS}`,
          [open.id],
        );
        await notify(c, rows[0] as AlarmRow, 'reactivated');
        return { alarm: alarmOf(rows[0] as AlarmRow), change: 'reactivated' as const };
      };
      const found = await existing();
      if (found !== undefined) return found;
      const ended = alarm.endedAt;
      const state = ended === undefined ? 'active' : latches(alarm) ? 'latched' : 'cleared';
      const { rows } = await c.query<AlarmRow>(
        `INSERT INTO alarms (condition_key, mrn, gateway_id, device_id, kind, code, priority, state, late, raised_at,
           measured_at, condition_ended_at, cleared_at, value, unit, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (condition_key) WHERE state <> 'cleared' DO NOTHING
         RETURNING ${ALARM_COLUMNS}`,
        [
          alarm.conditionKey,
          alarm.mrn,
          alarm.gatewayId,
          alarm.deviceId ?? null,
          alarm.kind,
          alarm.code ?? null,
          alarm.priority,
          state,
          alarm.late,
          alarm.raisedAt,
          alarm.measuredAt ?? null,
          ended ?? null,
          state === 'cleared' ? (ended ?? null) : null,
          alarm.value ?? null,
          alarm.unit ?? null,
          JSON.stringify(alarm.details),
        ],
      );
      if (rows[0] !== undefined) {
        await notify(c, rows[0], 'raised');
        return { alarm: alarmOf(rows[0]), change: 'raised' as const };
      }
      // Another process raised it first (the insert waited for it, then did nothing).
      const raced = await existing();
      if (raced === undefined)
        throw new ClinicStoreError('CLINIC_STORE_IO', 'raising an alarm: the open alarm vanished');
      return raced;
    });
  }

  async endCondition(
    conditionKey: string,
    at: number,
  ): Promise<{ alarm: Alarm; change: EndChange } | undefined> {
    checkTime(at, 'at');
    if (typeof conditionKey !== 'string') return undefined;
    return this.#tx('ending an alarm condition', async (c) => {
      const open = (await c.query<AlarmRow>(OPEN_BY_KEY, [conditionKey])).rows[0];
      if (open === undefined || open.state !== 'active') return undefined;
      const current = alarmOf(open);
      const stays = latches(current) && current.acknowledgedAt === undefined;
      const { rows } = await c.query<AlarmRow>(
        stays
          ? `UPDATE alarms SET state = 'latched', condition_ended_at = $2 WHERE id = $1 RETURNING ${ALARM_COLUMNS}`
          : `UPDATE alarms SET state = 'cleared', condition_ended_at = $2, cleared_at = $2 WHERE id = $1
             RETURNING ${ALARM_COLUMNS}`,
        [open.id, at],
      );
      const change = stays ? ('latched' as const) : ('cleared' as const);
      await notify(c, rows[0] as AlarmRow, change);
      return { alarm: alarmOf(rows[0] as AlarmRow), change };
    });
  }

  async acknowledge(
    id: number,
    by: string,
    at: number,
  ): Promise<{ alarm: Alarm; change: AcknowledgeChange }> {
    checkAlarmId(id);
    checkActor(by, 'by');
    checkTime(at, 'at');
    return this.#tx('acknowledging an alarm', async (c) => {
      const found = (
        await c.query<AlarmRow>(`SELECT ${ALARM_COLUMNS} FROM alarms WHERE id = $1 FOR UPDATE`, [id])
      ).rows[0];
      if (found === undefined) throw new AlarmError('ALARM_UNKNOWN', `no alarm has id ${id}`);
      if (found.acknowledged_at !== null) return { alarm: alarmOf(found), change: 'unchanged' as const };
      const clears = found.state === 'latched';
      const { rows } = await c.query<AlarmRow>(
        clears
          ? `UPDATE alarms SET acknowledged_by = $2, acknowledged_at = $3, state = 'cleared', cleared_at = $3
             WHERE id = $1 RETURNING ${ALARM_COLUMNS}`
          : `UPDATE alarms SET acknowledged_by = $2, acknowledged_at = $3 WHERE id = $1 RETURNING ${ALARM_COLUMNS}`,
        [id, by, at],
      );
      await notify(c, rows[0] as AlarmRow, 'acknowledged');
      return {
        alarm: alarmOf(rows[0] as AlarmRow),
        change: clears ? ('cleared' as const) : ('acknowledged' as const),
      };
    });
  }

  async alarm(id: number): Promise<Alarm | undefined> {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) return undefined;
    const { rows } = await this.#query<AlarmRow>(
      'reading an alarm',
      `SELECT ${ALARM_COLUMNS} FROM alarms WHERE id = $1`,
      [id],
    );
    return rows[0] === undefined ? undefined : alarmOf(rows[0]);
  }

  async openAlarms(): Promise<Alarm[]> {
    const { rows } = await this.#query<AlarmRow>(
      'reading open alarms',
      `SELECT ${ALARM_COLUMNS} FROM alarms WHERE state <> 'cleared' ORDER BY id`,
    );
    return rows.map(alarmOf);
  }

  async alarmsOf(mrn: string, query: AlarmListQuery = {}): Promise<Alarm[]> {
    checkMrn(mrn);
    const limit = listLimit(query.limit);
    const open = query.openOnly ? "AND state <> 'cleared'" : '';
    const { rows } = await this.#query<AlarmRow>(
      'listing alarms',
      `SELECT ${ALARM_COLUMNS} FROM alarms WHERE mrn = $1 ${open} ORDER BY ${LIST_ORDER} LIMIT $2`,
      [mrn, limit],
    );
    return rows.map(alarmOf);
  }

  async alarms(query: AlarmListQuery = {}): Promise<Alarm[]> {
    const limit = listLimit(query.limit);
    const open = query.openOnly ? "WHERE state <> 'cleared'" : '';
    const { rows } = await this.#query<AlarmRow>(
      'listing alarms',
      `SELECT ${ALARM_COLUMNS} FROM alarms ${open} ORDER BY ${LIST_ORDER} LIMIT $1`,
      [limit],
    );
    return rows.map(alarmOf);
  }

  async noteContacts(contacts: readonly Contact[]): Promise<void> {
    for (const c of contacts) checkTime(c.at, 'at');
    if (contacts.length === 0) return;
    await this.#tx('noting contacts', async (c) => {
      for (const contact of contacts) {
        await c.query(
          `INSERT INTO alarm_contacts (gateway_id, device_id, at) VALUES ($1, $2, $3)
           ON CONFLICT (gateway_id, device_id) DO UPDATE SET at = greatest(alarm_contacts.at, excluded.at)`,
          [contact.gatewayId, contact.deviceId ?? '', contact.at],
        );
      }
    });
  }

  async contacts(): Promise<Contact[]> {
    const { rows } = await this.#query<{ gateway_id: string; device_id: string; at: string }>(
      'reading contacts',
      'SELECT gateway_id, device_id, at FROM alarm_contacts ORDER BY gateway_id COLLATE "C", device_id COLLATE "C"',
    );
    return rows.map((r) => ({
      gatewayId: r.gateway_id,
      ...(r.device_id === '' ? {} : { deviceId: r.device_id }),
      at: Number(r.at),
    }));
  }

  async lead(onLost: (error: Error) => void): Promise<Leadership | undefined> {
    this.#open('leading');
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw pgErrorFrom(error, 'leading');
    }
    let released = false;
    const lost = (error: Error) => {
      if (!released) onLost(pgErrorFrom(error, 'the alarm engine lost its leader connection'));
    };
    try {
      const { rows } = await client.query<{ led: boolean }>(
        'SELECT pg_try_advisory_lock($1::bigint) AS led',
        [ALARM_LEADER_LOCK_KEY],
      );
      if (rows[0]?.led !== true) {
        client.release();
        return undefined;
      }
    } catch (error) {
      client.release(true);
      throw pgErrorFrom(error, 'leading');
    }
    client.on('error', lost);
    return {
      release: async () => {
        if (released) return;
        released = true;
        client.off('error', lost);
        try {
          await client.query('SELECT pg_advisory_unlock($1::bigint)', [ALARM_LEADER_LOCK_KEY]);
          client.release();
        } catch {
          // The session is gone, and its lock with it: the connection is not given back to the pool.
          client.release(true);
        }
      },
    };
  }

  async subscribe(listener: (change: AlarmChange) => void): Promise<() => Promise<void>> {
    this.#open('subscribing to the alarm feed');
    let stop: () => Promise<void>;
    try {
      stop = await listenChannel({
        connection: this.#pool.options,
        channel: ALARM_CHANNEL,
        parse: parseAlarmNotification,
        fetch: async ({ id, type, fields }): Promise<AlarmChange> => {
          const stored = await this.alarm(id);
          if (stored === undefined) {
            // Alarms are never deleted: a notification of one that is not there was not sent by this code.
            throw new ClinicStoreError(
              'CLINIC_STORE_IO',
              `the alarm feed named alarm ${id}, which is not stored`,
            );
          }
          // The state fields as this change left them; the row may already carry a later change's.
          const {
            conditionEndedAt: _ended,
            clearedAt: _cleared,
            acknowledgedBy: _by,
            acknowledgedAt: _at,
            ...fixed
          } = stored;
          return { type, alarm: { ...fixed, ...fields } };
        },
        listener,
        onError: (error) => this.#onError(pgErrorFrom(error, 'the alarm feed')),
        onListenerError: this.#onListenerError,
        reconnectDelayMs: this.#feedReconnectDelayMs,
      });
    } catch (error) {
      throw pgErrorFrom(error, 'subscribing to the alarm feed');
    }
    const unsubscribe = async () => {
      if (!this.#subscriptions.delete(unsubscribe)) return;
      await stop();
    };
    this.#subscriptions.add(unsubscribe);
    return unsubscribe;
  }

  /** Stops using the database; a pool the caller gave stays theirs to end. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#subscriptions].map((unsubscribe) => unsubscribe()));
    this.#pool.off('error', this.#poolError);
    if (this.#ownsPool) await this.#pool.end();
  }

  #open(what: string): void {
    if (this.#closed) {
      throw new ClinicStoreError(
        'CLINIC_STORE_CLOSED',
        `${what}: the clinic database was used after close()`,
      );
    }
  }

  async #query<R extends object>(
    what: string,
    text: string,
    values: readonly unknown[] = [],
  ): Promise<pg.QueryResult<R & pg.QueryResultRow>> {
    this.#open(what);
    try {
      return await this.#pool.query<R & pg.QueryResultRow>(text, [...values]);
    } catch (error) {
      throw pgErrorFrom(error, what);
    }
  }

  /** Runs `work` in one transaction on one pooled connection; rolls back on any failure. */
  async #tx<T>(what: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    this.#open(what);
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw pgErrorFrom(error, what);
    }
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (error) {
      const broken = await client.query('ROLLBACK').then(
        () => false,
        () => true,
      );
      client.release(broken);
      if (error instanceof AlarmError || error instanceof ClinicStoreError) throw error;
      throw pgErrorFrom(error, what);
    }
  }
}

/**
 * Tells the alarm feed's listeners of a change, from inside the changing transaction: PostgreSQL delivers it
 * only if and when that transaction commits, and those of different transactions in commit order (NOTIFY).
 */
async function notify(client: pg.PoolClient, row: AlarmRow, type: AlarmChangeType): Promise<void> {
  const alarm = alarmOf(row);
  const fields: AlarmStateFields = {
    state: alarm.state,
    ...(alarm.conditionEndedAt === undefined ? {} : { conditionEndedAt: alarm.conditionEndedAt }),
    ...(alarm.clearedAt === undefined ? {} : { clearedAt: alarm.clearedAt }),
    ...(alarm.acknowledgedBy === undefined ? {} : { acknowledgedBy: alarm.acknowledgedBy }),
    ...(alarm.acknowledgedAt === undefined ? {} : { acknowledgedAt: alarm.acknowledgedAt }),
  };
  await client.query('SELECT pg_notify($1, $2)', [
    ALARM_CHANNEL,
    JSON.stringify({ id: alarm.id, type, ...fields }),
  ]);
}
