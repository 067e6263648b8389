import type { Scheduler } from '../util/scheduler.js';

/** Glucose Measurement and its Context: what a RACP report sends (GLS 1.0.1 3.4). */
export const RACP_SERVED: ReadonlySet<string> = new Set(['2a18', '2a34']);
/** A RACP report that sends nothing (no record, no response code) for this long is over. */
export const RACP_QUIET_MS = 30_000;

/**
 * The stored-record phase of one connection, which the session waits out before it writes the device clock:
 * either a RACP report (glucose: ends with the response code, or after RACP_QUIET_MS of silence) or a replay
 * burst after subscribing (stored-replay.ts decides when that is over). Ending it resolves the session's wait.
 */
export class StoredPhase {
  private racp = false;
  private quietTimer: unknown;
  private waiter: ((detail: string) => void) | undefined;

  constructor(private readonly scheduler: Scheduler) {}

  /** A RACP report is under way: what it sends is stored records, and the response code ends it. */
  get racpReport(): boolean {
    return this.racp;
  }

  /** Resolves (with a detail for the log) when the stored-record phase ends, or the attempt does. */
  wait(): Promise<string> {
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** The RACP request is about to go out: from now on, a report that falls silent ends the phase. */
  beginRacpReport(): void {
    this.racp = true;
    this.armQuiet();
  }

  /** A record of the report arrived: the report is alive, the silence deadline starts again. */
  reportAlive(): void {
    this.armQuiet();
  }

  end(detail: string): void {
    const resolve = this.waiter;
    this.waiter = undefined;
    this.racp = false;
    if (this.quietTimer !== undefined) this.scheduler.clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    resolve?.(detail);
  }

  /** A meter that stops sending in the middle of a report (no response code) does not hold the session. */
  private armQuiet(): void {
    if (this.quietTimer !== undefined) this.scheduler.clearTimeout(this.quietTimer);
    this.quietTimer = this.scheduler.setTimeout(() => {
      this.quietTimer = undefined;
      if (this.racp) this.end(`stored records: no response code within ${RACP_QUIET_MS} ms`);
    }, RACP_QUIET_MS);
  }
}
