import { describe, expect, it } from 'vitest';
import { SimCentral, simulatedDevice } from '../../src/ble/sim/index.js';
import { loadBundledRegistry } from '../../src/drivers/default-registry.js';
import { encodeRacpReportAll } from '../../src/gatt/glucose-racp.js';
import { toHex } from '../../src/gatt/hex.js';
import { stamp } from '../../src/pipeline/stamp.js';
import { DeviceSession, type SessionReading, type SessionState } from '../../src/session/device-session.js';
import type { RacpResumePoint } from '../../src/session/racp-download.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';

/**
 * Device sessions against the simulator backend, in virtual time: connect, bond, subscribe, time sync, stored
 * records, losses and backoff. The sim produces the exact bytes of each device model.
 */
const registry = await loadBundledRegistry();

function rig(
  driverId: string,
  options: Parameters<typeof simulatedDevice>[1] = {},
  session: { requiresBonding?: boolean; racpResume?: () => RacpResumePoint | undefined } = {},
) {
  const scheduler = new VirtualScheduler(Date.UTC(2026, 10, 28, 8, 0, 0));
  const device = simulatedDevice(driverId, { scheduler, seed: 7, ...options });
  const central = new SimCentral({
    peripherals: [device.peripheral],
    scheduler,
    passkeyProvider: () => '123456',
  });
  const driver = registry.get(driverId);
  if (!driver) throw new Error(`no driver ${driverId}`);
  const readings: SessionReading[] = [];
  const states: SessionState[] = [];
  const s = new DeviceSession({
    device: { id: `dev-${driverId.split('/')[1]}`, address: device.peripheral.address, ...session },
    driver,
    central,
    scheduler,
    random: () => 0.5,
    utcOffsetMinutes: () => 0,
    ...(session.racpResume ? { racpResume: session.racpResume } : {}),
    onReading: (r) => readings.push(r),
    onState: (state) => states.push(state),
  });
  return { scheduler, device, central, driver, session: s, readings, states };
}

