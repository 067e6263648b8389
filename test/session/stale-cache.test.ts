import { describe, expect, it } from 'vitest';
import type { ServiceInfo } from '../../src/ble/central.js';
import { SimCentral, VirtualPeripheral } from '../../src/ble/sim/index.js';
import { DeviceSession, type SessionState } from '../../src/session/device-session.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';
import { on, onceIn, registry, type SessionRig, START, sessionRig } from './session-rig.js';

/**
 * A GATT cache that went stale (after a firmware update, or a discovery cut short) lacks characteristics the
 * device has. The session asks the backend to drop its cache and connects once more; a bonded device is sent
 * to needs-pairing instead (refreshing removes the bond on BlueZ); a device that really lacks a required
 * characteristic is reported, and retried slowly, never in a loop.
 */
function without(services: readonly ServiceInfo[], ...uuids: string[]): ServiceInfo[] {
  return services.map((s) => ({
    uuid: s.uuid,
    characteristics: s.characteristics.filter((c) => !uuids.includes(c.uuid)),
  }));
}

async function run(rig: SessionRig, ms: number): Promise<SessionRig> {
  await rig.central.start();
  rig.session.start();
  await rig.advance(ms);
  return rig;
}

describe('stale GATT cache', () => {
  it('a cached copy without the measurement characteristic: one refresh, then the device works', async () => {
    const r = sessionRig('sig/blood-pressure');
    r.central.seedGattCache(r.device.peripheral.address, without(r.device.peripheral.discover(), '2a35'));
    await run(r, 10_000);
    expect(r.central.cacheClears).toBe(1);
    expect(r.states.slice(0, 3)).toEqual(['connecting', 'refreshing-services', 'connecting']);
    expect(r.details[1]).toBe(
      'service discovery lacks Blood Pressure Measurement (2a35), which sig/blood-pressure needs',
    );
    expect(r.session.state).toBe('streaming');
    r.device.measure();
    await r.advance(1_000);
    expect(on(r.readings, '2a35')).toHaveLength(1);
    expect(r.central.cachedServices(r.device.peripheral.address)).toEqual(r.device.peripheral.discover());
  });

  it('an empty service list (a discovery cut short) is refreshed the same way', async () => {
    const r = sessionRig('sig/thermometer');
    r.central.seedGattCache(r.device.peripheral.address, []);
    await run(r, 10_000);
    expect(r.details[1]).toBe('service discovery listed no services');
    expect(r.central.cacheClears).toBe(1);
    expect(r.session.state).toBe('streaming');
  });

  it('a characteristic an earlier connection had, missing now, counts as stale too', async () => {
    const r = await run(sessionRig('sig/blood-pressure'), 10_000);
    expect(r.central.cacheClears).toBe(0);
    r.central.seedGattCache(r.device.peripheral.address, without(r.device.peripheral.discover(), '2a36'));
    r.device.peripheral.dropLink();
    await r.advance(60_000);
    expect(r.central.cacheClears).toBe(1);
    expect(r.details).toContain(
      'service discovery lacks Intermediate Cuff Pressure (2a36), which it should have',
    );
    expect(r.session.state).toBe('streaming');
  });

  it('a bonded device is not refreshed (that would remove its bond): needs-pairing, with the reason', async () => {
    const r = sessionRig('sig/glucose', { session: { requiresBonding: true } });
    await run(r, 30_000);
    expect(r.session.state).toBe('streaming');
    await r.session.stop();
    r.central.seedGattCache(r.device.peripheral.address, without(r.device.peripheral.discover(), '2a18'));
    r.session.start();
    await r.advance(60 * 60_000);
    expect(r.session.state).toBe('needs-pairing');
    expect(r.details.at(-1)).toMatch(
      /^BLE_NOT_FOUND: service discovery lacks Glucose Measurement \(2a18\).*refreshing its cached services would remove the bond: pair it again$/,
    );
    expect(r.central.cacheClears).toBe(0);
    expect(r.device.peripheral.hasBond(r.central.id)).toBe(true);
    expect(r.states.filter((s) => s === 'connecting')).toHaveLength(2); // no loop: it waits for the user
  });

  it('a bonded device missing only an optional characteristic keeps its bond and carries on', async () => {
    const r = sessionRig('sig/glucose', { session: { requiresBonding: true } });
    await run(r, 30_000);
    await r.session.stop();
    r.central.seedGattCache(r.device.peripheral.address, without(r.device.peripheral.discover(), '2a34'));
    r.session.start();
    await r.advance(30_000);
    expect(r.session.state).toBe('streaming');
    expect(r.central.cacheClears).toBe(0);
  });

  it('a device that really lacks a required characteristic: reported after one refresh, retried slowly', async () => {
    const scheduler = new VirtualScheduler(START);
    // A "cuff" whose firmware has no Blood Pressure Measurement at all.
    const odd = new VirtualPeripheral({
      address: 'D0:5E:00:00:00:99',
      services: ['1810'],
      scheduler,
      gatt: [
        {
          uuid: '1810',
          characteristics: [{ uuid: '2a49', properties: ['read'], value: Uint8Array.of(0, 0) }],
        },
      ],
    });
    const central = new SimCentral({ peripherals: [odd], scheduler });
    const driver = registry.get('sig/blood-pressure');
    if (!driver) throw new Error('no driver');
    const states: SessionState[] = [];
    const details: (string | undefined)[] = [];
    const session = new DeviceSession({
      device: { id: 'dev-odd', address: odd.address },
      driver,
      central,
      scheduler,
      random: () => 0.5,
      utcOffsetMinutes: () => 0,
      onReading: () => undefined,
      onState: (state, detail) => {
        states.push(state);
        details.push(detail);
      },
    });
    await central.start();
    session.start();
    await scheduler.advanceAsync(6 * 3_600_000);
    expect(central.cacheClears).toBe(1); // refreshed once, not on every attempt
    expect(states.slice(0, 4)).toEqual(['connecting', 'refreshing-services', 'connecting', 'backoff']);
    expect(details[3]).toBe(
      'BLE_NOT_SUPPORTED: service discovery lacks Blood Pressure Measurement (2a35), which sig/blood-pressure needs, even after a fresh service discovery',
    );
    // BLE_NOT_SUPPORTED backs off from a minute to half an hour: a handful of attempts in six hours.
    const attempts = states.filter((s) => s === 'connecting').length;
    expect(attempts).toBeGreaterThan(3);
    expect(attempts).toBeLessThan(30);
    expect(states).not.toContain('streaming');
    await session.stop();
  });

  it('the refresh fails when the backend cannot clear (adapter off): backoff, then it works', async () => {
    const r = sessionRig('sig/thermometer', {
      onEnter: onceIn('refreshing-services', (rig) => void rig.central.stop()),
    });
    r.central.seedGattCache(r.device.peripheral.address, []);
    await run(r, 10 * 60_000);
    expect(r.details[r.states.indexOf('backoff')]).toMatch(/^BLE_ADAPTER/);
    expect(r.session.state).toBe('streaming');
  });
});
