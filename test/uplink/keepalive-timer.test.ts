import { createHook } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { refreshingTimer } from '../../src/uplink/keepalive-timer.js';
import { until } from '../support/until.js';

/** Timers that keep the process alive (Node counts only referenced ones here). */
const refedTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('the refreshing keepalive timer', () => {
  it('runs its callback every period, and after a clear never again', async () => {
    const timer = refreshingTimer();
    let first = 0;
    let second = 0;
    const id = timer.set(() => first++, 5);
    await until('three periods', () => first >= 3);
    timer.clear(id);
    const firstAtClear = first;
    const next = timer.set(() => second++, 5);
    await until('three periods of the new callback', () => second >= 3);
    expect(first).toBe(firstAtClear); // the cleared callback ran in none of those periods
    timer.clear(next);
  });

  it('ignores a clear of an id a later set replaced, as clearInterval of a finished timer would', async () => {
    const timer = refreshingTimer();
    let runs = 0;
    const old = timer.set(() => undefined, 5);
    timer.clear(old);
    const current = timer.set(() => runs++, 5);
    expect(current).not.toBe(old);
    timer.clear(old);
    await until('the current callback to run', () => runs >= 2);
    timer.clear(current);
  });

  it('follows a change of period', async () => {
    const timer = refreshingTimer();
    let runs = 0;
    timer.clear(timer.set(() => undefined, 60_000));
    const id = timer.set(() => runs++, 5);
    await until('the 5 ms period', () => runs >= 2);
    timer.clear(id);
  });

  it('holds the process open while set, and not once cleared', () => {
    const timer = refreshingTimer();
    const before = refedTimers();
    const id = timer.set(() => undefined, 60_000);
    expect(refedTimers()).toBe(before + 1);
    timer.clear(id);
    expect(refedTimers()).toBe(before);
    const again = timer.set(() => undefined, 60_000);
    expect(refedTimers()).toBe(before + 1);
    timer.clear(again);
    expect(refedTimers()).toBe(before);
  });

  it('makes one Node timer however often it is cleared and set again with the same period', () => {
    const timer = refreshingTimer();
    let made = 0;
    const hook = createHook({
      init(_id, type) {
        if (type === 'Timeout') made++;
      },
    });
    hook.enable();
    try {
      let id = timer.set(() => undefined, 60_000);
      for (let i = 0; i < 1_000; i++) {
        timer.clear(id);
        id = timer.set(() => undefined, 60_000);
      }
      timer.clear(id);
    } finally {
      hook.disable();
    }
    expect(made).toBe(1);
  });
});
