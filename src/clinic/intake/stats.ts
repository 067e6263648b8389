import type { CommitOutcome, IncomingRejection } from '../storage/clinic-store.js';

/** The intake's counters since start, for logs and metrics (docs/clinic-intake.md, "Stats"). */
export interface IntakeStats {
  /** Messages read from the broker. */
  readonly received: number;
  readonly measurementsInserted: number;
  /** Measurements already stored (a redelivery or a re-send): not stored again. */
  readonly measurementDuplicates: number;
  readonly gapsInserted: number;
  readonly gapDuplicates: number;
  readonly statuses: number;
  /** Refused messages by code (WIRE_*, INTAKE_*), each stored as a rejection. */
  readonly rejected: Readonly<Record<string, number>>;
  /** Refused messages kept with their bytes for a retry (unknown kid). */
  readonly quarantined: number;
  /** Quarantined messages judged again and released (stored, or refused for good). */
  readonly released: number;
  readonly commits: number;
  readonly commitFailures: number;
  /** Messages in committed groups, and the largest group: messages per commit = messagesCommitted / commits. */
  readonly messagesCommitted: number;
  readonly maxMessagesPerCommit: number;
  readonly lastCommitMs: number;
  readonly acksSent: number;
  /** PUBACKs not sent because their connection had closed (the broker delivers those messages again). */
  readonly acksDropped: number;
  /** Times the CRL in force was found past its nextUpdate (it still applies). */
  readonly crlStale: number;
  /** Messages waiting for a commit or in the running one. */
  readonly backlog: number;
}

export class StatsCounter {
  received = 0;
  released = 0;
  commitFailures = 0;
  acksSent = 0;
  acksDropped = 0;
  crlStale = 0;
  private measurementsInserted = 0;
  private measurementDuplicates = 0;
  private gapsInserted = 0;
  private gapDuplicates = 0;
  private statuses = 0;
  private quarantined = 0;
  private readonly rejected = new Map<string, number>();
  private commits = 0;
  private messagesCommitted = 0;
  private maxMessagesPerCommit = 0;
  private lastCommitMs = 0;

  recordWrite(outcome: CommitOutcome, statuses: number, rejections: readonly IncomingRejection[]): void {
    this.measurementsInserted += outcome.inserted.length;
    this.measurementDuplicates += outcome.duplicates;
    this.gapsInserted += outcome.gapsInserted;
    this.gapDuplicates += outcome.gapDuplicates;
    this.statuses += statuses;
    for (const rejection of rejections) {
      this.rejected.set(rejection.code, (this.rejected.get(rejection.code) ?? 0) + 1);
      if (rejection.payload) this.quarantined++;
    }
  }

  recordCommit(messages: number, elapsedMs: number): void {
    this.commits++;
    this.messagesCommitted += messages;
    this.maxMessagesPerCommit = Math.max(this.maxMessagesPerCommit, messages);
    this.lastCommitMs = elapsedMs;
  }

  snapshot(backlog: number): IntakeStats {
    return {
      received: this.received,
      measurementsInserted: this.measurementsInserted,
      measurementDuplicates: this.measurementDuplicates,
      gapsInserted: this.gapsInserted,
      gapDuplicates: this.gapDuplicates,
      statuses: this.statuses,
      rejected: Object.fromEntries(this.rejected),
      quarantined: this.quarantined,
      released: this.released,
      commits: this.commits,
      commitFailures: this.commitFailures,
      messagesCommitted: this.messagesCommitted,
      maxMessagesPerCommit: this.maxMessagesPerCommit,
      lastCommitMs: this.lastCommitMs,
      acksSent: this.acksSent,
      acksDropped: this.acksDropped,
      crlStale: this.crlStale,
      backlog,
    };
  }
}
