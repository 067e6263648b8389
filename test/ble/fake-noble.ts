import { EventEmitter } from 'node:events';
import type { DisconnectReason } from '../../src/ble/central.js';
import type {
  NobleApi,
  NobleCharacteristic,
  NoblePeripheral,
  NobleService,
  NobleState,
} from '../../src/ble/noble/noble-api.js';
import type {
  CharacteristicDefinition,
  PeripheralLink,
  ServiceDefinition,
  VirtualPeripheral,
} from '../../src/ble/sim/index.js';
import { realScheduler, type Scheduler, type TimerHandle } from '../../src/util/scheduler.js';

/**
 * A fake of @abandonware/noble 1.9.2-26's API over the simulator's virtual peripherals: the radio is the only thing
 * faked. It follows what noble's source does, including what it does badly, because the backend must cope with it:
 *   - the bindings start lazily, on the first 'stateChange' listener (next tick; a failure becomes a 'warning') or
 *     on reading `state` (synchronously; a failure throws), as lib/noble.js does;
 *   - peripherals are one object per device for the process, services and characteristics new objects per
 *     discovery, notifications go to the newest objects (lib/noble.js);
 *   - the *Async methods are promisified callbacks on once-listeners (lib/peripheral.js, lib/characteristic.js), so
 *     a request that gets no answer leaves its listener behind;
 *   - ATT errors are not reported (lib/hci-socket/gatt.js): a refused read answers an empty value; a refused
 *     write, a CCCD that does not exist or any request on a dead link never answers;
 *   - subscribeAsync writes the CCCD: 0x0001 where the characteristic notifies, else 0x0002;
 *   - 'data' (and the legacy 'read') carry isNotification; disconnect emits 'disconnect' with the HCI reason
 *     (0x16 after a local disconnect, 0x08 supervision timeout, 0x13 remote user terminated);
 *   - a connect has no timeout (LE Create Connection pages until cancelled); cancelConnect fails it with
 *     "connection canceled!"; reset() (HCI_Reset) drops links and the scan without a single event.
 */

/** The Controller error code names noble prints (lib/hci-socket/hci-status.json), for the codes tests use. */
const HCI_STATUS_NAMES: Readonly<Record<number, string>> = {
  8: 'Connection Timeout',
  9: 'Connection Limit Exceeded',
  12: 'Command Disallowed',
  62: 'Connection Failed to be Established',
};

/** HCI reason codes of the Disconnection Complete event (Core Vol 1 Part F). */
const REASON_CODE: Readonly<Record<DisconnectReason, number>> = {
  'link-loss': 0x08,
  remote: 0x13,
  local: 0x16,
  adapter: 0x16,
};

const NOBLE_PROPERTY: Readonly<Record<string, string>> = {
  read: 'read',
  write: 'write',
  'write-without-response': 'writeWithoutResponse',
  notify: 'notify',
  indicate: 'indicate',
};

/** A canonical UUID as noble's HCI bindings print it: 16-bit with `toString(16)` (unpadded), else 32 hex digits. */
export function nobleText(uuid: string): string {
  return uuid.length === 4 ? Number.parseInt(uuid, 16).toString(16) : uuid.replaceAll('-', '');
}

export type HangableOperation =
  | 'startScanning'
  | 'connect'
  | 'discoverServices'
  | 'read'
  | 'write'
  | 'subscribe'
  | 'disconnect';

export interface FakeNobleOptions {
  readonly peripherals: readonly VirtualPeripheral[];
  readonly scheduler?: Scheduler;
  /** The state the bindings report once started (default 'poweredOn'); 'silent' reports none. */
  readonly initialState?: NobleState | 'silent';
  /** The bindings fail to start with this error (as noble's HCI bind fails: ENODEV, EBUSY). */
  readonly initError?: Error;
  /** Like macOS: peripherals have no address ('unknown') and an opaque id. */
  readonly hideAddresses?: boolean;
  /** Delay of a successful connect (default 0). */
  readonly connectLatencyMs?: number;
  /**
   * Register the SIGINT handler noble's HCI bindings add in init() (lib/hci-socket/bindings.js): it calls
   * process.exit(1) when it is the last SIGINT listener. `onExit` replaces process.exit for the test.
   */
  readonly sigint?: { readonly onExit: (code: number) => void };
}

