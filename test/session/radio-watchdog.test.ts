import { describe, expect, it } from 'vitest';
import { type Advertisement, BleError, type CentralPort } from '../../src/ble/central.js';
import { SimCentral, type SimulatedDevice, simulatedDevice } from '../../src/ble/sim/index.js';
import {
  RadioWatchdog,
  type RadioWatchdogEvent,
  type RadioWatchdogOptions,
} from '../../src/session/radio-watchdog.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';
import { START, sessionRig } from './session-rig.js';

/**
 * The radio watchdog against the simulator's radio faults (src/ble/sim/faults.ts RadioFault), in virtual time:
 * a stuck scan, discovery stuck "in progress", a deaf controller, adapter errors across sessions; and its own
 * backoff, which keeps a dead adapter from being power-cycled in a loop.
 */
const MINUTE = 60_000;

interface WatchRig {
  readonly scheduler: VirtualScheduler;
  readonly central: SimCentral;
  readonly device: SimulatedDevice;
  readonly watchdog: RadioWatchdog;
  readonly events: RadioWatchdogEvent[];
  readonly seen: Advertisement[];
  /** Scans `durationMs` every `everyMs` through the watchdog until stopped. */
  scanEvery(everyMs: number, durationMs: number): () => void;
  advance(ms: number): Promise<void>;
  /** Virtual times at which power cycles started. */
  cycleTimes(): number[];
}

function watchRig(
  options: Partial<RadioWatchdogOptions> = {},
  central?: (sim: SimCentral) => Pick<CentralPort, 'scan' | 'powerCycle'>,
): WatchRig {
  const scheduler = new VirtualScheduler(START);
  const device = simulatedDevice('sig/heart-rate', { scheduler, advertiseEveryMs: 1_000 });
  const sim = new SimCentral({ peripherals: [device.peripheral], scheduler });
  const events: RadioWatchdogEvent[] = [];
  const times: number[] = [];
  const seen: Advertisement[] = [];
  const watchdog = new RadioWatchdog({
    central: central ? central(sim) : sim,
    scheduler,
    isEnrolled: (address) => address === device.peripheral.address,
    silenceMs: 60 * MINUTE,
    ...options,
    onEvent: (event) => {
      events.push(event);
      if (event.type === 'power-cycle-started') times.push(scheduler.now());
    },
  });
  return {
    scheduler,
    central: sim,
    device,
    watchdog,
    events,
    seen,
    scanEvery(everyMs, durationMs) {
      let running = true;
      const loop = async () => {
        while (running) {
          await watchdog.scan({ durationMs }, (ad) => seen.push(ad)).catch(() => undefined);
          await new Promise<void>((resolve) => scheduler.setTimeout(resolve, everyMs));
        }
      };
      void loop();
      return () => {
        running = false;
      };
    },
    advance: (ms) => scheduler.advanceAsync(ms),
    cycleTimes: () => [...times],
  };
}

const problems = (events: readonly RadioWatchdogEvent[]) =>
  events.flatMap((e) => (e.type === 'problem' ? [e.problem] : []));

