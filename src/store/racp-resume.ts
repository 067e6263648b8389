import type { SqliteDatabase } from './encrypted-database.js';

/**
 * Where each glucose meter's record download resumes (src/session/racp-download.ts): the sequence number of
 * the last record the store holds, and that record's stable measurement id (its anchor). Written by the append
 * transaction that stores the record (Outbox.append's `progress`), so the point and the rows it covers are
 * committed together or not at all: a restart never resumes after a record that was not stored (a hole), and
 * never before one that was (a duplicate). Kept in the encrypted store: a sequence number of a patient's meter
 * is PHI-adjacent.
 */
export interface ResumeProgress {
  readonly deviceId: string;
  /** The record's Glucose Measurement sequence number (uint16). */
  readonly sequence: number;
  /** The record's stable measurement id, or null when it had no device time. */
  readonly anchor: string | null;
}

export interface ResumePoint {
  readonly sequence: number;
  readonly anchor: string | null;
}

export function prepareResume(db: SqliteDatabase) {
  const upsert = db.prepare(
    `INSERT INTO racp_resume (device, sequence, anchor, updated_ms) VALUES (?, ?, ?, ?)
     ON CONFLICT (device) DO UPDATE SET sequence = excluded.sequence, anchor = excluded.anchor,
       updated_ms = excluded.updated_ms`,
  );
  const read = db.prepare('SELECT sequence, anchor FROM racp_resume WHERE device = ?');
  const remove = db.prepare('DELETE FROM racp_resume WHERE device = ?');
  return {
    /** Inside the caller's transaction. */
    write(progress: ResumeProgress, now: number): void {
      upsert.run(progress.deviceId, progress.sequence, progress.anchor, now);
    },
    read(deviceId: string): ResumePoint | undefined {
      const row = read.get(deviceId) as { sequence: number; anchor: string | null } | undefined;
      return row === undefined ? undefined : { sequence: row.sequence, anchor: row.anchor };
    },
    forget(deviceId: string): void {
      remove.run(deviceId);
    },
  };
}

/** A sequence number as RACP carries it (GLS 1.0.1 3.4: uint16); anything else is a caller's bug. */
export function checkProgress(progress: ResumeProgress): void {
  if (!Number.isInteger(progress.sequence) || progress.sequence < 0 || progress.sequence > 0xffff) {
    throw new RangeError('a RACP resume point needs a sequence number 0-65535');
  }
}
