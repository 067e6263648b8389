import type { JsonValue } from '../model/observation.js';
import { type Clock, systemClock } from '../util/clock.js';
import type { SqliteDatabase } from './encrypted-database.js';
import { StoreError, storeErrorFrom } from './errors.js';

/**
 * Named settings the hub keeps across restarts that do not belong in its configuration file, because someone
 * other than the operator sets them while the hub runs: the clinic's per-patient alert limits (the signed
 * `config` command, src/pipeline/alert-config.ts). A small name -> JSON table (schema version 7) in the
 * encrypted store, on the store's one connection like the device registry, so limits that describe a patient
 * are protected like the readings, and closed with the store (use after that is STORE_CLOSED).
 */
export class Settings {
  private closed = false;
  private prepared: ReturnType<typeof prepare> | undefined;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The setting's value, or undefined when it was never set (or was removed). */
  get(name: string): JsonValue | undefined {
    const s = this.statements();
    try {
      const row = s.read.get(name) as { value: string } | undefined;
      return row === undefined ? undefined : (JSON.parse(row.value) as JsonValue);
    } catch (error) {
      if (error instanceof SyntaxError) {
        throw new StoreError('STORE_CORRUPT', `the setting ${name} is not readable JSON`, { cause: error });
      }
      throw storeErrorFrom(error, 'reading a setting');
    }
  }

  /** Sets (or replaces) the setting, durably, in one transaction. */
  set(name: string, value: JsonValue): void {
    const s = this.statements();
    try {
      s.upsert.run(name, JSON.stringify(value), this.clock.now());
    } catch (error) {
      throw storeErrorFrom(error, 'writing a setting');
    }
  }

  remove(name: string): void {
    const s = this.statements();
    try {
      s.remove.run(name);
    } catch (error) {
      throw storeErrorFrom(error, 'removing a setting');
    }
  }

  /** The store is closing: any later use is STORE_CLOSED. */
  close(): void {
    this.closed = true;
    this.prepared = undefined;
  }

  private statements(): ReturnType<typeof prepare> {
    if (this.closed) throw new StoreError('STORE_CLOSED', 'the settings are closed');
    if (!this.prepared) {
      try {
        this.prepared = prepare(this.db);
      } catch (error) {
        throw storeErrorFrom(error, 'reading the settings');
      }
    }
    return this.prepared;
  }
}

function prepare(db: SqliteDatabase) {
  return {
    read: db.prepare('SELECT value FROM settings WHERE name = ?'),
    upsert: db.prepare(
      `INSERT INTO settings (name, value, updated_ms) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms`,
    ),
    remove: db.prepare('DELETE FROM settings WHERE name = ?'),
  };
}
