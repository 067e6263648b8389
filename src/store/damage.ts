import { closeSync, copyFileSync, existsSync, fsyncSync, openSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SqliteDatabase } from './encrypted-database.js';
import { storeErrorFrom } from './errors.js';
import type { HighWater, HighWaterRead } from './high-water.js';

/**
 * Loss of committed readings through damage to the store's files, found at open by comparing what the store
 * holds with its high-water mark (src/store/high-water.ts), which lives outside the database and its WAL.
 *
 * What may legitimately be absent: a row acknowledged by the clinic (deleted), evicted or expired (replaced
 * by a gap record), or quarantined (moved to its own table). All of those are changes committed in the
 * database itself, and SQLite's WAL recovery keeps a consistent prefix of the commits (every frame after the
 * first bad one is ignored: sqlite.org/wal.html, sqlite.org/fileformat2.html#walformat). So the database
 * after damage is the store as it was at some earlier commit, with its own counter of appended rows
 * (sqlite_sequence); absences at or below that counter are explained by the database itself. What is lost is
 * the seq range above it up to the mark, limited by what the mark says was still unacknowledged:
 *   lost seqs = (max(survived, mark.firstSeq - 1), mark.seq],  lost = min(their number, mark.rows).
 * Rows of that range acknowledged after the mark was last written may have reached the clinic anyway (the
 * mark is written with appends, not with acknowledgements, which do not wait for an fsync), so the count is
 * an upper bound: never less than what was lost.
 */
export type DamageKind =
  /** outbox.db is missing or empty beside the key commitment or the mark: the store was lost. */
  | 'store-missing'
  /** outbox.db failed its integrity check and was moved aside (STORE_CORRUPT). */
  | 'store-corrupt'
  /** Rows the mark says were committed are gone: a damaged, truncated or deleted WAL. */
  | 'wal-tail'
  /** The mark is gone although this store had one: what was lost, if anything, is unknown. */
  | 'high-water-missing'
  /** The mark fails its MAC (damaged, or written by someone without the key): loss is unknown. */
  | 'high-water-invalid';

export interface DamageFinding {
  readonly kind: DamageKind;
  /** Upper bound of the unacknowledged records lost; null when it cannot be known. */
  readonly lost: number | null;
  /** The outbox seqs of the lost records (first, last); null when unknown. */
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  /** When the lost records were stored (epoch ms), from the mark; null when unknown. */
  readonly firstAtMs: number | null;
  readonly lastAtMs: number | null;
}

export interface DamageRecord extends DamageFinding {
  readonly id: number;
  readonly detectedAtMs: number;
  /** Where the damaged files were kept for inspection (the main file's name; -wal beside it). */
  readonly keptAt: string | null;
  /** The gap record sent to the clinic for it (null when nothing countable was lost). */
  readonly gapId: string | null;
}

/** The highest seq the database itself says it handed out. Reads only: nothing may be written before this. */
export function survivingSeq(db: SqliteDatabase): number {
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'");
  if (!table.get()) return 0;
  const row = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as
    | { seq: number }
    | undefined;
  return row?.seq ?? 0;
}

/** Whether this store has had a mark (counter set when its first mark was written). */
export function hadHighWater(db: SqliteDatabase): boolean {
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'counters'");
  if (!table.get()) return false;
  return db.prepare("SELECT 1 FROM counters WHERE name = 'high-water'").get() !== undefined;
}

/**
 * Compares the mark with what survived. `already` is damage found before the database was read (missing
 * file, failed integrity check): then the loss is counted from the mark against an empty store.
 */
export function assessDamage(
  mark: HighWaterRead,
  survived: number,
  hadMark: boolean,
  already: DamageKind | undefined,
): DamageFinding | undefined {
  const unknown = (kind: DamageKind): DamageFinding => ({
    kind,
    lost: null,
    firstSeq: null,
    lastSeq: null,
    firstAtMs: null,
    lastAtMs: null,
  });
  if (mark.state === 'invalid') return unknown(already ?? 'high-water-invalid');
  if (mark.state === 'missing') {
    if (already) return unknown(already);
    return hadMark ? unknown('high-water-missing') : undefined; // a store from before the mark existed
  }
  const hw: HighWater = mark.value;
  const below = Math.max(survived, hw.firstSeq - 1);
  const lost = Math.min(Math.max(0, hw.seq - below), hw.rows);
  if (lost === 0) {
    return already
      ? { kind: already, lost: 0, firstSeq: null, lastSeq: null, firstAtMs: null, lastAtMs: null }
      : undefined;
  }
  return {
    kind: already ?? 'wal-tail',
    lost,
    firstSeq: below + 1,
    lastSeq: hw.seq,
    firstAtMs: hw.firstAtMs,
    lastAtMs: hw.atMs,
  };
}