/** from, from + 1, …, to */
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('DeviceSession (sim backend, virtual time)', () => {
  it('walks a cuff from connect to streaming, writes the device clock, and delivers its indication', async () => {
    const r = rig('sig/blood-pressure', { clockOffsetMs: 3 * 3600_000 });
    await r.central.start();
    r.session.start();
    await r.scheduler.advanceAsync(10_000); // the replay window closes when no stored record came
    expect(r.states).toEqual(['connecting', 'subscribing', 'fetching-stored', 'syncing-time', 'streaming']);
    expect(r.session.clockHandling).toBe('written');
    r.device.measure();
    await r.scheduler.advanceAsync(1_000);
    const bp = r.readings.filter((x) => x.characteristic === '2a35');
    expect(bp).toHaveLength(1);
    const sys = bp[0]?.reading.observations.find((o) => o.code === 'MDC_PRESS_BLD_NONINV_SYS');
    expect(sys?.value).toBeGreaterThan(80);
    // the device clock was 3 h off and has been set: its timestamp is now within a minute of the truth
    expect(Math.abs(Date.parse(bp[0]?.time as string) - r.scheduler.now())).toBeLessThan(60_000);
    const m = stamp(bp[0] as SessionReading, r.driver);
    expect(m.id).toMatch(/^m1-[0-9a-f]{32}$/);
    expect(m.timeSource).toBe('device');
    await r.session.stop();
  });

  it('reconnects after the link drops, with backoff, and keeps streaming', async () => {
    const r = rig('sig/pulse-oximeter');
    await r.central.start();
    r.session.start();
    await r.scheduler.advanceAsync(5_000);
    const before = r.readings.length;
    expect(before).toBeGreaterThan(0);
    r.device.peripheral.dropLink();
    await r.scheduler.advanceAsync(10);
    expect(r.states.at(-2)).toBe('lost');
    expect(r.states.at(-1)).toBe('backoff');
    await r.scheduler.advanceAsync(60_000);
    expect(r.session.state).toBe('streaming');
    expect(r.readings.length).toBeGreaterThan(before + 10);
    await r.session.stop();
  });

  it('backs off while the device is out of range and connects when it returns', async () => {
    const r = rig('sig/thermometer', { inRange: false });
    await r.central.start();
    r.session.start();
    await r.scheduler.advanceAsync(10 * 60_000);
    const attempts = r.states.filter((s) => s === 'connecting').length;
    expect(attempts).toBeGreaterThan(2);
    expect(attempts).toBeLessThan(60); // exponential, not a tight loop
    r.device.peripheral.setInRange(true);
    await r.scheduler.advanceAsync(6 * 60_000);
    expect(r.session.state).toBe('streaming');
    await r.session.stop();
  });

  it('bonds with a passkey, downloads stored glucose records over RACP, and resumes without duplicates', async () => {
    let resume: RacpResumePoint | undefined;
    const r = rig(
      'sig/glucose',
      { preload: 30, preloadEveryMs: 3600_000 },
      { requiresBonding: true, racpResume: () => resume },
    );
    const sequenceOf = (x: SessionReading) => x.reading.details?.['sequenceNumber'] as number;
    const glucose = () => r.readings.filter((x) => x.characteristic === '2a18');
    await r.central.start();
    r.session.start();
    // interrupt the download partway: drop the link after a few records
    for (let i = 0; i < 200 && r.readings.length < 10; i++) await r.scheduler.advanceAsync(5);
    r.device.peripheral.dropLink();
    const seen = glucose().map(sequenceOf);
    // What the store would hold: a "report all" (the meter's order is its own) moves no resume point until
    // it ends (racp-download.ts).
    resume = r.readings.findLast((x) => x.racpProgress !== undefined)?.racpProgress;
    // The first connection asked for every record and got the oldest ones, in order, none skipped; the drop
    // really cut the download short.
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.length).toBeLessThan(30);
    expect(seen).toEqual(range(1, seen.length));
    expect(resume).toBeUndefined();
    expect(r.states).toContain('bonding');
    expect(r.states).toContain('fetching-stored');
    await r.scheduler.advanceAsync(10 * 60_000);
    // The second connection asked for every record again and got them all (the store drops the measurements
    // it holds by id); its end moved the resume point to the newest record, carried by the report's last value.
    expect(r.device.peripheral.written('2a52').map(toHex)).toEqual([
      toHex(encodeRacpReportAll()),
      toHex(encodeRacpReportAll()),
    ]);
    const measurements = glucose();
    expect(measurements.map(sequenceOf)).toEqual([...range(1, seen.length), ...range(1, 30)]);
    const withProgress = r.readings.filter((x) => x.racpProgress !== undefined);
    expect(withProgress).toHaveLength(1);
    expect(withProgress[0]).toBe(r.readings.findLast((x) => x.characteristic === '2a34'));
    expect(withProgress[0]?.racpProgress).toEqual({
      sequence: 30,
      anchor: stamp(measurements.at(-1) as SessionReading, r.driver).id,
    });
    expect(measurements.every((x) => x.stored)).toBe(true);
    await r.session.stop();
  });

  it('stops and asks for pairing when authentication fails', async () => {
    const r = rig('sig/glucose', { passkey: '999999' }, { requiresBonding: true });
    await r.central.start();
    r.session.start();
    await r.scheduler.advanceAsync(60_000);
    expect(r.session.state).toBe('needs-pairing');
    expect(r.states.filter((s) => s === 'connecting')).toHaveLength(1); // no retry loop that could lock the device
  });

  it('keeps a vendor stream alive with its repeating setup write (Contec heartbeat)', async () => {
    const r = rig('vendor/contec-cms50d-bt');
    await r.central.start();
    r.session.start();
    await r.scheduler.advanceAsync(2_000);
    const early = r.readings.length;
    expect(early).toBeGreaterThan(0);
    await r.scheduler.advanceAsync(60_000); // far beyond the device's 5 s heartbeat timeout
    expect(r.readings.length).toBeGreaterThan(early + 30);
    await r.session.stop();
  });
});
