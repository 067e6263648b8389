/**
 * The injected clock and timers of the session layer (the shape of src/util/scheduler.ts's Scheduler, so a
 * VirtualScheduler runs sessions, replay windows and the radio watchdog in virtual time).
 */
export interface Timers {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}
