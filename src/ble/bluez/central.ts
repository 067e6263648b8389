import type nodeBle from 'node-ble';
import { longUuid, normalizeUuid } from '../../gatt/uuid.js';
import { realScheduler, type Scheduler } from '../../util/scheduler.js';
import { normalizeAddress } from '../address.js';
import {
  type Advertisement,
  BleError,
  type CentralPort,
  type Connection,
  type ScanOptions,
} from '../central.js';
import { type AgentOptions, BluezAgent } from './agent.js';
import { BluezConnection, type LinkContext } from './connection.js';
import {
  adapterPath,
  BLUEZ,
  type ClientInterface,
  callProxy,
  type DbusMessage,
  devicePath,
  Message,
  type MessageBus,
  MessageType,
  unwrap,
  Variant,
} from './dbus.js';
import {
  ADVERTISEMENT_PROPERTIES,
  advertisementOf,
  type DeviceState,
  newDeviceState,
  record,
  updateDevice,
} from './device-state.js';
import { classify, withTimeout } from './errors.js';
import { busOf, type NodeBleBluetooth, openBluetooth } from './node-ble-internals.js';

/**
 * The BlueZ backend of the Central port: node-ble over the system D-Bus for devices and GATT, plus the few
 * BlueZ calls node-ble lacks (Adapter1.SetDiscoveryFilter with UUIDs, Powered, the ObjectManager signals), made
 * with dbus-next on node-ble's own connection. Addresses and names are never logged.
 */
export interface BluezCentralOptions {
  /**
   * The D-Bus address of the system bus (tests use a private bus). Default: DBUS_SYSTEM_BUS_ADDRESS, then
   * unix:path=/var/run/dbus/system_bus_socket (dbus-next's systemBus()).
   */
  readonly busAddress?: string;
  /** Adapter name (hci0, ...). Default: the first adapter BlueZ lists. */
  readonly adapter?: string;
  /** Deadline of every D-Bus call (BLE_TIMEOUT). Default 10 s. */
  readonly timeoutMs?: number;
  /** Deadline of Device1.Pair, which waits for a person typing a passkey. Default 90 s. */
  readonly pairingTimeoutMs?: number;
  /** The pairing agent's passkey provider and confirmation policy; `false` registers no agent. */
  readonly agent?: AgentOptions | false;
  /** Deadlines and scan windows. Default: real time. */
  readonly scheduler?: Scheduler;
}

export class BluezCentral implements CentralPort, LinkContext {
  readonly backend = 'bluez' as const;
  private readonly timeoutMs: number;
  private readonly scheduler: Scheduler;
  private session: NodeBleBluetooth | undefined;
  private bus: MessageBus | undefined;
  private adapterName = '';
  private adapter: nodeBle.Adapter | undefined;
  private adapterIface: ClientInterface | undefined;
  private adapterProps: ClientInterface | undefined;
  private agent: BluezAgent | undefined;
  private readonly devices = new Map<string, DeviceState>();
  private readonly deviceWaiters = new Set<(path: string) => void>();
  private readonly advertisementListeners = new Set<(path: string) => void>();
  private readonly connections = new Set<BluezConnection>();
  private discoveryUsers = 0;
  private discoveryFilter: readonly string[] | undefined;
  private adapterDown = false;
  private readonly onMessage = (message: DbusMessage) => this.handleSignal(message);

  constructor(private readonly options: BluezCentralOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.scheduler = options.scheduler ?? realScheduler;
  }

  async start(): Promise<void> {
    if (this.session) return;
    const session = openBluetooth(this.options.busAddress);
    const bus = busOf(session.bluetooth);
    this.session = session;
    this.bus = bus;
    try {
      await this.connected(bus);
      this.adapter = await this.call(
        this.options.adapter === undefined
          ? session.bluetooth.defaultAdapter()
          : session.bluetooth.getAdapter(this.options.adapter),
        'adapter lookup',
      ).catch((error: unknown) => {
        const failure = classify(error, 'adapter lookup');
        throw failure.code === 'BLE_NOT_FOUND'
          ? new BleError('BLE_ADAPTER', 'no adapter', { cause: error })
          : failure;
      });
      // node-ble keeps the adapter's name in its untyped `adapter` field (src/Adapter.js).
      this.adapterName = (this.adapter as unknown as { adapter: string }).adapter;
      const adapterObject = await this.call(
        bus.getProxyObject(BLUEZ, adapterPath(this.adapterName)),
        'adapter',
      );
      this.adapterIface = adapterObject.getInterface('org.bluez.Adapter1');
      this.adapterProps = adapterObject.getInterface('org.freedesktop.DBus.Properties');

      // One subscription for all of BlueZ's object tree: the ObjectManager signals on / (BlueZ exports its
      // ObjectManager there) and every PropertiesChanged under the adapter (devices, GATT objects, the adapter).
      bus.on('message', this.onMessage);
      await this.addMatch(
        `type='signal',sender='${BLUEZ}',interface='org.freedesktop.DBus.ObjectManager',path='/'`,
      );
      await this.addMatch(
        `type='signal',sender='${BLUEZ}',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path_namespace='${adapterPath(this.adapterName)}'`,
      );
      await this.loadManagedObjects();

      // Adapter.rst Powered: switching it on is how a central makes the adapter usable.
      if (!(await this.getAdapterProperty('Powered'))) await this.setPowered(true);
      this.adapterDown = false;

      if (this.options.agent !== false) {
        this.agent = new BluezAgent(bus, this.options.agent ?? {}, this.timeoutMs, this.scheduler);
        await this.agent.register();
      }
    } catch (error) {
      await this.stop();
      throw classify(error, 'adapter start');
    }
  }

