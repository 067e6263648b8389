import { afterEach, describe, expect, it } from 'vitest';
import { BluezCentral, type BluezCentralOptions } from '../../src/ble/bluez/central.js';
import { classify } from '../../src/ble/bluez/errors.js';
import { type Advertisement, BleError } from '../../src/ble/central.js';
import { CUFF, centralContract } from './central-contract.js';
import { type FakeBluez, SECURE, startFakeBluez } from './fake-bluez.js';

// The contract harness reaches the private bus the way production reaches the system bus: through
// DBUS_SYSTEM_BUS_ADDRESS, which dbus-next (and so node-ble's createBluetooth()) honours.
centralContract('bluez (fake BlueZ on a private D-Bus)', async () => {
  const fake = await startFakeBluez();
  const saved = process.env.DBUS_SYSTEM_BUS_ADDRESS;
  process.env.DBUS_SYSTEM_BUS_ADDRESS = fake.address;
  return {
    central: new BluezCentral({ timeoutMs: 2_000 }),
    emit: (characteristic, value) => fake.emit(characteristic, value),
    written: (characteristic) => fake.written(characteristic),
    dropLink: () => fake.dropLink(),
    async teardown() {
      if (saved === undefined) delete process.env.DBUS_SYSTEM_BUS_ADDRESS;
      else process.env.DBUS_SYSTEM_BUS_ADDRESS = saved;
      await fake.stop();
    },
  };
});

