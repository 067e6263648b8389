import type { Alarm, NewAlarm, PatientLimits } from './model.js';

/**
 * The alarms' state, behind one interface with the same two engines as the clinic's record (SQLite for one
 * machine, PostgreSQL when several processes share one clinic), in the same database, on a migration track of
 * its own (like the staff tables): the alarms and the intake are released apart. test/clinic/alarms/contract.ts
 * is the contract both must pass.
 *
 * The store keeps the rules that must hold whoever writes: at most one open (not cleared) alarm per condition
 * key, a unique index in the database, so neither a restart nor a second engine tells one condition twice;
 * state changes are single atomic steps (raise, end a condition, acknowledge). The engine
 * (src/clinic/alarms/engine.ts) decides when.
 *
 * Times are epoch milliseconds.
 */
export type RaiseChange =
  /** A new alarm. */
  | 'raised'
  /** The condition came back while its latched alarm waited for an acknowledgement: the same alarm, active again. */
  | 'reactivated'
  /** An open alarm for this condition was active already: nothing changed. */
  | 'unchanged';

export type EndChange = 'latched' | 'cleared';

export type AcknowledgeChange =
  /** Recorded; the alarm stays (its condition is still present). */
  | 'acknowledged'
  /** Recorded, and the alarm is over (it was latched, or its condition had ended). */
  | 'cleared'
  /** Acknowledged before: the first acknowledgement stands (who and when). */
  | 'unchanged';

/** When something was last heard from a hub (deviceId absent) or one of its devices: the silence timers. */
export interface Contact {
  readonly gatewayId: string;
  readonly deviceId?: string;
  /** The intake's receipt time of the latest message. */
  readonly at: number;
}

export interface AlarmListQuery {
  /** At most this many (default 500). */
  readonly limit?: number;
  /** Only alarms that are not cleared. */
  readonly openOnly?: boolean;
}

/**
 * What happened to an alarm: raised (new), reactivated (its condition came back while it was latched),
 * latched (its condition ended; it waits for an acknowledgement), cleared (over), acknowledged (who and when
 * recorded; the alarm's `state` says whether that also cleared it).
 */
export type AlarmChangeType = 'raised' | 'reactivated' | 'latched' | 'cleared' | 'acknowledged';

/** One stored change, as `AlarmStore.subscribe` tells it. */
export interface AlarmChange {
  readonly type: AlarmChangeType;
  /** The alarm as stored (PostgreSQL: as read when the change was heard, so it may hold a later change too). */
  readonly alarm: Alarm;
}

/** Held while this process is the one engine that evaluates; `release` gives it up. */
export interface Leadership {
  release(): Promise<void>;
}

export interface AlarmStore {
  /** Replaces the patient's whole set of limits (an empty set: no physiological alarms). Audited by the caller. */
  setLimits(limits: PatientLimits): Promise<void>;
  /** The limits an admin set, or undefined: the patient has the defaults (src/clinic/alarms/limits.ts). */
  limitsOf(mrn: string): Promise<PatientLimits | undefined>;
  /** Every patient's limits that an admin set. */
  allLimits(): Promise<PatientLimits[]>;

  /** Raises an alarm for a condition, unless one for its key is open (see RaiseChange). */
  raise(alarm: NewAlarm): Promise<{ readonly alarm: Alarm; readonly change: RaiseChange }>;
  /**
   * The condition of the open alarm with this key ended at `at`: a latching alarm nobody acknowledged stays
   * latched, any other is cleared. Undefined when no active alarm has this key.
   */
  endCondition(
    conditionKey: string,
    at: number,
  ): Promise<{ readonly alarm: Alarm; readonly change: EndChange } | undefined>;
  /** Records who acknowledged, once (idempotent). Throws ALARM_UNKNOWN for an id that names no alarm. */
  acknowledge(
    id: number,
    by: string,
    at: number,
  ): Promise<{ readonly alarm: Alarm; readonly change: AcknowledgeChange }>;
  alarm(id: number): Promise<Alarm | undefined>;
  /** Every alarm not cleared. */
  openAlarms(): Promise<Alarm[]>;
  /** A patient's alarms, open first, then by priority, then newest first (compareAlarms). */
  alarmsOf(mrn: string, query?: AlarmListQuery): Promise<Alarm[]>;
  /** The whole clinic's alarms, in the same order. */
  alarms(query?: AlarmListQuery): Promise<Alarm[]>;

  /** Records contacts; a time only ever moves forward. */
  noteContacts(contacts: readonly Contact[]): Promise<void>;
  contacts(): Promise<Contact[]>;

  /**
   * Becomes the one engine that evaluates, if no other process is (undefined then: try again later).
   * PostgreSQL: a session-level advisory lock held on a connection of its own; `onLost` is told if that
   * connection breaks (the lock is gone with it). SQLite: the live feed is in-process only, so the engine runs
   * in the intake's process; it always leads.
   */
  lead(onLost: (error: Error) => void): Promise<Leadership | undefined>;

  /**
   * Tells `listener` every change stored after this resolves (an unchanged raise or acknowledgement is not a
   * change), in the order they were stored: the dashboard's live alarm feed. PostgreSQL: the changes of every
   * process on the database (each change's transaction sends NOTIFY, which PostgreSQL delivers only if and
   * when it commits), so the browsers of every `clinic serve` hear what the one leading engine raised and what
   * any of them acknowledged. SQLite: the changes made through this store object (its live feed is
   * in-process only, like the clinic record's: the engine, the intake and the dashboard share one process).
   * Resolves with the function that stops it.
   */
  subscribe(listener: (change: AlarmChange) => void): Promise<() => Promise<void>>;

  close(): Promise<void>;
}