  async stop(): Promise<void> {
    const session = this.session;
    if (!session) return;
    for (const connection of [...this.connections]) await connection.disconnect().catch(() => undefined);
    await this.agent?.unregister().catch(() => undefined);
    this.agent = undefined;
    this.bus?.removeListener('message', this.onMessage);
    this.session = undefined;
    this.bus = undefined;
    this.adapter = undefined;
    this.devices.clear();
    this.discoveryUsers = 0;
    session.destroy();
  }

  async powerCycle(): Promise<void> {
    this.requireStarted();
    this.adapterDown = true;
    await this.setPowered(false);
    await this.setPowered(true);
    this.adapterDown = false;
  }

  /**
   * CentralPort.clearCache on BlueZ: Adapter1.RemoveDevice (doc/org.bluez.Adapter.rst) removes the device
   * object with its cached attributes, which is how bleak-retry-connector's clear_cache refreshes a stale
   * cache. It also deletes the pairing keys (bleak's unpair() is the same call), so a paired device is refused
   * with BLE_NOT_SUPPORTED before anything is removed. Our own link to the device is closed first (RemoveDevice
   * would drop it anyway). The device object comes back at the next discovery, with a fresh GATT discovery at
   * the next connection. Both calls have the backend's deadline.
   */
  async clearCache(address: string): Promise<void> {
    this.requireStarted();
    const path = devicePath(this.adapterName, address);
    if (!this.devices.has(path)) return; // BlueZ has no object for it, so no cache either
    const paired = await this.deviceProperty(path, 'Paired');
    if (paired === undefined) return; // removed meanwhile
    if (paired === true) {
      throw new BleError(
        'BLE_NOT_SUPPORTED',
        'the device is bonded: removing its cached services (Adapter1.RemoveDevice) would remove the bond too',
      );
    }
    for (const connection of [...this.connections]) {
      if (connection.address === normalizeAddress(address))
        await connection.disconnect().catch(() => undefined);
    }
    try {
      await this.call(callProxy(this.adapterIface as ClientInterface, 'RemoveDevice', path), 'cache clear');
    } catch (error) {
      // DoesNotExist: BlueZ dropped the object meanwhile (it does for unpaired devices it has not seen for a
      // while, main.conf TemporaryTimeout); there is nothing left to clear.
      if (!(error instanceof BleError && error.code === 'BLE_NOT_FOUND')) throw error;
    }
    this.devices.delete(path);
  }

  async scan(options: ScanOptions, onAdvertisement: (advertisement: Advertisement) => void): Promise<void> {
    this.requireStarted();
    if (options.signal?.aborted) return;
    const wanted = options.services?.map(normalizeUuid);
    const listener = (path: string) => {
      const state = this.devices.get(path);
      if (!state) return;
      if (wanted && !state.uuids.some((uuid) => wanted.includes(uuid))) return;
      if (options.minRssi !== undefined && (state.rssi === undefined || state.rssi < options.minRssi)) return;
      onAdvertisement(advertisementOf(state));
    };
    this.advertisementListeners.add(listener);
    try {
      await this.acquireDiscovery(wanted);
    } catch (error) {
      this.advertisementListeners.delete(listener);
      throw error;
    }
    try {
      await new Promise<void>((resolve) => {
        const scheduler = this.scheduler;
        const timer = scheduler.setTimeout(done, options.durationMs);
        options.signal?.addEventListener('abort', done, { once: true });
        function done() {
          scheduler.clearTimeout(timer);
          options.signal?.removeEventListener('abort', done);
          resolve();
        }
      });
    } finally {
      this.advertisementListeners.delete(listener);
      await this.releaseDiscovery();
    }
  }