type Callback<T> = (error: Error | null | undefined, value?: T) => void;

/** Turns a callback-style operation into the promise noble's util.promisify wrappers return. */
function promised<T>(start: (callback: Callback<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    start((error, value) => (error ? reject(error) : resolve(value as T)));
  });
}

/** One link of the fake controller to a virtual peripheral. */
class FakeLink implements PeripheralLink {
  readonly cccd = new Map<string, number>();
  alive = true;

  constructor(
    readonly owner: FakePeripheral,
    readonly device: VirtualPeripheral,
  ) {}

  isSubscribed(characteristic: string): boolean {
    return this.alive && (this.cccd.get(characteristic) ?? 0) !== 0;
  }

  deliver(characteristic: string, value: Uint8Array): boolean {
    if (!this.isSubscribed(characteristic)) return false;
    const targets = this.owner.newestCharacteristics(characteristic);
    for (const target of targets) target.received(Buffer.from(value), true);
    return targets.length > 0;
  }

  drop(reason: DisconnectReason): void {
    this.owner.linkEnded(this, REASON_CODE[reason]);
  }
}

export class FakeCharacteristic extends EventEmitter implements NobleCharacteristic {
  readonly uuid: string;
  readonly properties: string[];

  constructor(
    private readonly owner: FakePeripheral,
    private readonly link: FakeLink,
    readonly definition: CharacteristicDefinition,
  ) {
    super();
    this.uuid = nobleText(definition.uuid);
    this.properties = definition.properties.map((p) => NOBLE_PROPERTY[p] ?? p);
  }

  /** A value arrived: lib/noble.js onRead emits 'data', then 'read' for backwards compatibility. */
  received(data: Buffer, isNotification: boolean): void {
    this.emit('data', data, isNotification);
    this.emit('read', data, isNotification);
  }

  readAsync(): Promise<Buffer> {
    return promised<Buffer>((callback) => {
      const onRead = (data: Buffer, isNotification: boolean) => {
        if (isNotification) return;
        this.removeListener('read', onRead);
        callback(null, data);
      };
      this.on('read', onRead);
      this.request('read', () => {
        const allowed = this.definition.properties.includes('read');
        // An ATT Error Response ends noble's read with the bytes it has: none.
        const value = allowed ? this.owner.device.readValue(this.definition) : new Uint8Array(0);
        this.received(Buffer.from(value), false);
      });
    });
  }

  writeAsync(data: Buffer, withoutResponse: boolean): Promise<void> {
    if (!(data instanceof Uint8Array)) throw new Error('data must be a Buffer or Uint8Array');
    return promised<void>((callback) => {
      this.once('write', () => callback(null));
      this.request('write', () => {
        if (withoutResponse) {
          // A Write Command: the server answers nothing, whatever it thinks of it.
          try {
            this.owner.device.acceptWrite(this.definition, Uint8Array.from(data));
          } catch {
            // refused silently, as on the air
          }
          this.emit('write');
          return;
        }
        if (!this.definition.properties.includes('write')) return; // ATT error: noble never answers
        try {
          this.owner.device.acceptWrite(this.definition, Uint8Array.from(data));
        } catch {
          return; // the device refused: an ATT Error Response, which noble drops
        }
        this.emit('write');
      });
    });
  }

  subscribeAsync(): Promise<void> {
    return this.notify(true);
  }

  unsubscribeAsync(): Promise<void> {
    return this.notify(false);
  }

