import { describe, expect, it } from 'vitest';
import { SimCentral } from '../../src/ble/sim/index.js';
import { PresenceMonitor } from '../../src/session/presence.js';
import {
  allSessionTransitions,
  isSessionTransition,
  type SessionState,
} from '../../src/session/session-states.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';
import { onceIn, type RigOptions, type SessionRig, START, sessionRig } from './session-rig.js';

/**
 * Walks every transition of the session's state machine on the simulator, in virtual time, and checks the
 * union of what the scenarios observed against the documented diagram (session-states.ts): nothing outside
 * it, and nothing in it left untested.
 */
const observed = new Set<string>();

function record(rig: SessionRig): void {
  for (const t of rig.transitions) {
    const [from, to] = t.split('->') as [SessionState, SessionState];
    expect(isSessionTransition(from, to), `undocumented transition ${t}`).toBe(true);
    observed.add(t);
  }
}

async function run(
  driverId: string,
  options: RigOptions,
  drive: (rig: SessionRig) => Promise<void>,
): Promise<SessionRig> {
  const rig = sessionRig(driverId, options);
  await rig.central.start();
  await drive(rig);
  record(rig);
  return rig;
}

const startAndWait = (ms: number) => async (rig: SessionRig) => {
  rig.session.start();
  await rig.advance(ms);
};

const GLUCOSE: RigOptions = { session: { requiresBonding: true } };

/** A sleeping thermometer, and a session that waits for its advertisement on a shared scan (presence.ts). */
function asleepWithPresence(extra: Partial<RigOptions> = {}): RigOptions {
  const scheduler = new VirtualScheduler(START);
  const central = new SimCentral({ scheduler });
  const presence = new PresenceMonitor({ scanner: central, scheduler, random: () => 0.5 });
  return {
    scheduler,
    central,
    device: { inRange: false, advertiseEveryMs: 250 },
    session: { presence, connectTimeoutMs: 1_000, random: () => 0.999 },
    ...extra,
  };
}