  async connect(address: string, options: { readonly timeoutMs: number }): Promise<Connection> {
    this.requireStarted();
    const deadline = this.scheduler.now() + options.timeoutMs;
    const remaining = () => Math.max(1, deadline - this.scheduler.now());
    const path = devicePath(this.adapterName, address);
    await this.ensureDevice(path, remaining);
    const adapter = this.adapter as nodeBle.Adapter;
    const device = await this.call(adapter.getDevice(address), 'device lookup', remaining());
    const connection = new BluezConnection(this, device, normalizeAddress(address), () => this.adapterDown);
    try {
      await connection.open(remaining, this.timeoutMs);
    } catch (error) {
      connection.abandon();
      throw error;
    }
    this.connections.add(connection);
    connection.onDisconnect(() => this.connections.delete(connection));
    return connection;
  }

  /** @internal */
  call<T>(
    work: Promise<T>,
    what: string,
    ms = this.timeoutMs,
    missing: 'BLE_NOT_FOUND' | 'BLE_DEVICE_GONE' = 'BLE_NOT_FOUND',
  ) {
    return withTimeout(work, ms, what, this.scheduler, missing);
  }

  /** @internal */
  get dbus(): MessageBus {
    if (!this.bus) throw new BleError('BLE_ADAPTER', 'the central is not started');
    return this.bus;
  }

  /** @internal */
  get pairingTimeoutMs(): number {
    return this.options.pairingTimeoutMs ?? 90_000;
  }

  private requireStarted(): void {
    if (!this.session) throw new BleError('BLE_ADAPTER', 'the central is not started');
  }

  private connected(bus: MessageBus): Promise<void> {
    // dbus-next reports a missing socket or a refused handshake only as an 'error' event on the bus.
    const ready = new Promise<void>((resolve, reject) => {
      bus.once('connect', () => resolve());
      bus.once('error', (error: unknown) =>
        reject(new BleError('BLE_BACKEND_UNAVAILABLE', 'cannot reach the system D-Bus', { cause: error })),
      );
    });
    // Later transport errors end the session's calls through their timeouts; they must not crash the process.
    bus.on('error', () => undefined);
    return this.call(ready, 'D-Bus connection');
  }

  private async addMatch(rule: string): Promise<void> {
    const bus = this.bus as MessageBus;
    await this.call(
      bus.call(
        new Message({
          destination: 'org.freedesktop.DBus',
          path: '/org/freedesktop/DBus',
          interface: 'org.freedesktop.DBus',
          member: 'AddMatch',
          signature: 's',
          body: [rule],
        }),
      ),
      'signal subscription',
    );
  }

  private async loadManagedObjects(): Promise<void> {
    const bus = this.bus as MessageBus;
    const root = await this.call(bus.getProxyObject(BLUEZ, '/'), 'object manager');
    const objects = record(
      await this.call(
        callProxy(root.getInterface('org.freedesktop.DBus.ObjectManager'), 'GetManagedObjects'),
        'object manager',
      ),
    );
    for (const [path, interfaces] of Object.entries(objects))
      this.interfacesAdded(path, record(interfaces), false);
  }

  /** A Device1 property read over D-Bus, or undefined when the device object is gone. */
  private async deviceProperty(path: string, name: string): Promise<unknown> {
    try {
      const object = await this.call(this.dbus.getProxyObject(BLUEZ, path), 'device state');
      const props = object.getInterface('org.freedesktop.DBus.Properties');
      return unwrap(await this.call(callProxy(props, 'Get', 'org.bluez.Device1', name), 'device state'));
    } catch (error) {
      const failure = classify(error, 'device state');
      if (failure.code === 'BLE_NOT_FOUND') return undefined;
      throw failure;
    }
  }

  private async getAdapterProperty(name: string): Promise<unknown> {
    const props = this.adapterProps as ClientInterface;
    return unwrap(await this.call(callProxy(props, 'Get', 'org.bluez.Adapter1', name), `adapter ${name}`));
  }

  private async setPowered(on: boolean): Promise<void> {
    const props = this.adapterProps as ClientInterface;
    // Adapter.rst Powered (readwrite); BlueZ answers once the controller has switched.
    await this.call(
      callProxy(props, 'Set', 'org.bluez.Adapter1', 'Powered', new Variant('b', on)),
      on ? 'adapter power on' : 'adapter power off',
    ).catch((error: unknown) => {
      const failure = classify(error, 'adapter power');
      throw failure.code === 'BLE_TIMEOUT'
        ? failure
        : new BleError('BLE_ADAPTER', failure.message, { cause: error });
    });
  }

