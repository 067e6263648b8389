/**
 * A gap record: readings of one device that the gateway dropped before they reached the clinic (the store was
 * full, or they grew older than the retention period), said out loud instead of silently missing. It travels
 * like a reading, in the outbox and in a batch (docs/wire-format.md, `gap` items), so the clinic sees where its
 * record of a patient has a hole and why.
 */
export interface Gap {
  readonly type: 'gap';
  readonly id: string;
  readonly deviceId: string;
  /** How many readings were dropped. */
  readonly count: number;
  /** Measurement time of the first and last dropped reading. */
  readonly firstTime: string;
  readonly lastTime: string;
  readonly reason: 'evicted-full' | 'expired';
  /** When the gateway dropped them (ISO-8601 UTC). */
  readonly recordedAt: string;
}
