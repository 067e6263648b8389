/**
 * A gap record: readings that the gateway dropped before they reached the clinic (the store was full, they grew
 * older than the retention period, or damage to the store lost them), said out loud instead of silently
 * missing. It travels like a reading, in the outbox and in a batch (docs/wire-format.md, `gap` items), so the
 * clinic sees where its record of a patient has a hole and why.
 */
export interface Gap {
  readonly type: 'gap';
  readonly id: string;
  /** The device whose readings were dropped; '*' for 'store-damaged' (the lost rows named their devices). */
  readonly deviceId: string;
  /** How many readings were dropped (for 'store-damaged': at most this many, see src/store/damage.ts). */
  readonly count: number;
  /**
   * Measurement time of the first and last dropped reading; for 'store-damaged', when the first and last of
   * the lost records were stored at the gateway (their measurement times were in the lost rows).
   */
  readonly firstTime: string;
  readonly lastTime: string;
  readonly reason: 'evicted-full' | 'expired' | 'store-damaged';
  /** When the gateway dropped them (ISO-8601 UTC). */
  readonly recordedAt: string;
  /** For 'store-damaged': the outbox sequence numbers of the lost records, first and last. */
  readonly seqs?: readonly [number, number];
}
