import { backoffCeiling, equalJitter } from '../../util/backoff.js';
import type { Scheduler, TimerHandle } from '../../util/scheduler.js';

/**
 * Group commit: many messages, one database transaction. The same idea as PostgreSQL's `commit_delay` (the
 * PostgreSQL manual, "WAL Configuration"): the cost of a commit is mostly the flush to disk, so a commit that
 * holds a hundred messages costs about what one holding a single message costs.
 *
 * - A group is committed when `maxMessages` messages or `maxItems` items wait, or when the oldest has waited
 *   `maxDelayMs` (scheduler time), whichever comes first; it holds at most `maxMessages` messages and stops
 *   at the message that takes it to `maxItems` items.
 * - One commit runs at a time. What arrives meanwhile waits and goes into the next group, so the groups grow
 *   by themselves when the database is slow: the load adapts the batch size, not a setting.
 * - Memory is bounded: `add` resolves only while fewer than `maxPendingMessages` messages (and
 *   `maxPendingBytes` bytes) are waiting or committing. The caller holds the MQTT client's input loop on it,
 *   so a slow database slows the TCP connection and the broker keeps the rest, never this process.
 * - A failed commit (the database is down) acknowledges nothing: the same group is retried with exponential
 *   backoff and jitter (src/util/backoff.ts) until it commits, while the broker keeps every message it has
 *   not had a PUBACK for. Nothing is dropped, and nothing is acknowledged before its own commit.
 */
export interface GroupCommitOptions {
  readonly scheduler: Scheduler;
  readonly maxMessages: number;
  readonly maxItems: number;
  readonly maxDelayMs: number;
  readonly maxPendingMessages: number;
  readonly maxPendingBytes: number;
  readonly retryBaseMs: number;
  readonly retryCapMs: number;
  /** [0, 1); Math.random unless a test makes it deterministic. */
  readonly random?: () => number;
}

export interface GroupEntry {
  /** Readings, gaps and statuses in it: what `maxItems` counts. */
  readonly items: number;
  readonly bytes: number;
}

export interface GroupEvents<T> {
  /** After a commit resolved: acknowledge these now. */
  readonly committed: (entries: readonly T[], elapsedMs: number) => void;
  /** A commit failed; it is tried again after `retryInMs` (or not, when stopping). */
  readonly failed: (error: unknown, attempt: number, retryInMs: number | undefined) => void;
}

export class GroupCommitter<T extends GroupEntry> {
  private pending: T[] = [];
  private pendingItems = 0;
  private inflight: T[] | undefined;
  private inflightBytes = 0;
  private pendingBytes = 0;
  private oldestAt = 0;
  private timer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private attempt = 0;
  private stopping = false;
  private readonly roomWaiters: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly options: GroupCommitOptions,
    private readonly commit: (entries: readonly T[]) => Promise<void>,
    private readonly events: GroupEvents<T>,
  ) {}

  /** Messages waiting for a commit or in the one running. */
  get backlog(): number {
    return this.pending.length + (this.inflight?.length ?? 0);
  }

  /** Queues an entry for the next commit; resolves when there is room for another one. */
  add(entry: T): Promise<void> {
    if (this.pending.length === 0) this.oldestAt = this.options.scheduler.now();
    this.pending.push(entry);
    this.pendingItems += entry.items;
    this.pendingBytes += entry.bytes;
    this.schedule();
    return this.hasRoom() ? Promise.resolve() : new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /**
   * Commits what is waiting now and resolves when nothing is waiting or committing. A commit that fails
   * while draining is not retried: its messages stay unacknowledged and the broker delivers them again.
   */
  async drain(): Promise<void> {
    this.stopping = true;
    if (this.retryTimer !== undefined) {
      this.options.scheduler.clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.giveUpInflight();
    }
    if (this.inflight === undefined && this.pending.length > 0) this.startCommit();
    if (this.inflight === undefined && this.pending.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** True while fewer than maxPendingMessages messages (and maxPendingBytes bytes) wait or commit. */
  hasRoom(): boolean {
    return (
      this.backlog < this.options.maxPendingMessages &&
      this.pendingBytes + this.inflightBytes < this.options.maxPendingBytes
    );
  }

  private schedule(): void {
    if (this.inflight !== undefined || this.pending.length === 0) return;
    const full =
      this.pending.length >= this.options.maxMessages ||
      this.pendingItems >= this.options.maxItems ||
      !this.hasRoom() ||
      this.stopping;
    if (full) {
      this.startCommit();
      return;
    }
    if (this.timer === undefined) {
      const wait = Math.max(0, this.oldestAt + this.options.maxDelayMs - this.options.scheduler.now());
      this.timer = this.options.scheduler.setTimeout(() => {
        this.timer = undefined;
        if (this.inflight === undefined && this.pending.length > 0) this.startCommit();
      }, wait);
    }
  }

  private startCommit(): void {
    if (this.timer !== undefined) {
      this.options.scheduler.clearTimeout(this.timer);
      this.timer = undefined;
    }
    // A group stops at maxMessages messages or once it holds maxItems items (so it exceeds maxItems by at most
    // one message's items), however many waited during the previous commit: a commit's size, and so its time
    // and the PUBACK delay of its first message, stays bounded (before this, 256 backlog batches of 250
    // readings could go into one 64,000-reading commit).
    let count = 0;
    let items = 0;
    let bytes = 0;
    const max = Math.max(this.options.maxMessages, 1);
    for (const entry of this.pending) {
      if (count === max || (count > 0 && items >= this.options.maxItems)) break;
      count++;
      items += entry.items;
      bytes += entry.bytes;
    }
    const group = this.pending.splice(0, count);
    this.pendingItems -= items;
    this.pendingBytes -= bytes;
    this.inflight = group;
    this.inflightBytes = bytes;
    if (this.pending.length > 0) this.oldestAt = this.options.scheduler.now();
    this.attempt = 0;
    this.run(group);
  }

  private run(group: T[]): void {
    const started = this.options.scheduler.now();
    this.commit(group).then(
      () => this.succeeded(group, this.options.scheduler.now() - started),
      (error: unknown) => this.failedAttempt(group, error),
    );
  }

  private succeeded(group: T[], elapsedMs: number): void {
    this.inflight = undefined;
    this.inflightBytes = 0;
    this.events.committed(group, elapsedMs);
    this.afterCommit();
  }

  private failedAttempt(group: T[], error: unknown): void {
    this.attempt++;
    if (this.stopping) {
      this.events.failed(error, this.attempt, undefined);
      this.giveUpInflight();
      this.afterCommit();
      return;
    }
    const delay = equalJitter(
      backoffCeiling(this.attempt - 1, this.options.retryBaseMs, this.options.retryCapMs),
      this.options.random ?? Math.random,
    );
    this.events.failed(error, this.attempt, delay);
    this.retryTimer = this.options.scheduler.setTimeout(() => {
      this.retryTimer = undefined;
      this.run(group);
    }, delay);
  }

  /** Forgets the group in flight: never acknowledged, so the broker keeps it and delivers it again. */
  private giveUpInflight(): void {
    this.inflight = undefined;
    this.inflightBytes = 0;
  }

  private afterCommit(): void {
    while (this.hasRoom() && this.roomWaiters.length > 0) this.roomWaiters.shift()?.();
    if (this.stopping && this.pending.length > 0 && this.inflight === undefined) this.startCommit();
    else this.schedule();
    if (this.inflight === undefined && this.pending.length === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }
}
