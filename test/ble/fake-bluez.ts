import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import dbus from 'dbus-next';
import { longUuid, normalizeUuid } from '../../src/gatt/uuid.js';
import { CUFF, NEIGHBOUR } from './central-contract.js';

/**
 * A fake BlueZ on a private D-Bus: the org.bluez object tree node-ble and the BlueZ backend talk to
 * (doc/org.bluez.Adapter.rst, Device.rst, GattService.rst, GattCharacteristic.rst, AgentManager.rst), exported
 * with dbus-next, so real D-Bus messages flow. It models the contract's cuff and neighbour and, on request, a
 * device that needs passkey pairing through the client's Agent1.
 */
const { Variant, DBusError, Message } = dbus;
const Interface = dbus.interface.Interface;
type Bus = dbus.MessageBus;
type Dict = Record<string, dbus.Variant>;

const run = promisify(execFile);

export const SECURE = { address: 'C0:FF:EE:00:00:03', name: 'Secure-Scale', passkey: 123456 } as const;

/** A private dbus-daemon on a unix socket in a temp dir (never TCP); everything is allowed on it. */
export async function startPrivateBus(): Promise<{ address: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'fake-bluez-'));
  const config = join(dir, 'bus.conf');
  await writeFile(
    config,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${join(dir, 'bus')}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`,
  );
  const { stdout } = await run('/usr/bin/dbus-daemon', [
    `--config-file=${config}`,
    '--print-address=1',
    '--print-pid=1',
    '--fork',
  ]);
  const [address, pid] = stdout.trim().split('\n');
  if (!address || !pid) throw new Error(`dbus-daemon printed no address: ${stdout}`);
  return {
    address,
    async stop() {
      try {
        process.kill(Number(pid), 'SIGTERM');
      } catch {
        // already gone
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// ---- the exported interfaces --------------------------------------------------------------------------------

type Behaviour = { kind: 'fail'; name: string; text: string } | { kind: 'hang' };

class Faults {
  private readonly next = new Map<string, Behaviour>();
  set(member: string, behaviour: Behaviour): void {
    this.next.set(member, behaviour);
  }
  /** Applies (once) a fault planned for `member`: throws a D-Bus error, or returns a call that never answers. */
  take(member: string): Promise<never> | undefined {
    const behaviour = this.next.get(member);
    if (!behaviour) return undefined;
    this.next.delete(member);
    if (behaviour.kind === 'hang') return new Promise<never>(() => undefined);
    throw new DBusError(behaviour.name, behaviour.text);
  }
}

function emit(iface: dbus.interface.Interface, changed: Record<string, unknown>): void {
  Interface.emitPropertiesChanged(iface, changed, []);
}

class FakeAgentManager extends Interface {
  agent: { sender: string; path: string } | undefined;
  /** The unique name of the caller of the method being dispatched (set by a bus method handler). */
  currentSender = '';
  constructor() {
    super('org.bluez.AgentManager1');
  }
  RegisterAgent(path: string, capability: string): void {
    if (capability !== 'KeyboardDisplay')
      throw new DBusError('org.bluez.Error.InvalidArguments', 'capability');
    if (this.agent) throw new DBusError('org.bluez.Error.AlreadyExists', 'Already Exists');
    this.agent = { sender: this.currentSender, path };
  }
  RequestDefaultAgent(path: string): void {
    if (this.agent?.path !== path) throw new DBusError('org.bluez.Error.DoesNotExist', 'Does Not Exist');
  }
  UnregisterAgent(path: string): void {
    if (this.agent?.path !== path) throw new DBusError('org.bluez.Error.DoesNotExist', 'Does Not Exist');
    this.agent = undefined;
  }
}
FakeAgentManager.configureMembers({
  methods: {
    RegisterAgent: { inSignature: 'os' },
    RequestDefaultAgent: { inSignature: 'o' },
    UnregisterAgent: { inSignature: 'o' },
  },
});

class FakeObjectManager extends Interface {
  constructor(private readonly bluez: FakeBluezService) {
    super('org.freedesktop.DBus.ObjectManager');
  }
  GetManagedObjects(): Record<string, Record<string, Dict>> {
    return this.bluez.managedObjects();
  }
}
FakeObjectManager.configureMembers({ methods: { GetManagedObjects: { outSignature: 'a{oa{sa{sv}}}' } } });

class FakeAdapter extends Interface {
  private powered = false;
  discovering = false;
  filter: string[] | undefined;
  readonly poweredHistory: boolean[] = [];
  constructor(private readonly bluez: FakeBluezService) {
    super('org.bluez.Adapter1');
  }
  get Address(): string {
    return '00:1A:7D:DA:71:13';
  }
  get Powered(): boolean {
    return this.powered;
  }
  set Powered(on: boolean) {
    this.bluez.faults.take('Powered');
    this.powered = on;
    this.poweredHistory.push(on);
    if (!on) {
      // Adapter.rst: powering off ends discovery and every connection.
      for (const device of this.bluez.devices.values()) device.linkDown();
      this.setDiscovering(false);
    }
    emit(this, { Powered: on });
  }
  get Discovering(): boolean {
    return this.discovering;
  }
  SetDiscoveryFilter(filter: Dict): Promise<never> | undefined {
    const fault = this.bluez.faults.take('SetDiscoveryFilter');
    if (fault) return fault;
    const uuids = filter['UUIDs']?.value as string[] | undefined;
    this.filter = uuids && uuids.length > 0 ? uuids.map(normalizeUuid) : undefined;
    return undefined;
  }
  StartDiscovery(): Promise<never> | undefined {
    const fault = this.bluez.faults.take('StartDiscovery');
    if (fault) return fault;
    if (!this.powered) throw new DBusError('org.bluez.Error.NotReady', 'Resource Not Ready');
    if (this.discovering) throw new DBusError('org.bluez.Error.InProgress', 'Operation already in progress');
    this.setDiscovering(true);
    // Devices are "seen" shortly after discovery starts: new ones appear (InterfacesAdded), known ones get a
    // fresh RSSI (PropertiesChanged), as BlueZ reports advertisements.
    setTimeout(() => {
      if (!this.discovering) return;
      for (const device of this.bluez.devices.values()) {
        if (this.filter && !device.uuids.some((uuid) => this.filter?.includes(uuid))) continue;
        this.bluez.advertise(device);
      }
    }, 10);
    return undefined;
  }
  StopDiscovery(): void {
    if (!this.discovering) throw new DBusError('org.bluez.Error.Failed', 'No discovery started');
    this.setDiscovering(false);
  }
  readonly removed: string[] = [];
  RemoveDevice(path: string): Promise<never> | undefined {
    const fault = this.bluez.faults.take('RemoveDevice');
    if (fault) return fault;
    const device = [...this.bluez.devices.values()].find((each) => each.path === path && each.exported);
    if (!device) throw new DBusError('org.bluez.Error.DoesNotExist', 'Does Not Exist');
    this.removed.push(path);
    // Adapter.rst RemoveDevice: the object goes with its cached attributes and its bonding information.
    this.bluez.unexportDevice(device);
    device.paired = false;
    device.refreshGatt();
    return undefined;
  }
  private setDiscovering(on: boolean): void {
    if (this.discovering === on) return;
    this.discovering = on;
    emit(this, { Discovering: on });
  }
}
FakeAdapter.configureMembers({
  properties: {
    Address: { signature: 's', access: 'read' },
    Powered: { signature: 'b', access: 'readwrite' },
    Discovering: { signature: 'b', access: 'read' },
  },
  methods: {
    SetDiscoveryFilter: { inSignature: 'a{sv}' },
    StartDiscovery: {},
    StopDiscovery: {},
    RemoveDevice: { inSignature: 'o' },
  },
});

interface CharacteristicModel {
  readonly uuid: string;
  readonly flags: string[];
  value: Buffer;
}
interface DeviceModel {
  readonly address: string;
  readonly name: string;
  readonly advertised: string[];
  readonly rssi: number;
  readonly passkey?: number;
  readonly gatt: Record<string, CharacteristicModel[]>;
}

class FakeCharacteristic extends Interface {
  notifying = false;
  readonly writes: Uint8Array[] = [];
  constructor(
    readonly path: string,
    private readonly servicePath: string,
    readonly model: CharacteristicModel,
    private readonly device: FakeDevice,
  ) {
    super('org.bluez.GattCharacteristic1');
  }
  get UUID(): string {
    return longUuid(this.model.uuid);
  }
  get Service(): string {
    return this.servicePath;
  }
  get Flags(): string[] {
    return this.model.flags;
  }
  get Value(): Buffer {
    return this.model.value;
  }
  get Notifying(): boolean {
    return this.notifying;
  }
  ReadValue(_options: Dict): Buffer | Promise<never> {
    const fault = this.device.bluez.faults.take('ReadValue');
    if (fault) return fault;
    this.device.requireConnected();
    if (!this.model.flags.includes('read'))
      throw new DBusError('org.bluez.Error.NotPermitted', 'Read not permitted');
    return this.model.value;
  }
  WriteValue(value: Buffer, _options: Dict): Promise<never> | undefined {
    const fault = this.device.bluez.faults.take('WriteValue');
    if (fault) return fault;
    this.device.requireConnected();
    if (!this.model.flags.some((flag) => flag.startsWith('write'))) {
      throw new DBusError('org.bluez.Error.NotPermitted', 'Write not permitted');
    }
    this.writes.push(Uint8Array.from(value));
    return undefined;
  }
  StartNotify(): Promise<never> | undefined {
    const fault = this.device.bluez.faults.take('StartNotify');
    if (fault) return fault;
    this.device.requireConnected();
    if (!this.model.flags.includes('notify') && !this.model.flags.includes('indicate')) {
      throw new DBusError('org.bluez.Error.NotSupported', 'Operation is not supported');
    }
    this.setNotifying(true);
    return undefined;
  }
  StopNotify(): void {
    this.setNotifying(false);
  }
  setNotifying(on: boolean): void {
    if (this.notifying === on) return;
    this.notifying = on;
    emit(this, { Notifying: on });
  }
  /** GattCharacteristic.rst: a notification or indication is a PropertiesChanged of Value while Notifying. */
  notify(value: Uint8Array): void {
    this.model.value = Buffer.from(value);
    if (this.notifying) emit(this, { Value: this.model.value });
  }
}
FakeCharacteristic.configureMembers({
  properties: {
    UUID: { signature: 's', access: 'read' },
    Service: { signature: 'o', access: 'read' },
    Flags: { signature: 'as', access: 'read' },
    Value: { signature: 'ay', access: 'read' },
    Notifying: { signature: 'b', access: 'read' },
  },
  methods: {
    ReadValue: { inSignature: 'a{sv}', outSignature: 'ay' },
    WriteValue: { inSignature: 'aya{sv}' },
    StartNotify: {},
    StopNotify: {},
  },
});

class FakeService extends Interface {
  constructor(
    readonly path: string,
    private readonly uuid: string,
    private readonly devicePath: string,
  ) {
    super('org.bluez.GattService1');
  }
  get UUID(): string {
    return longUuid(this.uuid);
  }
  get Primary(): boolean {
    return true;
  }
  get Device(): string {
    return this.devicePath;
  }
}
FakeService.configureMembers({
  properties: {
    UUID: { signature: 's', access: 'read' },
    Primary: { signature: 'b', access: 'read' },
    Device: { signature: 'o', access: 'read' },
  },
});

class FakeDevice extends Interface {
  exported = false;
  connected = false;
  servicesResolved = false;
  paired = false;
  rssi: number;
  readonly path: string;
  services: FakeService[] = [];
  characteristics: FakeCharacteristic[] = [];
  /** The device's real attribute table; the exported objects are BlueZ's (cached) copy of it. */
  private gatt: Record<string, CharacteristicModel[]>;
  constructor(
    readonly bluez: FakeBluezService,
    readonly model: DeviceModel,
  ) {
    super('org.bluez.Device1');
    this.path = `/org/bluez/hci0/dev_${model.address.replace(/:/g, '_')}`;
    this.rssi = model.rssi;
    this.gatt = model.gatt;
    this.buildGatt();
  }
  /**
   * A firmware update changes the device's attributes; BlueZ keeps exporting its cached copy (no Service
   * Changed reaches an unbonded client) until the device object is removed.
   */
  updateFirmware(gatt: Record<string, CharacteristicModel[]>): void {
    this.gatt = gatt;
  }
  /** After RemoveDevice: the next discovery finds the device's current attributes. */
  refreshGatt(): void {
    this.buildGatt();
  }
  private buildGatt(): void {
    this.services = [];
    this.characteristics = [];
    let s = 0;
    let c = 0;
    for (const [uuid, characteristics] of Object.entries(this.gatt)) {
      const servicePath = `${this.path}/service${(s++).toString(16).padStart(4, '0')}`;
      this.services.push(new FakeService(servicePath, uuid, this.path));
      for (const characteristic of characteristics) {
        const path = `${servicePath}/char${(c++).toString(16).padStart(4, '0')}`;
        this.characteristics.push(new FakeCharacteristic(path, servicePath, { ...characteristic }, this));
      }
    }
  }
  get uuids(): string[] {
    return this.model.advertised;
  }
  get Address(): string {
    return this.model.address;
  }
  get AddressType(): string {
    return 'public';
  }
  get Name(): string {
    return this.model.name;
  }
  get Alias(): string {
    return this.model.name;
  }
  get UUIDs(): string[] {
    return this.model.advertised.map(longUuid);
  }
  get RSSI(): number {
    return this.rssi;
  }
  get Connected(): boolean {
    return this.connected;
  }
  get ServicesResolved(): boolean {
    return this.servicesResolved;
  }
  get Paired(): boolean {
    return this.paired;
  }
  get Adapter(): string {
    return '/org/bluez/hci0';
  }
  Connect(): Promise<never> | undefined {
    const fault = this.bluez.faults.take('Connect');
    if (fault) return fault;
    if (!this.bluez.adapter.Powered) throw new DBusError('org.bluez.Error.NotReady', 'Resource Not Ready');
    if (this.connected) throw new DBusError('org.bluez.Error.AlreadyConnected', 'Already Connected');
    this.connected = true;
    emit(this, { Connected: true });
    // Device.rst ServicesResolved: set once GATT discovery is done, after Connect returned.
    setTimeout(() => {
      if (!this.connected) return;
      this.servicesResolved = true;
      emit(this, { ServicesResolved: true });
    }, 20);
    return undefined;
  }
  Disconnect(): void {
    this.linkDown();
  }
  async Pair(): Promise<void> {
    const fault = this.bluez.faults.take('Pair');
    if (fault) return fault;
    if (this.paired) throw new DBusError('org.bluez.Error.AlreadyExists', 'Already Exists');
    if (this.model.passkey !== undefined) {
      // Device.rst Pair: BlueZ asks the registered agent (Agent.rst RequestPasskey) over the bus.
      const agent = this.bluez.agentManager.agent;
      if (!agent) throw new DBusError('org.bluez.Error.AuthenticationFailed', 'Authentication Failed');
      let passkey: unknown;
      try {
        const object = await this.bluez.bus.getProxyObject(agent.sender, agent.path);
        const iface = object.getInterface('org.bluez.Agent1');
        passkey = await (iface['RequestPasskey'] as (path: string) => Promise<unknown>)(this.path);
      } catch {
        throw new DBusError('org.bluez.Error.AuthenticationCanceled', 'Authentication Canceled');
      }
      if (passkey !== this.model.passkey) {
        throw new DBusError('org.bluez.Error.AuthenticationFailed', 'Authentication Failed');
      }
    }
    this.paired = true;
    emit(this, { Paired: true });
  }
  CancelPair(): void {}
  requireConnected(): void {
    if (!this.connected) throw new DBusError('org.bluez.Error.NotConnected', 'Not Connected');
  }
  /** The link ends: Connected and ServicesResolved go false, notifications stop (Device.rst). */
  linkDown(): void {
    if (!this.connected) return;
    for (const characteristic of this.characteristics) characteristic.setNotifying(false);
    this.connected = false;
    this.servicesResolved = false;
    emit(this, { ServicesResolved: false, Connected: false });
  }
}
FakeDevice.configureMembers({
  properties: {
    Address: { signature: 's', access: 'read' },
    AddressType: { signature: 's', access: 'read' },
    Name: { signature: 's', access: 'read' },
    Alias: { signature: 's', access: 'read' },
    UUIDs: { signature: 'as', access: 'read' },
    RSSI: { signature: 'n', access: 'read' },
    // No ManufacturerData (a{qv}): dbus-next cannot marshal dictionaries with integer keys (it passes the
    // object's string keys to the uint16 marshaller), so the fake, like BlueZ for a device without any, omits it.
    Connected: { signature: 'b', access: 'read' },
    ServicesResolved: { signature: 'b', access: 'read' },
    Paired: { signature: 'b', access: 'read' },
    Adapter: { signature: 'o', access: 'read' },
  },
  methods: { Connect: {}, Disconnect: {}, Pair: {}, CancelPair: {} },
});

function nameOf(iface: dbus.interface.Interface): string {
  // dbus-next keeps the interface name in the untyped `$name` field (lib/service/interface.js).
  return (iface as unknown as { $name: string }).$name;
}

/** Every readable property of an exported interface as Variants (for GetManagedObjects / InterfacesAdded). */
function propertiesOf(iface: dbus.interface.Interface): Dict {
  // dbus-next keeps the configured members in the untyped `$properties` field (lib/service/interface.js).
  const properties = (iface as unknown as { $properties: Record<string, { signature: string }> }).$properties;
  const result: Dict = {};
  for (const [name, options] of Object.entries(properties)) {
    result[name] = new Variant(options.signature, (iface as unknown as Record<string, unknown>)[name]);
  }
  return result;
}

class FakeBluezService {
  readonly faults = new Faults();
  readonly agentManager = new FakeAgentManager();
  readonly adapter: FakeAdapter;
  readonly devices = new Map<string, FakeDevice>();
  /** The unique name of the last connection that called us (the central under test). */
  client = '';
  constructor(
    readonly bus: Bus,
    models: DeviceModel[],
  ) {
    this.adapter = new FakeAdapter(this);
    for (const model of models) this.devices.set(model.address, new FakeDevice(this, model));
    bus.export('/', new FakeObjectManager(this));
    bus.export('/org/bluez', this.agentManager);
    bus.export('/org/bluez/hci0', this.adapter);
    // dbus-next does not hand the sender to service methods; BlueZ needs it to call the agent back.
    bus.addMethodHandler((message: dbus.Message) => {
      this.agentManager.currentSender = message.sender;
      this.client = message.sender;
      return false;
    });
  }

  private objectsOf(device: FakeDevice): [string, dbus.interface.Interface][] {
    return [
      [device.path, device],
      ...device.services.map((s): [string, dbus.interface.Interface] => [s.path, s]),
      ...device.characteristics.map((c): [string, dbus.interface.Interface] => [c.path, c]),
    ];
  }

  managedObjects(): Record<string, Record<string, Dict>> {
    const objects: Record<string, Record<string, Dict>> = {
      '/org/bluez': { 'org.bluez.AgentManager1': {} },
      '/org/bluez/hci0': { 'org.bluez.Adapter1': propertiesOf(this.adapter) },
    };
    for (const device of this.devices.values()) {
      if (!device.exported) continue;
      for (const [path, iface] of this.objectsOf(device))
        objects[path] = { [nameOf(iface)]: propertiesOf(iface) };
    }
    return objects;
  }

  /** An advertisement from `device`: a new object (InterfacesAdded) or a fresh RSSI on a known one. */
  advertise(device: FakeDevice): void {
    if (!device.exported) {
      device.exported = true;
      // BlueZ exports GATT objects only after connecting; keeping them exported from the start is simpler
      // and is what BlueZ does for devices with a GATT cache.
      for (const [path, iface] of this.objectsOf(device)) {
        this.bus.export(path, iface);
        this.bus.send(
          Message.newSignal('/', 'org.freedesktop.DBus.ObjectManager', 'InterfacesAdded', 'oa{sa{sv}}', [
            path,
            { [nameOf(iface)]: propertiesOf(iface) },
          ]),
        );
      }
      return;
    }
    device.rssi = device.model.rssi + (device.rssi === device.model.rssi ? 1 : 0);
    emit(device, { RSSI: device.rssi });
  }

  unexportDevice(device: FakeDevice): void {
    device.linkDown();
    device.exported = false;
    for (const [path, iface] of this.objectsOf(device).reverse()) {
      this.bus.unexport(path, iface);
      this.bus.send(
        Message.newSignal('/', 'org.freedesktop.DBus.ObjectManager', 'InterfacesRemoved', 'oas', [
          path,
          [nameOf(iface)],
        ]),
      );
    }
  }
}

// ---- the harness -------------------------------------------------------------------------------------------

export interface FakeBluez {
  /** The private bus's address (for DBUS_SYSTEM_BUS_ADDRESS or the central's busAddress option). */
  readonly address: string;
  /** The cuff sends a notification/indication on `characteristic`. */
  emit(characteristic: string, value: Uint8Array): Promise<void>;
  written(characteristic: string): Uint8Array[];
  dropLink(): Promise<void>;
  /** The next call of `member` (a method name, or 'Powered' for the property write) fails with this D-Bus error. */
  failNext(member: string, name: string, text?: string): void;
  /** The next call of `member` never answers. */
  hangNext(member: string): void;
  readonly powered: boolean;
  readonly poweredHistory: readonly boolean[];
  readonly discovering: boolean;
  /** The agent the client registered, if any. */
  readonly agentPath: string | undefined;
  /** Device object paths the client removed with Adapter1.RemoveDevice, in order. */
  readonly removedDevices: readonly string[];
  /** The device gets new attributes (see FakeDevice.updateFirmware): BlueZ's cached copy is now stale. */
  updateFirmware(
    address: string,
    gatt: Record<string, { uuid: string; flags: string[]; value?: Buffer }[]>,
  ): void;
  /** Pairs the device without an agent (a bond made earlier, e.g. with bluetoothctl). */
  setPaired(address: string): void;
  isPaired(address: string): boolean;
  isConnected(address: string): boolean;
  /**
   * How many D-Bus match rules (signal subscriptions) the central holds on the bus, from the daemon's
   * org.freedesktop.DBus.Debug.Stats.GetConnectionStats: listeners that leak show up here.
   */
  clientMatchRules(): Promise<number>;
  stop(): Promise<void>;
}

const CUFF_MODEL = (): DeviceModel => ({
  address: CUFF.address,
  name: CUFF.name,
  advertised: ['1810'],
  rssi: -60,
  gatt: {
    '1810': [
      { uuid: '2a35', flags: ['indicate'], value: Buffer.alloc(0) },
      { uuid: '2a49', flags: ['read'], value: Buffer.from([0x03, 0x00]) },
    ],
    '1805': [{ uuid: '2a2b', flags: ['read', 'write', 'notify'], value: Buffer.alloc(10) }],
  },
});

const NEIGHBOUR_MODEL = (): DeviceModel => ({
  address: NEIGHBOUR.address,
  name: NEIGHBOUR.name,
  advertised: ['180d'],
  rssi: -80,
  gatt: { '180d': [{ uuid: '2a37', flags: ['notify'], value: Buffer.alloc(0) }] },
});

const SECURE_MODEL = (): DeviceModel => ({
  address: SECURE.address,
  name: SECURE.name,
  advertised: ['181d'],
  rssi: -55,
  passkey: SECURE.passkey,
  gatt: { '181d': [{ uuid: '2a9d', flags: ['indicate'], value: Buffer.alloc(0) }] },
});

export async function startFakeBluez(options: { withSecureDevice?: boolean } = {}): Promise<FakeBluez> {
  const privateBus = await startPrivateBus();
  const bus = dbus.sessionBus({ busAddress: privateBus.address });
  try {
    await new Promise<void>((resolve, reject) => {
      bus.once('connect', () => resolve());
      bus.once('error', reject);
    });
    bus.on('error', () => undefined);
  } catch (error) {
    await privateBus.stop();
    throw error;
  }
  const models = [CUFF_MODEL(), NEIGHBOUR_MODEL(), ...(options.withSecureDevice ? [SECURE_MODEL()] : [])];
  const service = new FakeBluezService(bus, models);
  await bus.requestName('org.bluez', 0);
  const cuff = service.devices.get(CUFF.address) as FakeDevice;
  const characteristic = (uuid: string) => {
    const found = cuff.characteristics.find((c) => c.model.uuid === normalizeUuid(uuid));
    if (!found) throw new Error(`the cuff has no characteristic ${uuid}`);
    return found;
  };
  const device = (address: string) => service.devices.get(address.toUpperCase());
  return {
    address: privateBus.address,
    async emit(uuid, value) {
      characteristic(uuid).notify(value);
    },
    written: (uuid) => [...characteristic(uuid).writes],
    async dropLink() {
      cuff.linkDown();
    },
    failNext: (member, name, text = '') => service.faults.set(member, { kind: 'fail', name, text }),
    hangNext: (member) => service.faults.set(member, { kind: 'hang' }),
    get powered() {
      return service.adapter.Powered;
    },
    get poweredHistory() {
      return [...service.adapter.poweredHistory];
    },
    get discovering() {
      return service.adapter.discovering;
    },
    get agentPath() {
      return service.agentManager.agent?.path;
    },
    get removedDevices() {
      return [...service.adapter.removed];
    },
    updateFirmware(address, gatt) {
      const target = device(address);
      if (!target) throw new Error('no such device in the fake');
      const models: Record<string, CharacteristicModel[]> = {};
      for (const [uuid, list] of Object.entries(gatt)) {
        models[uuid] = list.map((c) => ({ uuid: c.uuid, flags: c.flags, value: c.value ?? Buffer.alloc(0) }));
      }
      target.updateFirmware(models);
    },
    setPaired(address) {
      const target = device(address);
      if (!target) throw new Error('no such device in the fake');
      target.paired = true;
    },
    isPaired: (address) => device(address)?.paired ?? false,
    isConnected: (address) => device(address)?.connected ?? false,
    async clientMatchRules() {
      const daemon = await bus.getProxyObject('org.freedesktop.DBus', '/org/freedesktop/DBus');
      const stats = daemon.getInterface('org.freedesktop.DBus.Debug.Stats');
      const getStats = stats['GetConnectionStats'] as (name: string) => Promise<Record<string, dbus.Variant>>;
      return Number((await getStats(service.client))['MatchRules']?.value);
    },
    async stop() {
      bus.disconnect();
      await privateBus.stop();
    },
  };
}
