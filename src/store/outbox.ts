import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import type { Gap } from '../model/gap.js';
import type { Measurement } from '../model/measurement.js';
import { type Clock, systemClock } from '../util/clock.js';
import { OrderedRing } from '../util/ordered-ring.js';
import {
  acknowledgeDamage,
  assessDamage,
  copyDamagedAside,
  type DamageFinding,
  type DamageKind,
  type DamageRecord,
  describeDamage,
  hadHighWater,
  insertDamage,
  moveDamagedAside,
  survivingSeq,
  unacknowledgedDamage,
} from './damage.js';
import {
  keyCheckOf,
  type OpenedDatabase,
  openEncryptedDatabase,
  readKeyCheck,
  type SqliteDatabase,
  storeExists,
} from './encrypted-database.js';
import { StoreError, storeErrorFrom } from './errors.js';
import {
  type HighWater,
  HighWaterMark,
  type HighWaterRead,
  highWaterFileBytes,
  highWaterKeyOf,
  highWaterPathOf,
  readHighWater,
  replaceHighWaterFile,
} from './high-water.js';
import { KeyFileProvider, type KeyProvider } from './keys.js';
import { LeasedRows } from './leased-rows.js';
import { migrate } from './migrations.js';
import { checkProgress, prepareResume, type ResumePoint, type ResumeProgress } from './racp-resume.js';
import { decodeBody, JSON_FORMAT, jsonRecords, type RecordCodec } from './record-codec.js';
import { completePendingRekey } from './rekey.js';
import { enforceRetention, expireOld, type RetentionPolicy } from './retention.js';
import { StoreLock } from './store-lock.js';

/**
 * The encrypted store-and-forward outbox: the source of truth for every reading until the clinic acknowledged
 * it (mqtt.js keeps its queue in memory and loses it on restart: mqttjs/MQTT.js#398, #607).
 *
 * - append: idempotent by measurement id for readings the device timestamped (the ids derived from that time,
 *   src/model/ids.ts: the only readings a device can send twice, as stored records); other ids are random and
 *   cannot repeat. Appends made in the same event-loop turn share one transaction and
 *   so one fsync (group commit); the promise resolves once the reading is durable.
 * - lease / ack / release: the uplink leases a batch (lane order: alert, live, backlog; append order within a
 *   lane, so each device's readings stay in order per lane), deletes it only on PUBACK, and returns it on
 *   disconnect. Leases do not survive a restart: everything unacknowledged is pending again.
 * - retention: limits on rows, bytes and age; eviction takes the oldest backlog, then live rows, never alerts
 *   or gap records, and records every eviction as a gap record that is forwarded like a reading.
 */
export type Lane = 'alert' | 'live' | 'backlog';
const LANES: readonly Lane[] = ['alert', 'live', 'backlog'];

export type OutboxPayload = { readonly type: 'measurement'; readonly measurement: Measurement } | Gap;

export interface OutboxRecord {
  readonly seq: number;
  readonly id: string;
  readonly lane: Lane;
  readonly deviceId: string;
  readonly appendedAt: number;
  readonly size: number;
  /** The stored body and its format (src/store/record-codec.ts): the uplink splices wire items as they are. */
  readonly format: number;
  readonly body: Uint8Array;
  /** The body decoded (on first use). */
  readonly payload: OutboxPayload;
}

export interface Lease {
  readonly leaseId: number;
  readonly records: readonly OutboxRecord[];
}

export type StoreEvent =
  | {
      readonly type: 'store.opened';
      readonly path: string;
      readonly schemaFrom: number;
      readonly schemaTo: number;
    }
  | {
      readonly type: 'store.moved-aside';
      readonly path: string;
      readonly to: string;
      readonly reason: string;
    }
  | {
      readonly type: 'store.evicted';
      readonly count: number;
      readonly reason: 'full' | 'expired';
      readonly gaps: number;
    }
  | {
      /** Committed readings are gone from the store's files (src/store/damage.ts); told at open. */
      readonly type: 'store.damaged';
      readonly code: 'STORE_DAMAGED';
      readonly path: string;
      readonly kind: DamageKind;
      /** Upper bound of the unacknowledged records lost; null when unknown. */
      readonly lost: number | null;
      readonly firstSeq: number | null;
      readonly lastSeq: number | null;
      /** Where the damaged files were kept. */
      readonly keptAt: string | null;
      /** The gap record that tells the clinic. */
      readonly gapId: string | null;
      /** For people: what happened, counts and file names only. */
      readonly message: string;
    };

export interface OutboxOptions {
  readonly path: string;
  readonly keys: KeyProvider;
  readonly clock?: Clock;
  readonly retention?: Partial<RetentionPolicy>;
  /**
   * How bodies are written (default JSON). The gateway passes the wire format's item codec
   * (src/uplink/record-codec.ts), so the uplink builds batches without decoding and re-encoding each reading.
   */
  readonly recordCodec?: RecordCodec;
  /** Logging and the audit log subscribe here. Events carry no PHI. */
  readonly onEvent?: (event: StoreEvent) => void;
  /**
   * Checkpoint policy: SQLite folds the WAL into the main file once it holds this many pages (4 KiB each;
   * PRAGMA wal_autocheckpoint), and the outbox also checkpoints at most WAL_MAX_AGE_MS after a commit, so a
   * damaged WAL can cost at most this much, or that long, of readings (and the loss is detected and reported).
   */
  readonly walCheckpointPages?: number;
  /** For `npm run bench:store` only, to measure what the high-water mark costs: never set in the gateway. */
  readonly benchmarkWithoutHighWater?: boolean;
}

