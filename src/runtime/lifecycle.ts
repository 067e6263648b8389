import type { Scheduler, TimerHandle } from '../util/scheduler.js';
import type { RuntimeLog } from './log.js';

/**
 * Runs a service (the Hub) as a long-lived process: start, then run until SIGTERM (systemd's stop, `kill`) or
 * SIGINT (Ctrl-C), then stop in order within a deadline.
 *
 * - The signal handlers are installed before start(), so a stop asked for while starting waits for the start
 *   to finish and then stops (nothing is left half-open).
 * - The first signal starts the ordered stop (the Hub's stop(): intake, in-flight appends, offline status,
 *   uplink, store). It must finish within `deadlineMs` (config shutdown.deadline); past it, the process exits
 *   non-zero (EXIT_DEADLINE) and systemd logs a failed stop, since readings may still have been in memory.
 *   Set the unit's TimeoutStopSec= above the deadline, so systemd's SIGKILL never comes first.
 * - A second signal while stopping forces the exit at once, non-zero (128 + the signal's number, as a shell
 *   reports a process a signal ended): the operator asked twice. What was committed is safe; what was not is
 *   gone, as with SIGKILL.
 * - Only these two signals: SIGHUP keeps Node's default (systemd does not send it to a service).
 *
 * noble, when it is the radio backend, registers a SIGINT handler of its own that ends the process; the noble
 * backend removes it (src/ble/noble/central.ts), so SIGINT always reaches this ordered stop.
 */
export interface Service {
  start(): Promise<void>;
  stop(reason: string): Promise<void>;
}

/** Where signals come from: `process`, or an EventEmitter in tests. */
export interface SignalSource {
  on(signal: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
  removeListener(signal: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
}

export interface LifecycleOptions {
  readonly service: Service;
  readonly signals: SignalSource;
  readonly deadlineMs: number;
  readonly scheduler: Scheduler;
  readonly log: RuntimeLog;
  /** Ends the process now (a second signal); the default is process.exit. */
  readonly forceExit?: (code: number) => void;
  /**
   * A reason to stop other than a signal (the demo's --duration): when it resolves, the same ordered stop
   * runs, with its reason, exactly as on the first signal; a signal after it still forces the exit.
   */
  readonly stopWhen?: Promise<string>;
  /** The first part of the lifecycle's log events (`hub.stopping`, `broker.stopped`); default `hub`. */
  readonly eventPrefix?: string;
}

/** The exit status when the ordered stop did not finish within the deadline. */
export const EXIT_DEADLINE = 1;
/** The exit status when start() failed. */
export const EXIT_START_FAILED = 1;

const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

/** Starts the service and resolves with the exit status once it has stopped (0: a clean, timely stop). */
export function runUntilSignalled(options: LifecycleOptions): Promise<number> {
  const { service, signals, scheduler, log } = options;
  const forceExit = options.forceExit ?? ((code: number) => process.exit(code));
  const prefix = options.eventPrefix ?? 'hub';
  return new Promise<number>((resolve) => {
    let started: Promise<boolean> | undefined;
    let stopping = false;
    let finished = false;
    let deadline: TimerHandle | undefined;

    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      if (deadline !== undefined) scheduler.clearTimeout(deadline);
      for (const signal of ['SIGTERM', 'SIGINT'] as const) signals.removeListener(signal, handlers[signal]);
      resolve(code);
    };

    const stop = (reason: string, startedOk: boolean) => {
      const began = scheduler.now();
      deadline = scheduler.setTimeout(() => {
        log.error(`${prefix}.stop-deadline-passed`, { deadlineMs: options.deadlineMs, reason });
        finish(EXIT_DEADLINE);
      }, options.deadlineMs);
      service.stop(reason).then(
        () => {
          log.info(`${prefix}.stopped`, { reason, elapsedMs: scheduler.now() - began });
          finish(startedOk ? 0 : EXIT_START_FAILED);
        },
        (error: unknown) => {
          log.error(`${prefix}.stop-failed`, { reason, error: messageOf(error), code: codeOf(error) });
          finish(EXIT_DEADLINE);
        },
      );
    };

    const onSignal = (signal: 'SIGTERM' | 'SIGINT') => {
      if (stopping) {
        log.warn(`${prefix}.forced-exit`, { signal, reason: 'a second signal while stopping' });
        log.flush();
        forceExit(128 + SIGNAL_NUMBERS[signal]);
        return;
      }
      stopping = true;
      log.info(`${prefix}.stopping`, { signal, deadlineMs: options.deadlineMs });
      void (started ?? Promise.resolve(true)).then((ok) => stop(`signal ${signal}`, ok));
    };
    const handlers = { SIGTERM: () => onSignal('SIGTERM'), SIGINT: () => onSignal('SIGINT') };
    void options.stopWhen?.then((reason) => {
      if (stopping || finished) return;
      stopping = true;
      log.info(`${prefix}.stopping`, { reason, deadlineMs: options.deadlineMs });
      void (started ?? Promise.resolve(true)).then((ok) => stop(reason, ok));
    });
    for (const signal of ['SIGTERM', 'SIGINT'] as const) signals.on(signal, handlers[signal]);

    started = service.start().then(
      () => true,
      (error: unknown) => {
        log.error(`${prefix}.start-failed`, { error: messageOf(error), code: codeOf(error) });
        return false;
      },
    );
    void started.then((ok) => {
      // A start that failed stops what it opened; a stop already asked for does that itself.
      if (!ok && !stopping) {
        stopping = true;
        stop('start failed', false);
      }
    });
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}
