import { beforeAll, describe, expect, it } from 'vitest';
import {
  type CharacteristicDefinition,
  SimCentral,
  simulatedDevice,
  VirtualPeripheral,
} from '../../src/ble/sim/index.js';
import { loadBundledRegistry } from '../../src/drivers/default-registry.js';
import type { DriverRegistry } from '../../src/drivers/registry.js';
import { findCandidates, pairWith } from '../../src/enrolment/pairing.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';

let drivers: DriverRegistry;
beforeAll(async () => {
  drivers = await loadBundledRegistry();
});

/** A blood pressure cuff built by hand, so a test can take characteristics away or protect them. */
function handmadeCuff(
  scheduler: VirtualScheduler,
  feature: Partial<CharacteristicDefinition>,
  measurement = true,
) {
  return new VirtualPeripheral({
    address: 'C0:FF:EE:00:00:01',
    name: 'Cuff',
    services: ['1810'],
    scheduler,
    gatt: [
      {
        uuid: '1810',
        characteristics: [
          ...(measurement ? [{ uuid: '2a35', properties: ['indicate'] as const }] : []),
          { uuid: '2a49', properties: ['read'], value: Uint8Array.of(0x03, 0x00), ...feature },
        ],
      },
    ],
  });
}

/** Runs a scan to its end in virtual time. */
async function scanned(central: SimCentral, scheduler: VirtualScheduler) {
  const found = findCandidates(central, drivers, 1_000, () => undefined);
  await scheduler.advanceAsync(1_000);
  return found;
}

describe('findCandidates', () => {
  it('keeps supported devices only, numbered by profile then driver, whatever order they advertised in', async () => {
    const scheduler = new VirtualScheduler();
    const neighbourSpeaker = new VirtualPeripheral({
      address: '11:22:33:44:55:66',
      name: 'Speaker',
      services: ['110b'],
      scheduler,
      gatt: [],
    });
    const central = new SimCentral({
      scheduler,
      peripherals: [
        neighbourSpeaker,
        simulatedDevice('sig/weight-scale', { scheduler }).peripheral,
        simulatedDevice('sig/thermometer', { scheduler }).peripheral,
        simulatedDevice('sig/blood-pressure', { scheduler }).peripheral,
      ],
    });
    await central.start();
    const candidates = await scanned(central, scheduler);
    expect(candidates.map((c) => [c.number, c.driver.category])).toEqual([
      [1, 'blood-pressure'],
      [2, 'thermometer'],
      [3, 'weight-scale'],
    ]);
  });

  it('marks the devices that are enrolled already', async () => {
    const scheduler = new VirtualScheduler();
    const cuff = simulatedDevice('sig/blood-pressure', { scheduler }).peripheral;
    const central = new SimCentral({ scheduler, peripherals: [cuff] });
    await central.start();
    const enrolled = {
      id: 'd1-00000000000000a1',
      address: cuff.address,
      driverId: 'sig/blood-pressure',
      category: 'blood-pressure',
      label: null,
      model: null,
      bonded: false,
      enrolledAt: 0,
      updatedAt: 0,
      lastSeenAt: null,
    };
    const found = findCandidates(central, drivers, 500, (address) =>
      address === cuff.address.toUpperCase() ? enrolled : undefined,
    );
    await scheduler.advanceAsync(500);
    expect((await found)[0]?.enrolled?.id).toBe('d1-00000000000000a1');
  });
});

describe('pairWith', () => {
  it('bonds a glucose meter before anything else, as its profile requires, and reads its model', async () => {
    const scheduler = new VirtualScheduler();
    const meter = simulatedDevice('sig/glucose', { scheduler });
    const asked: string[] = [];
    const central = new SimCentral({
      scheduler,
      peripherals: [meter.peripheral],
      passkeyProvider: () => {
        asked.push('passkey');
        return '123456';
      },
    });
    await central.start();
    const [candidate] = await scanned(central, scheduler);
    const steps: string[] = [];
    const result = await pairWith(central, candidate as NonNullable<typeof candidate>, {
      timeoutMs: 1_000,
      onStep: (step) => steps.push(step),
    });
    expect(result).toEqual({
      bonded: true,
      bondedNow: true,
      model: expect.stringMatching(/^rpm-gateway simulator /),
    });
    expect(steps).toEqual(['connecting', 'bonding', 'checking']);
    expect(asked).toEqual(['passkey']);
    expect(meter.peripheral.connected).toBe(false); // always disconnects
  });

  it('does not bond a device that does not ask for it, unless told to (Just Works)', async () => {
    const scheduler = new VirtualScheduler();
    const central = new SimCentral({
      scheduler,
      peripherals: [simulatedDevice('sig/thermometer', { scheduler }).peripheral],
    });
    await central.start();
    const [candidate] = await scanned(central, scheduler);
    const thermometer = candidate as NonNullable<typeof candidate>;
    expect(await pairWith(central, thermometer, { timeoutMs: 1_000 })).toMatchObject({
      bonded: false,
      bondedNow: false,
    });
    expect(await pairWith(central, thermometer, { timeoutMs: 1_000, forceBond: true })).toMatchObject({
      bonded: true,
      bondedNow: true,
    });
  });

  it('bonds when the device refuses a read for want of an encrypted link, then reads again', async () => {
    const scheduler = new VirtualScheduler();
    const cuff = handmadeCuff(scheduler, { requiresBond: true });
    const central = new SimCentral({ scheduler, peripherals: [cuff] });
    await central.start();
    const [candidate] = await scanned(central, scheduler);
    const steps: string[] = [];
    const result = await pairWith(central, candidate as NonNullable<typeof candidate>, {
      timeoutMs: 1_000,
      onStep: (step) => steps.push(step),
    });
    expect(result).toEqual({ bonded: true, bondedNow: true });
    expect(steps).toEqual(['connecting', 'checking', 'bonding']);
  });

  it('refuses a device that lacks a characteristic its driver needs, and disconnects', async () => {
    const scheduler = new VirtualScheduler();
    const cuff = handmadeCuff(scheduler, {}, false);
    const central = new SimCentral({ scheduler, peripherals: [cuff] });
    await central.start();
    const [candidate] = await scanned(central, scheduler);
    await expect(
      pairWith(central, candidate as NonNullable<typeof candidate>, { timeoutMs: 1_000 }),
    ).rejects.toMatchObject({
      code: 'DEVICE_CHECK_FAILED',
      message: expect.stringMatching(/lacks Blood Pressure Measurement, which sig\/blood-pressure needs/),
    });
    expect(cuff.connected).toBe(false);
  });

  it('passes on a refused passkey as BLE_AUTH_FAILED', async () => {
    const scheduler = new VirtualScheduler();
    const meter = simulatedDevice('sig/glucose', { scheduler });
    const central = new SimCentral({
      scheduler,
      peripherals: [meter.peripheral],
      passkeyProvider: () => '000000',
    });
    await central.start();
    const [candidate] = await scanned(central, scheduler);
    await expect(
      pairWith(central, candidate as NonNullable<typeof candidate>, { timeoutMs: 1_000 }),
    ).rejects.toMatchObject({
      code: 'BLE_AUTH_FAILED',
    });
    expect(meter.peripheral.connected).toBe(false);
  });
});
