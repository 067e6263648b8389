import { describe, expect, it } from 'vitest';
import type { Advertisement } from '../../src/ble/central.js';
import { simulatedDevice } from '../../src/ble/sim/index.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';
import { on, START, sessionRig } from './session-rig.js';

/** Clock skew correction of live readings, and a neighbour's device the session must never touch. */
describe('clock skew', () => {
  it('a thermometer without Current Time and a clock 47 min slow: live readings corrected to the truth', async () => {
    const r = sessionRig('sig/thermometer', { device: { currentTime: 'none', clockOffsetMs: -47 * 60_000 } });
    await r.central.start();
    r.session.start();
    await r.advance(10_000);
    const truths: number[] = [];
    for (let i = 0; i < 6; i++) {
      truths.push(r.scheduler.now());
      r.device.measure();
      await r.advance(15 * 60_000);
    }
    const temps = on(r.readings, '2a1c');
    expect(temps).toHaveLength(6);
    expect(r.session.clockHandling).toBe('measured');
    temps.forEach((x, i) => {
      expect(x).toMatchObject({ stored: false, timeSource: 'device-corrected' });
      expect(Math.abs(Date.parse(x.time) - (truths[i] as number))).toBeLessThan(1_000);
      // and the device said otherwise
      expect(Math.abs(Date.parse(`${x.reading.time}Z`) - (truths[i] as number) + 47 * 60_000)).toBeLessThan(
        1_000,
      );
    });
    expect(Math.abs((r.session.clockOffset?.offsetMs ?? 0) + 47 * 60_000)).toBeLessThan(1_000);
    await r.session.stop();
  });

  it('a skew within the tolerance is left alone (time source "device")', async () => {
    const r = sessionRig('sig/thermometer', { device: { currentTime: 'none', clockOffsetMs: 3_000 } });
    await r.central.start();
    r.session.start();
    await r.advance(10_000);
    r.device.measure();
    await r.advance(1_000);
    expect(on(r.readings, '2a1c')[0]).toMatchObject({ timeSource: 'device', stored: false });
    await r.session.stop();
  });

  it('the gateway time zone is applied to device wall-clock times', async () => {
    // The device clock shows Berlin time (UTC+1 in November); the gateway is in Berlin too.
    const r = sessionRig('sig/thermometer', {
      device: { currentTime: 'none', clockOffsetMs: 60 * 60_000 },
      session: { utcOffsetMinutes: () => 60 },
    });
    await r.central.start();
    r.session.start();
    await r.advance(10_000);
    const truth = r.scheduler.now();
    r.device.measure();
    await r.advance(1_000);
    const x = on(r.readings, '2a1c')[0];
    expect(x?.timeSource).toBe('device'); // right once read in the gateway's zone: no skew to correct
    expect(Math.abs(Date.parse(x?.time as string) - truth)).toBeLessThan(1_000);
    await r.session.stop();
  });
});

describe("a neighbour's device", () => {
  it('of the same profile, nearer and stronger, is never connected to and none of its readings appear', async () => {
    const scheduler = new VirtualScheduler(START);
    const neighbour = simulatedDevice('sig/blood-pressure', {
      scheduler,
      address: 'D0:5E:00:00:0E:EE',
      name: 'BLESmart_Sim',
      rssi: -38,
      seed: 99,
      preload: 5,
    });
    let neighbourConnections = 0;
    neighbour.peripheral.addHooks({ onConnect: () => neighbourConnections++ });
    const neighbourRecords = neighbour.peripheral
      .storedRecords('2a35')
      .map((v) => Buffer.from(v).toString('hex'));
    const r = sessionRig('sig/blood-pressure', {
      scheduler,
      device: { rssi: -82, preload: 2 },
      others: [neighbour],
    });
    await r.central.start();
    // Both advertise the same service; the neighbour is the stronger one.
    const seen = new Map<string, Advertisement>();
    await Promise.all([
      r.central.scan({ durationMs: 2_000, services: ['1810'] }, (ad) => seen.set(ad.address, ad)),
      r.advance(2_000),
    ]);
    expect(seen.size).toBe(2);
    expect(seen.get(neighbour.peripheral.address)?.rssi).toBeGreaterThan(
      seen.get(r.device.peripheral.address)?.rssi ?? 0,
    );
    r.session.start();
    for (let i = 0; i < 6; i++) {
      await r.advance(20 * 60_000);
      neighbour.measure();
      r.device.measure();
      r.device.peripheral.dropLink(); // reconnections, each a chance to pick the wrong device
    }
    await r.advance(20 * 60_000);
    expect(neighbourConnections).toBe(0);
    expect(neighbour.peripheral.storedRecords('2a35')).toHaveLength(5 + 6); // all still in its memory
    const got = on(r.readings, '2a35');
    expect(got.length).toBeGreaterThanOrEqual(2 + 6);
    expect(got.every((x) => x.deviceId === 'dev-blood-pressure')).toBe(true);
    const payloads = new Set(r.readings.map((x) => Buffer.from(x.payload).toString('hex')));
    for (const record of neighbourRecords) expect(payloads.has(record)).toBe(false);
    await r.session.stop();
  });
});

describe('the gateway clock not yet set', () => {
  it('is never written into a device: its clock is measured instead, and written on a connection after', async () => {
    let gatewayClockSet = false;
    const r = sessionRig('sig/blood-pressure', { session: { mayWriteClock: () => gatewayClockSet } });
    await r.central.start();
    r.session.start();
    await r.advance(10_000);
    expect(r.states.at(-1)).toBe('streaming');
    expect(r.session.clockHandling).toBe('measured');
    expect(r.device.peripheral.written('2a2b')).toEqual([]);

    gatewayClockSet = true;
    r.device.peripheral.dropLink();
    await r.advance(60_000);
    expect(r.states.at(-1)).toBe('streaming');
    expect(r.session.clockHandling).toBe('written');
    expect(r.device.peripheral.written('2a2b')).toHaveLength(1);
    await r.session.stop();
  });
});
