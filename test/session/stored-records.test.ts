import { describe, expect, it } from 'vitest';
import { simulatedDevice } from '../../src/ble/sim/index.js';
import { stamp } from '../../src/pipeline/stamp.js';
import type { SessionReading } from '../../src/session/device-session.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';
import { on, onceIn, type SessionRig, START, sessionRig } from './session-rig.js';

/**
 * Stored records that cuffs and scales replay as indications right after their CCCD is written
 * (src/session/stored-replay.ts): marked stored, kept out of the clock-offset estimate, corrected with the
 * offset of the clock that stamped them; and a link that drops in the middle of the burst.
 */
const HOUR = 3_600_000;

/** |measurement time - true time| for a reading whose true time is known. */
function error(reading: SessionReading | undefined, truth: number): number {
  return Math.abs(Date.parse(reading?.time as string) - truth);
}

/** The true times of `count` preloaded records, `everyMs` apart, the last `everyMs` before START. */
function preloadTimes(count: number, everyMs: number): number[] {
  return Array.from({ length: count }, (_, i) => START - (count - i) * everyMs);
}

async function started(rig: SessionRig, ms = 10_000): Promise<SessionRig> {
  await rig.central.start();
  rig.session.start();
  await rig.advance(ms);
  return rig;
}

describe('stored records replayed on connect', () => {
  it('a cuff without Current Time: stored, out of the estimate, later corrected by the live offset', async () => {
    const r = await started(
      sessionRig('sig/blood-pressure', {
        device: { currentTime: 'none', clockOffsetMs: 2 * HOUR, preload: 4, preloadEveryMs: 6 * HOUR },
      }),
    );
    const replayed = on(r.readings, '2a35');
    expect(replayed).toHaveLength(4);
    expect(replayed.every((x) => x.stored)).toBe(true);
    // Nothing live yet, so no offset is known: taken as the device says, and nothing entered the estimator.
    expect(replayed.every((x) => x.timeSource === 'device')).toBe(true);
    expect(r.session.clockOffset).toBeUndefined();
    expect(r.session.clockHandling).toBe('measured');

    for (let i = 0; i < 3; i++) {
      r.device.measure(); // live: intermediate cuff pressure, then the measurement
      await r.advance(60_000);
    }
    const live = on(r.readings, '2a35').filter((x) => !x.stored);
    expect(live).toHaveLength(3);
    const timestamped = r.readings.filter((x) => !x.stored && x.reading.time !== null).length;
    expect(r.session.clockOffset?.samples).toBe(Math.min(5, timestamped)); // only live readings
    expect(Math.abs((r.session.clockOffset?.offsetMs ?? 0) - 2 * HOUR)).toBeLessThan(1_000);
    for (const x of live) {
      expect(x.timeSource).toBe('device-corrected');
      expect(Math.abs(Date.parse(x.time) - x.receivedAt)).toBeLessThan(1_000);
    }

    // Two measurements while the gateway is away: replayed at the next connection, corrected by the estimate.
    r.device.peripheral.setInRange(false);
    await r.advance(10 * 60_000);
    const taken = [r.scheduler.now()];
    r.device.measure();
    await r.advance(30 * 60_000);
    taken.push(r.scheduler.now());
    r.device.measure();
    r.device.peripheral.setInRange(true);
    await r.advance(10 * 60_000);
    const later = on(r.readings, '2a35').slice(-2);
    expect(later.map((x) => x.stored)).toEqual([true, true]);
    expect(later.map((x) => x.timeSource)).toEqual(['device-corrected', 'device-corrected']);
    later.forEach((x, i) => {
      expect(error(x, taken[i] as number)).toBeLessThan(1_000);
    });
    await r.session.stop();
  });

  it('a read-only Current Time: stored records are corrected at once with the clock read at connect', async () => {
    const r = await started(
      sessionRig('sig/blood-pressure', {
        device: {
          currentTime: 'read-only',
          clockOffsetMs: -90 * 60_000,
          preload: 3,
          preloadEveryMs: 3 * HOUR,
        },
      }),
    );
    const replayed = on(r.readings, '2a35');
    expect(replayed.map((x) => x.stored)).toEqual([true, true, true]);
    expect(replayed.map((x) => x.timeSource)).toEqual([
      'device-corrected',
      'device-corrected',
      'device-corrected',
    ]);
    preloadTimes(3, 3 * HOUR).forEach((truth, i) => {
      expect(error(replayed[i], truth)).toBeLessThan(1_000);
    });
    expect(r.session.clockOffset).toBeUndefined(); // the estimator saw none of them
    expect(r.device.peripheral.written('2a2b')).toEqual([]);
    await r.session.stop();
  });

  it('a writable clock is written only after the burst, and the burst is corrected with the clock before it', async () => {
    const r = await started(
      sessionRig('sig/weight-scale', {
        device: { clockOffsetMs: 3 * HOUR, preload: 3, preloadEveryMs: 24 * HOUR },
      }),
    );
    const replayed = on(r.readings, '2a9d');
    expect(replayed.every((x) => x.stored && x.timeSource === 'device-corrected')).toBe(true);
    preloadTimes(3, 24 * HOUR).forEach((truth, i) => {
      expect(error(replayed[i], truth)).toBeLessThan(1_000);
    });
    const syncedAt = r.times[r.states.indexOf('syncing-time')] as number;
    expect(Math.max(...replayed.map((x) => x.receivedAt))).toBeLessThan(syncedAt);
    expect(r.details[r.states.indexOf('syncing-time')]).toBe('stored records: 3 (quiet)');
    expect(r.session.clockHandling).toBe('written');
    expect(Math.abs(r.device.peripheral.clockOffsetMs)).toBeLessThan(1_000);
    r.device.measure();
    await r.advance(1_000);
    const live = on(r.readings, '2a9d').at(-1);
    expect(live).toMatchObject({ stored: false, timeSource: 'device' });
    expect(error(live, r.scheduler.now() - 1_000)).toBeLessThan(1_000);
    await r.session.stop();
  });

  it('a live measurement (intermediate cuff pressure) ends the replay at once, and the clock is not set under it', async () => {
    const r = sessionRig('sig/blood-pressure', { device: { clockOffsetMs: HOUR, preload: 2 } });
    await r.central.start();
    r.session.start();
    await r.advance(200); // the two stored records are in (20 ms apart)
    expect(r.session.state).toBe('fetching-stored');
    r.device.measure();
    await r.advance(1_000);
    expect(r.details[r.states.indexOf('syncing-time')]).toBe('stored records: 2 (live-measurement)');
    const bp = on(r.readings, '2a35');
    expect(bp.map((x) => x.stored)).toEqual([true, true, false]);
    expect(on(r.readings, '2a36').every((x) => !x.stored)).toBe(true);
    expect(r.device.peripheral.written('2a2b')).toEqual([]);
    expect(r.session.clockHandling).toBe('measured');
    expect(error(bp[2], bp[2]?.receivedAt ?? 0)).toBeLessThan(1_000); // corrected with the connect-time read
    await r.session.stop();
  });

  it("a scale's re-sent last record after the burst is a stored record, not a live one", async () => {
    const r = await started(
      sessionRig('sig/weight-scale', { device: { currentTime: 'none', clockOffsetMs: HOUR, preload: 2 } }),
    );
    const last = on(r.readings, '2a9d').at(-1) as SessionReading;
    r.device.peripheral.emit('2a9d', last.payload); // as some scales repeat their value seconds later
    await r.advance(1_000);
    expect(on(r.readings, '2a9d').at(-1)).toMatchObject({ stored: true });
    expect(r.session.clockOffset).toBeUndefined();
    r.device.measure();
    await r.advance(1_000);
    expect(on(r.readings, '2a9d').at(-1)).toMatchObject({ stored: false });
    expect(r.session.clockOffset?.samples).toBe(1);
    await r.session.stop();
  });

  it('a device that replays only once its clock is set still has its records marked stored', async () => {
    // Records with an old clock, made by a twin of the cuff (same clock offset), sent only after the time write.
    const scheduler = new VirtualScheduler(START);
    const twin = simulatedDevice('sig/blood-pressure', { clockOffsetMs: -2 * HOUR, seed: 3, scheduler });
    twin.preload(2, HOUR);
    const old = twin.peripheral.storedRecords('2a35');
    const r = sessionRig('sig/blood-pressure', {
      scheduler,
      device: { clockOffsetMs: -2 * HOUR },
      onEnter: onceIn('streaming', (rig) => {
        rig.scheduler.setTimeout(() => {
          for (const value of old) rig.device.peripheral.emit('2a35', value);
        }, 500);
      }),
    });
    await started(r);
    expect(r.device.peripheral.written('2a2b')).toHaveLength(1);
    const bp = on(r.readings, '2a35');
    expect(bp).toHaveLength(2);
    expect(bp.every((x) => x.stored && x.timeSource === 'device-corrected')).toBe(true);
    [START - 2 * HOUR, START - HOUR].forEach((truth, i) => {
      expect(error(bp[i], truth)).toBeLessThan(1_000);
    });
    await r.session.stop();
  });
});