  /** lib/hci-socket/gatt.js notify: reads the CCCD by type, sets or clears bit 0 (notify) or bit 1 (indicate). */
  private notify(enable: boolean): Promise<void> {
    return promised<void>((callback) => {
      this.once('notify', () => callback(null));
      this.request('subscribe', () => {
        const properties = this.definition.properties;
        if (!properties.includes('notify') && !properties.includes('indicate')) return; // no CCCD: no answer
        const bit = properties.includes('notify') ? 0x0001 : 0x0002;
        const uuid = this.definition.uuid;
        const before = this.link.cccd.get(uuid) ?? 0;
        const after = enable ? before | bit : before & ~bit;
        this.link.cccd.set(uuid, after);
        this.owner.fake.cccdWrites.push({ characteristic: uuid, value: after });
        if (before === 0 && after !== 0) this.owner.device.subscribed(uuid);
        if (before !== 0 && after === 0) this.owner.device.unsubscribed(uuid);
        this.emit('notify', enable);
      });
    });
  }

  /** An ATT request: answered on the next microtask, or never (dead link, hung operation, bond the fake lacks). */
  private request(operation: HangableOperation, answer: () => void): void {
    if (!this.link.alive || this.owner.fake.takeHang(operation) || !this.owner.device.responsive) return;
    // noble encrypts on an authentication error and retries; it pairs Just Works only, so a device that wants a
    // passkey never answers.
    if (this.definition.requiresBond && this.owner.device.passkey !== undefined) return;
    queueMicrotask(() => {
      if (this.link.alive) answer();
    });
  }
}

export class FakeService extends EventEmitter implements NobleService {
  readonly uuid: string;

  constructor(
    private readonly owner: FakePeripheral,
    private readonly link: FakeLink,
    private readonly definition: ServiceDefinition,
  ) {
    super();
    this.uuid = nobleText(definition.uuid);
  }

  discoverCharacteristicsAsync(characteristicUuids: string[]): Promise<FakeCharacteristic[]> {
    return promised<FakeCharacteristic[]>((callback) => {
      this.once('characteristicsDiscover', (characteristics: FakeCharacteristic[]) =>
        callback(null, characteristics),
      );
      if (!this.link.alive || this.owner.fake.takeHang('discoverServices')) return;
      queueMicrotask(() => {
        if (!this.link.alive) return;
        const made = this.definition.characteristics
          .filter((c) => characteristicUuids.length === 0 || characteristicUuids.includes(nobleText(c.uuid)))
          .map((c) => this.owner.fake.track(new FakeCharacteristic(this.owner, this.link, c)));
        this.owner.characteristicsDiscovered(this.definition.uuid, made);
        this.emit('characteristicsDiscover', made);
      });
    });
  }
}

export class FakePeripheral extends EventEmitter implements NoblePeripheral {
  readonly id: string;
  readonly address: string;
  readonly advertisement: {
    localName?: string | undefined;
    serviceUuids: string[];
    serviceData: { uuid: string; data: Buffer }[];
    manufacturerData?: Buffer | undefined;
    txPowerLevel?: number | undefined;
  };
  rssi: number;
  state: NoblePeripheral['state'] = 'disconnected';
  private link: FakeLink | undefined;
  private pendingConnect: (() => void) | undefined;
  private stopPaging: (() => void) | undefined;
  /** The newest discovery's characteristic objects, by service, then canonical UUID (where notifications go). */
  private newest = new Map<string, FakeCharacteristic[]>();

  constructor(
    readonly fake: FakeNoble,
    readonly device: VirtualPeripheral,
    index: number,
  ) {
    super();
    const hidden = fake.options.hideAddresses === true;
    this.address = hidden ? 'unknown' : device.address.toLowerCase();
    this.id = hidden
      ? `e2c56db5dffb48d2b060d0f5a71096${String(index).padStart(2, '0')}`
      : this.address.replaceAll(':', '');
    this.rssi = device.rssi;
    this.advertisement = { serviceUuids: [], serviceData: [] };
  }

  get connectedLink(): FakeLink | undefined {
    return this.link;
  }

  /** lib/noble.js onDiscover: the advertisement fields are or-ed into the peripheral's. */
  advertised(): void {
    const d = this.device;
    if (d.name !== undefined) this.advertisement.localName = d.name;
    this.advertisement.serviceUuids = d.services.map(nobleText);
    const [entry] = [...d.manufacturerData];
    if (entry) {
      const [company, data] = entry;
      const raw = Buffer.alloc(2 + data.length);
      raw.writeUInt16LE(company, 0);
      raw.set(data, 2);
      this.advertisement.manufacturerData = raw;
    }
    this.rssi = d.rssi;
  }

