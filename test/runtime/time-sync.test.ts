import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemTimeSyncProbe, type TimeSyncReading, TimeSyncWatch } from '../../src/runtime/time-sync.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';

const RELEASE = Date.UTC(2026, 11, 1);

describe('is the system clock set?', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rpm-time-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const probe = (now: number, timedatectl: () => Promise<string>) =>
    systemTimeSyncProbe({
      now: () => now,
      notBeforeMs: RELEASE,
      timesyncdFlag: join(dir, 'synchronized'),
      timedatectl,
    });

  it('a clock before this release was built is not set, whatever NTP says', async () => {
    const reading = await probe(Date.UTC(1970, 0, 1, 0, 0, 42), async () => 'yes\n')();
    expect(reading).toMatchObject({ synchronised: false, source: 'clock-before-release' });
    expect(reading.detail).toContain('1970-01-01T00:00:42.000Z');
  });

  it("believes systemd-timesyncd's flag file, then timedated's NTPSynchronized", async () => {
    const now = RELEASE + 86_400_000;
    expect(await probe(now, async () => 'no\n')()).toMatchObject({
      synchronised: false,
      source: 'timedated',
    });
    expect(await probe(now, async () => 'yes\n')()).toMatchObject({
      synchronised: true,
      source: 'timedated',
    });
    writeFileSync(join(dir, 'synchronized'), '');
    expect(await probe(now, async () => 'no\n')()).toMatchObject({ synchronised: true, source: 'timesyncd' });
  });

  it('counts a clock it cannot ask about as not set, and says why', async () => {
    const reading = await probe(RELEASE + 1, async () => {
      throw new Error('System has not been booted with systemd as init system (PID 1).\nmore');
    })();
    expect(reading).toEqual({
      synchronised: false,
      source: 'unknown',
      detail: 'cannot ask timedated: System has not been booted with systemd as init system (PID 1).',
    });
    expect(await probe(RELEASE + 1, async () => 'maybe')()).toMatchObject({
      synchronised: false,
      source: 'unknown',
    });
  });
});

describe('TimeSyncWatch', () => {
  it('asks again every poll period until the clock is set, then tells its listeners once', async () => {
    const scheduler = new VirtualScheduler();
    const answers = [false, false, true];
    let asked = 0;
    const watch = new TimeSyncWatch({
      scheduler,
      pollMs: 10_000,
      probe: async () => ({ synchronised: answers[asked++] ?? true, source: 'timedated', detail: '' }),
    });
    const told: TimeSyncReading[] = [];
    watch.onSynchronised((reading) => told.push(reading));
    expect((await watch.start()).synchronised).toBe(false);
    await scheduler.advanceAsync(9_999);
    expect(asked).toBe(1);
    await scheduler.advanceAsync(1);
    expect(asked).toBe(2);
    expect(told).toHaveLength(0);
    await scheduler.advanceAsync(10_000);
    expect(asked).toBe(3);
    expect(told).toHaveLength(1);
    expect(watch.synchronised).toBe(true);
    expect(scheduler.pending).toBe(0); // a set clock is not asked about again

    const late: TimeSyncReading[] = [];
    watch.onSynchronised((reading) => late.push(reading));
    expect(late).toHaveLength(1);
  });

  it('stops asking when stopped', async () => {
    const scheduler = new VirtualScheduler();
    let asked = 0;
    const watch = new TimeSyncWatch({
      scheduler,
      probe: async () => {
        asked++;
        return { synchronised: false, source: 'unknown', detail: '' };
      },
    });
    await watch.start();
    watch.stop();
    expect(scheduler.pending).toBe(0);
    await scheduler.advanceAsync(60_000);
    expect(asked).toBe(1);
  });
});