describe('BluezCentral against a fake BlueZ', () => {
  let fake: FakeBluez | undefined;
  let central: BluezCentral | undefined;

  async function setUp(options: Partial<BluezCentralOptions> = {}, withSecureDevice = false) {
    fake = await startFakeBluez({ withSecureDevice });
    central = new BluezCentral({ busAddress: fake.address, timeoutMs: 1_000, ...options });
    await central.start();
    return { fake, central };
  }

  afterEach(async () => {
    await central?.stop();
    await fake?.stop();
    central = undefined;
    fake = undefined;
  });

  it('powers the adapter on at start and registers the agent', async () => {
    const { fake } = await setUp();
    expect(fake.powered).toBe(true);
    expect(fake.agentPath).toBe('/org/rpm_gateway/agent');
  });

  it('powerCycle sets Powered false, then true', async () => {
    const { fake, central } = await setUp();
    await central.powerCycle();
    expect(fake.poweredHistory).toEqual([true, false, true]);
    expect(fake.powered).toBe(true);
  });

  it('reports a link ended by powering off as an adapter disconnect', async () => {
    const { central } = await setUp();
    const connection = await central.connect(CUFF.address, { timeoutMs: 2_000 });
    const reasons: string[] = [];
    connection.onDisconnect((reason) => reasons.push(reason));
    await central.powerCycle();
    await expect.poll(() => reasons).toEqual(['adapter']);
  });

  it('drops every D-Bus signal subscription of a link when it ends (chrvadala/node-ble#12)', async () => {
    const { fake, central } = await setUp();
    const baseline = await fake.clientMatchRules();
    const connection = await central.connect(CUFF.address, { timeoutMs: 2_000 });
    await connection.subscribe('1810', '2a35', () => undefined);
    await connection.subscribe('1805', '2a2b', () => undefined);
    await connection.read('1810', '2a49');
    expect(await fake.clientMatchRules()).toBeGreaterThan(baseline);
    const ended = new Promise((resolve) => connection.onDisconnect(resolve));
    await fake.dropLink();
    expect(await ended).toBe('remote');
    await expect.poll(() => fake.clientMatchRules()).toBe(baseline);
    // And again after a local disconnect.
    const again = await central.connect(CUFF.address, { timeoutMs: 2_000 });
    await again.subscribe('1810', '2a35', () => undefined);
    await again.disconnect();
    await expect.poll(() => fake.clientMatchRules()).toBe(baseline);
  });

  it('reports advertisements with canonical UUIDs, name and RSSI, and honours minRssi', async () => {
    const { central } = await setUp();
    const seen: Advertisement[] = [];
    await central.scan({ durationMs: 200, minRssi: -70 }, (ad) => seen.push(ad));
    expect(seen.map((ad) => ad.address)).toEqual([CUFF.address]);
    expect(seen[0]).toMatchObject({ name: CUFF.name, services: ['1810'], rssi: -60 });
  });

  describe('passkey pairing through the agent', () => {
    it('bonds with the right passkey', async () => {
      const asked: (string | undefined)[] = [];
      const { fake, central } = await setUp(
        {
          agent: {
            passkey: async ({ address }) => {
              asked.push(address);
              return SECURE.passkey;
            },
          },
        },
        true,
      );
      const connection = await central.connect(SECURE.address, { timeoutMs: 2_000 });
      expect(connection.bonded).toBe(false);
      await connection.bond();
      expect(connection.bonded).toBe(true);
      expect(fake.isPaired(SECURE.address)).toBe(true);
      expect(asked).toEqual([SECURE.address]);
      await connection.disconnect();
    });

    it('fails with BLE_AUTH_FAILED on a wrong passkey', async () => {
      const { fake, central } = await setUp({ agent: { passkey: async () => 111111 } }, true);
      const connection = await central.connect(SECURE.address, { timeoutMs: 2_000 });
      await expect(connection.bond()).rejects.toMatchObject({ code: 'BLE_AUTH_FAILED' });
      expect(connection.bonded).toBe(false);
      expect(fake.isPaired(SECURE.address)).toBe(false);
    });

    it('fails with BLE_AUTH_FAILED when nobody enters a passkey', async () => {
      const { central } = await setUp(
        { agent: { passkey: () => Promise.reject(new Error('user pressed ctrl-c')) } },
        true,
      );
      const connection = await central.connect(SECURE.address, { timeoutMs: 2_000 });
      await expect(connection.bond()).rejects.toMatchObject({ code: 'BLE_AUTH_FAILED' });
    });
  });

  describe('clearCache (Adapter1.RemoveDevice)', () => {
    const shape = (services: readonly { uuid: string; characteristics: readonly { uuid: string }[] }[]) =>
      services.flatMap((service) => service.characteristics.map((c) => `${service.uuid}/${c.uuid}`)).sort();

    it('refreshes attributes BlueZ cached before a firmware update', async () => {
      const { fake, central } = await setUp();
      let connection = await central.connect(CUFF.address, { timeoutMs: 2_000 });
      expect(shape(await connection.discover())).not.toContain('1810/2a36');
      await connection.disconnect();
      fake.updateFirmware(CUFF.address, {
        '1810': [
          { uuid: '2a35', flags: ['indicate'] },
          { uuid: '2a36', flags: ['notify'] },
          { uuid: '2a49', flags: ['read'], value: Buffer.from([0x03, 0x00]) },
        ],
      });
      connection = await central.connect(CUFF.address, { timeoutMs: 2_000 });
      expect(shape(await connection.discover())).not.toContain('1810/2a36'); // the stale cached copy
      await connection.disconnect();
      await central.clearCache(CUFF.address);
      expect(fake.removedDevices).toEqual(['/org/bluez/hci0/dev_C0_FF_EE_00_00_01']);
      connection = await central.connect(CUFF.address, { timeoutMs: 2_000 });
      expect(shape(await connection.discover())).toEqual(['1810/2a35', '1810/2a36', '1810/2a49']);
      await connection.disconnect();
    });

    it('refuses a bonded device, because RemoveDevice would remove the bond too', async () => {
      const { fake, central } = await setUp();
      const connection = await central.connect(CUFF.address, { timeoutMs: 2_000 });
      await connection.disconnect();
      fake.setPaired(CUFF.address);
      await expect(central.clearCache(CUFF.address)).rejects.toMatchObject({ code: 'BLE_NOT_SUPPORTED' });
      expect(fake.removedDevices).toEqual([]);
      expect(fake.isPaired(CUFF.address)).toBe(true);
    });

    it('closes our own link to the device first', async () => {
      const { fake, central } = await setUp();
      const connection = await central.connect(CUFF.address, { timeoutMs: 2_000 });
      const reasons: string[] = [];
      connection.onDisconnect((reason) => reasons.push(reason));
      await central.clearCache(CUFF.address);
      expect(reasons).toEqual(['local']);
      expect(fake.isConnected(CUFF.address)).toBe(false);
      expect(fake.removedDevices).toHaveLength(1);
    });

    it('has a deadline, and classifies BlueZ errors', async () => {
      const { fake, central } = await setUp({ timeoutMs: 200 });
      await (await central.connect(CUFF.address, { timeoutMs: 2_000 })).disconnect();
      fake.hangNext('RemoveDevice');
      const started = Date.now();
      await expect(central.clearCache(CUFF.address)).rejects.toMatchObject({ code: 'BLE_TIMEOUT' });
      expect(Date.now() - started).toBeLessThan(1_000);
      fake.failNext('RemoveDevice', 'org.bluez.Error.NotReady', 'Resource Not Ready');
      await expect(central.clearCache(CUFF.address)).rejects.toMatchObject({ code: 'BLE_ADAPTER' });
      fake.failNext('RemoveDevice', 'org.bluez.Error.InvalidArguments', 'Invalid arguments');
      const error = await central.clearCache(CUFF.address).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'BLE_NOT_SUPPORTED' });
      expect((error as BleError).message).not.toContain(CUFF.address);
      // BlueZ dropped the object itself meanwhile: nothing left to clear.
      fake.failNext('RemoveDevice', 'org.bluez.Error.DoesNotExist', 'Does Not Exist');
      await expect(central.clearCache(CUFF.address)).resolves.toBeUndefined();
    });
  });

  describe('timeouts', () => {
    it('a D-Bus call that never answers fails with BLE_TIMEOUT', async () => {
      const { fake, central } = await setUp({ timeoutMs: 200 });
      const connection = await central.connect(CUFF.address, { timeoutMs: 2_000 });
      fake.hangNext('ReadValue');
      const started = Date.now();
      await expect(connection.read('1810', '2a49')).rejects.toMatchObject({ code: 'BLE_TIMEOUT' });
      expect(Date.now() - started).toBeLessThan(1_000);
      // The connection stays usable: the next call is answered.
      expect(Buffer.from(await connection.read('1810', '2a49')).toString('hex')).toBe('0300');
    });

    it('a Connect that never answers fails within the connect timeout', async () => {
      const { fake, central } = await setUp();
      fake.hangNext('Connect');
      const started = Date.now();
      await expect(central.connect(CUFF.address, { timeoutMs: 300 })).rejects.toMatchObject({
        code: 'BLE_TIMEOUT',
      });
      expect(Date.now() - started).toBeLessThan(1_500);
    });
  });

  describe('error classification', () => {
    const cases: [string, string, string][] = [
      ['org.bluez.Error.InProgress', 'Operation already in progress', 'BLE_ABORTED'],
      ['org.bluez.Error.Failed', 'le-connection-abort-by-local', 'BLE_ABORTED'],
      ['org.bluez.Error.Failed', 'Software caused connection abort', 'BLE_ABORTED'],
      ['org.bluez.Error.Failed', 'le-connection-concurrent-connection-limit', 'BLE_NO_SLOTS'],
      ['org.bluez.Error.Failed', 'le-connection-abort-by-remote', 'BLE_DEVICE_GONE'],
      ['org.bluez.Error.NotReady', 'Resource Not Ready', 'BLE_ADAPTER'],
      ['org.bluez.Error.NotAvailable', 'Operation currently not available', 'BLE_ADAPTER'],
      ['org.bluez.Error.AuthenticationFailed', 'Authentication Failed', 'BLE_AUTH_FAILED'],
      ['org.bluez.Error.AuthenticationRejected', 'Authentication Rejected', 'BLE_AUTH_FAILED'],
      ['org.bluez.Error.DoesNotExist', 'Does Not Exist', 'BLE_DEVICE_GONE'],
      ['org.freedesktop.DBus.Error.UnknownObject', 'Unknown object', 'BLE_DEVICE_GONE'],
      ['org.bluez.Error.NotSupported', 'Operation is not supported', 'BLE_NOT_SUPPORTED'],
    ];

    it.each(cases)('Device1.Connect answering %s "%s" gives %s', async (name, text, code) => {
      const { fake, central } = await setUp();
      fake.failNext('Connect', name, text);
      const error = await central.connect(CUFF.address, { timeoutMs: 2_000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BleError);
      expect(error).toMatchObject({ code });
      // Messages never quote an address.
      expect((error as BleError).message).not.toContain(CUFF.address);
    });

    it('StartDiscovery stuck InProgress gives BLE_ABORTED', async () => {
      const { fake, central } = await setUp();
      fake.failNext('StartDiscovery', 'org.bluez.Error.InProgress', 'Operation already in progress');
      await expect(central.scan({ durationMs: 100 }, () => undefined)).rejects.toMatchObject({
        code: 'BLE_ABORTED',
      });
    });

    it('a missing object on a lookup is BLE_NOT_FOUND, on a live link BLE_DEVICE_GONE', () => {
      const missing = { name: 'DBusError', type: 'org.bluez.Error.DoesNotExist', text: 'Does Not Exist' };
      expect(classify(missing, 'lookup').code).toBe('BLE_NOT_FOUND');
      expect(classify(missing, 'read', 'BLE_DEVICE_GONE').code).toBe('BLE_DEVICE_GONE');
      expect(classify(new Error('No available adapters found'), 'start').code).toBe('BLE_ADAPTER');
      expect(
        classify({ type: 'org.freedesktop.DBus.Error.ServiceUnknown', text: 'org.bluez not running' }, 'x')
          .code,
      ).toBe('BLE_BACKEND_UNAVAILABLE');
    });

    it('a write failing NotConnected gives BLE_DEVICE_GONE', async () => {
      const { fake, central } = await setUp();
      const connection = await central.connect(CUFF.address, { timeoutMs: 2_000 });
      fake.failNext('WriteValue', 'org.bluez.Error.NotConnected', 'Not Connected');
      await expect(connection.write('1805', '2a2b', Uint8Array.of(1))).rejects.toMatchObject({
        code: 'BLE_DEVICE_GONE',
      });
    });

    it('an adapter that cannot be powered gives BLE_ADAPTER at start', async () => {
      fake = await startFakeBluez();
      fake.failNext('Powered', 'org.bluez.Error.Failed', 'Blocked through rfkill');
      central = new BluezCentral({ busAddress: fake.address, timeoutMs: 1_000 });
      await expect(central.start()).rejects.toMatchObject({ code: 'BLE_ADAPTER' });
    });

    it('no system bus gives BLE_BACKEND_UNAVAILABLE', async () => {
      central = new BluezCentral({ busAddress: 'unix:path=/nonexistent/bus', timeoutMs: 1_000 });
      await expect(central.start()).rejects.toMatchObject({ code: 'BLE_BACKEND_UNAVAILABLE' });
    });
  });
});
