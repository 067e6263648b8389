import { describe, expect, it } from 'vitest';
import type { Advertisement, CentralPort } from '../../src/ble/central.js';
import { SimCentral, simulatedDevice } from '../../src/ble/sim/index.js';
import { type PresenceEvent, PresenceMonitor } from '../../src/session/presence.js';
import { RadioWatchdog, type RadioWatchdogEvent } from '../../src/session/radio-watchdog.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';
import { type SleepyCentral, sleepyCentral, wakeForMeasurement } from './fake-sleepy-central.js';
import { on, START, sessionRig } from './session-rig.js';

/**
 * Sessions that connect when their device advertises (presence.ts), in virtual time on the simulator: a cuff
 * that sleeps and advertises for 30 s after a measurement, a neighbour's device, one scan for many sessions,
 * scans that end or fail, and stop().
 */
const SECOND = 1_000;
const MINUTE = 60_000;

function monitorOver(scanner: Pick<CentralPort, 'scan'>, scheduler: VirtualScheduler) {
  const events: PresenceEvent[] = [];
  const monitor = new PresenceMonitor({
    scanner,
    scheduler,
    random: () => 0.5,
    onEvent: (event) => events.push(event),
  });
  return { monitor, events };
}

describe('a sleeping cuff is connected when it wakes', () => {
  /** A cuff asleep for an hour, then measured: it advertises for 30 s only. */
  async function sleepingCuff(withPresence: boolean) {
    const scheduler = new VirtualScheduler(START);
    let port: SleepyCentral | undefined;
    let monitor: PresenceMonitor | undefined;
    const rig = sessionRig('sig/blood-pressure', {
      scheduler,
      device: { inRange: false, advertiseEveryMs: 250 },
      port: (sim) => {
        port = sleepyCentral(sim, { code: 'BLE_DEVICE_GONE' });
        monitor = new PresenceMonitor({ scanner: port, scheduler, random: () => 0.5 });
        return port;
      },
      // Near the top of each jittered range: the backoff timer sits at its 5-minute cap soon.
      session: withPresence ? { random: () => 0.999, presence: monitorProxy() } : { random: () => 0.999 },
    });
    // The monitor is built with the port; the session reaches it through this proxy.
    function monitorProxy() {
      return {
        waitFor: (address: string, signal?: AbortSignal) =>
          (monitor as PresenceMonitor).waitFor(address, signal),
      };
    }
    await rig.central.start();
    rig.session.start();
    await rig.advance(60 * MINUTE);
    return { rig, port: port as SleepyCentral, monitor: monitor as PresenceMonitor };
  }

  /** How long the current backoff's timer still has to run (the session waits 0.999 of the ceiling). */
  function backoffLeft(rig: ReturnType<typeof sessionRig>): number {
    const entered = rig.times[rig.states.lastIndexOf('backoff')] as number;
    return entered + Math.floor(0.999 * 5 * MINUTE) - rig.scheduler.now();
  }

  it('with presence: connected within 1 s of waking, although the backoff timer is at its 5-minute cap', async () => {
    const { rig, port } = await sleepingCuff(true);
    expect(rig.session.state).toBe('backoff');
    // The timer reached its cap: the last full backoff lasted the capped ceiling.
    const backoffs = rig.states.flatMap((s, i) => (s === 'backoff' ? [i] : []));
    const lastFull = backoffs.at(-2) as number;
    expect((rig.times[lastFull + 1] as number) - (rig.times[lastFull] as number)).toBe(
      Math.floor(0.999 * 5 * MINUTE),
    );
    while (backoffLeft(rig) < 2 * MINUTE) await rig.advance(10 * SECOND);
    const wokeAt = rig.scheduler.now();
    const before = rig.states.length;
    wakeForMeasurement(rig.device, rig.scheduler);
    await rig.advance(1 * SECOND);
    expect(rig.states.slice(before, before + 2)).toEqual(['discovered', 'connecting']);
    expect((rig.times[before] as number) - wokeAt).toBeLessThanOrEqual(1 * SECOND);
    await rig.advance(10 * SECOND);
    const cuff = on(rig.readings, '2a35');
    expect(cuff).toHaveLength(1);
    expect(cuff[0]).toMatchObject({ stored: true });
    expect((cuff[0] as { receivedAt: number }).receivedAt - wokeAt).toBeLessThan(5 * SECOND);
    // Back to sleep after 30 s: the link is lost and the session waits again, for the timer or the device.
    await rig.advance(30 * SECOND);
    expect(rig.session.state).toBe('backoff');
    expect(port.scans.mostAtOnce).toBe(1);
    await rig.session.stop();
  });

  it('without presence (the timer alone), the same 30 s window is missed', async () => {
    const { rig } = await sleepingCuff(false);
    while (backoffLeft(rig) < 2 * MINUTE) await rig.advance(10 * SECOND);
    wakeForMeasurement(rig.device, rig.scheduler);
    await rig.advance(40 * SECOND);
    expect(on(rig.readings, '2a35')).toHaveLength(0);
    expect(rig.states).not.toContain('discovered');
    await rig.session.stop();
  });

  it('a device that advertises but drops every link is not reconnected in a tight loop', async () => {
    const scheduler = new VirtualScheduler(START);
    const sim = new SimCentral({ scheduler });
    const { monitor } = monitorOver(sim, scheduler);
    const rig = sessionRig('sig/thermometer', {
      scheduler,
      central: sim,
      device: { advertiseEveryMs: 100 },
      session: { presence: monitor, random: () => 0.999 },
    });
    rig.device.peripheral.addHooks({ onConnect: () => rig.device.peripheral.dropLink() });
    await sim.start();
    rig.session.start();
    await rig.advance(2 * MINUTE);
    const attempts = rig.states.filter((s) => s === 'connecting').length;
    // Early wakes after 1, 2, 4, 8, 16, 32 s, and timers in between: a handful, not one per advertisement.
    expect(attempts).toBeGreaterThan(3);
    expect(attempts).toBeLessThan(16);
    await rig.session.stop();
  });
});