  connectAsync(): Promise<void> {
    return promised<void>((callback) => {
      this.once('connect', (error?: Error | null) => callback(error ?? null));
      if (this.state === 'connected') {
        this.emit('connect', new Error('Peripheral already connected'));
        return;
      }
      this.state = 'connecting';
      this.fake.connectAttempts++;
      if (this.fake.takeHang('connect')) return; // the controller pages forever
      const status = this.fake.takeConnectFailure();
      const attempt = () => {
        this.pendingConnect = undefined;
        if (status !== undefined) {
          this.state = 'error';
          const name = HCI_STATUS_NAMES[status] ?? 'HCI Error: Unknown';
          this.emit('connect', new Error(`${name} (0x${status.toString(16)})`));
          return;
        }
        const link = new FakeLink(this, this.device);
        this.link = link;
        this.state = 'connected';
        this.device.attach(link);
        this.emit('connect', null);
      };
      this.pendingConnect = attempt;
      if (this.device.inRange) {
        const latency = this.fake.options.connectLatencyMs ?? 0;
        if (latency > 0)
          this.fake.scheduler.setTimeout(() => this.pendingConnect === attempt && attempt(), latency);
        else queueMicrotask(() => this.pendingConnect === attempt && attempt());
        return;
      }
      // Out of range: the controller keeps paging until the device advertises again or the host cancels.
      const off = this.device.onRangeChange((inRange) => {
        if (!inRange) return;
        off();
        this.stopPaging = undefined;
        if (this.pendingConnect === attempt) attempt();
      });
      this.stopPaging = off;
    });
  }

  /** lib/peripheral.js cancelConnect: fails the pending connect; the state stays 'connecting'. */
  cancelConnect(): void {
    if (this.state !== 'connecting') return;
    this.pendingConnect = undefined;
    this.stopPaging?.();
    this.stopPaging = undefined;
    this.fake.cancelledConnects++;
    this.emit('connect', new Error('connection canceled!'));
  }

  disconnectAsync(): Promise<void> {
    return promised<void>((callback) => {
      this.once('disconnect', () => callback(null));
      this.state = 'disconnecting';
      const link = this.link;
      // No link: HCI Disconnect with no handle; the controller refuses it and noble hears nothing.
      if (!link || this.fake.takeHang('disconnect')) return;
      queueMicrotask(() => this.linkEnded(link, REASON_CODE.local));
    });
  }

  discoverServicesAsync(serviceUuids: string[]): Promise<FakeService[]> {
    return promised<FakeService[]>((callback) => {
      this.once('servicesDiscover', (services: FakeService[]) => callback(null, services));
      const link = this.link;
      if (!link?.alive || this.fake.takeHang('discoverServices')) return;
      queueMicrotask(() => {
        if (!link.alive) return;
        this.newest = new Map();
        const services = this.device
          .discover()
          .map((info) => ({
            uuid: info.uuid,
            characteristics: info.characteristics.flatMap((c) => {
              const definition = this.device.characteristic(c.uuid, info.uuid);
              return definition ? [definition] : [];
            }),
          }))
          .filter((s) => serviceUuids.length === 0 || serviceUuids.includes(nobleText(s.uuid)))
          .map((s) => this.fake.track(new FakeService(this, link, s)));
        this.emit('servicesDiscover', services);
      });
    });
  }

  characteristicsDiscovered(service: string, characteristics: FakeCharacteristic[]): void {
    for (const c of characteristics) this.newest.set(`${service}/${c.definition.uuid}`, [c]);
  }

  newestCharacteristics(characteristic: string): FakeCharacteristic[] {
    return [...this.newest.entries()]
      .filter(([key]) => key.endsWith(`/${characteristic}`))
      .flatMap(([, c]) => c);
  }

