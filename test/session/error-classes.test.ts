import { describe, expect, it } from 'vitest';
import { BleError, type BleErrorCode } from '../../src/ble/central.js';
import { Random } from '../../src/ble/sim/index.js';
import { RadioWatchdog } from '../../src/session/radio-watchdog.js';
import { RETRY_RULES } from '../../src/session/retry-policy.js';
import { sessionRig } from './session-rig.js';

/**
 * Each error class gets its own backoff (exponential, full jitter, within the class's range), or stops for
 * the user (authentication). Failures are injected into the simulator's connects; delays are measured in
 * virtual time from entering 'backoff' to the next 'connecting'.
 */

/** Delays between each backoff and the connect attempt after it. */
function backoffDelays(states: readonly string[], times: readonly number[]): number[] {
  const delays: number[] = [];
  for (let i = 0; i < states.length - 1; i++) {
    if (states[i] === 'backoff' && states[i + 1] === 'connecting') {
      delays.push((times[i + 1] as number) - (times[i] as number));
    }
  }
  return delays;
}

const RETRYING: BleErrorCode[] = ['BLE_DEVICE_GONE', 'BLE_NO_SLOTS', 'BLE_ABORTED', 'BLE_TIMEOUT'];
const FAILURES = 8;

describe('backoff per error class', () => {
  it('the classes have distinct ranges: aborted soonest, then no slots, timeout, device gone', () => {
    const base = (code: BleErrorCode) => RETRY_RULES[code].baseMs;
    const cap = (code: BleErrorCode) => RETRY_RULES[code].capMs;
    expect(base('BLE_ABORTED')).toBeLessThan(base('BLE_NO_SLOTS'));
    expect(base('BLE_NO_SLOTS')).toBeLessThan(base('BLE_TIMEOUT'));
    expect(base('BLE_TIMEOUT')).toBeLessThan(base('BLE_DEVICE_GONE'));
    expect(cap('BLE_NO_SLOTS')).toBeLessThan(cap('BLE_TIMEOUT'));
    expect(cap('BLE_TIMEOUT')).toBeLessThan(cap('BLE_DEVICE_GONE'));
  });

  for (const code of RETRYING) {
    it(`${code}: doubles from its base to its cap, jitter at the top of the range`, async () => {
      const r = sessionRig('sig/thermometer', { session: { random: () => 0.999_999 } });
      await r.central.start();
      r.central.failNextConnects(new BleError(code, 'injected'), FAILURES);
      r.session.start();
      await r.advance(3 * 3_600_000);
      expect(r.session.state).toBe('streaming');
      const { baseMs, capMs } = RETRY_RULES[code];
      const expected = Array.from({ length: FAILURES }, (_, n) =>
        Math.floor(0.999_999 * Math.min(capMs, baseMs * 2 ** n)),
      );
      expect(backoffDelays(r.states, r.times)).toEqual(expected);
      expect(expected.at(-1)).toBe(Math.floor(0.999_999 * capMs)); // the cap is reached
      expect(r.details.filter((d) => d?.startsWith(`${code}: injected`))).toHaveLength(FAILURES);
      await r.session.stop();
    });

    it(`${code}: full jitter stays within [0, ceiling) and varies`, async () => {
      const random = new Random(11);
      const r = sessionRig('sig/thermometer', { session: { random: () => random.next() } });
      await r.central.start();
      r.central.failNextConnects(new BleError(code, 'injected'), FAILURES);
      r.session.start();
      await r.advance(3 * 3_600_000);
      const { baseMs, capMs } = RETRY_RULES[code];
      const delays = backoffDelays(r.states, r.times);
      expect(delays).toHaveLength(FAILURES);
      delays.forEach((delay, n) => {
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThan(Math.min(capMs, baseMs * 2 ** n));
      });
      expect(new Set(delays.map((d, n) => d / Math.min(capMs, baseMs * 2 ** n))).size).toBe(FAILURES);
      await r.session.stop();
    });
  }

  it('classes count their attempts separately, and a success resets them', async () => {
    const r = sessionRig('sig/thermometer', { session: { random: () => 0.999_999 } });
    await r.central.start();
    r.central.failNextConnects(new BleError('BLE_NO_SLOTS', 'injected'), 3);
    r.central.failNextConnects(new BleError('BLE_ABORTED', 'injected'), 1);
    r.session.start();
    await r.advance(10 * 60_000);
    expect(r.session.state).toBe('streaming');
    const slots = RETRY_RULES.BLE_NO_SLOTS.baseMs;
    const aborted = RETRY_RULES.BLE_ABORTED.baseMs;
    const top = (ms: number) => Math.floor(0.999_999 * ms);
    expect(backoffDelays(r.states, r.times)).toEqual([
      top(slots),
      top(2 * slots),
      top(4 * slots),
      top(aborted),
    ]);
    // Connected: the next no-slots failure starts again at the base.
    r.device.peripheral.dropLink();
    r.central.failNextConnects(new BleError('BLE_NO_SLOTS', 'injected'), 1);
    await r.advance(10 * 60_000);
    expect(backoffDelays(r.states, r.times).at(-1)).toBe(top(slots));
    await r.session.stop();
  });

  it('BLE_AUTH_FAILED: no backoff, no retry; the session waits for the user to pair again', async () => {
    const r = sessionRig('sig/thermometer');
    await r.central.start();
    r.central.failNextConnects(new BleError('BLE_AUTH_FAILED', 'bonding keys missing'), 1);
    r.session.start();
    await r.advance(24 * 3_600_000);
    expect(r.session.state).toBe('needs-pairing');
    expect(r.states).toEqual(['connecting', 'needs-pairing']);
    expect(r.details.at(-1)).toBe('BLE_AUTH_FAILED: bonding keys missing');
    r.session.start(); // the user paired again
    await r.advance(10_000);
    expect(r.session.state).toBe('streaming');
  });

  it('a backend that cannot bond (noble): the session stops for the user instead of retrying', async () => {
    const r = sessionRig('sig/thermometer', { session: { requiresBonding: true } });
    await r.central.start();
    const connect = r.central.connect.bind(r.central);
    let bonds = 0;
    r.central.connect = async (address, options) => {
      const connection = await connect(address, options);
      return new Proxy(connection, {
        get(target, key) {
          if (key === 'bond') {
            return () => {
              bonds++;
              return Promise.reject(new BleError('BLE_NOT_SUPPORTED', 'this backend cannot bond'));
            };
          }
          const value = Reflect.get(target, key, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    };
    r.session.start();
    await r.advance(24 * 3_600_000);
    expect(bonds).toBe(1);
    expect(r.session.state).toBe('needs-pairing');
    expect(r.states).toEqual(['connecting', 'bonding', 'needs-pairing']);
    expect(r.details.at(-1)).toBe('BLE_NOT_SUPPORTED: this backend cannot bond');
  });

  it('BLE_ADAPTER without a watchdog: the session power-cycles the adapter before its retry', async () => {
    const r = sessionRig('sig/thermometer', { session: { random: () => 0.999_999 } });
    await r.central.start();
    r.central.failNextConnects(new BleError('BLE_ADAPTER', 'adapter wedged'), 1);
    r.session.start();
    await r.advance(RETRY_RULES.BLE_ADAPTER.baseMs + 10_000);
    expect(r.central.powerCycles).toBe(1);
    expect(r.session.state).toBe('streaming');
  });

  it('BLE_ADAPTER with a watchdog: reported to it, and the session itself never power-cycles', async () => {
    let watchdog: RadioWatchdog | undefined;
    const reported: string[] = [];
    const r = sessionRig('sig/thermometer', {
      session: {
        random: () => 0.999_999,
        radio: {
          sessionFailed: (code) => {
            reported.push(code);
            watchdog?.sessionFailed(code);
          },
          sessionConnected: () => watchdog?.sessionConnected(),
          activity: () => watchdog?.activity(),
        },
      },
    });
    watchdog = new RadioWatchdog({
      central: r.central,
      scheduler: r.scheduler,
      isEnrolled: () => true,
      errorLimit: 3,
    });
    await r.central.start();
    r.central.failNextConnects(new BleError('BLE_ADAPTER', 'adapter wedged'), 2);
    r.session.start();
    await r.advance(10 * 60_000);
    expect(reported).toEqual(['BLE_ADAPTER', 'BLE_ADAPTER']);
    expect(r.central.powerCycles).toBe(0); // below the watchdog's limit, and never the session's own call
    expect(r.session.state).toBe('streaming');
    watchdog.stop();
  });
});