describe('PresenceMonitor', () => {
  it("a neighbour's device is never dispatched, stored or reported; only the enrolled address is held", async () => {
    const scheduler = new VirtualScheduler(START);
    const enrolled = simulatedDevice('sig/thermometer', {
      scheduler,
      address: 'AA:00:00:00:00:01',
      inRange: false,
      advertiseEveryMs: 500,
    });
    const neighbour = simulatedDevice('sig/thermometer', {
      scheduler,
      address: 'BB:00:00:00:00:02',
      advertiseEveryMs: 500,
    });
    const sim = new SimCentral({ peripherals: [enrolled.peripheral, neighbour.peripheral], scheduler });
    await sim.start();
    const delivered: Advertisement[] = [];
    const scanner: Pick<CentralPort, 'scan'> = {
      scan: (options, onAd) =>
        sim.scan(options, (ad) => {
          delivered.push(ad);
          onAd(ad);
        }),
    };
    const { monitor, events } = monitorOver(scanner, scheduler);
    let woke = false;
    void monitor.waitFor('aa:00:00:00:00:01').then(() => {
      woke = true;
    });
    await scheduler.advanceAsync(5 * MINUTE);
    // The neighbour's advertisements reached the monitor, and went no further.
    expect(delivered.filter((ad) => ad.address === neighbour.peripheral.address).length).toBeGreaterThan(100);
    expect(woke).toBe(false);
    expect(events.some((e) => e.type === 'device-heard')).toBe(false);
    expect(monitor.lastSeen(neighbour.peripheral.address)).toBeUndefined();
    expect(monitor.heldAddresses()).toEqual(['AA:00:00:00:00:01']);
    enrolled.peripheral.setInRange(true);
    await scheduler.advanceAsync(1 * SECOND);
    expect(woke).toBe(true);
    expect(monitor.lastSeen('AA:00:00:00:00:01')).toBeGreaterThan(START);
    expect(monitor.heldAddresses()).toEqual(['AA:00:00:00:00:01']);
    const log = JSON.stringify(events);
    expect(log).not.toMatch(/AA:00|BB:00/i);
    // Nobody waits: the scan stopped.
    expect(monitor.scanning).toBe(false);
  });

  it('one scan for several sessions, each woken by its own device; it stops when no one waits', async () => {
    const scheduler = new VirtualScheduler(START);
    const sim = new SimCentral({ scheduler });
    const port = sleepyCentral(sim, { code: 'BLE_NOT_FOUND' });
    const { monitor } = monitorOver(port, scheduler);
    const rigs = (['sig/blood-pressure', 'sig/weight-scale', 'sig/thermometer'] as const).map((id, i) =>
      sessionRig(id, {
        scheduler,
        central: sim,
        device: { inRange: false, advertiseEveryMs: 250, address: `C0:00:00:00:00:0${i + 1}` },
        port: () => port,
        session: { presence: monitor, random: () => 0.999 },
      }),
    );
    await sim.start();
    for (const r of rigs) r.session.start();
    await scheduler.advanceAsync(10 * MINUTE);
    expect(rigs.map((r) => r.session.state)).toEqual(['backoff', 'backoff', 'backoff']);
    expect(port.scans.mostAtOnce).toBe(1);
    expect(monitor.scanning).toBe(true);
    const [cuff, scale, thermometer] = rigs as [
      ReturnType<typeof sessionRig>,
      ReturnType<typeof sessionRig>,
      ReturnType<typeof sessionRig>,
    ];
    // Only the scale wakes: only its session connects.
    wakeForMeasurement(scale.device, scheduler, 10 * MINUTE);
    await scheduler.advanceAsync(10 * SECOND);
    expect(scale.session.state).toBe('streaming');
    expect(scale.states).toContain('discovered');
    expect([cuff.session.state, thermometer.session.state]).toEqual(['backoff', 'backoff']);
    expect(monitor.scanning).toBe(true);
    wakeForMeasurement(cuff.device, scheduler, 10 * MINUTE);
    wakeForMeasurement(thermometer.device, scheduler, 10 * MINUTE);
    await scheduler.advanceAsync(10 * SECOND);
    expect(rigs.map((r) => r.session.state)).toEqual(['streaming', 'streaming', 'streaming']);
    expect(monitor.waiting).toBe(0);
    expect(monitor.scanning).toBe(false);
    expect(port.scans.running).toBe(0);
    expect(port.scans.mostAtOnce).toBe(1);
    for (const r of rigs) await r.session.stop();
  });

  it('a scan that ends is started again at once; one that fails or is cut short, after a growing backoff', async () => {
    const scheduler = new VirtualScheduler(START);
    const device = simulatedDevice('sig/thermometer', { scheduler, inRange: false, advertiseEveryMs: 500 });
    const sim = new SimCentral({ peripherals: [device.peripheral], scheduler });
    await sim.start();
    const { monitor, events } = monitorOver(sim, scheduler);
    let woke = 0;
    void monitor.waitFor(device.peripheral.address).then(() => woke++);
    await scheduler.advanceAsync(3 * MINUTE + 1);
    // 60 s windows back to back, no restart delay.
    expect(monitor.scansStarted).toBe(4);
    expect(events.filter((e) => e.type === 'scan-restart-deferred')).toHaveLength(0);
    // Discovery wedged "in progress": every start fails; restarts back off (1 s, 2 s, 4 s ...; half jittered).
    sim.injectRadioFault('discovery-in-progress', { persistent: true });
    await sim.powerCycle(); // ends the running scan early: that too is a restart after a delay
    await scheduler.advanceAsync(30 * SECOND);
    const delays = events.flatMap((e) => (e.type === 'scan-restart-deferred' ? [e.inMs] : []));
    expect(delays.slice(0, 5)).toEqual([750, 1_500, 3_000, 6_000, 12_000]);
    expect(events.filter((e) => e.type === 'scan-failed').length).toBeGreaterThanOrEqual(4);
    sim.clearRadioFaults();
    await scheduler.advanceAsync(30 * SECOND);
    expect(woke).toBe(0);
    device.peripheral.setInRange(true);
    await scheduler.advanceAsync(1 * SECOND);
    expect(woke).toBe(1);
    // A window that ran its course reset the backoff.
    const seen = events.length;
    monitor.waitFor(device.peripheral.address).catch(() => undefined); // rejected by close() below
    sim.injectRadioFault('discovery-in-progress');
    await scheduler.advanceAsync(800);
    expect(events.slice(seen).map((e) => (e.type === 'scan-restart-deferred' ? e.inMs : e.type))).toEqual([
      'scan-started',
      'scan-failed',
      750,
      'scan-started',
      'scan-failed',
      1_500,
    ]);
    monitor.close();
  });

  it('through the radio watchdog: a stuck scan is recovered and an enrolled advertisement is a sign of life', async () => {
    const scheduler = new VirtualScheduler(START);
    const device = simulatedDevice('sig/thermometer', { scheduler, inRange: false, advertiseEveryMs: 500 });
    const sim = new SimCentral({ peripherals: [device.peripheral], scheduler });
    await sim.start();
    const watchdogEvents: RadioWatchdogEvent[] = [];
    const watchdog = new RadioWatchdog({
      central: sim,
      scheduler,
      isEnrolled: (address) => address === device.peripheral.address,
      silenceMs: 30 * MINUTE,
      onEvent: (event) => watchdogEvents.push(event),
    });
    const { monitor } = monitorOver(watchdog, scheduler);
    sim.injectRadioFault('stuck-scan');
    let woke = false;
    void monitor.waitFor(device.peripheral.address).then(() => {
      woke = true;
    });
    await scheduler.advanceAsync(2 * MINUTE);
    expect(watchdogEvents).toContainEqual(
      expect.objectContaining({ type: 'problem', problem: 'scan-stuck' }),
    );
    expect(sim.powerCycles).toBe(1);
    // The asleep device is silent for longer than silenceMs: the watchdog judges that at the end of a window.
    await scheduler.advanceAsync(40 * MINUTE);
    expect(watchdogEvents).toContainEqual(
      expect.objectContaining({ type: 'problem', problem: 'radio-silent' }),
    );
    expect(watchdogEvents).not.toContainEqual(
      expect.objectContaining({ type: 'radio-healthy', problem: 'radio-silent' }),
    );
    // It wakes: heard through the watchdog's scan, which counts it as a sign of life and cures the silence.
    device.peripheral.setInRange(true);
    await scheduler.advanceAsync(1 * SECOND);
    expect(woke).toBe(true);
    expect(watchdogEvents.at(-1)).toEqual({
      type: 'radio-healthy',
      problem: 'radio-silent',
      afterPowerCycles: 1,
    });
    monitor.close();
    watchdog.stop();
  });

  it('stop() cancels the wait: no scan for it, and its device waking does nothing', async () => {
    const scheduler = new VirtualScheduler(START);
    const sim = new SimCentral({ scheduler });
    const { monitor } = monitorOver(sim, scheduler);
    const rig = sessionRig('sig/thermometer', {
      scheduler,
      central: sim,
      device: { inRange: false, advertiseEveryMs: 250 },
      session: { presence: monitor, connectTimeoutMs: 5_000, random: () => 0.999 },
    });
    await sim.start();
    rig.session.start();
    // The simulator pages an absent device for the connect timeout, then gives up (BLE_TIMEOUT at connect).
    await rig.advance(5 * SECOND + 10);
    expect(rig.session.state).toBe('backoff');
    expect(rig.details.at(-1)).toMatch(/^BLE_TIMEOUT/);
    await rig.advance(1_200); // past the 1 s early-wake gap, within the 2 s timer: it waits on the shared scan
    expect(monitor.waiting).toBe(1);
    expect(monitor.scanning).toBe(true);
    await rig.session.stop();
    expect(monitor.waiting).toBe(0);
    await rig.advance(1);
    expect(monitor.scanning).toBe(false);
    const before = rig.states.length;
    rig.device.peripheral.setInRange(true);
    await rig.advance(10 * MINUTE);
    expect(rig.states.slice(before)).toEqual([]);
    expect(rig.session.state).toBe('stopped');
  });

  it('waits are refused after close() and rejected by it', async () => {
    const scheduler = new VirtualScheduler(START);
    const sim = new SimCentral({ scheduler });
    await sim.start();
    const { monitor } = monitorOver(sim, scheduler);
    const pending = monitor.waitFor('AA:00:00:00:00:09');
    monitor.close();
    await expect(pending).rejects.toMatchObject({ code: 'BLE_ABORTED' });
    await expect(monitor.waitFor('AA:00:00:00:00:09')).rejects.toMatchObject({ code: 'BLE_ABORTED' });
    expect(monitor.heldAddresses()).toEqual([]);
  });
});