  /** The Disconnection Complete event: lib/noble.js sets the state and emits 'disconnect' with the reason. */
  linkEnded(link: FakeLink, reason: number): void {
    if (!link.alive) return;
    link.alive = false;
    if (this.link === link) this.link = undefined;
    this.device.detach(
      link,
      reason === REASON_CODE.local ? 'local' : reason === 0x13 ? 'remote' : 'link-loss',
    );
    this.state = 'disconnected';
    this.emit('disconnect', reason);
  }

  /** HCI_Reset or the adapter going down: the controller forgets the link, and noble is told nothing. */
  linkVanished(): void {
    const link = this.link;
    if (!link) return;
    link.alive = false;
    this.link = undefined;
    this.device.detach(link, 'adapter');
  }
}

/** The fake noble singleton. */
export class FakeNoble extends EventEmitter implements NobleApi {
  readonly scheduler: Scheduler;
  readonly peripherals: FakePeripheral[];
  /** CCCD values written, oldest first. */
  readonly cccdWrites: { characteristic: string; value: number }[] = [];
  /** Warnings noble would have printed (it prints only when nobody else listens to 'warning'). */
  readonly printedWarnings: string[] = [];
  connectAttempts = 0;
  cancelledConnects = 0;
  resets = 0;
  scanStarts = 0;
  private initialized = false;
  private currentState: NobleState = 'unknown';
  private scanning = false;
  private allowDuplicates = false;
  private seenThisScan = new Set<string>();
  private scanFilter: string[] = [];
  private readonly advertisingTimers = new Set<TimerHandle>();
  private readonly hangs: HangableOperation[] = [];
  private readonly connectFailures: number[] = [];
  private readonly tracked: EventEmitter[] = [];

  constructor(readonly options: FakeNobleOptions) {
    super();
    this.scheduler = options.scheduler ?? realScheduler;
    this.peripherals = options.peripherals.map((device, i) => new FakePeripheral(this, device, i));
    for (const p of this.peripherals) this.tracked.push(p);
    this.on('warning', (message: string) => {
      if (this.listenerCount('warning') === 1) this.printedWarnings.push(message);
    });
    // lib/noble.js: the bindings start on the first 'stateChange' listener, on the next tick.
    this.on('newListener', (event: string | symbol) => {
      if (event !== 'stateChange' || this.initialized) return;
      this.initialized = true;
      process.nextTick(() => {
        try {
          this.initBindings();
        } catch (error) {
          this.emit('warning', `Initialization of USB device failed: ${(error as Error).message}`);
        }
      });
    });
  }

  /** lib/noble.js: reading the state starts the bindings if nothing has (and may throw). */
  get state(): string {
    if (!this.initialized) {
      this.initialized = true;
      this.initBindings();
    }
    return this.currentState;
  }

  /** The SIGINT listener the bindings registered, as noble's onSigIntBinded. */
  sigintListener: (() => void) | undefined;

  private initBindings(): void {
    if (this.options.initError) throw this.options.initError;
    const sigint = this.options.sigint;
    if (sigint) {
      const listener = () => {
        const listeners = process.listeners('SIGINT');
        if (listeners[listeners.length - 1] === listener) sigint.onExit(1);
      };
      this.sigintListener = listener;
      process.on('SIGINT', listener);
    }
    const initial = this.options.initialState ?? 'poweredOn';
    if (initial !== 'silent') queueMicrotask(() => this.setState(initial));
  }

  /** The adapter reports a new state (unplugged, `hciconfig hci0 down`, no permission). */
  setState(state: NobleState): void {
    if (this.currentState === state) return; // lib/hci-socket/bindings.js drops repeats
    this.currentState = state;
    if (state !== 'poweredOn') this.controllerForgets();
    this.emit('stateChange', state);
  }