describe('session state machine: every transition', () => {
  it('a cuff: connect, subscribe, stored phase, time, streaming; lost, backoff, back; stopped and started', async () => {
    const rig = await run('sig/blood-pressure', {}, async (r) => {
      r.session.start();
      await r.advance(10_000);
      expect(r.session.state).toBe('streaming');
      r.device.peripheral.dropLink();
      await r.advance(60_000);
      expect(r.session.state).toBe('streaming');
      await r.session.stop();
      r.session.start();
      await r.advance(10_000);
      r.device.peripheral.dropLink();
      await r.advance(1);
      expect(r.session.state).toBe('backoff');
      await r.session.stop();
    });
    expect(rig.transitions).toEqual(
      expect.arrayContaining([
        'idle->connecting',
        'connecting->subscribing',
        'subscribing->fetching-stored',
        'fetching-stored->syncing-time',
        'syncing-time->streaming',
        'streaming->lost',
        'lost->backoff',
        'backoff->connecting',
        'streaming->stopped',
        'stopped->connecting',
        'backoff->stopped',
      ]),
    );
  });

  it('a heart-rate strap has no stored phase: subscribing -> syncing-time', async () => {
    const rig = await run('sig/heart-rate', {}, startAndWait(5_000));
    expect(rig.transitions.slice(0, 4)).toEqual([
      'idle->connecting',
      'connecting->subscribing',
      'subscribing->syncing-time',
      'syncing-time->streaming',
    ]);
  });

  it('stopped before it ever started', async () => {
    const rig = await run('sig/thermometer', {}, async (r) => {
      await r.session.stop();
    });
    expect(rig.transitions).toEqual(['idle->stopped']);
  });

  it('a glucose meter bonds, then downloads over RACP', async () => {
    const rig = await run('sig/glucose', { ...GLUCOSE, device: { preload: 3 } }, startAndWait(30_000));
    expect(rig.transitions).toEqual([
      'idle->connecting',
      'connecting->bonding',
      'bonding->subscribing',
      'subscribing->fetching-stored',
      'fetching-stored->syncing-time',
      'syncing-time->streaming',
    ]);
  });

  it('a wrong passkey: needs-pairing, then started again, and stopped there', async () => {
    const rig = await run('sig/glucose', { ...GLUCOSE, device: { passkey: '999999' } }, async (r) => {
      r.session.start();
      await r.advance(5_000);
      expect(r.session.state).toBe('needs-pairing');
      r.session.start(); // the user says they paired again (they did not)
      await r.advance(5_000);
      expect(r.session.state).toBe('needs-pairing');
      await r.session.stop();
    });
    expect(rig.transitions).toEqual(
      expect.arrayContaining([
        'bonding->needs-pairing',
        'needs-pairing->connecting',
        'needs-pairing->stopped',
      ]),
    );
  });

  it('a bonded-only characteristic without a bond: subscribing -> needs-pairing', async () => {
    const rig = await run('sig/glucose', {}, startAndWait(5_000));
    expect(rig.transitions).toContain('subscribing->needs-pairing');
    expect(rig.details.at(-1)).toMatch(/^BLE_AUTH_FAILED/);
  });

  it('a device out of range: connecting -> backoff', async () => {
    const rig = await run(
      'sig/thermometer',
      { device: { inRange: false }, session: { connectTimeoutMs: 1_000 } },
      startAndWait(2_000),
    );
    expect(rig.transitions).toContain('connecting->backoff');
  });

  it('a link that drops right after connecting: connecting -> lost', async () => {
    const rig = await run('sig/thermometer', {}, async (r) => {
      let first = true;
      r.device.peripheral.addHooks({
        onConnect: () => {
          if (!first) return;
          first = false;
          r.device.peripheral.dropLink();
        },
      });
      r.session.start();
      await r.advance(60_000);
      expect(r.session.state).toBe('streaming');
    });
    expect(rig.transitions.slice(0, 3)).toEqual(['idle->connecting', 'connecting->lost', 'lost->backoff']);
  });

  it('a stale GATT cache: connecting -> refreshing-services -> connecting', async () => {
    const rig = await run('sig/blood-pressure', {}, async (r) => {
      const stale = r.device.peripheral
        .discover()
        .map((s) => ({ ...s, characteristics: s.characteristics.filter((c) => c.uuid !== '2a35') }));
      r.central.seedGattCache(r.device.peripheral.address, stale);
      await startAndWait(10_000)(r);
      expect(r.session.state).toBe('streaming');
    });
    expect(rig.transitions.slice(0, 3)).toEqual([
      'idle->connecting',
      'connecting->refreshing-services',
      'refreshing-services->connecting',
    ]);
  });

  it('a stale cache of a bonded device: connecting -> needs-pairing', async () => {
    const rig = await run('sig/glucose', GLUCOSE, async (r) => {
      await startAndWait(30_000)(r);
      await r.session.stop();
      const stale = r.device.peripheral
        .discover()
        .map((s) => ({ ...s, characteristics: s.characteristics.filter((c) => c.uuid !== '2a18') }));
      r.central.seedGattCache(r.device.peripheral.address, stale);
      r.session.start();
      await r.advance(5_000);
    });
    expect(rig.transitions.at(-1)).toBe('connecting->needs-pairing');
  });

  it('the adapter goes off while the cache is refreshed: refreshing-services -> backoff', async () => {
    const rig = await run(
      'sig/blood-pressure',
      { onEnter: onceIn('refreshing-services', (r) => void r.central.stop()) },
      async (r) => {
        r.central.seedGattCache(r.device.peripheral.address, []);
        await startAndWait(2_000)(r);
      },
    );
    expect(rig.transitions).toContain('refreshing-services->backoff');
    expect(rig.details[rig.states.indexOf('backoff')]).toMatch(/^BLE_ADAPTER/);
  });

  it('stopped while the cache is refreshed: refreshing-services -> stopped', async () => {
    const rig = await run(
      'sig/blood-pressure',
      { onEnter: onceIn('refreshing-services', (r) => void r.session.stop()) },
      async (r) => {
        r.central.seedGattCache(r.device.peripheral.address, []);
        await startAndWait(2_000)(r);
      },
    );
    expect(rig.transitions).toContain('refreshing-services->stopped');
    expect(rig.session.state).toBe('stopped');
  });

  /**
   * A fault injected the moment the session enters a state, before its next call: the link drops (-> lost),
   * the session is stopped (-> stopped), or the device stops answering (the next call times out -> backoff).
   */
  const steps: [SessionState, string, RigOptions][] = [
    ['bonding', 'sig/glucose', GLUCOSE],
    ['subscribing', 'sig/blood-pressure', {}],
    ['fetching-stored', 'sig/glucose', GLUCOSE],
    ['syncing-time', 'sig/blood-pressure', {}],
  ];
  const faults: [string, (rig: SessionRig) => void][] = [
    ['lost', (r) => r.device.peripheral.dropLink()],
    ['stopped', (r) => void r.session.stop()],
    ['backoff', (r) => r.device.peripheral.setResponsive(false)],
  ];
  for (const [state, driverId, options] of steps) {
    for (const [target, inject] of faults) {
      it(`${state} -> ${target}`, async () => {
        const rig = await run(
          driverId,
          { ...options, device: { preload: 2 }, onEnter: onceIn(state, inject) },
          startAndWait(20_000),
        );
        expect(rig.transitions).toContain(`${state}->${target}`);
      });
    }
  }

  it('a sleeping device advertises: backoff -> discovered -> connecting (presence)', async () => {
    const rig = await run('sig/thermometer', asleepWithPresence(), async (r) => {
      r.session.start();
      await r.advance(2_500); // the connect timed out; the session waits for the timer or the device
      r.device.peripheral.setInRange(true);
      await r.advance(10_000);
      expect(r.session.state).toBe('streaming');
    });
    expect(rig.transitions.slice(0, 4)).toEqual([
      'idle->connecting',
      'connecting->backoff',
      'backoff->discovered',
      'discovered->connecting',
    ]);
  });

  it('stopped the moment the device was discovered: discovered -> stopped', async () => {
    const rig = await run(
      'sig/thermometer',
      asleepWithPresence({ onEnter: onceIn('discovered', (r) => void r.session.stop()) }),
      async (r) => {
        r.session.start();
        await r.advance(2_500);
        r.device.peripheral.setInRange(true);
        await r.advance(2_000);
      },
    );
    expect(rig.transitions.slice(-2)).toEqual(['backoff->discovered', 'discovered->stopped']);
    expect(rig.session.state).toBe('stopped');
    expect(rig.device.peripheral.connected).toBe(false);
  });

  it('stopped while connecting: connecting -> stopped', async () => {
    const rig = await run(
      'sig/thermometer',
      { onEnter: onceIn('connecting', (r) => void r.session.stop()) },
      startAndWait(5_000),
    );
    expect(rig.transitions).toEqual(['idle->connecting', 'connecting->stopped']);
    expect(rig.device.peripheral.connected).toBe(false);
  });

  // Last in the file (tests run in order): every documented transition was walked by a scenario above.
  it('walked every transition of the diagram', () => {
    const missing = allSessionTransitions().filter((t) => !observed.has(t));
    expect(missing, 'documented transitions no scenario walked').toEqual([]);
    expect(observed.size).toBe(allSessionTransitions().length);
  });
});
