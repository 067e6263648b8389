import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createCentral } from '../../src/ble/backends.js';
import { type Advertisement, BleError, type DisconnectReason } from '../../src/ble/central.js';
import { NobleCentral, type NobleCentralOptions } from '../../src/ble/noble/central.js';
import { classify, disconnectReason, loadFailure, SETCAP_COMMAND } from '../../src/ble/noble/errors.js';
import { fromNobleUuid, toNobleUuid } from '../../src/ble/noble/noble-api.js';
import { simulatedDevice, VirtualPeripheral } from '../../src/ble/sim/index.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';
import { CUFF, centralContract, NEIGHBOUR } from './central-contract.js';
import { FakeNoble, type FakeNobleOptions, fakeLoader } from './fake-noble.js';

// ---- The shared contract --------------------------------------------------------------------------------------

/** The contract's cuff, exactly as the contract describes it. */
function contractCuff(): VirtualPeripheral {
  return new VirtualPeripheral({
    address: CUFF.address,
    name: CUFF.name,
    services: ['1810'],
    rssi: -60,
    manufacturerData: new Map([[0x020e, Uint8Array.of(1, 2, 3)]]),
    gatt: [
      {
        uuid: '1810',
        characteristics: [
          { uuid: '2a35', properties: ['indicate'] },
          { uuid: '2a49', properties: ['read'], value: Uint8Array.of(0x03, 0x00) },
        ],
      },
      {
        uuid: '1805',
        characteristics: [
          { uuid: '2a2b', properties: ['read', 'write', 'notify'], value: new Uint8Array(10) },
        ],
      },
    ],
  });
}

function contractNeighbour(): VirtualPeripheral {
  return new VirtualPeripheral({
    address: NEIGHBOUR.address,
    name: NEIGHBOUR.name,
    services: ['180d'],
    rssi: -85,
    gatt: [{ uuid: '180d', characteristics: [{ uuid: '2a37', properties: ['notify'] }] }],
  });
}

centralContract('noble (fake noble over virtual peripherals)', async () => {
  const cuff = contractCuff();
  const fake = new FakeNoble({ peripherals: [cuff, contractNeighbour()] });
  return {
    central: new NobleCentral({ loadNoble: fakeLoader(fake), timeoutMs: 2_000 }),
    emit: async (characteristic, value) => {
      cuff.emit(characteristic, value);
    },
    written: (characteristic) => cuff.written(characteristic),
    dropLink: async () => cuff.dropLink(),
    teardown: async () => undefined,
  };
});

// The same contract with the simulator's device models behind noble's API.
centralContract('noble (fake noble over the device models)', async () => {
  const cuff = simulatedDevice('sig/blood-pressure', { address: CUFF.address, name: CUFF.name, seed: 1 });
  const neighbour = simulatedDevice('sig/heart-rate', { address: NEIGHBOUR.address, name: NEIGHBOUR.name });
  const fake = new FakeNoble({ peripherals: [cuff.peripheral, neighbour.peripheral] });
  return {
    central: new NobleCentral({ loadNoble: fakeLoader(fake), timeoutMs: 2_000 }),
    emit: async (characteristic, value) => {
      cuff.peripheral.emit(characteristic, value);
    },
    written: (characteristic) => cuff.peripheral.written(characteristic),
    dropLink: async () => cuff.peripheral.dropLink(),
    teardown: async () => undefined,
  };
});

// ---- Helpers ----------------------------------------------------------------------------------------------------

let central: NobleCentral | undefined;

afterEach(async () => {
  await central?.stop();
  central = undefined;
});

interface Rig {
  readonly fake: FakeNoble;
  readonly central: NobleCentral;
  readonly cuff: VirtualPeripheral;
  readonly scheduler: VirtualScheduler;
}

/** A fake radio with the contract's two devices, in virtual time. */
function rig(fakeOptions: Partial<FakeNobleOptions> = {}, options: Partial<NobleCentralOptions> = {}): Rig {
  const scheduler = new VirtualScheduler();
  const cuff = contractCuff();
  const fake = new FakeNoble({ peripherals: [cuff, contractNeighbour()], scheduler, ...fakeOptions });
  central = new NobleCentral({ loadNoble: fakeLoader(fake), scheduler, timeoutMs: 1_000, ...options });
  return { fake, central, cuff, scheduler };
}