/** Default WAL bound in pages: 1 MiB, about 60 commits of one reading each (some 4 pages each), thousands in bursts. */
export const WAL_CHECKPOINT_PAGES = 256;
/** A commit waits at most this long in the WAL alone before a checkpoint copies it to the main file. */
export const WAL_MAX_AGE_MS = 30_000;

export interface OutboxStats {
  readonly pending: Readonly<Record<Lane, number>>;
  readonly leased: number;
  readonly rows: number;
  readonly payloadBytes: number;
  /** Age of the oldest unacknowledged record, ms; null when empty. */
  readonly oldestPendingAgeMs: number | null;
  /** The same per lane: null for an empty lane. */
  readonly oldestAgeMsByLane: Readonly<Record<Lane, number | null>>;
  /** Main file plus WAL on disk. */
  readonly bytesOnDisk: number;
  readonly evictedTotal: number;
  readonly gapsTotal: number;
  readonly duplicatesTotal: number;
  readonly quarantinedTotal: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = {
  maxRows: 2_000_000, // ~2 weeks of two 1 Hz oximeters
  maxBytes: 1024 * 1024 * 1024,
  maxAgeMs: 30 * 24 * 3600 * 1000,
  whenFull: 'evict-oldest-backlog',
  ackedIdRetentionMs: 30 * 24 * 3600 * 1000,
};

const LANE_NUMBER: Record<Lane, number> = { alert: 0, live: 1, backlog: 2 };

interface PendingAppend {
  readonly measurement: Measurement;
  readonly lane: Lane;
  readonly progress: ResumeProgress | undefined;
  readonly resolve: (result: 'stored' | 'duplicate') => void;
  readonly reject: (error: unknown) => void;
}

interface Row {
  seq: number;
  id: string;
  stable: number;
  lane: number;
  device: string;
  appended_ms: number;
  size: number;
  format: number;
  body: Buffer;
}

export class Outbox {
  private db: SqliteDatabase | undefined;
  /** The store's owner lock (src/store/store-lock.ts), held from open() to close(). */
  private lock: StoreLock | undefined;
  private readonly clock: Clock;
  private readonly codec: RecordCodec;
  readonly retention: RetentionPolicy;
  private queue: PendingAppend[] = [];
  private flushScheduled = false;
  private nextLeaseId = 1;
  /**
   * Leases live in memory only: they end with the process anyway (everything unacknowledged is pending again
   * at open), so writing them to the database would cost a commit, an fsync, per batch for nothing. By lease
   * id, in a ring rather than a Map: ids only increase, and a long-lived Map that every batch adds to and
   * deletes from makes garbage in V8's old generation (src/util/ordered-ring.ts).
   */
  private readonly leases = new OrderedRing<{ seqs: number[]; outstanding: number }>();
  /** The leased rows by seq, and what an acknowledgement needs of each (src/store/leased-rows.ts). */
  private readonly leasedSeqs = new LeasedRows(LANES.length);
  /** Lease ids taken by onStaged listeners during the append transaction now running (void if it fails). */
  private staged: number[] | undefined;
  /** After a failed append transaction that reserved batch numbers: numbers up to here may have been used. */
  private batchSequenceFloor = 0;
  /** Per lane, the seq after which pending rows start (rows up to it are leased or gone), unless released. */
  private readonly frontier = [0, 0, 0];
  private batchSequence = { next: 1, ceiling: 0 };
  private rows = 0;
  /** Rows per lane (alert, live, backlog), kept as rows come and go so stats() never scans the table. */
  private laneRows = [0, 0, 0];
  private payloadBytes = 0;
  private statements!: ReturnType<typeof prepare>;
  private resume!: ReturnType<typeof prepareResume>;
  private readonly committedListeners = new Set<(lanes: ReadonlySet<Lane>) => void>();
  /** Events of the transaction now running, told only once it committed (a rolled-back eviction never was). */
  private pendingEvents: StoreEvent[] = [];
  private readonly stagedListeners = new Set<(lanes: ReadonlySet<Lane>) => void>();
  /** The highest seq inserted by a committed (or the running) transaction: what the mark records. */
  private highestSeq = 0;
  private mark: HighWaterMark | undefined;
  private checkpointTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: OutboxOptions) {
    this.clock = options.clock ?? systemClock;
    this.codec = options.recordCodec ?? jsonRecords;
    this.retention = { ...DEFAULT_RETENTION, ...options.retention };
  }

