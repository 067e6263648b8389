import type { SqliteDatabase } from '../../../store/encrypted-database.js';
import { type Clock, systemClock } from '../../../util/clock.js';
import { ClinicStoreError } from '../../storage/errors.js';
import { clinicErrorFrom, openClinicDatabase } from '../../storage/sqlite/database.js';
import type {
  AcknowledgeChange,
  AlarmChange,
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
import { migrateAlarms } from './migrations.js';

export interface SqliteAlarmStoreOptions {
  /** The clinic's database file (the one SqliteClinicStore opens); made, with its key check, if missing. */
  readonly path: string;
  /** The clinic database's raw 256-bit key (from a KeyProvider, src/store/keys.ts). */
  readonly key: Uint8Array;
  /** Stamps the migration record only: every other time is given by the caller. Default the system clock. */
  readonly clock?: Clock;
  /** How long a write waits for another connection (the intake's) to finish its write, ms. Default 5 s. */
  readonly busyTimeoutMs?: number;
  /** Told when an alarm-feed listener throws; the change is stored either way. Default: ignored. */
  readonly onListenerError?: (error: unknown) => void;
}

/**
 * The AlarmStore (src/clinic/alarms/alarm-store.ts has the contract) in the clinic's encrypted SQLite file, on
 * a connection of its own opened like the clinic record's and the staff's (src/clinic/storage/sqlite/database.ts:
 * the same cipher, key check and WAL), so alarms and their values are encrypted at rest like the readings.
 *
 * better-sqlite3 is synchronous, so calls in one process never interleave; every change that reads before it
 * writes is one IMMEDIATE transaction, which takes the write lock first, so another process cannot come between
 * the read and the write (https://www.sqlite.org/lang_transaction.html).
 */
export class SqliteAlarmStore implements AlarmStore {
  private closed = false;
  private readonly s: ReturnType<typeof prepare>;
  /** The alarm feed: SQLite tells no other connection, so it is this object's changes, after their commit. */
  private readonly listeners = new Set<(change: AlarmChange) => void>();

  private constructor(
    private readonly db: SqliteDatabase,
    private readonly onListenerError: (error: unknown) => void,
  ) {
    this.s = prepare(db);
  }

  static async open(options: SqliteAlarmStoreOptions): Promise<SqliteAlarmStore> {
    const db = openClinicDatabase(options.path, options.key, {
      cacheKib: 2_048,
      busyTimeoutMs: options.busyTimeoutMs ?? 5_000,
    });
    try {
      migrateAlarms(db, (options.clock ?? systemClock).now());
      return new SqliteAlarmStore(db, options.onListenerError ?? (() => undefined));
    } catch (error) {
      db.close();
      throw alarmErrorFrom(error, `opening the alarm tables in ${options.path}`);
    }
  }

  private async run<T>(what: string, work: () => T): Promise<T> {
    if (this.closed)
      throw new ClinicStoreError('CLINIC_STORE_CLOSED', `${what}: the clinic database is closed`);
    try {
      return work();
    } catch (error) {
      throw alarmErrorFrom(error, what);
    }
  }

  async setLimits(limits: PatientLimits): Promise<void> {
    checkPatientLimits(limits);
    await this.run('setting limits', () =>
      this.db
        .transaction(() => {
          this.s.deleteLimits.run(limits.mrn);
          this.s.upsertLimitSet.run(limits.mrn, limits.setBy, limits.setAt);
          for (const l of limits.limits) {
            this.s.insertLimit.run(
              limits.mrn,
              l.code,
              l.unit,
              l.below ?? null,
              l.above ?? null,
              l.forMs,
              l.hysteresis,
              l.priority,
            );
          }
        })
        .immediate(),
    );
  }

  async limitsOf(mrn: string): Promise<PatientLimits | undefined> {
    checkMrn(mrn);
    return this.run('reading limits', () => limitsOf(this.s.limitsOf.all(mrn) as LimitRow[])[0]);
  }

  async allLimits(): Promise<PatientLimits[]> {
    return this.run('reading limits', () => limitsOf(this.s.allLimits.all() as LimitRow[]));
  }

  async raise(alarm: NewAlarm): Promise<{ alarm: Alarm; change: RaiseChange }> {
    checkNewAlarm(alarm);
    const result = await this.run('raising an alarm', () =>
      this.db
        .transaction(() => {
          const open = this.s.openByKey.get(alarm.conditionKey) as AlarmRow | undefined;
          if (open !== undefined) {
            if (open.state !== 'latched') return { alarm: alarmOf(open), change: 'unchanged' as const };
            const row = this.s.reactivate.get(open.id) as AlarmRow;
            return { alarm: alarmOf(row), change: 'reactivated' as const };
          }
          const ended = alarm.endedAt;
          const state = ended === undefined ? 'active' : latches(alarm) ? 'latched' : 'cleared';
          const row = this.s.insertAlarm.get({
            conditionKey: alarm.conditionKey,
            mrn: alarm.mrn,
            gatewayId: alarm.gatewayId,
            deviceId: alarm.deviceId ?? null,
            kind: alarm.kind,
            code: alarm.code ?? null,
            priority: alarm.priority,
            state,
            late: alarm.late ? 1 : 0,
            raisedAt: alarm.raisedAt,
            measuredAt: alarm.measuredAt ?? null,
            endedAt: ended ?? null,
            clearedAt: state === 'cleared' ? (ended ?? null) : null,
            value: alarm.value ?? null,
            unit: alarm.unit ?? null,
            details: JSON.stringify(alarm.details),
          }) as AlarmRow;
          return { alarm: alarmOf(row), change: 'raised' as const };
        })
        .immediate(),
    );
    if (result.change !== 'unchanged') this.tell({ type: result.change, alarm: result.alarm });
    return result;
  }

  async endCondition(
    conditionKey: string,
    at: number,
  ): Promise<{ alarm: Alarm; change: EndChange } | undefined> {
    checkTime(at, 'at');
    if (typeof conditionKey !== 'string') return undefined;
    const result = await this.run('ending an alarm condition', () =>
      this.db
        .transaction(() => {
          const open = this.s.openByKey.get(conditionKey) as AlarmRow | undefined;
          if (open === undefined || open.state !== 'active') return undefined;
          const current = alarmOf(open);
          const stays = latches(current) && current.acknowledgedAt === undefined;
          const row = (stays ? this.s.latch.get(at, open.id) : this.s.clear.get(at, at, open.id)) as AlarmRow;
          return { alarm: alarmOf(row), change: stays ? ('latched' as const) : ('cleared' as const) };
        })
        .immediate(),
    );
    if (result !== undefined) this.tell({ type: result.change, alarm: result.alarm });
    return result;
  }

  async acknowledge(
    id: number,
    by: string,
    at: number,
  ): Promise<{ alarm: Alarm; change: AcknowledgeChange }> {
    checkAlarmId(id);
    checkActor(by, 'by');
    checkTime(at, 'at');
    const result = await this.run('acknowledging an alarm', () =>
      this.db
        .transaction(() => {
          const found = this.s.byId.get(id) as AlarmRow | undefined;
          if (found === undefined) throw unknownAlarm(id);
          if (found.acknowledged_at !== null) return { alarm: alarmOf(found), change: 'unchanged' as const };
          if (found.state === 'latched') {
            const row = this.s.acknowledgeAndClear.get(by, at, at, id) as AlarmRow;
            return { alarm: alarmOf(row), change: 'cleared' as const };
          }
          const row = this.s.acknowledge.get(by, at, id) as AlarmRow;
          return { alarm: alarmOf(row), change: 'acknowledged' as const };
        })
        .immediate(),
    );
    if (result.change !== 'unchanged') this.tell({ type: 'acknowledged', alarm: result.alarm });
    return result;
  }

  async alarm(id: number): Promise<Alarm | undefined> {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) return undefined;
    return this.run('reading an alarm', () => {
      const row = this.s.byId.get(id) as AlarmRow | undefined;
      return row === undefined ? undefined : alarmOf(row);
    });
  }

  async openAlarms(): Promise<Alarm[]> {
    return this.run('reading open alarms', () => (this.s.open.all() as AlarmRow[]).map(alarmOf));
  }

  async alarmsOf(mrn: string, query: AlarmListQuery = {}): Promise<Alarm[]> {
    checkMrn(mrn);
    const limit = listLimit(query.limit);
    return this.run('listing alarms', () =>
      ((query.openOnly ? this.s.openOfPatient : this.s.ofPatient).all(mrn, limit) as AlarmRow[]).map(alarmOf),
    );
  }

  async alarms(query: AlarmListQuery = {}): Promise<Alarm[]> {
    const limit = listLimit(query.limit);
    return this.run('listing alarms', () =>
      ((query.openOnly ? this.s.openList : this.s.list).all(limit) as AlarmRow[]).map(alarmOf),
    );
  }

  async noteContacts(contacts: readonly Contact[]): Promise<void> {
    for (const c of contacts) checkTime(c.at, 'at');
    await this.run('noting contacts', () =>
      this.db
        .transaction(() => {
          for (const c of contacts) this.s.noteContact.run(c.gatewayId, c.deviceId ?? '', c.at);
        })
        .immediate(),
    );
  }

  async contacts(): Promise<Contact[]> {
    return this.run('reading contacts', () =>
      (this.s.contacts.all() as { gateway_id: string; device_id: string; at: number }[]).map((r) => ({
        gatewayId: r.gateway_id,
        ...(r.device_id === '' ? {} : { deviceId: r.device_id }),
        at: r.at,
      })),
    );
  }

  async lead(): Promise<Leadership | undefined> {
    await this.run('leading', () => undefined);
    return { release: async () => undefined };
  }

  async subscribe(listener: (change: AlarmChange) => void): Promise<() => Promise<void>> {
    await this.run('subscribing to the alarm feed', () => undefined);
    // A wrapper of its own, so one listener subscribed twice is two subscriptions.
    const entry = (change: AlarmChange) => listener(change);
    this.listeners.add(entry);
    return async () => {
      this.listeners.delete(entry);
    };
  }

  /** After the change committed (better-sqlite3 is synchronous: the transaction has returned). */
  private tell(change: AlarmChange): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }

  /** Closes this connection; the clinic store's, if any, stays open. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    try {
      this.db.close();
    } catch (error) {
      throw clinicErrorFrom(error, 'closing the alarm connection to the clinic database');
    }
  }
}

function unknownAlarm(id: number): AlarmError {
  return new AlarmError('ALARM_UNKNOWN', `no alarm has id ${id}`);
}

function alarmErrorFrom(error: unknown, what: string): AlarmError | ClinicStoreError {
  return error instanceof AlarmError ? error : clinicErrorFrom(error, what);
}

function prepare(db: SqliteDatabase) {
  const one = `SELECT ${ALARM_COLUMNS} FROM alarms`;
  return {
    deleteLimits: db.prepare('DELETE FROM alarm_limits WHERE mrn = ?'),
    upsertLimitSet: db.prepare(
      `INSERT INTO alarm_limit_sets (mrn, set_by, set_at) VALUES (?, ?, ?)
       ON CONFLICT (mrn) DO UPDATE SET set_by = excluded.set_by, set_at = excluded.set_at`,
    ),
    insertLimit: db.prepare(
      `INSERT INTO alarm_limits (mrn, code, unit, below, above, for_ms, hysteresis, priority)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    limitsOf: db.prepare(
      `SELECT s.mrn, l.code, l.unit, l.below, l.above, l.for_ms, l.hysteresis, l.priority, s.set_by, s.set_at
       FROM alarm_limit_sets s LEFT JOIN alarm_limits l ON l.mrn = s.mrn WHERE s.mrn = ? ORDER BY l.code`,
    ),
    allLimits: db.prepare(
      `SELECT s.mrn, l.code, l.unit, l.below, l.above, l.for_ms, l.hysteresis, l.priority, s.set_by, s.set_at
       FROM alarm_limit_sets s LEFT JOIN alarm_limits l ON l.mrn = s.mrn ORDER BY s.mrn, l.code`,
    ),
    openByKey: db.prepare(`${one} WHERE condition_key = ? AND state <> 'cleared'`),
    byId: db.prepare(`${one} WHERE id = ?`),
    insertAlarm: db.prepare(
      `INSERT INTO alarms (condition_key, mrn, gateway_id, device_id, kind, code, priority, state, late, raised_at,
         measured_at, condition_ended_at, cleared_at, value, unit, details)
       VALUES (@conditionKey, @mrn, @gatewayId, @deviceId, @kind, @code, @priority, @state, @late, @raisedAt,
         @measuredAt, @endedAt, @clearedAt, @value, @unit, @details)
       RETURNING ${ALARM_COLUMNS}`,
    ),
    reactivate: db.prepare(
      `UPDATE alarms SET state = 'active', condition_ended_at = NULL WHERE id = ? RETURNING ${ALARM_COLUMNS}`,
    ),
    latch: db.prepare(
      `UPDATE alarms SET state = 'latched', condition_ended_at = ? WHERE id = ? RETURNING ${ALARM_COLUMNS}`,
    ),
    clear: db.prepare(
      `UPDATE alarms SET state = 'cleared', condition_ended_at = ?, cleared_at = ? WHERE id = ?
       RETURNING ${ALARM_COLUMNS}`,
    ),
    acknowledge: db.prepare(
      `UPDATE alarms SET acknowledged_by = ?, acknowledged_at = ? WHERE id = ? RETURNING ${ALARM_COLUMNS}`,
    ),
    acknowledgeAndClear: db.prepare(
      `UPDATE alarms SET acknowledged_by = ?, acknowledged_at = ?, state = 'cleared', cleared_at = ? WHERE id = ?
       RETURNING ${ALARM_COLUMNS}`,
    ),
    open: db.prepare(`${one} WHERE state <> 'cleared' ORDER BY id`),
    ofPatient: db.prepare(`${one} WHERE mrn = ? ORDER BY ${LIST_ORDER} LIMIT ?`),
    openOfPatient: db.prepare(`${one} WHERE mrn = ? AND state <> 'cleared' ORDER BY ${LIST_ORDER} LIMIT ?`),
    list: db.prepare(`${one} ORDER BY ${LIST_ORDER} LIMIT ?`),
    openList: db.prepare(`${one} WHERE state <> 'cleared' ORDER BY ${LIST_ORDER} LIMIT ?`),
    noteContact: db.prepare(
      `INSERT INTO alarm_contacts (gateway_id, device_id, at) VALUES (?, ?, ?)
       ON CONFLICT (gateway_id, device_id) DO UPDATE SET at = max(at, excluded.at)`,
    ),
    contacts: db.prepare(
      'SELECT gateway_id, device_id, at FROM alarm_contacts ORDER BY gateway_id, device_id',
    ),
  };
}