/** Runs `work` while virtual time advances by `ms`; returns what it resolved or rejected with. */
async function during<T>(r: Rig, ms: number, work: Promise<T>): Promise<T | unknown> {
  const outcome = work.catch((error: unknown) => error);
  await r.scheduler.advanceAsync(ms);
  return outcome;
}

async function connected(r: Rig) {
  await r.central.start();
  return (await during(r, 500, r.central.connect(CUFF.address, { timeoutMs: 2_000 }))) as Awaited<
    ReturnType<NobleCentral['connect']>
  >;
}

function expectNoAddress(error: unknown): void {
  expect(error).toBeInstanceOf(BleError);
  const message = (error as BleError).message.toLowerCase();
  expect(message).not.toContain(CUFF.address.toLowerCase());
  expect(message).not.toContain(CUFF.address.toLowerCase().replaceAll(':', ''));
}

// ---- Loading noble lazily ------------------------------------------------------------------------------------------

describe('NobleCentral: loading noble', () => {
  it('imports nothing until start(), and createCentral picks it by name', async () => {
    const made = await createCentral('noble');
    expect(made.backend).toBe('noble');
    expect(made).toBeInstanceOf(NobleCentral);
    await expect(made.scan({ durationMs: 10 }, () => undefined)).rejects.toMatchObject({
      code: 'BLE_ADAPTER',
    });
  });

  it('the real @abandonware/noble: a clear BLE_BACKEND_UNAVAILABLE where it cannot open the adapter', async () => {
    // noble opens its HCI socket while its module loads. This machine (and CI) has no Bluetooth in its kernel,
    // so the import fails with EAFNOSUPPORT; where the native HCI socket module was not built (install scripts
    // off, no compiler) it fails with MODULE_NOT_FOUND; a machine where it loads checks the adapter-state path.
    const imported = await import('@abandonware/noble' as string).then(
      () => undefined,
      (error: unknown) => error,
    );
    central = new NobleCentral({ readyTimeoutMs: 3_000 });
    const outcome = await central.start().then(
      () => 'started' as const,
      (error: unknown) => error,
    );
    if ((imported as { code?: unknown } | undefined)?.code === 'MODULE_NOT_FOUND') {
      expect(outcome).toMatchObject({ code: 'BLE_BACKEND_UNAVAILABLE' });
      expect((outcome as BleError).message).toMatch(/npm rebuild @abandonware\/bluetooth-hci-socket/);
      return;
    }
    if (imported !== undefined) {
      expect((imported as { code?: unknown }).code).toBe('EAFNOSUPPORT');
      expect(outcome).toBeInstanceOf(BleError);
      expect(outcome).toMatchObject({ code: 'BLE_BACKEND_UNAVAILABLE' });
      expect((outcome as BleError).message).toMatch(/no Bluetooth support/);
      expect((outcome as BleError).message).toMatch(/--backend sim/);
      expect((outcome as BleError).cause).toMatchObject({ code: 'EAFNOSUPPORT' });
      return;
    }
    // noble loaded: either the adapter is usable, or start says which state keeps it from being usable.
    if (outcome === 'started') {
      await central.scan({ durationMs: 100 }, () => undefined);
      return;
    }
    expect(outcome).toBeInstanceOf(BleError);
    expect(['BLE_BACKEND_UNAVAILABLE', 'BLE_ADAPTER']).toContain((outcome as BleError).code);
    expect((outcome as BleError).message).toMatch(/setcap|adapter|Bluetooth LE/);
  });

  it('a missing package says how to install it', async () => {
    const missing = Object.assign(
      new Error("Cannot find package '@abandonware/noble' imported from /opt/rpm-gateway/dist/x.js"),
      { code: 'ERR_MODULE_NOT_FOUND' },
    );
    central = new NobleCentral({ loadNoble: () => Promise.reject(missing) });
    const error = await central.start().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BLE_BACKEND_UNAVAILABLE' });
    expect((error as BleError).message).toContain('npm install @abandonware/noble');
    expect((error as BleError).cause).toBe(missing);
  });

  it('a missing dependency names it; an unbuilt native module says how to build it', () => {
    const nested = Object.assign(
      new Error("Cannot find module '@abandonware/bluetooth-hci-socket'\nRequire stack:"),
      {
        code: 'MODULE_NOT_FOUND',
      },
    );
    const error = loadFailure(nested);
    expect(error.code).toBe('BLE_BACKEND_UNAVAILABLE');
    expect(error.message).toContain('@abandonware/bluetooth-hci-socket is missing');
    const unbuilt = Object.assign(
      new Error("Cannot find module '../build/Release/bluetooth_hci_socket.node'"),
      {
        code: 'MODULE_NOT_FOUND',
      },
    );
    expect(loadFailure(unbuilt).message).toMatch(
      /was not built: run `npm rebuild @abandonware\/bluetooth-hci-socket`/,
    );
  });

  it.each([
    ['EAFNOSUPPORT', 'socket', 'BLE_BACKEND_UNAVAILABLE', /no Bluetooth support/],
    ['EPERM', 'socket', 'BLE_BACKEND_UNAVAILABLE', /setcap cap_net_raw\+eip/],
    ['EACCES', 'socket', 'BLE_BACKEND_UNAVAILABLE', /setcap cap_net_raw\+eip/],
    ['ENODEV', 'bind', 'BLE_ADAPTER', /no Bluetooth adapter found/],
    ['EBUSY', 'bind', 'BLE_ADAPTER', /busy/],
  ])('a load failing with %s (%s) gives %s', async (code, syscall, expected, message) => {
    const failure = Object.assign(new Error(`${code}, some text`), { code, syscall });
    central = new NobleCentral({ loadNoble: () => Promise.reject(failure) });
    const error = await central.start().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: expected });
    expect((error as BleError).message).toMatch(message);
  });

  it("the permission advice is the command noble's README gives", () => {
    const readme = readFileSync(
      new URL('../../node_modules/@abandonware/noble/README.md', import.meta.url),
      'utf8',
    );
    expect(readme).toContain(SETCAP_COMMAND);
    expect(readFileSync(new URL('../../docs/raspberry-pi.md', import.meta.url), 'utf8')).toContain(
      SETCAP_COMMAND,
    );
  });
});