  /**
   * Discovery is one session per D-Bus client in BlueZ (Adapter.rst StartDiscovery: a second call from the same
   * client fails InProgress), so scans and connects share it by reference count.
   */
  private async acquireDiscovery(services: readonly string[] | undefined): Promise<void> {
    this.discoveryUsers += 1;
    if (this.discoveryUsers > 1) return;
    const iface = this.adapterIface as ClientInterface;
    this.discoveryFilter = services;
    try {
      // Adapter.rst SetDiscoveryFilter: LE only, and BlueZ filters by advertised service UUIDs (128-bit form).
      const filter: Record<string, InstanceType<typeof Variant>> = { Transport: new Variant('s', 'le') };
      if (services && services.length > 0) filter['UUIDs'] = new Variant('as', services.map(longUuid));
      await this.call(callProxy(iface, 'SetDiscoveryFilter', filter), 'discovery filter');
      await this.call(callProxy(iface, 'StartDiscovery'), 'discovery start');
    } catch (error) {
      this.discoveryUsers -= 1;
      throw error;
    }
  }

  private async releaseDiscovery(): Promise<void> {
    this.discoveryUsers = Math.max(0, this.discoveryUsers - 1);
    if (this.discoveryUsers > 0 || !this.adapterIface) return;
    // A discovery that already ended (adapter powered off, BlueZ restarted) answers NotReady or Failed; the
    // scan is over either way.
    await this.call(callProxy(this.adapterIface, 'StopDiscovery'), 'discovery stop').catch(() => undefined);
  }

  /** BlueZ can only connect to a device object it knows (Device.rst), so discover until it appears. */
  private async ensureDevice(path: string, remaining: () => number): Promise<void> {
    if (this.devices.has(path)) return;
    let found: (path: string) => void = () => undefined;
    const appeared = new Promise<void>((resolve) => {
      found = (added) => {
        if (added === path) resolve();
      };
    });
    this.deviceWaiters.add(found);
    // A scan with a service filter may be running; then this discovery shares it (and its filter).
    await this.acquireDiscovery(this.discoveryUsers > 0 ? this.discoveryFilter : undefined);
    try {
      if (this.devices.has(path)) return;
      await this.call(appeared, 'device discovery', remaining()).catch((error: unknown) => {
        const failure = classify(error, 'device discovery');
        throw failure.code === 'BLE_TIMEOUT'
          ? new BleError('BLE_NOT_FOUND', 'device not found (not advertising or out of range)', {
              cause: error,
            })
          : failure;
      });
    } finally {
      this.deviceWaiters.delete(found);
      await this.releaseDiscovery();
    }
  }

  private handleSignal(message: DbusMessage): void {
    if (message.type !== MessageType.SIGNAL) return;
    const body: unknown[] = message.body;
    if (message.interface === 'org.freedesktop.DBus.ObjectManager') {
      if (message.member === 'InterfacesAdded') this.interfacesAdded(String(body[0]), record(body[1]), true);
      if (
        message.member === 'InterfacesRemoved' &&
        Array.isArray(body[1]) &&
        body[1].includes('org.bluez.Device1')
      ) {
        this.devices.delete(String(body[0]));
      }
      return;
    }
    if (message.interface !== 'org.freedesktop.DBus.Properties' || message.member !== 'PropertiesChanged')
      return;
    const [iface, changed] = [body[0], record(body[1])];
    if (
      iface === 'org.bluez.Adapter1' &&
      message.path === adapterPath(this.adapterName) &&
      'Powered' in changed
    ) {
      if (unwrap(changed['Powered']) === false) this.adapterDown = true;
    }
    if (iface !== 'org.bluez.Device1') return;
    const state = this.devices.get(message.path);
    if (!state) return;
    updateDevice(state, changed);
    if (ADVERTISEMENT_PROPERTIES.some((name) => name in changed)) {
      for (const listener of this.advertisementListeners) listener(message.path);
    }
  }

  private interfacesAdded(path: string, interfaces: Record<string, unknown>, live: boolean): void {
    if (!('org.bluez.Device1' in interfaces)) return;
    if (!path.startsWith(`${adapterPath(this.adapterName)}/`)) return;
    this.devices.set(path, newDeviceState(path, record(interfaces['org.bluez.Device1'])));
    for (const waiter of this.deviceWaiters) waiter(path);
    if (live) for (const listener of this.advertisementListeners) listener(path);
  }
}