  /**
   * Opens (creating on first start) the encrypted store; every lease left by a crash is returned. Damage that
   * lost committed readings is found here (src/store/damage.ts): the damaged files are kept aside, a gap record
   * is stored for the clinic, and a `store.damaged` event is told (STORE_DAMAGED); the store opens with what
   * survived, so new readings are kept.
   */
  async open(): Promise<void> {
    // The owner lock comes first: only its holder may finish or discard an interrupted key rotation.
    const lock = StoreLock.acquire(this.options.path);
    try {
      await this.openLocked(lock);
      this.lock = lock;
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  private async openLocked(lock: StoreLock): Promise<void> {
    const path = this.options.path;
    const markPath = highWaterPathOf(path);
    if (this.options.keys instanceof KeyFileProvider)
      completePendingRekey(lock, path, this.options.keys.path);
    // A key may be made only for a store that does not exist yet; a new key could never read an existing one.
    const key = await this.options.keys.load({ create: !storeExists(path) });
    const macKey = highWaterKeyOf(key);
    const now = this.clock.now();
    let opened: OpenedDatabase;
    let mark: HighWaterRead;
    let found: DamageKind | undefined;
    let keptAt: string | null = null;
    try {
      mark = readHighWater(markPath, macKey);
      if (fileSize(path) === 0) {
        const commitment = readKeyCheck(`${path}.keycheck`);
        if (commitment === keyCheckOf(key) || (mark.state === 'ok' && mark.value.seq > 0)) {
          // A store existed here (its key commitment, or a mark of committed rows, says so): an empty or missing
          // file is damage, never a new empty store.
          found = 'store-missing';
          keptAt = moveDamagedAside(path, now);
        } else if (commitment === undefined) {
          // A new store. Its mark comes first, so a key commitment never exists without one.
          replaceHighWaterFile(markPath, highWaterFileBytes(emptyMark(now), macKey));
          mark = readHighWater(markPath, macKey);
        }
      }
      opened = openEncryptedDatabase(path, key, {
        keyDescription: this.options.keys.description,
        now: () => this.clock.now(),
      });
    } catch (error) {
      macKey.fill(0);
      throw error;
    } finally {
      key.fill(0);
    }
    const db = opened.db;
    if (opened.movedAside) {
      this.options.onEvent?.({ type: 'store.moved-aside', path, ...opened.movedAside });
      found ??= 'store-corrupt';
      keptAt = opened.movedAside.to;
    }
    try {
      // Before anything is written: the first commit would overwrite the WAL frames SQLite ignored.
      const finding = assessDamage(mark, survivingSeq(db), hadHighWater(db), found);
      if (finding && found === undefined) keptAt = copyDamagedAside(path, markPath, now);
      const schema = migrate(db, now);
      this.statements = prepare(db);
      this.resume = prepareResume(db);
      db.prepare('UPDATE outbox SET lease = NULL WHERE lease IS NOT NULL').run();
      const totals = db
        .prepare('SELECT count(*) AS rows, coalesce(sum(size), 0) AS bytes FROM outbox')
        .get() as {
        rows: number;
        bytes: number;
      };
      this.rows = totals.rows;
      this.payloadBytes = totals.bytes;
      this.countLanes(db);
      const reserved =
        (this.statements.counter.get('batch-seq') as { value: number } | undefined)?.value ?? 0;
      this.batchSequence = { next: reserved + 1, ceiling: reserved };
      this.highestSeq = survivingSeq(db);
      db.pragma(`wal_autocheckpoint = ${this.options.walCheckpointPages ?? WAL_CHECKPOINT_PAGES}`);
      if (finding) this.recordDamage(db, finding, keptAt, now);
      if (this.options.benchmarkWithoutHighWater) macKey.fill(0);
      else {
        // The schema, a damage record and the survivors go to the main file before the mark says so.
        if (finding || schema.from === 0) db.pragma('wal_checkpoint(TRUNCATE)');
        this.mark = HighWaterMark.create(markPath, macKey, this.currentMark(now));
        // After the mark exists: from now on a missing mark is damage, not a store from before marks.
        if (!hadHighWater(db)) this.statements.atLeast.run({ name: 'high-water', value: 1 });
      }
      this.db = db;
      this.options.onEvent?.({ type: 'store.opened', path, schemaFrom: schema.from, schemaTo: schema.to });
    } catch (error) {
      this.mark?.close();
      this.mark = undefined;
      macKey.fill(0);
      db.close();
      throw storeErrorFrom(error, `opening the outbox ${path}`);
    }
  }

  /**
   * Stores what damage cost: the seq counter moves past the lost range (a seq is never handed out twice, and
   * the next open compares against it), a gap record for the clinic, and the finding, until acknowledged.
   */
  private recordDamage(db: SqliteDatabase, finding: DamageFinding, keptAt: string | null, now: number): void {
    const gap: Gap | undefined =
      finding.lost && finding.firstSeq !== null && finding.lastSeq !== null
        ? {
            type: 'gap',
            id: `g1-${randomUUID().replaceAll('-', '')}`,
            deviceId: '*',
            count: finding.lost,
            firstTime: new Date(Math.min(finding.firstAtMs ?? now, finding.lastAtMs ?? now)).toISOString(),
            lastTime: new Date(finding.lastAtMs ?? now).toISOString(),
            reason: 'store-damaged',
            recordedAt: new Date(now).toISOString(),
            seqs: [finding.firstSeq, finding.lastSeq],
          }
        : undefined;
    const gapId = gap?.id ?? null;
    this.inTransaction(db, () => {
      if (finding.lastSeq !== null && finding.lastSeq > this.highestSeq) {
        const moved = db
          .prepare("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'outbox'")
          .run(finding.lastSeq);
        if (moved.changes === 0)
          db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)").run(finding.lastSeq);
        this.highestSeq = finding.lastSeq;
      }
      if (gap) this.insertGaps([gap]);
      insertDamage(db, finding, { detectedAtMs: now, keptAt, gapId });
      this.pendingEvents.push({
        type: 'store.damaged',
        code: 'STORE_DAMAGED',
        path: this.options.path,
        kind: finding.kind,
        lost: finding.lost,
        firstSeq: finding.firstSeq,
        lastSeq: finding.lastSeq,
        keptAt,
        gapId,
        message: describeDamage({ ...finding, keptAt }),
      });
    });
  }

  /** What the mark records now: the highest committed seq and the rows still waiting. */
  private currentMark(now: number): HighWater {
    const first = this.statements.firstRow.get() as { seq: number; appended_ms: number } | undefined;
    return {
      seq: this.highestSeq,
      rows: this.rows,
      firstSeq: first?.seq ?? this.highestSeq + 1,
      firstAtMs: first?.appended_ms ?? now,
      atMs: now,
    };
  }

  /**
   * After a commit that inserted rows, before anyone is told they are stored: the mark moves up (one slot
   * write and one fdatasync), and a checkpoint is due within WAL_MAX_AGE_MS.
   */
  private afterInsertCommit(): void {
    if (this.mark && this.highestSeq > this.mark.value.seq) {
      this.mark.write(this.currentMark(this.clock.now()));
    }
    this.scheduleCheckpoint();
  }

  private scheduleCheckpoint(): void {
    if (this.checkpointTimer !== undefined) return;
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = undefined;
      const db = this.db;
      if (!db || db.inTransaction) return;
      try {
        db.pragma('wal_checkpoint(PASSIVE)');
      } catch {
        // not fatal: SQLite checkpoints again at the page bound, and the next commit schedules this again
      }
    }, WAL_MAX_AGE_MS);
    this.checkpointTimer.unref(); // never keeps a CLI command alive
  }

  /** Damage found at this or an earlier open and not yet acknowledged by an operator. */
  damageReports(): DamageRecord[] {
    return unacknowledgedDamage(this.requireOpen());
  }

  /** Marks the damage reports as seen (`rpm-gateway store acknowledge-damage`); returns how many. */
  acknowledgeDamage(): number {
    const db = this.requireOpen();
    try {
      return acknowledgeDamage(db, this.clock.now());
    } catch (error) {
      throw storeErrorFrom(error, 'acknowledging damage reports');
    }
  }

  /**
   * Appends one reading; resolves when it is durable ('duplicate' when its id is already stored or sent). With
   * `progress` (the value that completes a glucose record of a RACP download), the device's resume point moves
   * to it in the same transaction, stored or duplicate: the record is in the store either way.
   */
  append(
    measurement: Measurement,
    lane: Lane = 'live',
    progress?: ResumeProgress,
  ): Promise<'stored' | 'duplicate'> {
    this.requireOpen();
    if (progress !== undefined) checkProgress(progress);
    return new Promise((resolve, reject) => {
      this.queue.push({ measurement, lane, progress, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits every append queued so far in one transaction (group commit). */
  flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    const db = this.db;
    if (!db) {
      for (const item of batch) item.reject(new StoreError('STORE_CLOSED', 'the outbox is closed'));
      return;
    }
    let results: ('stored' | 'duplicate')[];
    const sequence = { ...this.batchSequence };
    const storedLanes = () =>
      new Set(batch.filter((_, i) => results[i] === 'stored').map((item) => item.lane));
    try {
      results = this.inTransaction(db, () => {
        const out = batch.map((item) => {
          const result = this.insert(item.measurement, item.lane);
          if (item.progress !== undefined) this.resume.write(item.progress, this.clock.now());
          return result;
        });
        this.applyRetention('full');
        results = out;
        if (out.includes('stored') && this.stagedListeners.size > 0) this.stage(storedLanes());
        return out;
      });
    } catch (error) {
      this.voidStagedLeases(sequence);
      const failure = storeErrorFrom(error, 'storing readings');
      for (const item of batch) item.reject(failure);
      return;
    } finally {
      this.staged = undefined;
    }
    let markFailure: unknown;
    try {
      this.afterInsertCommit();
    } catch (error) {
      // The rows are committed, but their loss could no longer be detected: the store's disk is failing, and
      // the caller hears so (a reading appended again is stored once more; the clinic drops it by id).
      markFailure = error;
    }
    for (const [i, item] of batch.entries()) {
      if (markFailure) item.reject(markFailure);
      else item.resolve(results[i] as 'stored' | 'duplicate');
    }
    if (results.includes('stored')) {
      const lanes = storedLanes();
      for (const listener of this.committedListeners) listener(lanes);
    }
  }

  /** Runs the onStaged listeners inside the append transaction; a listener's failure never fails the append. */
  private stage(lanes: ReadonlySet<Lane>): void {
    this.staged = [];
    for (const listener of this.stagedListeners) {
      try {
        listener(lanes);
      } catch {
        // the listener's own problem (e.g. a publish that failed): the readings are stored all the same
      }
    }
  }

  /**
   * The append transaction failed after onStaged listeners leased its rows: those rows do not exist, so their
   * leases end here (a late acknowledgement of them deletes nothing: ackLeases ignores unknown leases), and
   * batch numbers they reserved in the rolled-back transaction are reserved again before the next is used.
   */
  private voidStagedLeases(sequence: { next: number; ceiling: number }): void {
    for (const leaseId of this.staged ?? []) this.release(leaseId);
    if (this.batchSequence.ceiling !== sequence.ceiling) {
      this.batchSequenceFloor = this.batchSequence.next - 1;
      this.batchSequence.ceiling = 0;
      try {
        // Made durable at once, so a crash before the next reservation cannot hand these numbers out again.
        this.statements.atLeast.run({ name: 'batch-seq', value: this.batchSequenceFloor });
      } catch {
        // the store is failing: the floor stays in memory and is written with the next reservation
      }
    }
  }

  /**
   * Runs `fn` in a transaction. If it fails, the in-memory counters are put back as they were, every lane is
   * scanned again from its start at the next lease (rows a failed transaction unleased, or seqs a rolled-back
   * AUTOINCREMENT hands out again, may lie below a lane's frontier), and the transaction's events are dropped;
   * if it commits, its events are told.
   */
  private inTransaction<T>(db: SqliteDatabase, fn: () => T): T {
    const outermost = !db.inTransaction;
    const before = {
      rows: this.rows,
      bytes: this.payloadBytes,
      lanes: [...this.laneRows],
      highestSeq: this.highestSeq,
    };
    const events = this.pendingEvents.length;
    let result: T;
    try {
      result = db.transaction(fn)();
    } catch (error) {
      this.rows = before.rows;
      this.payloadBytes = before.bytes;
      this.laneRows = before.lanes;
      this.highestSeq = before.highestSeq;
      this.frontier.fill(0);
      this.pendingEvents.length = events;
      throw error;
    }
    if (outermost) {
      const told = this.pendingEvents;
      this.pendingEvents = [];
      for (const event of told) {
        try {
          this.options.onEvent?.(event);
        } catch {
          // the listener's failure (say, the audit log's disk is full) is its own: this store's work is committed
        }
      }
    }
    return result;
  }

  /**
   * Calls `listener` inside the append transaction, after the new rows are written and before the commit and
   * its fsync, with the lanes that got new readings. The uplink leases and publishes a live reading here, so
   * its trip to the broker overlaps the fsync instead of following it; the acknowledgement (ackLeases) comes
   * after the commit in any case. If the commit fails, the leases taken here are void (the rows are gone) and
   * the reading may have reached the clinic anyway: at-least-once, never lost. Listeners must not write to the
   * store other than through lease and nextBatchSequence; an exception from a listener is ignored.
   */
  onStaged(listener: (lanes: ReadonlySet<Lane>) => void): () => void {
    this.stagedListeners.add(listener);
    return () => this.stagedListeners.delete(listener);
  }

  /**
   * Calls `listener` after every commit that stored new readings, with the lanes they went to: the uplink
   * sends a live reading the moment it is durable instead of polling. Returns the unsubscribe function.
   */
  onCommitted(listener: (lanes: ReadonlySet<Lane>) => void): () => void {
    this.committedListeners.add(listener);
    return () => this.committedListeners.delete(listener);
  }

  /**
   * The next batch sequence number of the wire format: increasing across restarts. Numbers are reserved in
   * blocks of 1,000 (one commit per block, not per batch), so a restart may skip some: the wire format
   * promises increasing sequence numbers, not contiguous ones.
   */
  nextBatchSequence(): number {
    this.requireOpen();
    if (this.batchSequence.next > this.batchSequence.ceiling) {
      if (this.batchSequenceFloor > 0) {
        // Numbers up to the floor may have gone out in a transaction that was rolled back: skip past them.
        this.statements.atLeast.run({ name: 'batch-seq', value: this.batchSequenceFloor });
        this.batchSequenceFloor = 0;
      }
      this.statements.bump.run('batch-seq', 1_000);
      const ceiling = (this.statements.counter.get('batch-seq') as { value: number }).value;
      this.batchSequence = { next: Math.max(this.batchSequence.next, ceiling - 999), ceiling };
    }
    return this.batchSequence.next++;
  }

  private insert(measurement: Measurement, lane: Lane): 'stored' | 'duplicate' {
    const s = this.statements;
    const stable = measurement.deviceTime !== null ? 1 : 0;
    if (stable && s.isAcked.get(measurement.id)) return this.duplicate();
    const { format, body } = this.encode({ type: 'measurement', measurement });
    const info = s.insert.run(
      measurement.id,
      0,
      LANE_NUMBER[lane],
      measurement.deviceId,
      stable,
      measurement.time,
      this.clock.now(),
      body.length,
      format,
      body,
    );
    if (info.changes === 0) return this.duplicate();
    this.highestSeq = Math.max(this.highestSeq, Number(info.lastInsertRowid));
    this.rows++;
    this.laneRows[LANE_NUMBER[lane]] = (this.laneRows[LANE_NUMBER[lane]] as number) + 1;
    this.payloadBytes += body.length;
    return 'stored';
  }

  /**
   * The body in the configured format; a payload that format refuses (e.g. a field out of the wire contract) is
   * kept as JSON, never dropped: the uplink fails to encode it and moves it to the quarantine for inspection.
   */
  private encode(payload: OutboxPayload): { format: number; body: Uint8Array } {
    if (this.codec.format !== JSON_FORMAT) {
      try {
        return { format: this.codec.format, body: this.codec.encode(payload) };
      } catch {
        // fall through to JSON
      }
    }
    return { format: JSON_FORMAT, body: jsonRecords.encode(payload) };
  }

  private duplicate(): 'duplicate' {
    this.statements.bump.run('duplicates', 1);
    return 'duplicate';
  }

  /** Inserts gap records (inside the caller's transaction). */
  private insertGaps(gaps: readonly Gap[]): void {
    for (const gap of gaps) {
      const { format, body } = this.encode(gap);
      const info = this.statements.insert.run(
        gap.id,
        1,
        LANE_NUMBER.live,
        gap.deviceId,
        0,
        gap.lastTime,
        this.clock.now(),
        body.length,
        format,
        body,
      );
      this.highestSeq = Math.max(this.highestSeq, Number(info.lastInsertRowid));
      this.rows++;
      this.laneRows[LANE_NUMBER.live] = (this.laneRows[LANE_NUMBER.live] as number) + 1;
      this.payloadBytes += body.length;
    }
    if (gaps.length > 0) this.statements.bump.run('gaps', gaps.length);
  }

  private applyRetention(reason: 'full' | 'expired'): void {
    const db = this.db as SqliteDatabase;
    const inFlight = (seq: number) => this.leasedSeqs.has(seq);
    const totals = { rows: this.rows, bytes: this.payloadBytes };
    const outcome =
      reason === 'full'
        ? enforceRetention(db, this.retention, totals, this.clock.now(), inFlight)
        : expireOld(db, this.retention, this.clock.now(), inFlight);
    if (outcome.evicted === 0) {
      if (outcome.refused)
        throw new StoreError('STORE_FULL', 'the outbox is full and its policy is to refuse new readings');
      return;
    }
    this.rows -= outcome.evicted;
    for (const [lane, count] of outcome.evictedByLane.entries()) {
      this.laneRows[lane] = (this.laneRows[lane] as number) - count;
    }
    this.payloadBytes -= outcome.evictedBytes;
    this.statements.bump.run('evicted', outcome.evicted);
    this.insertGaps(outcome.gaps);
    this.pendingEvents.push({
      type: 'store.evicted',
      count: outcome.evicted,
      reason,
      gaps: outcome.gaps.length,
    });
  }

  /**
   * Leases up to `maxRows` pending records, and as many as fit in `maxBytes` (at least one, so a record larger
   * than the budget still goes out), in lane order then append order. Reads stop as soon as the budget is
   * full, and scanning starts after the rows already leased, so a lease costs about what it returns.
   */
  lease(limits: { maxRows: number; maxBytes?: number; lane?: Lane }): Lease {
    this.requireOpen();
    const lanes = limits.lane === undefined ? [0, 1, 2] : [LANE_NUMBER[limits.lane]];
    const taken: Row[] = [];
    let bytes = 0;
    let full = false;
    for (const lane of lanes) {
      for (const row of this.statements.pendingInLane.iterate(
        lane,
        this.frontier[lane] as number,
      ) as IterableIterator<Row>) {
        if (this.leasedSeqs.inLane(row.lane, row.seq)) continue;
        if (
          taken.length >= limits.maxRows ||
          (taken.length > 0 && limits.maxBytes !== undefined && bytes + row.size > limits.maxBytes)
        ) {
          full = true;
          break;
        }
        taken.push(row);
        bytes += row.size;
      }
      if (full) break;
    }
    const leaseId = this.nextLeaseId++;
    if (taken.length > 0) {
      for (const row of taken) {
        this.leasedSeqs.add(row.seq, {
          lane: row.lane,
          leaseId,
          size: row.size,
          stableId: row.stable ? row.id : undefined,
        });
        if (row.seq > (this.frontier[row.lane] as number)) this.frontier[row.lane] = row.seq;
      }
      this.leases.set(leaseId, { seqs: taken.map((r) => r.seq), outstanding: taken.length });
      this.staged?.push(leaseId);
    }
    return { leaseId, records: taken.map((row) => toRecord(row, this.codec)) };
  }

  /** Forgets leased seqs (acknowledged, quarantined, released); a released row lowers its lane's frontier. */
  private unlease(seqs: Iterable<number>, released: boolean): void {
    for (const seq of seqs) {
      const leased = this.leasedSeqs.take(seq);
      if (leased === undefined) continue;
      const lease = this.leases.get(leased.leaseId);
      if (lease && --lease.outstanding === 0) this.leases.delete(leased.leaseId);
      if (released && seq <= (this.frontier[leased.lane] as number)) this.frontier[leased.lane] = seq - 1;
    }
  }

  /**
   * Deletes the records of these leases (the uplink's PUBACKs): see ack. A lease that is no longer known
   * (released, or voided because its append transaction failed) deletes nothing, so a late PUBACK can never
   * delete rows that were leased again, or rows that took over the seq of rolled-back ones.
   */
  ackLeases(leaseIds: readonly number[]): number {
    const seqs: number[] = [];
    for (const leaseId of leaseIds) {
      for (const seq of this.leases.get(leaseId)?.seqs ?? []) {
        if (this.leasedSeqs.get(seq)?.leaseId === leaseId) seqs.push(seq);
      }
    }
    return seqs.length === 0 ? 0 : this.ack(seqs);
  }

  /**
   * Deletes acknowledged records (their freed pages are zeroed: secure_delete). Returns how many were deleted.
   *
   * This commit does not wait for an fsync: with WAL and synchronous=NORMAL a commit is still atomic and never
   * corrupts the store, it is only not yet durable against a power cut (sqlite.org/pragma.html#pragma_synchronous,
   * sqlite.org/wal.html). A power cut that undoes an acknowledgement costs a re-send of readings the clinic drops
   * as duplicates by id; it never loses one. The next append's FULL commit syncs the WAL, this deletion with it.
   * Appends keep FULL: a reading is only reported stored once it survives a power cut.
   */
  ack(seqs: readonly number[]): number {
    const db = this.requireOpen();
    const now = this.clock.now();
    // db.pragma, not a prepared statement: SQLite applies this pragma when the statement is compiled.
    if (!db.inTransaction) db.pragma('synchronous = NORMAL');
    try {
      return this.inTransaction(db, () => {
        let deleted = 0;
        for (const seq of seqs) {
          const leased = this.leasedSeqs.get(seq);
          this.unlease([seq], false);
          let row: { id: string | undefined; size: number; lane: number } | undefined;
          if (leased) {
            // Known from the lease: a plain DELETE, cheaper than one that returns the row.
            if (this.statements.removeLeased.run(seq).changes === 1) {
              row = { id: leased.stableId, size: leased.size, lane: leased.lane };
            }
          } else {
            const gone = this.statements.remove.get(seq) as RemovedRow | undefined;
            if (gone) row = { id: gone.stable ? gone.id : undefined, size: gone.size, lane: gone.lane };
          }
          if (!row) continue;
          if (row.id !== undefined) this.statements.remember.run(row.id, now);
          this.rows--;
          this.laneRows[row.lane] = (this.laneRows[row.lane] as number) - 1;
          this.payloadBytes -= row.size;
          deleted++;
        }
        return deleted;
      });
    } catch (error) {
      // Nothing was deleted: the rows are pending again (inTransaction rescans the lanes), to be sent again.
      this.unlease(seqs, true);
      throw storeErrorFrom(error, 'deleting acknowledged readings');
    } finally {
      if (!db.inTransaction) db.pragma('synchronous = FULL');
    }
  }

  /**
   * Moves records that cannot be sent (they fail to encode) out of the queue into the quarantine table: kept
   * for inspection, never deleted, and no longer blocking the readings behind them. `reason` holds no PHI.
   */
  quarantine(seqs: readonly number[], reason: string): number {
    const db = this.requireOpen();
    const now = this.clock.now();
    try {
      return this.inTransaction(db, () => this.moveToQuarantine(seqs, reason, now));
    } catch (error) {
      this.unlease(seqs, true);
      throw storeErrorFrom(error, 'moving records to the quarantine');
    }
  }

  private moveToQuarantine(seqs: readonly number[], reason: string, now: number): number {
    let moved = 0;
    for (const seq of seqs) {
      this.unlease([seq], false);
      if (this.statements.toQuarantine.run(reason, now, seq).changes === 0) continue;
      const row = this.statements.remove.get(seq) as RemovedRow | undefined;
      if (!row) continue;
      this.rows--;
      this.laneRows[row.lane] = (this.laneRows[row.lane] as number) - 1;
      this.payloadBytes -= row.size;
      moved++;
    }
    if (moved > 0) this.statements.bump.run('quarantined', moved);
    return moved;
  }

  /** Returns a lease's unacknowledged records to pending (e.g. the connection dropped mid-batch). */
  release(leaseId: number): number {
    this.requireOpen();
    const lease = this.leases.get(leaseId);
    if (!lease) return 0;
    const still = lease.seqs.filter((seq) => this.leasedSeqs.get(seq)?.leaseId === leaseId);
    this.unlease(still, true);
    this.leases.delete(leaseId);
    return still.length;
  }

  releaseAll(): number {
    this.requireOpen();
    let released = 0;
    for (const leaseId of this.leases.keyList()) released += this.release(leaseId);
    return released;
  }

  /** Whether a record is in flight (leased); retention never evicts those. */
  isLeased(seq: number): boolean {
    return this.leasedSeqs.has(seq);
  }

  /** Housekeeping to run now and then: expire readings past the age limit, forget old acknowledged ids. */
  maintain(): void {
    const db = this.requireOpen();
    try {
      this.inTransaction(db, () => {
        this.applyRetention('expired');
        this.statements.forget.run(this.clock.now() - this.retention.ackedIdRetentionMs);
      });
      this.afterInsertCommit(); // the gap records of expired readings
    } catch (error) {
      throw storeErrorFrom(error, 'expiring old readings');
    }
  }

  stats(): OutboxStats {
    this.requireOpen();
    const pending: Record<Lane, number> = { alert: 0, live: 0, backlog: 0 };
    let leased = 0;
    let oldest: number | null = null;
    const oldestByLane: Record<Lane, number | null> = { alert: null, live: null, backlog: null };
    const now = this.clock.now();
    const leasedByLane = LANES.map((_, lane) => this.leasedSeqs.countInLane(lane));
    for (const [lane, name] of LANES.entries()) {
      const rows = this.laneRows[lane] as number;
      if (rows === 0) continue;
      pending[name] = rows - (leasedByLane[lane] as number);
      leased += leasedByLane[lane] as number;
      // The first row of a lane in append order (an index seek, not a scan): the oldest, unless the clock was
      // set back while readings were waiting.
      const first = this.statements.firstInLane.get(lane) as number | undefined;
      if (first !== undefined) {
        oldest = oldest === null ? first : Math.min(oldest, first);
        oldestByLane[name] = Math.max(0, now - first);
      }
    }
    const counter = (name: string) =>
      (this.statements.counter.get(name) as { value: number } | undefined)?.value ?? 0;
    return {
      pending,
      leased,
      rows: this.rows,
      payloadBytes: this.payloadBytes,
      oldestPendingAgeMs: oldest === null ? null : Math.max(0, now - oldest),
      oldestAgeMsByLane: oldestByLane,
      bytesOnDisk: fileSize(this.options.path) + fileSize(`${this.options.path}-wal`),
      evictedTotal: counter('evicted'),
      gapsTotal: counter('gaps'),
      duplicatesTotal: counter('duplicates'),
      quarantinedTotal: counter('quarantined'),
    };
  }

  private countLanes(db: SqliteDatabase): void {
    this.laneRows = [0, 0, 0];
    for (const { lane, n } of db.prepare('SELECT lane, count(*) AS n FROM outbox GROUP BY lane').all() as {
      lane: number;
      n: number;
    }[]) {
      this.laneRows[lane] = n;
    }
  }

  /** Where the device's RACP download resumes: the last committed resume point, or undefined (from the start). */
  racpResumePoint(deviceId: string): ResumePoint | undefined {
    this.requireOpen();
    try {
      return this.resume.read(deviceId);
    } catch (error) {
      throw storeErrorFrom(error, 'reading a RACP resume point');
    }
  }

  /** Forgets a device's resume point (it was unenrolled, or its meter is to be read from the start). */
  forgetRacpResumePoint(deviceId: string): void {
    this.requireOpen();
    try {
      this.resume.forget(deviceId);
    } catch (error) {
      throw storeErrorFrom(error, 'forgetting a RACP resume point');
    }
  }

  /** Flushes queued appends, checkpoints the WAL and closes. */
  close(): void {
    if (!this.db) return;
    this.flush();
    const db = this.db;
    this.db = undefined;
    clearTimeout(this.checkpointTimer);
    this.checkpointTimer = undefined;
    try {
      db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      this.mark?.close();
      this.mark = undefined;
      db.close();
      this.lock?.release();
      this.lock = undefined;
    }
  }

  /** The open database, for the store's own tools (rekey, status). */
  get database(): SqliteDatabase {
    return this.requireOpen();
  }

  private requireOpen(): SqliteDatabase {
    if (!this.db) throw new StoreError('STORE_CLOSED', 'the outbox is not open');
    return this.db;
  }
}

function prepare(db: SqliteDatabase) {
  return {
    insert: db.prepare(
      `INSERT OR IGNORE INTO outbox (id, kind, lane, device, stable, measured_at, appended_ms, size, format, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    isAcked: db.prepare('SELECT 1 FROM acked WHERE id = ?').pluck(),
    // Rows of a lane in append order after a frontier, from the partial index on (lane, seq). `lease IS NULL`
    // always holds (leases live in memory; the column is cleared at open and never written) but must be in the
    // query, or SQLite cannot use the partial index and sorts the whole table on every lease.
    pendingInLane: db.prepare(
      'SELECT seq, id, stable, lane, device, appended_ms, size, format, body FROM outbox WHERE lease IS NULL AND lane = ? AND seq > ? ORDER BY seq',
    ),
    remove: db.prepare('DELETE FROM outbox WHERE seq = ? RETURNING id, size, stable, lane'),
    removeLeased: db.prepare('DELETE FROM outbox WHERE seq = ?'),
    remember: db.prepare('INSERT OR REPLACE INTO acked (id, acked_ms) VALUES (?, ?)'),
    forget: db.prepare('DELETE FROM acked WHERE acked_ms < ?'),
    toQuarantine: db.prepare(
      'INSERT OR IGNORE INTO quarantine (seq, id, device, format, body, reason, quarantined_ms) SELECT seq, id, device, format, body, ?, ? FROM outbox WHERE seq = ?',
    ),
    bump: db.prepare(
      'INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value',
    ),
    counter: db.prepare('SELECT value FROM counters WHERE name = ?'),
    atLeast: db.prepare(
      'INSERT INTO counters (name, value) VALUES (@name, @value) ON CONFLICT (name) DO UPDATE SET value = max(value, @value)',
    ),
    firstRow: db.prepare('SELECT seq, appended_ms FROM outbox ORDER BY seq LIMIT 1'),
    firstInLane: db
      .prepare('SELECT appended_ms FROM outbox WHERE lease IS NULL AND lane = ? ORDER BY seq LIMIT 1')
      .pluck(),
  };
}

interface RemovedRow {
  id: string;
  size: number;
  stable: number;
  lane: number;
}

function toRecord(row: Row, codec: RecordCodec): OutboxRecord {
  return new LeasedRecord(row, codec);
}

/**
 * A leased record; its payload decoded only when asked for (the uplink sends wire-format bodies as they are).
 *
 * A class, so the `payload` getter is one accessor on the prototype. As an object literal's `get payload()`,
 * every record got its own getter: V8 allocates each object's accessor pair straight in the old generation
 * (`Factory::NewAccessorPair`, AllocationType::kOld, V8 src/heap/factory.cc), and that old pair kept the young
 * getter, its closure's row and the row's body alive through every young collection until a major one: each
 * leased reading, some 450 bytes, became old-generation garbage (docs/runtime.md, "Memory").
 */
class LeasedRecord implements OutboxRecord {
  readonly seq: number;
  readonly id: string;
  readonly lane: Lane;
  readonly deviceId: string;
  readonly appendedAt: number;
  readonly size: number;
  readonly format: number;
  readonly body: Uint8Array;
  // Private fields (#), not TypeScript's `private`: they stay out of the record's own enumerable properties.
  readonly #codec: RecordCodec;
  #decoded: OutboxPayload | undefined;

  constructor(row: Row, codec: RecordCodec) {
    this.#codec = codec;
    this.seq = row.seq;
    this.id = row.id;
    this.lane = LANES[row.lane] as Lane;
    this.deviceId = row.device;
    this.appendedAt = row.appended_ms;
    this.size = row.size;
    this.format = row.format;
    this.body = row.body;
  }

  get payload(): OutboxPayload {
    this.#decoded ??= decodeBody(this.format, this.body, this.#codec);
    return this.#decoded;
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function emptyMark(now: number): HighWater {
  return { seq: 0, rows: 0, firstSeq: 1, firstAtMs: now, atMs: now };
}