// ---- The adapter's state --------------------------------------------------------------------------------------

describe('NobleCentral: waiting for the adapter', () => {
  it("starts once noble reports 'poweredOn', and keeps noble's warnings out of the logs", async () => {
    const r = rig();
    await r.central.start();
    r.fake.emit('warning', 'unknown peripheral c0ffee000001 connected!');
    expect(r.fake.printedWarnings).toEqual([]);
  });

  it("'unauthorized' fails at once with the setcap fix, and leaves nothing registered on noble", async () => {
    const r = rig({ initialState: 'unauthorized' });
    const baseline = r.fake.listenerTotal();
    const error = await r.central.start().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BLE_BACKEND_UNAVAILABLE' });
    expect((error as BleError).message).toContain(SETCAP_COMMAND);
    expect((error as BleError).message).toContain('CAP_NET_RAW');
    expect(r.scheduler.pending).toBe(0);
    expect(r.fake.listenerTotal()).toBe(baseline);
  });

  it("'unsupported' (an adapter without LE) fails at once", async () => {
    const r = rig({ initialState: 'unsupported' });
    await expect(r.central.start()).rejects.toMatchObject({
      code: 'BLE_BACKEND_UNAVAILABLE',
      message: expect.stringMatching(/does not support Bluetooth LE/),
    });
  });

  it("an adapter that stays 'poweredOff' fails with BLE_ADAPTER after the timeout, saying how to bring it up", async () => {
    const r = rig({ initialState: 'poweredOff' }, { readyTimeoutMs: 5_000 });
    const outcome = r.central.start().catch((e: unknown) => e);
    await r.scheduler.advanceAsync(4_999);
    let settled = false;
    void outcome.then(() => {
      settled = true;
    });
    await r.scheduler.advanceAsync(0);
    expect(settled).toBe(false);
    await r.scheduler.advanceAsync(1);
    const error = await outcome;
    expect(error).toMatchObject({ code: 'BLE_ADAPTER' });
    expect((error as BleError).message).toContain('sudo hciconfig hci0 up');
  });

  it('an adapter that never answers fails with BLE_ADAPTER after the timeout', async () => {
    const r = rig({ initialState: 'silent' }, { readyTimeoutMs: 2_000 });
    const error = await during(r, 2_000, r.central.start());
    expect(error).toMatchObject({
      code: 'BLE_ADAPTER',
      message: expect.stringMatching(/did not become ready/),
    });
  });

  it('bindings that fail to start (noble only warns) fail start at once', async () => {
    const r = rig({ initError: Object.assign(new Error('ENODEV, No such device'), { code: 'ENODEV' }) });
    await expect(r.central.start()).rejects.toMatchObject({
      code: 'BLE_ADAPTER',
      message: expect.stringMatching(/no Bluetooth adapter found/),
    });
  });

  it('an adapter that goes away ends links (reason adapter) and scans (BLE_ADAPTER)', async () => {
    const r = rig();
    const connection = await connected(r);
    const reasons: DisconnectReason[] = [];
    connection.onDisconnect((reason) => reasons.push(reason));
    const scan = r.central.scan({ durationMs: 10_000 }, () => undefined).catch((e: unknown) => e);
    await r.scheduler.advanceAsync(50);
    r.fake.setState('poweredOff');
    await r.scheduler.advanceAsync(0);
    expect(reasons).toEqual(['adapter']);
    expect(await scan).toMatchObject({ code: 'BLE_ADAPTER' });
    await expect(r.central.connect(CUFF.address, { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'BLE_ADAPTER',
    });
  });
});

// ---- Scanning ------------------------------------------------------------------------------------------------------

describe('NobleCentral: scanning', () => {
  it('reports canonical UUIDs, name, RSSI and manufacturer data; honours minRssi and the service filter', async () => {
    const r = rig();
    await r.central.start();
    const seen: Advertisement[] = [];
    await during(
      r,
      500,
      r.central.scan({ durationMs: 400, minRssi: -70 }, (ad) => seen.push(ad)),
    );
    expect(new Set(seen.map((ad) => ad.address))).toEqual(new Set([CUFF.address]));
    expect(seen.length).toBeGreaterThan(2); // duplicates on: every advertisement, RSSI kept current
    expect(seen[0]).toMatchObject({ name: CUFF.name, services: ['1810'], rssi: -60 });
    expect([...(seen[0]?.manufacturerData ?? [])]).toEqual([[0x020e, Uint8Array.of(1, 2, 3)]]);
    const filtered: Advertisement[] = [];
    await during(
      r,
      500,
      r.central.scan({ durationMs: 400, services: ['0x180D'] }, (ad) => filtered.push(ad)),
    );
    expect(new Set(filtered.map((ad) => ad.address))).toEqual(new Set([NEIGHBOUR.address]));
    expect(r.fake.isScanning).toBe(false);
  });

  it('shares one noble scan between concurrent scans and stops it after the last', async () => {
    const r = rig();
    await r.central.start();
    const a = r.central.scan({ durationMs: 300 }, () => undefined);
    const b = r.central.scan({ durationMs: 600 }, () => undefined);
    await r.scheduler.advanceAsync(400);
    await a;
    expect(r.fake.isScanning).toBe(true);
    await r.scheduler.advanceAsync(300);
    await b;
    expect(r.fake.isScanning).toBe(false);
    expect(r.fake.scanStarts).toBe(1);
  });

  it('a scan another program stops (bluetoothd) ends with an error that says so', async () => {
    const r = rig();
    await r.central.start();
    const scan = r.central.scan({ durationMs: 10_000 }, () => undefined).catch((e: unknown) => e);
    await r.scheduler.advanceAsync(100);
    r.fake.scanStoppedElsewhere();
    const error = await scan;
    expect(error).toMatchObject({ code: 'BLE_ABORTED', message: expect.stringMatching(/bluetoothd/) });
  });

  it('without addresses (macOS), the handle is noble id, and connect takes it', async () => {
    const r = rig({ hideAddresses: true });
    await r.central.start();
    const seen: Advertisement[] = [];
    await during(
      r,
      300,
      r.central.scan({ durationMs: 200, services: ['1810'] }, (ad) => seen.push(ad)),
    );
    const handle = seen[0]?.address as string;
    expect(handle).toMatch(/^[0-9a-f]{32}$/);
    const connection = (await during(r, 100, r.central.connect(handle, { timeoutMs: 1_000 }))) as Awaited<
      ReturnType<NobleCentral['connect']>
    >;
    expect(connection.address).toBe(handle);
    expect(Buffer.from(await connection.read('1810', '2a49')).toString('hex')).toBe('0300');
  });
});

// ---- Links ---------------------------------------------------------------------------------------------------------

describe('NobleCentral: links', () => {
  it('subscribing writes the CCCD: indications (0x0002) or notifications (0x0001); unsubscribing clears it', async () => {
    const r = rig();
    const connection = await connected(r);
    const off35 = await connection.subscribe('1810', '2a35', () => undefined);
    const off2b = await connection.subscribe('1805', '2a2b', () => undefined);
    await off35();
    await off2b();
    expect(r.fake.cccdWrites).toEqual([
      { characteristic: '2a35', value: 0x0002 },
      { characteristic: '2a2b', value: 0x0001 },
      { characteristic: '2a35', value: 0 },
      { characteristic: '2a2b', value: 0 },
    ]);
  });

  it('a read is not a notification: subscribers get only what the device sends', async () => {
    const r = rig();
    const connection = await connected(r);
    const got: string[] = [];
    await connection.subscribe('1805', '2a2b', (v) => got.push(Buffer.from(v).toString('hex')));
    await connection.read('1805', '2a2b');
    r.cuff.emit('2a2b', Uint8Array.of(7));
    await r.scheduler.advanceAsync(0);
    expect(got).toEqual(['07']);
  });

  it('checks properties before asking (noble would answer a refused read with an empty value)', async () => {
    const r = rig();
    const connection = await connected(r);
    await expect(connection.read('1810', '2a35')).rejects.toMatchObject({ code: 'BLE_NOT_SUPPORTED' });
    await expect(connection.write('1810', '2a49', Uint8Array.of(1))).rejects.toMatchObject({
      code: 'BLE_NOT_SUPPORTED',
    });
    await expect(connection.subscribe('1810', '2a49', () => undefined)).rejects.toMatchObject({
      code: 'BLE_NOT_SUPPORTED',
    });
    await expect(connection.read('1810', '2a99')).rejects.toMatchObject({ code: 'BLE_NOT_FOUND' });
  });

  it('a hung connect times out within the connect timeout and is cancelled; the next connect works', async () => {
    const r = rig();
    await r.central.start();
    r.fake.hangNext('connect');
    const started = r.scheduler.now();
    const attempt = r.central.connect(CUFF.address, { timeoutMs: 1_500 }).catch((e: unknown) => e);
    let error: unknown;
    void attempt.then((e) => {
      error = e;
    });
    await r.scheduler.advanceAsync(1_499);
    expect(error).toBeUndefined();
    await r.scheduler.advanceAsync(1);
    expect(await attempt).toMatchObject({ code: 'BLE_TIMEOUT' });
    expect(r.scheduler.now() - started).toBe(1_500);
    expect(r.fake.cancelledConnects).toBe(1);
    expectNoAddress(error);
    const connection = (await during(
      r,
      100,
      r.central.connect(CUFF.address, { timeoutMs: 1_000 }),
    )) as Awaited<ReturnType<NobleCentral['connect']>>;
    expect(Buffer.from(await connection.read('1810', '2a49')).toString('hex')).toBe('0300');
  });

  it('a device that never advertises is BLE_NOT_FOUND after the connect timeout', async () => {
    const r = rig();
    await r.central.start();
    r.cuff.setInRange(false);
    const error = await during(r, 800, r.central.connect(CUFF.address, { timeoutMs: 700 }));
    expect(error).toMatchObject({ code: 'BLE_NOT_FOUND' });
    expect(r.fake.isScanning).toBe(false);
  });

  it('a hung GATT call times out and the link stays usable', async () => {
    const r = rig();
    const connection = await connected(r);
    r.fake.hangNext('read');
    const error = await during(r, 1_000, connection.read('1810', '2a49'));
    expect(error).toMatchObject({ code: 'BLE_TIMEOUT', message: 'read timed out after 1000 ms' });
    expect(Buffer.from(await connection.read('1810', '2a49')).toString('hex')).toBe('0300');
  });

  it('a write the device refuses never answers in noble, so it times out', async () => {
    const scheduler = new VirtualScheduler();
    const strict = new VirtualPeripheral({
      address: CUFF.address,
      services: ['1805'],
      gatt: [
        {
          uuid: '1805',
          characteristics: [
            {
              uuid: '2a2b',
              properties: ['write'],
              onWrite: () => {
                throw new BleError('BLE_NOT_SUPPORTED', 'out of range value');
              },
            },
          ],
        },
      ],
    });
    const fake = new FakeNoble({ peripherals: [strict], scheduler });
    central = new NobleCentral({ loadNoble: fakeLoader(fake), scheduler, timeoutMs: 1_000 });
    await central.start();
    const r = { fake, central, cuff: strict, scheduler };
    const connection = await connected(r);
    expect(await during(r, 1_000, connection.write('1805', '2a2b', Uint8Array.of(1)))).toMatchObject({
      code: 'BLE_TIMEOUT',
    });
  });

  it('operations on a link that dropped fail at once with BLE_DEVICE_GONE, even one already waiting', async () => {
    const r = rig();
    const connection = await connected(r);
    r.fake.hangNext('read');
    const pending = connection.read('1810', '2a49').catch((e: unknown) => e);
    await r.scheduler.advanceAsync(10);
    r.cuff.dropLink('remote');
    expect(await pending).toMatchObject({ code: 'BLE_DEVICE_GONE' });
    await expect(connection.read('1810', '2a49')).rejects.toMatchObject({ code: 'BLE_DEVICE_GONE' });
    await expect(connection.discover()).rejects.toMatchObject({ code: 'BLE_DEVICE_GONE' });
  });

  it.each([
    ['0x3e', 'BLE_ABORTED'],
    ['0x09', 'BLE_NO_SLOTS'],
    ['0x08', 'BLE_TIMEOUT'],
    ['0x0c', 'BLE_ABORTED'],
  ])('a connect failing with HCI status %s gives %s, naming the code and no address', async (hex, code) => {
    const status = Number.parseInt(hex, 16);
    const r = rig();
    await r.central.start();
    const baseline = r.fake.listenerTotal();
    r.fake.failNextConnect(status);
    const error = await during(r, 500, r.central.connect(CUFF.address, { timeoutMs: 1_000 }));
    expect(error).toMatchObject({ code });
    expect((error as BleError).message).toContain(`HCI ${hex}`);
    expectNoAddress(error);
    expect(r.fake.listenerTotal()).toBe(baseline);
  });

  it.each([
    ['link-loss', 'link-loss'],
    ['remote', 'remote'],
  ] as const)('a link the device drops (%s) ends once with reason %s', async (drop, reason) => {
    const r = rig();
    const connection = await connected(r);
    const reasons: DisconnectReason[] = [];
    connection.onDisconnect((why) => reasons.push(why));
    r.cuff.dropLink(drop);
    await r.scheduler.advanceAsync(0);
    expect(reasons).toEqual([reason]);
  });

  it('a local disconnect ends with reason local; a listener added afterwards still hears it once', async () => {
    const r = rig();
    const connection = await connected(r);
    const reasons: DisconnectReason[] = [];
    connection.onDisconnect((why) => reasons.push(why));
    await connection.disconnect();
    connection.onDisconnect((why) => reasons.push(`late ${why}` as DisconnectReason));
    await r.scheduler.advanceAsync(0);
    expect(reasons).toEqual(['local', 'late local']);
    await connection.disconnect(); // twice is fine
  });

  it('refuses a second link to the same device', async () => {
    const r = rig();
    await connected(r);
    await expect(r.central.connect(CUFF.address, { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'BLE_NO_SLOTS',
    });
  });

  it('bond() says noble cannot bond, and points at the bluez backend', async () => {
    const r = rig();
    const connection = await connected(r);
    expect(connection.bonded).toBe(false);
    const error = await connection.bond().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BLE_NOT_SUPPORTED' });
    expect((error as BleError).message).toMatch(/bluez backend/);
  });

  it('powerCycle disconnects every link (reason adapter), resets the controller and resumes a running scan', async () => {
    const r = rig();
    const connection = await connected(r);
    const reasons: DisconnectReason[] = [];
    connection.onDisconnect((why) => reasons.push(why));
    const seen: string[] = [];
    const scan = r.central.scan({ durationMs: 2_000 }, (ad) => seen.push(ad.address));
    await r.scheduler.advanceAsync(100);
    const scanStarts = r.fake.scanStarts;
    const cycle = r.central.powerCycle();
    await r.scheduler.advanceAsync(600);
    await cycle;
    expect(reasons).toEqual(['adapter']);
    expect(r.fake.resets).toBe(1);
    expect(r.fake.isScanning).toBe(true);
    expect(r.fake.scanStarts).toBe(scanStarts + 1);
    const before = seen.length;
    await r.scheduler.advanceAsync(1_400);
    await scan;
    expect(seen.length).toBeGreaterThan(before);
    // noble still knows the peripheral as disconnected (we disconnected before the reset): it connects again.
    const again = (await during(r, 100, r.central.connect(CUFF.address, { timeoutMs: 1_000 }))) as Awaited<
      ReturnType<NobleCentral['connect']>
    >;
    expect(Buffer.from(await again.read('1810', '2a49')).toString('hex')).toBe('0300');
  });
});

// ---- Listener hygiene ------------------------------------------------------------------------------------------

describe('NobleCentral: no listener outlives its link', () => {
  it('after local disconnects, dropped links and timed-out calls, every listener is gone', async () => {
    const r = rig();
    await r.central.start();
    const baseline = r.fake.listenerTotal();
    const peripheral = r.fake.peripheral(CUFF.address);
    for (let round = 0; round < 3; round++) {
      const connection = (await during(
        r,
        200,
        r.central.connect(CUFF.address, { timeoutMs: 1_000 }),
      )) as Awaited<ReturnType<NobleCentral['connect']>>;
      const got: number[] = [];
      await connection.subscribe('1810', '2a35', (v) => got.push(v.length));
      await connection.subscribe('1805', '2a2b', (v) => got.push(v.length));
      await connection.read('1810', '2a49');
      await connection.write('1805', '2a2b', Uint8Array.of(1, 2));
      // A read that never answers leaves noble's promisified 'read' listener behind until the link ends.
      r.fake.hangNext('read');
      await during(r, 1_000, connection.read('1810', '2a49'));
      expect(r.fake.listenerTotal()).toBeGreaterThan(baseline);
      if (round === 1) {
        r.cuff.dropLink();
        await r.scheduler.advanceAsync(0);
      } else {
        await connection.disconnect();
      }
      expect(r.fake.listenerTotal()).toBe(baseline);
      expect(peripheral.listenerCount('disconnect')).toBe(0);
    }
  });

  it('a failed connect leaves nothing behind', async () => {
    const r = rig();
    await r.central.start();
    const baseline = r.fake.listenerTotal();
    r.fake.hangNext('discoverServices');
    const error = await during(r, 1_200, r.central.connect(CUFF.address, { timeoutMs: 1_000 }));
    expect(error).toMatchObject({ code: 'BLE_TIMEOUT' });
    await r.scheduler.advanceAsync(0);
    expect(r.fake.listenerTotal()).toBe(baseline);
    expect(r.fake.peripheral(CUFF.address).state).toBe('disconnected');
  });

  it('stop() removes everything the central registered on noble', async () => {
    const r = rig();
    const before = r.fake.listenerTotal();
    await connected(r);
    await r.central.stop();
    expect(r.fake.listenerTotal()).toBe(before);
  });
});

// ---- Classification -------------------------------------------------------------------------------------------------

describe('noble error classification', () => {
  it.each([
    ['Connection Failed to be Established (0x3e)', 'BLE_ABORTED'],
    ['Connection Timeout (0x8)', 'BLE_TIMEOUT'],
    ['Connection Limit Exceeded (0x9)', 'BLE_NO_SLOTS'],
    ['Remote User Terminated Connection (0x13)', 'BLE_DEVICE_GONE'],
    ['Connection Terminated due to MIC Failure (0x3d)', 'BLE_AUTH_FAILED'],
    ['Insufficient Security (0x2f)', 'BLE_AUTH_FAILED'],
    ['HCI Error: Unknown (0x7f)', 'BLE_ABORTED'],
    ['Peripheral already connected', 'BLE_NO_SLOTS'],
    ['connection canceled!', 'BLE_ABORTED'],
    ['Could not start scanning, state is poweredOff (not poweredOn)', 'BLE_ADAPTER'],
    ['device not found', 'BLE_NOT_FOUND'],
    ['something else entirely', 'BLE_ABORTED'],
  ])('"%s" is %s', (message, code) => {
    const error = classify(new Error(message), 'connect');
    expect(error.code).toBe(code);
    expect(error.message.startsWith('connect failed')).toBe(true);
  });

  it('a string error (noble passes strings to some callbacks) is classified too', () => {
    expect(classify('Connection Timeout (0x8)', 'connect').code).toBe('BLE_TIMEOUT');
  });

  it.each([
    [0x08, { local: false, adapter: false }, 'link-loss'],
    [0x22, { local: false, adapter: false }, 'link-loss'],
    [0x3e, { local: false, adapter: false }, 'link-loss'],
    [0x13, { local: false, adapter: false }, 'remote'],
    [0x15, { local: false, adapter: false }, 'remote'],
    [0x16, { local: false, adapter: false }, 'adapter'],
    [0x16, { local: true, adapter: false }, 'local'],
    [0x13, { local: false, adapter: true }, 'adapter'],
    [undefined, { local: false, adapter: false }, 'link-loss'],
  ] as const)('HCI reason %s (%o) ends the link as %s', (reason, context, expected) => {
    expect(disconnectReason(reason, context)).toBe(expected);
  });

  it('converts noble UUID text to canonical and back', () => {
    expect(fromNobleUuid('180')).toBe('0180'); // noble prints 16-bit UUIDs unpadded
    expect(fromNobleUuid('2a35')).toBe('2a35');
    expect(fromNobleUuid('0000180d00001000800000805f9b34fb')).toBe('180d');
    expect(fromNobleUuid('6e400001b5a3f393e0a9e50e24dcca9e')).toBe('6e400001-b5a3-f393-e0a9-e50e24dcca9e');
    expect(fromNobleUuid('not-a-uuid')).toBeUndefined();
    expect(toNobleUuid('0x2A35')).toBe('2a35');
    expect(toNobleUuid('6E400001-B5A3-F393-E0A9-E50E24DCCA9E')).toBe('6e400001b5a3f393e0a9e50e24dcca9e');
  });
});

describe('NobleCentral: signals', () => {
  it("removes the SIGINT handler noble's bindings add, which would end the process before the hub's ordered stop", async () => {
    const exits: number[] = [];
    const before = process.listeners('SIGINT');
    const fake = new FakeNoble({ peripherals: [], sigint: { onExit: (code) => exits.push(code) } });
    const central = new NobleCentral({ loadNoble: fakeLoader(fake), timeoutMs: 2_000 });
    await central.start();
    try {
      expect(fake.sigintListener).toBeTypeOf('function'); // noble did register its handler
      expect(process.listeners('SIGINT')).toEqual(before); // and it is gone again
      expect(process.listeners('SIGINT')).not.toContain(fake.sigintListener);
      // Had it stayed as the last listener, a SIGINT would have ended the process: noble's own rule.
      process.on('SIGINT', fake.sigintListener as () => void);
      (fake.sigintListener as () => void)();
      expect(exits).toEqual([1]);
    } finally {
      process.removeListener('SIGINT', fake.sigintListener as () => void);
      await central.stop();
    }
  });
});
