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
 * - One commit runs at a time (`maxConcurrent`, default 1). What arrives meanwhile waits and goes into the next
 *   group, so the groups grow by themselves when the database is slow: the load adapts the batch size, not a
 *   setting.
 * - Memory is bounded: `add` resolves only while fewer than `maxPendingMessages` messages, `maxPendingItems`
 *   items and `maxPendingBytes` bytes are waiting or committing. Items bound what a message costs once decoded
 *   (a 250-reading backlog batch is ~25 KB of CBOR and several hundred KB of objects), bytes what it costs
 *   as received. The caller holds the MQTT client's input loop on it,
 *   so a slow database slows the TCP connection and the broker keeps the rest, never this process.
 * - A failed commit (the database is down) acknowledges nothing: the same group is retried with exponential
 *   backoff and jitter (src/util/backoff.ts) until it commits, and no other group starts meanwhile, while the
 *   broker keeps every message it has not had a PUBACK for. Nothing is dropped, and nothing is acknowledged
 *   before its own commit.
 */
export interface GroupCommitOptions {
  readonly scheduler: Scheduler;
  readonly maxMessages: number;
  readonly maxItems: number;
  readonly maxDelayMs: number;
  readonly maxPendingMessages: number;
  readonly maxPendingItems: number;
  readonly maxPendingBytes: number;
  readonly retryBaseMs: number;
  readonly retryCapMs: number;
  /**
   * Commits in flight at once (default 1). More than one suits a store whose commits can overlap (PostgreSQL:
   * one pooled connection each; its unique keys and id-ordered inserts already serve several intake
   * processes, so two commits of one process are no different), so a group is sent while the one before
   * waits for the server's insert and flush. An in-process store that commits synchronously (SQLite) gains
   * nothing from it.
   */
  readonly maxConcurrent?: number;
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
  /** Groups committing (or waiting for a retry), with their items and bytes. */
  private readonly inflight = new Map<T[], { readonly items: number; readonly bytes: number }>();
  private inflightMessages = 0;
  private inflightItems = 0;
  private inflightBytes = 0;
  private pendingBytes = 0;
  private oldestAt = 0;
  private timer: TimerHandle | undefined;
  /** Groups whose commit failed, waiting for their retry: while any does, no other group starts. */
  private readonly retrying = new Map<T[], TimerHandle>();
  private stopping = false;
  private readonly roomWaiters: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly options: GroupCommitOptions,
    private readonly commit: (entries: readonly T[]) => Promise<void>,
    private readonly events: GroupEvents<T>,
  ) {}

  /** Messages waiting for a commit or in the ones running. */
  get backlog(): number {
    return this.pending.length + this.inflightMessages;
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
    for (const [group, timer] of this.retrying) {
      this.options.scheduler.clearTimeout(timer);
      this.giveUp(group);
    }
    this.retrying.clear();
    this.schedule();
    if (this.idle()) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** True while fewer than maxPendingMessages messages, maxPendingItems items and maxPendingBytes bytes wait or commit. */
  hasRoom(): boolean {
    return (
      this.backlog < this.options.maxPendingMessages &&
      this.pendingItems + this.inflightItems < this.options.maxPendingItems &&
      this.pendingBytes + this.inflightBytes < this.options.maxPendingBytes
    );
  }

  private idle(): boolean {
    return this.inflight.size === 0 && this.pending.length === 0;
  }

  /** Another group may start: below the concurrency bound and no failed group waiting for its retry. */
  private canStart(): boolean {
    return this.inflight.size < (this.options.maxConcurrent ?? 1) && this.retrying.size === 0;
  }

  private schedule(): void {
    while (this.pending.length > 0 && this.canStart()) {
      const full =
        this.pending.length >= this.options.maxMessages ||
        this.pendingItems >= this.options.maxItems ||
        !this.hasRoom() ||
        this.stopping;
      if (!full) break;
      this.startCommit();
    }
    if (this.pending.length === 0 || !this.canStart() || this.timer !== undefined) return;
    const wait = Math.max(0, this.oldestAt + this.options.maxDelayMs - this.options.scheduler.now());
    this.timer = this.options.scheduler.setTimeout(() => {
      this.timer = undefined;
      if (this.pending.length > 0 && this.canStart()) this.startCommit();
      this.schedule();
    }, wait);
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
    this.inflight.set(group, { items, bytes });
    this.inflightMessages += group.length;
    this.inflightItems += items;
    this.inflightBytes += bytes;
    if (this.pending.length > 0) this.oldestAt = this.options.scheduler.now();
    this.run(group, 1);
  }

  private run(group: T[], attempt: number): void {
    const started = this.options.scheduler.now();
    this.commit(group).then(
      () => this.succeeded(group, this.options.scheduler.now() - started),
      (error: unknown) => this.failedAttempt(group, attempt, error),
    );
  }

  private succeeded(group: T[], elapsedMs: number): void {
    this.giveUp(group);
    this.events.committed(group, elapsedMs);
    this.afterCommit();
  }

  private failedAttempt(group: T[], attempt: number, error: unknown): void {
    if (this.stopping) {
      this.events.failed(error, attempt, undefined);
      this.giveUp(group);
      this.afterCommit();
      return;
    }
    const delay = equalJitter(
      backoffCeiling(attempt - 1, this.options.retryBaseMs, this.options.retryCapMs),
      this.options.random ?? Math.random,
    );
    this.events.failed(error, attempt, delay);
    this.retrying.set(
      group,
      this.options.scheduler.setTimeout(() => {
        this.retrying.delete(group);
        this.run(group, attempt + 1);
      }, delay),
    );
  }

  /** Forgets a group in flight (committed, or never acknowledged: then the broker delivers it again). */
  private giveUp(group: T[]): void {
    const size = this.inflight.get(group);
    if (size === undefined) return;
    this.inflight.delete(group);
    this.inflightMessages -= group.length;
    this.inflightItems -= size.items;
    this.inflightBytes -= size.bytes;
  }

  private afterCommit(): void {
    while (this.hasRoom() && this.roomWaiters.length > 0) this.roomWaiters.shift()?.();
    this.schedule();
    if (this.idle()) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }
}
