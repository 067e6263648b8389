import { type Clock, systemClock } from './clock.js';

/**
 * The injected timer source. Components that wait (scan windows, connect timeouts, a simulated device's
 * streaming) take one instead of calling setTimeout, so tests can run hours of device behaviour in
 * milliseconds with VirtualScheduler.
 */
export interface Scheduler extends Clock {
  /** Runs `fn` once after `ms` milliseconds; the handle is opaque and only good for clearTimeout. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer; a handle that already fired or was cleared is ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/** Opaque: a Node Timeout for the real scheduler, a number for the virtual one. */
export type TimerHandle = unknown;

/** Wall-clock time and Node's timers. */
export const realScheduler: Scheduler = {
  now: () => systemClock.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

interface VirtualTimer {
  readonly id: number;
  readonly due: number;
  readonly fn: () => void;
}

/**
 * Time that moves only when a test says so. Timers run in due order; timers due at the same instant run in
 * the order they were set, so a seeded simulation replays identically.
 */
export class VirtualScheduler implements Scheduler {
  private time: number;
  private nextId = 1;
  private timers: VirtualTimer[] = [];

  constructor(start = Date.UTC(2026, 10, 28, 12, 0, 0)) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: VirtualTimer = { id: this.nextId++, due: this.time + Math.max(0, ms), fn };
    // Insert after every timer due no later than this one: same-instant timers keep their creation order.
    let at = this.timers.length;
    while (at > 0 && (this.timers[at - 1] as VirtualTimer).due > timer.due) at--;
    this.timers.splice(at, 0, timer);
    return timer.id;
  }

  clearTimeout(handle: TimerHandle): void {
    const index = this.timers.findIndex((t) => t.id === handle);
    if (index >= 0) this.timers.splice(index, 1);
  }

  /** Timers not yet run. */
  get pending(): number {
    return this.timers.length;
  }

  /**
   * Moves time forward by `ms`, running every timer that falls due on the way (including timers those timers
   * set), each with `now()` at its own due time. Promise continuations a timer triggers run only after this
   * returns: use advanceAsync when the code under test awaits between timers.
   */
  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      const next = this.timers[0];
      if (next === undefined || next.due > target) break;
      this.timers.shift();
      this.time = next.due;
      next.fn();
    }
    this.time = target;
  }

  /**
   * Like advance, but lets pending promise continuations run before each timer and at the end, so async code
   * (an awaited connect that then subscribes and schedules more timers) behaves as it would in real time.
   */
  async advanceAsync(ms: number): Promise<void> {
    const target = this.time + ms;
    await settle();
    for (;;) {
      const next = this.timers[0];
      if (next === undefined || next.due > target) break;
      this.timers.shift();
      this.time = next.due;
      next.fn();
      await settle();
    }
    this.time = target;
    await settle();
  }
}

/** Lets every queued microtask, and the continuations they queue, run (setImmediate runs after all of them). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