describe('radio watchdog', () => {
  it('a scan that never ends: given up after its duration plus the grace, adapter power-cycled', async () => {
    const w = watchRig({ scanGraceMs: 15_000 });
    await w.central.start();
    w.central.injectRadioFault('stuck-scan');
    let ended = false;
    const scan = w.watchdog
      .scan({ durationMs: 10_000 }, (ad) => w.seen.push(ad))
      .then(() => {
        ended = true;
      });
    await w.advance(24_000);
    expect(ended).toBe(false);
    await w.advance(2_000);
    await scan;
    expect(ended).toBe(true); // the caller is not left hanging
    expect(problems(w.events)).toEqual(['scan-stuck']);
    expect(w.central.powerCycles).toBe(1);
    expect(w.seen).toEqual([]);
    // The power cycle cleared the wedge: the next scan sees the device again.
    const next = w.watchdog.scan({ durationMs: 5_000 }, (ad) => w.seen.push(ad));
    await w.advance(5_000);
    await next;
    expect(w.seen.length).toBeGreaterThan(0);
    expect(w.events.map((e) => e.type)).toEqual([
      'problem',
      'power-cycle-started',
      'power-cycle-done',
      'radio-healthy',
    ]);
  });

  it('discovery stuck "in progress": after three failed starts in a row, one power cycle', async () => {
    const w = watchRig();
    await w.central.start();
    w.central.injectRadioFault('discovery-in-progress');
    const stop = w.scanEvery(30_000, 10_000);
    await w.advance(2 * MINUTE);
    stop();
    expect(problems(w.events)).toEqual(['scan-failing']);
    expect(w.events.find((e) => e.type === 'problem')).toMatchObject({
      detail: '3 scans in a row failed to start (BLE_ABORTED)',
    });
    expect(w.central.powerCycles).toBe(1);
    expect(w.seen.length).toBeGreaterThan(0); // scanning works again after the cycle
  });

  it('a scan failure is passed on to the caller, typed', async () => {
    const w = watchRig();
    await w.central.start();
    w.central.injectRadioFault('discovery-in-progress');
    await expect(w.watchdog.scan({ durationMs: 1_000 }, () => undefined)).rejects.toBeInstanceOf(BleError);
    await w.central.stop();
    await expect(w.watchdog.scan({ durationMs: 1_000 }, () => undefined)).rejects.toMatchObject({
      code: 'BLE_ADAPTER',
    });
  });

  it('a deaf controller: no enrolled device heard for the silence period, power-cycled once', async () => {
    const w = watchRig({ silenceMs: 60 * MINUTE });
    await w.central.start();
    w.central.injectRadioFault('deaf');
    const stop = w.scanEvery(5 * MINUTE, 10_000);
    await w.advance(59 * MINUTE);
    expect(w.central.powerCycles).toBe(0);
    await w.advance(10 * MINUTE);
    expect(problems(w.events)).toEqual(['radio-silent']);
    expect(w.central.powerCycles).toBe(1);
    await w.advance(3 * 60 * MINUTE);
    stop();
    expect(w.central.powerCycles).toBe(1); // it hears the device again: nothing more to do
    expect(w.events.at(-1)).toEqual({ type: 'radio-healthy', problem: 'radio-silent', afterPowerCycles: 1 });
  });

  it('never power-cycles in a tight loop: a dead adapter is cycled at growing intervals', async () => {
    const w = watchRig({ minGapMs: MINUTE, maxGapMs: 30 * MINUTE, scanGraceMs: 15_000 });
    await w.central.start();
    w.central.injectRadioFault('stuck-scan', { persistent: true });
    const stop = w.scanEvery(30_000, 10_000);
    await w.advance(4 * 60 * MINUTE);
    stop();
    const cycles = w.cycleTimes();
    expect(cycles.length).toBeGreaterThan(5);
    expect(cycles.length).toBeLessThan(20); // a loop would have cycled hundreds of times
    const gaps = cycles.slice(1).map((t, i) => t - (cycles[i] as number));
    expect(gaps[0]).toBeGreaterThanOrEqual(MINUTE);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]).toBeGreaterThanOrEqual((gaps[i - 1] as number) - 1);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(30 * MINUTE + MINUTE);
    expect(w.events.some((e) => e.type === 'power-cycle-deferred')).toBe(true);
  });

  it('readings from a connected strap do not cure a stuck scan: the backoff still grows', async () => {
    const w = watchRig({ minGapMs: MINUTE, maxGapMs: 30 * MINUTE });
    const strap = sessionRig('sig/heart-rate', {
      central: w.central,
      scheduler: w.scheduler,
      session: { radio: w.watchdog },
    });
    await w.central.start();
    strap.session.start();
    await w.advance(10_000);
    w.central.injectRadioFault('stuck-scan', { persistent: true });
    const stop = w.scanEvery(30_000, 10_000);
    await w.advance(4 * 60 * MINUTE);
    stop();
    const cycles = w.cycleTimes();
    expect(cycles.length).toBeLessThan(20);
    expect(w.events.some((e) => e.type === 'radio-healthy')).toBe(false);
    // Each cycle cut the strap's link; it came back every time.
    expect(strap.transitions.filter((t) => t === 'streaming->lost')).toHaveLength(cycles.length);
    expect(strap.session.state).toBe('streaming');
  });

  it('a power cycle that never finishes counts as failed, and the watchdog goes on', async () => {
    const w = watchRig({ powerCycleTimeoutMs: 30_000 }, (sim) => ({
      scan: (options, onAdvertisement) => sim.scan(options, onAdvertisement),
      powerCycle: () => new Promise<void>(() => undefined),
    }));
    await w.central.start();
    w.central.injectRadioFault('stuck-scan', { persistent: true });
    const stop = w.scanEvery(30_000, 10_000);
    await w.advance(10 * MINUTE);
    stop();
    const failed = w.events.filter((e) => e.type === 'power-cycle-failed');
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect(failed[0]).toMatchObject({ problem: 'scan-stuck', attempt: 1, code: 'BLE_TIMEOUT' });
  });

  it('adapter and slot errors across sessions: one power cycle, not one per session', async () => {
    const w = watchRig({ errorLimit: 3 });
    const thermometer = sessionRig('sig/thermometer', {
      central: w.central,
      scheduler: w.scheduler,
      session: { radio: w.watchdog },
    });
    const cuff = sessionRig('sig/blood-pressure', {
      central: w.central,
      scheduler: w.scheduler,
      session: { radio: w.watchdog },
    });
    await w.central.start();
    w.central.failNextConnects(new BleError('BLE_NO_SLOTS', 'no free connection slot'), 2);
    w.central.failNextConnects(new BleError('BLE_ADAPTER', 'controller not responding'), 3);
    thermometer.session.start();
    cuff.session.start();
    await w.advance(30 * MINUTE);
    expect(problems(w.events)).toEqual(['adapter-errors']);
    expect(w.central.powerCycles).toBe(1);
    expect(thermometer.session.state).toBe('streaming');
    expect(cuff.session.state).toBe('streaming');
  });

  it('readings from connected devices count as a working radio: no silence while a strap streams', async () => {
    const w = watchRig({ silenceMs: 60 * MINUTE });
    const strap = sessionRig('sig/heart-rate', {
      central: w.central,
      scheduler: w.scheduler,
      session: { radio: w.watchdog },
    });
    await w.central.start();
    strap.session.start();
    const stop = w.scanEvery(5 * MINUTE, 10_000); // a connected strap does not advertise
    await w.advance(4 * 60 * MINUTE);
    stop();
    expect(w.seen).toEqual([]);
    expect(w.central.powerCycles).toBe(0);
    expect(strap.readings.length).toBeGreaterThan(1_000);
  });

  it('log events carry no address or device name', async () => {
    const w = watchRig({ errorLimit: 1, silenceMs: 10 * MINUTE });
    await w.central.start();
    w.central.injectRadioFault('deaf', { persistent: true });
    const stop = w.scanEvery(MINUTE, 10_000);
    w.watchdog.sessionFailed('BLE_ADAPTER');
    await w.advance(3 * 60 * MINUTE);
    stop();
    expect(w.events.length).toBeGreaterThan(3);
    const text = JSON.stringify(w.events);
    expect(text).not.toContain(w.device.peripheral.address);
    expect(text).not.toMatch(/[0-9A-F]{2}(:[0-9A-F]{2}){5}/i);
    expect(text).not.toContain('HRM-Sim');
  });
});