  startScanningAsync(serviceUuids: string[], allowDuplicates: boolean): Promise<void> {
    return promised<void>((callback) => {
      if (this.currentState !== 'poweredOn') {
        callback(new Error(`Could not start scanning, state is ${this.currentState} (not poweredOn)`));
        return;
      }
      this.once('scanStart', () => callback(null));
      if (this.takeHang('startScanning')) return;
      this.scanFilter = [...serviceUuids];
      this.allowDuplicates = allowDuplicates;
      this.seenThisScan = new Set();
      this.scanStarts++;
      this.scanning = true;
      this.clearAdvertising();
      this.peripherals.forEach((p, index) => {
        const every = Math.max(1, p.device.advertiseEveryMs);
        const tick = (first: boolean) => {
          if (!this.scanning) return;
          if (!first) this.advertise(p);
          const handle = this.scheduler.setTimeout(
            () => {
              this.advertisingTimers.delete(handle);
              tick(false);
            },
            first ? (index * 37) % every : every,
          );
          this.advertisingTimers.add(handle);
        };
        tick(true);
      });
      queueMicrotask(() => this.emit('scanStart', !allowDuplicates));
    });
  }

  stopScanningAsync(): Promise<void> {
    return promised<void>((callback) => {
      this.once('scanStop', () => callback(null));
      this.scanning = false;
      this.clearAdvertising();
      queueMicrotask(() => this.emit('scanStop'));
    });
  }

  /** HCI_Reset: the controller drops its links and its scan; lib/hci-socket reports neither. */
  reset(): void {
    this.resets++;
    this.controllerForgets();
  }

  // ---- Controls for tests ------------------------------------------------------------------------------------

  get isScanning(): boolean {
    return this.scanning;
  }

  /** The next `operation` gets no answer, ever. */
  hangNext(operation: HangableOperation): void {
    this.hangs.push(operation);
  }

  /** The next connect fails with this Controller error code (LE Connection Complete status). */
  failNextConnect(status: number): void {
    this.connectFailures.push(status);
  }

  /** Another program (bluetoothd) disables scanning: noble's gap sees the command and emits 'scanStop'. */
  scanStoppedElsewhere(): void {
    this.scanning = false;
    this.clearAdvertising();
    this.emit('scanStop');
  }

  peripheral(address: string): FakePeripheral {
    const found = this.peripherals.find((p) => p.device.address.toUpperCase() === address.toUpperCase());
    if (!found) throw new Error('no such fake peripheral');
    return found;
  }

  /** Listeners on every object the fake ever handed out, noble itself included. */
  listenerTotal(): number {
    const count = (emitter: EventEmitter) =>
      emitter.eventNames().reduce((sum, event) => sum + emitter.listenerCount(event), 0);
    return count(this) + this.tracked.reduce((sum, emitter) => sum + count(emitter), 0);
  }

  // ---- For the fake's own objects ----------------------------------------------------------------------------

  takeHang(operation: HangableOperation): boolean {
    const index = this.hangs.indexOf(operation);
    if (index < 0) return false;
    this.hangs.splice(index, 1);
    return true;
  }

  takeConnectFailure(): number | undefined {
    return this.connectFailures.shift();
  }

  track<T extends EventEmitter>(emitter: T): T {
    this.tracked.push(emitter);
    return emitter;
  }

  private advertise(p: FakePeripheral): void {
    if (!p.device.inRange || p.device.connected) return; // a connected peripheral stops connectable advertising
    p.advertised();
    // lib/hci-socket/bindings.js onDiscover: the service filter compares noble's UUID text, service data included.
    if (this.scanFilter.length > 0 && !p.advertisement.serviceUuids.some((u) => this.scanFilter.includes(u)))
      return;
    const first = !this.seenThisScan.has(p.id);
    this.seenThisScan.add(p.id);
    if (this.allowDuplicates || first) this.emit('discover', p);
  }

  private clearAdvertising(): void {
    for (const handle of this.advertisingTimers) this.scheduler.clearTimeout(handle);
    this.advertisingTimers.clear();
  }

  private controllerForgets(): void {
    this.scanning = false;
    this.clearAdvertising();
    for (const p of this.peripherals) p.linkVanished();
  }
}

/** A loader for NobleCentral that hands out this fake. */
export function fakeLoader(fake: FakeNoble): () => Promise<NobleApi> {
  return async () => fake;
}
