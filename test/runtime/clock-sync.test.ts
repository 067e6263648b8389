import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimCentral, simulatedDevice } from '../../src/ble/sim/index.js';
import type { Measurement } from '../../src/model/measurement.js';
import type { TimeSyncReading } from '../../src/runtime/time-sync.js';
import type { Scheduler } from '../../src/util/scheduler.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';
import { type Clinic, configOf, enrol, hubWith, LogCapture, startClinic, writeConfig } from './hub-rig.js';

/**
 * Stamping waits for the system clock, in virtual time: a Pi boots believing it is months earlier; readings are
 * received and held, nothing is stored with the wrong time; once the probe says the clock is synchronised (NTP
 * stepped it), the held readings are stored with their true receipt times, by the monotonic clock.
 */
let root: string;
let clinic: Clinic;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rpm-clock-'));
  clinic = await startClinic(root);
});
afterAll(async () => {
  await clinic.stop();
  await rm(root, { recursive: true, force: true });
});

const TRUE_START = Date.UTC(2026, 11, 5, 15, 0, 0);
const WRONG_BY = 300 * 24 * 3_600_000;

describe('the hub and the system clock', () => {
  it('holds readings until the clock is synchronised, then stores them re-stamped with their true times', async () => {
    const virtual = new VirtualScheduler(TRUE_START);
    let offset = -WRONG_BY; // the wall clock before NTP steps it
    const system: Scheduler = {
      now: () => virtual.now() + offset,
      setTimeout: (fn, ms) => virtual.setTimeout(fn, ms),
      clearTimeout: (handle) => virtual.clearTimeout(handle),
    };
    let synchronised = false;
    const probes: boolean[] = [];
    const probe = async (): Promise<TimeSyncReading> => {
      probes.push(synchronised);
      return synchronised
        ? { synchronised: true, source: 'timedated', detail: 'NTPSynchronized=yes' }
        : { synchronised: false, source: 'timedated', detail: 'NTPSynchronized=no' };
    };
    const config = configOf(writeConfig(join(root, 'a'), clinic, '', { requireSync: true }));
    const oximeter = simulatedDevice('sig/pulse-oximeter', { seed: 41, scheduler: system });
    const cuff = simulatedDevice('sig/blood-pressure', { seed: 42, scheduler: system });
    const central = new SimCentral({
      peripherals: [oximeter.peripheral, cuff.peripheral],
      scheduler: system,
    });
    const [oxId] = await enrol(config, [
      {
        address: oximeter.peripheral.address,
        driverId: 'sig/pulse-oximeter',
        category: 'pulse-oximeter',
        bonded: false,
      },
      {
        address: cuff.peripheral.address,
        driverId: 'sig/blood-pressure',
        category: 'blood-pressure',
        bonded: false,
      },
    ]);
    const appended: Measurement[] = [];
    const hub = hubWith(config, central, new LogCapture(), {
      scheduler: system,
      monotonic: { monotonicNow: () => virtual.now() },
      timeProbe: probe,
      timeSyncPollMs: 10_000,
      random: () => 0.5,
      onAppended: (m) => appended.push(m),
    });
    await hub.start();
    try {
      const advance = async (ms: number) => {
        for (let t = 0; t < ms; t += 100) await virtual.advanceAsync(100);
      };
      await advance(30_000);
      const before = hub.status();
      const readings = before.clock?.held ?? 0;
      expect(readings).toBeGreaterThan(10);
      expect(before.clock).toMatchObject({ synchronised: false, source: 'timedated', held: readings });
      expect(before.devices.find((d) => d.id === oxId)?.state).toBe('streaming');
      expect(before.store.rows).toBe(0); // nothing stored with a wrong time
      expect(appended).toEqual([]);
      expect(before.broker).toMatchObject({ state: 'disconnected', url: null }); // TLS would judge certificates by the wrong clock
      expect(cuff.peripheral.written('2a2b')).toEqual([]); // the wrong time was not written into the cuff
      expect(probes.length).toBeGreaterThanOrEqual(3); // asked every 10 s

      // NTP steps the clock; the next poll sees it.
      offset = 0;
      synchronised = true;
      const syncedAt = virtual.now() + 10_000;
      await advance(10_000);
      await hub.stop('test over'); // the held readings commit before the store closes
      const held = appended.slice(0, readings);
      expect(held).toHaveLength(readings);
      for (const m of held) {
        const at = Date.parse(m.receivedAt);
        expect(at).toBeGreaterThanOrEqual(TRUE_START);
        expect(at).toBeLessThanOrEqual(syncedAt);
        expect(m.details.clockUnsynchronised).toBeUndefined();
      }
      // In the order they came, a second apart as the oximeter streams.
      const times = held.filter((m) => m.deviceId === oxId).map((m) => Date.parse(m.receivedAt));
      expect([...times].sort((a, b) => a - b)).toEqual(times);
    } finally {
      await hub.stop('test over');
    }
  });
});
