import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isBluetoothAddress, normalizeAddress } from '../../src/ble/address.js';
import { addressFromPath, devicePath } from '../../src/ble/bluez/dbus.js';
import { newDeviceState } from '../../src/ble/bluez/device-state.js';
import type { Advertisement } from '../../src/ble/central.js';
import { SimCentral, VirtualPeripheral } from '../../src/ble/sim/index.js';
import { EnrolmentGate } from '../../src/pipeline/enrolment-gate.js';
import { PresenceMonitor } from '../../src/session/presence.js';
import { DeviceRegistry } from '../../src/store/device-registry.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';

/** One device, spelled the ways a user, BlueZ, noble on Linux or a Windows tool might spell it. */
const CANONICAL = 'C0:FF:EE:0A:0B:0C';
const SPELLINGS = [
  'C0:FF:EE:0A:0B:0C', // BlueZ
  'c0:ff:ee:0a:0b:0c', // noble on Linux
  'c0:FF:ee:0A:0b:0C',
  'C0-FF-EE-0A-0B-0C', // IEEE 802 canonical form
  'c0-ff-ee-0a-0b-0c',
  '  c0:ff:ee:0a:0b:0c\n', // pasted
];

describe('normalizeAddress: the one rule', () => {
  it.each(SPELLINGS)(`%j becomes ${CANONICAL}`, (spelling) => {
    expect(normalizeAddress(spelling)).toBe(CANONICAL);
  });

  it('keeps every other handle exactly as it is, only trimmed', () => {
    // noble on macOS: CoreBluetooth identifiers match only in their own spelling.
    expect(normalizeAddress('5b1f4e7a9c0d4e2f8a6b1c3d5e7f9a0b')).toBe('5b1f4e7a9c0d4e2f8a6b1c3d5e7f9a0b');
    expect(normalizeAddress(' 5B1F4E7A-9C0D-4E2F-8A6B-1C3D5E7F9A0B ')).toBe(
      '5B1F4E7A-9C0D-4E2F-8A6B-1C3D5E7F9A0B',
    );
    // Twelve bare hex digits are a noble id on Linux, not read as an address.
    expect(normalizeAddress('c0ffee0a0b0c')).toBe('c0ffee0a0b0c');
    // Mixed separators, short octets, seven octets: not an address, so not rewritten.
    expect(normalizeAddress('c0:ff-ee:0a:0b:0c')).toBe('c0:ff-ee:0a:0b:0c');
    expect(normalizeAddress('c0:ff:ee:a:0b:0c')).toBe('c0:ff:ee:a:0b:0c');
    expect(normalizeAddress('c0:ff:ee:0a:0b:0c:0d')).toBe('c0:ff:ee:0a:0b:0c:0d');
    expect(normalizeAddress('')).toBe('');
  });

  it('is idempotent', () => {
    for (const value of [...SPELLINGS, 'c0ffee0a0b0c', ' Mixed-Case-Handle ']) {
      expect(normalizeAddress(normalizeAddress(value))).toBe(normalizeAddress(value));
    }
  });

  it('recognises addresses in one separator style only', () => {
    expect(isBluetoothAddress('c0:ff:ee:0a:0b:0c')).toBe(true);
    expect(isBluetoothAddress('C0-FF-EE-0A-0B-0C')).toBe(true);
    expect(isBluetoothAddress('c0:ff:ee:0a:0b-0c')).toBe(false);
    expect(isBluetoothAddress(' c0:ff:ee:0a:0b:0c')).toBe(false);
  });
});

describe('every consumer applies the same rule', () => {
  let dir: string;
  let outbox: Outbox;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rpm-address-'));
    outbox = new Outbox({
      path: join(dir, 'outbox.db'),
      keys: new EnvKeyProvider('K', { K: '5e'.repeat(32) }),
    });
    await outbox.open();
  });
  afterAll(async () => {
    outbox.close();
    await rm(dir, { recursive: true, force: true });
  });

  it.each(SPELLINGS)(
    'the device enrolled as %j is the same device in the registry, the gate and the radio',
    async (enrolledAs) => {
      const registry = new DeviceRegistry(outbox.database);
      const { device } = registry.enrol({
        address: enrolledAs,
        driverId: 'sig/thermometer',
        category: 'thermometer',
        bonded: false,
      });
      expect(device.address).toBe(CANONICAL);
      const gate = new EnrolmentGate([device]);
      const sim = new SimCentral({
        peripherals: [new VirtualPeripheral({ address: enrolledAs, services: ['1809'], gatt: [] })],
      });
      for (const heardAs of SPELLINGS) {
        expect(registry.findByAddress(heardAs)?.id).toBe(device.id);
        expect(gate.deviceIdFor(heardAs)).toBe(device.id);
        expect(sim.peripheral(heardAs)?.address).toBe(enrolledAs);
        // BlueZ: the object path and the Address property give the canonical form back.
        expect(devicePath('hci0', heardAs)).toBe('/org/bluez/hci0/dev_C0_FF_EE_0A_0B_0C');
        expect(addressFromPath(devicePath('hci0', heardAs))).toBe(CANONICAL);
        expect(newDeviceState('/org/bluez/hci0/dev_C0_FF_EE_0A_0B_0C', { Address: heardAs }).address).toBe(
          CANONICAL,
        );
      }
      registry.forget(device.id);
    },
  );

  it('the presence monitor wakes a session whose address is spelled differently from the advertisement', async () => {
    const scheduler = new VirtualScheduler();
    for (const waitedAs of SPELLINGS) {
      for (const advertisedAs of SPELLINGS) {
        const scanner = {
          scan: async (_options: unknown, onAdvertisement: (a: Advertisement) => void) => {
            onAdvertisement({ address: advertisedAs, services: [], manufacturerData: new Map() });
          },
        };
        const monitor = new PresenceMonitor({ scanner, scheduler, random: () => 0.5 });
        await monitor.waitFor(waitedAs);
        expect(monitor.lastSeen(CANONICAL)).toBe(scheduler.now());
        monitor.close();
      }
    }
  });
});
