import type { CentralPort } from '../../src/ble/central.js';
import { SimCentral, type SimulatedDevice, simulatedDevice } from '../../src/ble/sim/index.js';
import { loadBundledRegistry } from '../../src/drivers/default-registry.js';
import type { Driver } from '../../src/drivers/sdk/define-driver.js';
import {
  DeviceSession,
  type SessionOptions,
  type SessionReading,
  type SessionState,
} from '../../src/session/device-session.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';

/**
 * A device session against the simulator, in virtual time, with everything a test looks at recorded: states
 * (with details), the transitions taken, and the readings delivered. `onEnter` runs synchronously when the
 * session enters a state, before it makes its next call: the place to inject a fault at an exact step.
 */
export const registry = await loadBundledRegistry();

export const START = Date.UTC(2026, 10, 28, 8, 0, 0);

export interface SessionRig {
  readonly scheduler: VirtualScheduler;
  readonly device: SimulatedDevice;
  readonly central: SimCentral;
  readonly driver: Driver;
  readonly session: DeviceSession;
  readonly readings: SessionReading[];
  readonly states: SessionState[];
  readonly details: (string | undefined)[];
  /** Virtual time of each state change. */
  readonly times: number[];
  /** "from->to" for every state change, in order. */
  readonly transitions: string[];
  /** Advances virtual time by `ms` in steps, letting promise continuations run in between. */
  advance(ms: number): Promise<void>;
}

export interface RigOptions {
  readonly device?: Parameters<typeof simulatedDevice>[1];
  readonly session?: Partial<
    Omit<SessionOptions, 'device' | 'driver' | 'central' | 'scheduler' | 'onReading'>
  > & {
    readonly requiresBonding?: boolean;
  };
  readonly central?: SimCentral;
  readonly scheduler?: VirtualScheduler;
  readonly onEnter?: (state: SessionState, rig: SessionRig) => void;
  /** Other peripherals in the room (neighbours). */
  readonly others?: readonly SimulatedDevice[];
  readonly maxConnections?: number;
  /** The port the session talks to, built around the simulator (a fake that behaves like another stack). */
  readonly port?: (central: SimCentral) => CentralPort;
  /** The driver the session uses, when not the bundled one of `driverId` (a variant of it, say). */
  readonly driver?: Driver;
}

export function sessionRig(driverId: string, options: RigOptions = {}): SessionRig {
  const scheduler = options.scheduler ?? new VirtualScheduler(START);
  const device = simulatedDevice(driverId, { scheduler, seed: 7, ...options.device });
  const central =
    options.central ??
    new SimCentral({
      peripherals: [device.peripheral, ...(options.others ?? []).map((o) => o.peripheral)],
      scheduler,
      passkeyProvider: () => '123456',
      ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections }),
    });
  if (options.central) central.addPeripheral(device.peripheral);
  const driver = options.driver ?? registry.get(driverId);
  if (!driver) throw new Error(`no driver ${driverId}`);
  const readings: SessionReading[] = [];
  const states: SessionState[] = [];
  const details: (string | undefined)[] = [];
  const times: number[] = [];
  const transitions: string[] = [];
  let previous: SessionState = 'idle';
  const { requiresBonding, ...sessionOptions } = options.session ?? {};
  let rig: SessionRig | undefined;
  const session = new DeviceSession({
    device: {
      id: `dev-${driverId.split('/')[1]}`,
      address: device.peripheral.address,
      ...(requiresBonding === undefined ? {} : { requiresBonding }),
    },
    driver,
    central: options.port ? options.port(central) : central,
    scheduler,
    random: () => 0.5,
    utcOffsetMinutes: () => 0,
    ...sessionOptions,
    onReading: (r) => readings.push(r),
    onState: (state, detail) => {
      transitions.push(`${previous}->${state}`);
      previous = state;
      states.push(state);
      details.push(detail);
      times.push(scheduler.now());
      sessionOptions.onState?.(state, detail);
      if (rig) options.onEnter?.(state, rig);
    },
  });
  rig = {
    scheduler,
    device,
    central,
    driver,
    session,
    readings,
    states,
    details,
    times,
    transitions,
    advance: (ms) => scheduler.advanceAsync(ms),
  };
  return rig;
}

/** Runs `fn` the first time `state` is entered only (a fault injected at one exact step). */
export function onceIn(
  state: SessionState,
  fn: (rig: SessionRig) => void,
): (entered: SessionState, rig: SessionRig) => void {
  let done = false;
  return (entered, rig) => {
    if (done || entered !== state) return;
    done = true;
    fn(rig);
  };
}

/** The readings of one characteristic. */
export function on(readings: readonly SessionReading[], characteristic: string): SessionReading[] {
  return readings.filter((r) => r.characteristic === characteristic);
}
