import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { runUntilSignalled, type Service } from '../../src/runtime/lifecycle.js';
import { SILENT_LOG } from '../../src/runtime/log.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';

/** A service that records what was asked of it. */
function recorder(): Service & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    start: async () => {
      calls.push('start');
    },
    stop: async (reason) => {
      calls.push(`stop: ${reason}`);
    },
  };
}

describe('runUntilSignalled stopWhen', () => {
  it('runs the ordered stop with the given reason when it resolves, and exits 0', async () => {
    const service = recorder();
    const signals = new EventEmitter();
    let stopNow: (reason: string) => void = () => undefined;
    const status = runUntilSignalled({
      service,
      signals,
      deadlineMs: 5_000,
      scheduler: new VirtualScheduler(),
      log: SILENT_LOG,
      stopWhen: new Promise((resolve) => {
        stopNow = resolve;
      }),
      forceExit: () => {
        throw new Error('no forced exit expected');
      },
    });
    stopNow('--duration 25');
    expect(await status).toBe(0);
    expect(service.calls).toEqual(['start', 'stop: --duration 25']);
    // The signal handlers are gone with the run.
    expect(signals.listenerCount('SIGINT')).toBe(0);
  });

  it('a signal after the stop began forces the exit, as a second signal does', async () => {
    const signals = new EventEmitter();
    let finishStop: () => void = () => undefined;
    const service: Service = {
      start: async () => undefined,
      stop: () =>
        new Promise<void>((resolve) => {
          finishStop = resolve;
        }),
    };
    const forced: number[] = [];
    let stopNow: (reason: string) => void = () => undefined;
    const status = runUntilSignalled({
      service,
      signals,
      deadlineMs: 5_000,
      scheduler: new VirtualScheduler(),
      log: SILENT_LOG,
      stopWhen: new Promise((resolve) => {
        stopNow = resolve;
      }),
      forceExit: (code) => forced.push(code),
    });
    stopNow('--duration 1');
    await new Promise((resolve) => setImmediate(resolve));
    signals.emit('SIGINT');
    expect(forced).toEqual([130]);
    finishStop();
    expect(await status).toBe(0);
  });
});