/** `<store>.damaged-<time>`: the name damaged files are kept under (like `.corrupt-<time>`). */
export function damagedName(path: string, now: number): string {
  return `${path}.damaged-${new Date(now).toISOString().replaceAll(':', '-')}`;
}

/**
 * Renames whatever exists of the store's files (main, -wal, -shm) to `<store>.damaged-<time>`: for a store
 * that is not open. Returns the kept name, or null when there was nothing to keep.
 */
export function moveDamagedAside(path: string, now: number): string | null {
  const to = damagedName(path, now);
  let moved = false;
  try {
    for (const suffix of ['', '-wal', '-shm']) {
      if (!existsSync(`${path}${suffix}`)) continue;
      renameSync(`${path}${suffix}`, `${to}${suffix}`);
      moved = true;
    }
    if (moved) syncPath(dirname(path));
  } catch (error) {
    throw storeErrorFrom(error, `moving the damaged store ${path} aside`);
  }
  return moved ? to : null;
}

/**
 * Copies the store's files as they are on disk (main file, -wal, and the mark) to `<store>.damaged-<time>`,
 * for a store that is open: the open connection keeps using the originals, and SQLite would overwrite the
 * ignored WAL frames with the next commit and fold the WAL into the main file at the next checkpoint.
 */
export function copyDamagedAside(path: string, markPath: string, now: number): string {
  const to = damagedName(path, now);
  try {
    for (const [from, copy] of [
      [path, to],
      [`${path}-wal`, `${to}-wal`],
      [markPath, `${to}.hwm`],
    ] as const) {
      if (!existsSync(from)) continue;
      copyFileSync(from, copy);
      syncPath(copy);
    }
    syncPath(dirname(path));
  } catch (error) {
    throw storeErrorFrom(error, `keeping a copy of the damaged store ${path}`);
  }
  return to;
}

/** Records a finding (inside the caller's transaction). */
export function insertDamage(
  db: SqliteDatabase,
  finding: DamageFinding,
  detail: { detectedAtMs: number; keptAt: string | null; gapId: string | null },
): number {
  const info = db
    .prepare(
      `INSERT INTO damage (detected_ms, kind, lost, first_seq, last_seq, first_ms, last_ms, kept_at, gap_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(
      detail.detectedAtMs,
      finding.kind,
      finding.lost,
      finding.firstSeq,
      finding.lastSeq,
      finding.firstAtMs,
      finding.lastAtMs,
      detail.keptAt,
      detail.gapId,
    );
  return Number(info.lastInsertRowid);
}

interface DamageRow {
  id: number;
  detected_ms: number;
  kind: DamageKind;
  lost: number | null;
  first_seq: number | null;
  last_seq: number | null;
  first_ms: number | null;
  last_ms: number | null;
  kept_at: string | null;
  gap_id: string | null;
}

/** Damage found and not yet acknowledged by an operator (`rpm-gateway store acknowledge-damage`). */
export function unacknowledgedDamage(db: SqliteDatabase): DamageRecord[] {
  const rows = db
    .prepare('SELECT * FROM damage WHERE acknowledged_ms IS NULL ORDER BY id')
    .all() as DamageRow[];
  return rows.map((row) => ({
    id: row.id,
    detectedAtMs: row.detected_ms,
    kind: row.kind,
    lost: row.lost,
    firstSeq: row.first_seq,
    lastSeq: row.last_seq,
    firstAtMs: row.first_ms,
    lastAtMs: row.last_ms,
    keptAt: row.kept_at,
    gapId: row.gap_id,
  }));
}

/** Marks every unacknowledged finding acknowledged; returns how many. */
export function acknowledgeDamage(db: SqliteDatabase, now: number): number {
  return db.prepare('UPDATE damage SET acknowledged_ms = ? WHERE acknowledged_ms IS NULL').run(now).changes;
}

/** One line for people (no PHI: counts, seqs, times and file names only). */
export function describeDamage(record: DamageFinding & { keptAt?: string | null }): string {
  const what: Record<DamageKind, string> = {
    'store-missing': 'the store file was missing or empty',
    'store-corrupt': 'the store failed its integrity check',
    'wal-tail': "the store's write-ahead log was damaged, truncated or deleted",
    'high-water-missing': "the store's high-water mark (outbox.db.hwm) is missing",
    'high-water-invalid': "the store's high-water mark (outbox.db.hwm) fails its check",
  };
  const lost =
    record.lost === null
      ? 'an unknown number of stored readings may be lost'
      : record.lost === 0
        ? 'no unacknowledged reading was lost'
        : `up to ${record.lost} stored, unacknowledged records were lost (outbox seq ${record.firstSeq}-${record.lastSeq}); a gap record tells the clinic`;
  const kept = record.keptAt ? `; the damaged files were kept as ${record.keptAt}` : '';
  return `${what[record.kind]}: ${lost}${kept}`;
}

function syncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
