import { createHook } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { Ticker } from '../../src/ble/sim/sdk.js';
import { realScheduler, VirtualScheduler } from '../../src/util/scheduler.js';
import { until } from '../support/until.js';

/**
 * Counts the Node `Timeout`s made through src/util/scheduler.ts while `body` runs (async_hooks init of type
 * 'Timeout'; the waits of `until` make their own and are not counted).
 */
async function timeoutsMadeBy(body: () => Promise<void>): Promise<number> {
  let made = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'Timeout' && new Error().stack?.includes('src/util/scheduler')) made++;
    },
  });
  hook.enable();
  try {
    await body();
  } finally {
    hook.disable();
  }
  return made;
}

describe('VirtualScheduler.setInterval', () => {
  it('runs every period from the first period on, each run at its due time, until cleared', () => {
    const scheduler = new VirtualScheduler(0);
    const runs: number[] = [];
    const handle = scheduler.setInterval(() => runs.push(scheduler.now()), 1_000);
    scheduler.advance(3_500);
    expect(runs).toEqual([1_000, 2_000, 3_000]);
    scheduler.clearTimeout(handle);
    scheduler.advance(10_000);
    expect(runs).toEqual([1_000, 2_000, 3_000]);
    expect(scheduler.pending).toBe(0);
  });

  it('orders its runs as a timeout re-armed at the start of its own callback would', () => {
    // What the simulated devices' Ticker did before it took an interval: a seeded simulation replays the same.
    const order = (useInterval: boolean): string[] => {
      const scheduler = new VirtualScheduler(0);
      const seen: string[] = [];
      const body = () => {
        seen.push(`tick@${scheduler.now()}`);
        scheduler.setTimeout(() => seen.push(`after@${scheduler.now()}`), 1_000); // due with the next tick
      };
      if (useInterval) scheduler.setInterval(body, 1_000);
      else {
        const tick = () => {
          scheduler.setTimeout(tick, 1_000);
          body();
        };
        scheduler.setTimeout(tick, 1_000);
      }
      scheduler.setTimeout(() => seen.push(`other@${scheduler.now()}`), 2_000);
      scheduler.advance(3_000);
      return seen;
    };
    expect(order(true)).toEqual(order(false));
    expect(order(true)).toEqual([
      'tick@1000',
      'other@2000',
      'tick@2000',
      'after@2000',
      'tick@3000',
      'after@3000',
    ]);
  });
});

describe('realScheduler.setInterval', () => {
  it('runs repeatedly on one Node timer, and clearTimeout stops it', async () => {
    let runs = 0;
    let handle: unknown;
    const made = await timeoutsMadeBy(async () => {
      handle = realScheduler.setInterval(() => runs++, 2);
      await until('five runs', () => runs >= 5);
    });
    expect(made).toBe(1);
    realScheduler.clearTimeout(handle);
    const atClear = runs;
    // a timeout set after the clear, with a longer delay than the period, has run: the interval had its chances
    await new Promise<void>((resolve) => realScheduler.setTimeout(resolve, 20));
    expect(runs).toBe(atClear);
  });
});

describe('the simulated devices’ Ticker', () => {
  it('streams on one Node timer, not a new one per tick', async () => {
    const ticker = new Ticker(realScheduler);
    let ticks = 0;
    const made = await timeoutsMadeBy(async () => {
      ticker.start(2, () => ticks++);
      await until('twenty ticks', () => ticks >= 20);
    });
    ticker.stop();
    expect(made).toBe(1);
  });
});
