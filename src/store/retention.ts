import { randomUUID } from 'node:crypto';
import type { Gap } from '../model/gap.js';
import type { SqliteDatabase } from './encrypted-database.js';

/**
 * Retention: how big and how old the outbox may grow while the clinic is unreachable, and what happens then.
 * Nothing is dropped silently: every eviction becomes a gap record (per device: how many readings, from when
 * to when, why) that is forwarded like a reading, so the clinic knows data is missing.
 */
export interface RetentionPolicy {
  readonly maxRows: number;
  /** Sum of stored payload sizes. */
  readonly maxBytes: number;
  /** Readings older than this (by time of append) are expired by maintain(); alerts never are. */
  readonly maxAgeMs: number;
  /**
   * 'evict-oldest-backlog' (default): evict the oldest backlog readings, then the oldest live ones; never
   * alerts or gap records, never readings in flight. 'reject': refuse new readings (STORE_FULL) instead.
   */
  readonly whenFull: 'evict-oldest-backlog' | 'reject';
  /** How long ids of acknowledged stored records are remembered to drop a device's re-sends. */
  readonly ackedIdRetentionMs: number;
}

export interface EvictionOutcome {
  readonly evicted: number;
  /** How many of them per lane (index 0 alert, 1 live, 2 backlog). */
  readonly evictedByLane: readonly number[];
  readonly evictedBytes: number;
  readonly gaps: readonly Gap[];
  readonly refused: boolean;
}

/** Evicting down to this share of the limits leaves headroom, so a full store does not evict on every append. */
const HEADROOM = 0.99;
/** Room kept for the gap records an eviction adds (they are small JSON objects). */
const GAP_SIZE_ESTIMATE = 256;
const CHUNK = 512;

interface Victim {
  seq: number;
  lane: number;
  device: string;
  size: number;
  measured_at: string;
}

const NONE: EvictionOutcome = {
  evicted: 0,
  evictedByLane: [0, 0, 0],
  evictedBytes: 0,
  gaps: [],
  refused: false,
};

export function enforceRetention(
  db: SqliteDatabase,
  policy: RetentionPolicy,
  totals: { rows: number; bytes: number },
  now: number,
  inFlight: (seq: number) => boolean,
): EvictionOutcome {
  if (totals.rows <= policy.maxRows && totals.bytes <= policy.maxBytes) return NONE;
  if (policy.whenFull === 'reject') return { ...NONE, refused: true };
  const targetRows = Math.floor(policy.maxRows * HEADROOM);
  const targetBytes = Math.floor(policy.maxBytes * HEADROOM);
  const select = db.prepare(
    'SELECT seq, lane, device, size, measured_at FROM outbox WHERE lease IS NULL AND lane = ? AND kind = 0 AND seq > ? ORDER BY seq LIMIT ?',
  );
  const victims: Victim[] = [];
  let rows = totals.rows;
  let bytes = totals.bytes;
  const devices = new Set<string>();
  const satisfied = () =>
    rows + devices.size <= targetRows && bytes + devices.size * GAP_SIZE_ESTIMATE <= targetBytes;
  for (const lane of [2, 1]) {
    let after = 0;
    while (!satisfied()) {
      const chunk = select.all(lane, after, CHUNK) as Victim[];
      if (chunk.length === 0) break;
      for (const victim of chunk) {
        if (satisfied()) break;
        after = victim.seq;
        if (inFlight(victim.seq)) continue; // being sent right now: never evicted
        victims.push(victim);
        devices.add(victim.device);
        rows--;
        bytes -= victim.size;
      }
    }
    if (satisfied()) break;
  }
  return evict(db, victims, 'evicted-full', now);
}

export function expireOld(
  db: SqliteDatabase,
  policy: RetentionPolicy,
  now: number,
  inFlight: (seq: number) => boolean,
): EvictionOutcome {
  const victims = (
    db
      .prepare(
        'SELECT seq, lane, device, size, measured_at FROM outbox WHERE appended_ms < ? AND lane <> 0 AND kind = 0 ORDER BY seq',
      )
      .all(now - policy.maxAgeMs) as Victim[]
  ).filter((victim) => !inFlight(victim.seq));
  return evict(db, victims, 'expired', now);
}

function evict(
  db: SqliteDatabase,
  victims: readonly Victim[],
  reason: Gap['reason'],
  now: number,
): EvictionOutcome {
  if (victims.length === 0) return NONE;
  const remove = db.prepare('DELETE FROM outbox WHERE seq = ?');
  const perDevice = new Map<string, { count: number; first: string; last: string }>();
  let bytes = 0;
  const evictedByLane = [0, 0, 0];
  for (const victim of victims) {
    remove.run(victim.seq);
    bytes += victim.size;
    evictedByLane[victim.lane] = (evictedByLane[victim.lane] as number) + 1;
    const entry = perDevice.get(victim.device);
    if (!entry)
      perDevice.set(victim.device, { count: 1, first: victim.measured_at, last: victim.measured_at });
    else {
      entry.count++;
      if (victim.measured_at < entry.first) entry.first = victim.measured_at;
      if (victim.measured_at > entry.last) entry.last = victim.measured_at;
    }
  }
  const recordedAt = new Date(now).toISOString();
  const gaps: Gap[] = [...perDevice].map(([deviceId, entry]) => ({
    type: 'gap',
    id: `g1-${randomUUID().replaceAll('-', '')}`,
    deviceId,
    count: entry.count,
    firstTime: entry.first,
    lastTime: entry.last,
    reason,
    recordedAt,
  }));
  return { evicted: victims.length, evictedByLane, evictedBytes: bytes, gaps, refused: false };
}