describe('a link that drops in the middle of a stored-record burst', () => {
  it('a cuff in transfer mode hangs up after its burst: records kept, clock written on a later connection', async () => {
    const r = sessionRig('sig/blood-pressure', {
      device: { clockOffsetMs: HOUR, preload: 3, preloadEveryMs: HOUR, hangUpAfterTransferMs: 500 },
    });
    await started(r, 60_000);
    expect(r.transitions).toContain('fetching-stored->lost');
    expect(r.details[r.states.indexOf('lost')]).toBe('remote');
    const bp = on(r.readings, '2a35');
    expect(bp).toHaveLength(3);
    expect(bp.every((x) => x.stored && x.timeSource === 'device-corrected')).toBe(true);
    preloadTimes(3, HOUR).forEach((truth, i) => {
      expect(error(bp[i], truth)).toBeLessThan(1_000);
    });
    // Nothing left to send on the next connection: it stays, and the clock is set then.
    expect(r.session.state).toBe('streaming');
    expect(r.device.peripheral.written('2a2b')).toHaveLength(1);
    await r.session.stop();
  });

  for (const when of ['before-confirmation', 'before-delivery'] as const) {
    it(`(${when}): lost, backoff, reconnect; each record once per id, with one time, none lost`, async () => {
      const r = sessionRig('sig/blood-pressure', {
        device: { clockOffsetMs: HOUR, preload: 6, preloadEveryMs: 2 * HOUR },
      });
      r.device.peripheral.cutLinkDuringIndication(when, 2); // the third indication of the burst
      await started(r, 60_000);
      expect(r.transitions).toEqual(
        expect.arrayContaining(['fetching-stored->lost', 'lost->backoff', 'backoff->connecting']),
      );
      expect(r.session.state).toBe('streaming');
      const bp = on(r.readings, '2a35');
      expect(bp).toHaveLength(when === 'before-confirmation' ? 7 : 6); // the unconfirmed one comes again
      expect(bp.every((x) => x.stored)).toBe(true);
      const timesById = new Map<string, number[]>();
      for (const x of bp) {
        const id = stamp(x, r.driver).id;
        timesById.set(id, [...(timesById.get(id) ?? []), Date.parse(x.time)]);
      }
      expect(timesById.size).toBe(6); // every record, each under one id
      // A record sent twice is corrected the same way both times (the clock was not written in between; the
      // two connect-time reads agree to within the 1/256 s of Exact Time 256).
      for (const times of timesById.values())
        expect(Math.max(...times) - Math.min(...times)).toBeLessThan(10);
      const truths = preloadTimes(6, 2 * HOUR);
      [...timesById.values()]
        .map((times) => times[0] as number)
        .sort((a, b) => a - b)
        .forEach((t, i) => {
          expect(Math.abs(t - (truths[i] as number))).toBeLessThan(1_000);
        });
      // The clock was written once, after the whole burst was in, on the second connection.
      expect(r.device.peripheral.written('2a2b')).toHaveLength(1);
      expect(r.device.peripheral.storedRecords('2a35')).toEqual([]);
      await r.session.stop();
    });
  }
});
