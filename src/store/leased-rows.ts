import { OrderedRing } from '../util/ordered-ring.js';

/** What an acknowledgement needs of a leased row, so deleting it is a plain DELETE by seq. */
export interface LeasedRow {
  readonly lane: number;
  readonly leaseId: number;
  readonly size: number;
  readonly stableId: string | undefined;
}

/**
 * The outbox's leased rows by seq, one ring per lane (src/util/ordered-ring.ts: adding and deleting allocate
 * nothing, where a long-lived Map made old-generation garbage on every lease and acknowledgement). Per lane,
 * because a lane is leased in seq order from its frontier: a new lease's rows come after every row of their
 * lane already leased (O(1) appends), and the count per lane is the ring's size.
 */
export class LeasedRows {
  private readonly lanes: readonly OrderedRing<LeasedRow>[];

  constructor(laneCount: number) {
    this.lanes = Array.from({ length: laneCount }, () => new OrderedRing<LeasedRow>());
  }

  /** Whether `seq`, a row of `lane`, is leased. */
  inLane(lane: number, seq: number): boolean {
    return (this.lanes[lane] as OrderedRing<LeasedRow>).has(seq);
  }

  has(seq: number): boolean {
    return this.get(seq) !== undefined;
  }

  get(seq: number): LeasedRow | undefined {
    for (const ring of this.lanes) {
      const row = ring.get(seq);
      if (row !== undefined) return row;
    }
    return undefined;
  }

  add(seq: number, row: LeasedRow): void {
    (this.lanes[row.lane] as OrderedRing<LeasedRow>).set(seq, row);
  }

  /** Removes `seq`; returns what was leased, or undefined. */
  take(seq: number): LeasedRow | undefined {
    for (const ring of this.lanes) {
      const row = ring.delete(seq);
      if (row !== undefined) return row;
    }
    return undefined;
  }

  countInLane(lane: number): number {
    return (this.lanes[lane] as OrderedRing<LeasedRow>).size;
  }
}
