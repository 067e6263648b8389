import { normalizeUuid } from '../../gatt/uuid.js';
import { realScheduler, type Scheduler, type TimerHandle } from '../../util/scheduler.js';
import { normalizeAddress } from '../address.js';
import {
  type Advertisement,
  BleError,
  type CentralPort,
  type Connection,
  type DisconnectReason,
  type ScanOptions,
  type ServiceInfo,
} from '../central.js';
import { DisconnectListeners } from '../disconnect-listeners.js';
import type { RadioFault } from './faults.js';
import { Random } from './random.js';
import type { CharacteristicDefinition, PeripheralLink, VirtualPeripheral } from './virtual-peripheral.js';

/** Answers a pairing request that needs a passkey (the user reads it off the device's display). */
export type PasskeyProvider = (address: string) => Promise<string> | string;

export interface SimCentralOptions {
  readonly peripherals?: Iterable<VirtualPeripheral>;
  /** Timers (scan windows, timeouts, latencies); the default is real time. */
  readonly scheduler?: Scheduler;
  readonly passkeyProvider?: PasskeyProvider;
  /** Delay of every GATT operation (default 0: answered on the next microtask, no timer). */
  readonly latencyMs?: number;
  /** Delay of a successful connect (default 0). */
  readonly connectLatencyMs?: number;
  /** A GATT operation on an unresponsive peripheral fails with BLE_TIMEOUT after this long (default 5 s). */
  readonly gattTimeoutMs?: number;
  /** Simultaneous links the adapter supports (default 7, BlueZ's usual controller limit is about that). */
  readonly maxConnections?: number;
  /** Seeds the RSSI jitter of advertisements. */
  readonly seed?: number;
  /** Identifies this central in peripherals' bond tables. */
  readonly id?: string;
  /**
   * Keep each device's services from its first discovery and show that copy on later connections, as BlueZ
   * does (main.conf [GATT] Cache=always, its default) until clearCache. Default true; false discovers afresh
   * on every connection.
   */
  readonly cacheAttributes?: boolean;
}

/**
 * The simulator backend of the Central port: a radio with no radio. Scans see the VirtualPeripherals in range,
 * advertising every `advertiseEveryMs`; connections go straight to their GATT tables. Every wait goes through
 * the injected scheduler, so a VirtualScheduler runs hours of device behaviour in milliseconds.
 */
export class SimCentral implements CentralPort {
  readonly backend = 'sim' as const;
  readonly id: string;
  readonly scheduler: Scheduler;

  private readonly devices = new Map<string, VirtualPeripheral>();
  private readonly connections = new Set<SimConnection>();
  private readonly scans = new Set<() => void>();
  private readonly pendingConnects = new Set<(error: BleError) => void>();
  private readonly random: Random;
  private readonly passkeyProvider: PasskeyProvider | undefined;
  readonly latencyMs: number;
  private readonly connectLatencyMs: number;
  readonly gattTimeoutMs: number;
  private readonly maxConnections: number;
  private readonly cacheAttributes: boolean;
  private readonly gattCache = new Map<string, ServiceInfo[]>();
  private readonly radioFaults = new Map<RadioFault, { persistent: boolean }>();
  private readonly connectFailures: BleError[] = [];
  private powerCycleCount = 0;
  private cacheClearCount = 0;
  private powered = false;

  constructor(options: SimCentralOptions = {}) {
    this.scheduler = options.scheduler ?? realScheduler;
    this.passkeyProvider = options.passkeyProvider;
    this.latencyMs = options.latencyMs ?? 0;
    this.connectLatencyMs = options.connectLatencyMs ?? 0;
    this.gattTimeoutMs = options.gattTimeoutMs ?? 5_000;
    this.maxConnections = options.maxConnections ?? 7;
    this.random = new Random(options.seed ?? 7);
    this.id = options.id ?? 'sim-central';
    this.cacheAttributes = options.cacheAttributes ?? true;
    for (const p of options.peripherals ?? []) this.addPeripheral(p);
  }

  addPeripheral(peripheral: VirtualPeripheral): void {
    this.devices.set(normalizeAddress(peripheral.address), peripheral);
  }

  /** The device disappears entirely (its battery died): links drop, connects fail with BLE_DEVICE_GONE. */
  removePeripheral(address: string): void {
    const peripheral = this.devices.get(normalizeAddress(address));
    if (!peripheral) return;
    peripheral.dropLink('link-loss');
    this.devices.delete(normalizeAddress(address));
  }

  peripheral(address: string): VirtualPeripheral | undefined {
    return this.devices.get(normalizeAddress(address));
  }

  async start(): Promise<void> {
    this.powered = true;
  }

  async stop(): Promise<void> {
    this.powerOff();
  }

  async powerCycle(): Promise<void> {
    this.powerOff();
    this.powerCycleCount++;
    for (const [fault, { persistent }] of [...this.radioFaults])
      if (!persistent) this.radioFaults.delete(fault);
    this.powered = true;
  }

  /** How many times the adapter was power-cycled. */
  get powerCycles(): number {
    return this.powerCycleCount;
  }

  /** Wedges the radio (see RadioFault) until a power cycle, or for good when `persistent`. */
  injectRadioFault(fault: RadioFault, options: { persistent?: boolean } = {}): void {
    this.radioFaults.set(fault, { persistent: options.persistent ?? false });
  }

  clearRadioFaults(): void {
    this.radioFaults.clear();
  }

  /** The next `count` connects fail with `error` (any class: a test of the sessions' backoff per class). */
  failNextConnects(error: BleError, count = 1): void {
    for (let i = 0; i < count; i++) this.connectFailures.push(error);
  }

  // ---- GATT cache (see CentralPort.clearCache) -------------------------------------------------------------

  /**
   * The services a new connection to `peripheral` sees: the cached copy when there is one, else a fresh
   * discovery (which is cached).
   */
  servicesFor(peripheral: VirtualPeripheral): ServiceInfo[] {
    const key = normalizeAddress(peripheral.address);
    const cached = this.gattCache.get(key);
    if (cached) return cloneServices(cached);
    const fresh = peripheral.discover();
    if (this.cacheAttributes) this.gattCache.set(key, cloneServices(fresh));
    return fresh;
  }

  /**
   * Puts a stale copy in the cache, as an older firmware's database, or a discovery cut short (BlueZ then keeps
   * a partial or empty list), would leave it.
   */
  seedGattCache(address: string, services: readonly ServiceInfo[]): void {
    this.gattCache.set(normalizeAddress(address), cloneServices(services));
  }

  /** The cached services of a device, if any. */
  cachedServices(address: string): ServiceInfo[] | undefined {
    const cached = this.gattCache.get(normalizeAddress(address));
    return cached ? cloneServices(cached) : undefined;
  }

  /** Drops the cached services; the simulator has no pairing keys tied to them, so bonds stay. */
  async clearCache(address: string): Promise<void> {
    this.requirePowered();
    this.cacheClearCount++;
    this.gattCache.delete(normalizeAddress(address));
  }

  /** How many times clearCache was called. */
  get cacheClears(): number {
    return this.cacheClearCount;
  }

  private powerOff(): void {
    this.powered = false;
    for (const finish of [...this.scans]) finish();
    for (const fail of [...this.pendingConnects])
      fail(new BleError('BLE_ADAPTER', 'the adapter was powered off'));
    for (const connection of [...this.connections]) connection.close('adapter');
  }

  private requirePowered(): void {
    if (!this.powered) throw new BleError('BLE_ADAPTER', 'the adapter is not powered (call start first)');
  }

  scan(options: ScanOptions, onAdvertisement: (advertisement: Advertisement) => void): Promise<void> {
    this.requirePowered();
    if (this.radioFaults.has('discovery-in-progress')) {
      return Promise.reject(
        new BleError('BLE_ABORTED', 'discovery start failed: a discovery is already in progress'),
      );
    }
    if (this.radioFaults.has('stuck-scan')) {
      // Neither the duration nor the signal ends it: only powering the adapter off does.
      return new Promise((resolve) => {
        const finish = () => {
          this.scans.delete(finish);
          resolve();
        };
        this.scans.add(finish);
      });
    }
    const deaf = this.radioFaults.has('deaf');
    const wanted = options.services?.map(normalizeUuid);
    return new Promise((resolve) => {
      const timers = new Set<TimerHandle>();
      const finish = () => {
        if (!this.scans.delete(finish)) return;
        for (const t of timers) this.scheduler.clearTimeout(t);
        options.signal?.removeEventListener('abort', finish);
        resolve();
      };
      this.scans.add(finish);
      if (options.signal?.aborted) return finish();
      options.signal?.addEventListener('abort', finish, { once: true });
      timers.add(this.scheduler.setTimeout(finish, options.durationMs));
      let index = 0;
      for (const peripheral of this.devices.values()) {
        const every = Math.max(1, peripheral.advertiseEveryMs);
        const tick = (timer: { handle?: TimerHandle }) => {
          if (timer.handle !== undefined) timers.delete(timer.handle);
          if (!this.scans.has(finish)) return;
          const ad = deaf ? undefined : this.advertisementOf(peripheral);
          if (ad && matches(ad, wanted, options.minRssi)) onAdvertisement(ad);
          const next: { handle?: TimerHandle } = {};
          next.handle = this.scheduler.setTimeout(() => tick(next), every);
          timers.add(next.handle);
        };
        // Devices advertise out of phase with each other, as real advertising intervals do (plus their
        // random 0-10 ms advDelay); the phase is fixed per device so a seeded run replays.
        const first: { handle?: TimerHandle } = {};
        first.handle = this.scheduler.setTimeout(() => tick(first), (index * 37) % every);
        timers.add(first.handle);
        index++;
      }
    });
  }

  private advertisementOf(p: VirtualPeripheral): Advertisement | undefined {
    if (!p.inRange || p.connected) return undefined; // a connected peripheral stops connectable advertising
    return {
      address: p.address,
      ...(p.name === undefined ? {} : { name: p.name }),
      services: [...p.services],
      manufacturerData: new Map([...p.manufacturerData].map(([id, data]) => [id, data.slice()])),
      rssi: Math.round(p.rssi + this.random.gaussian(0, 2)),
    };
  }

  async connect(address: string, options: { readonly timeoutMs: number }): Promise<Connection> {
    this.requirePowered();
    const failure = this.connectFailures.shift();
    if (failure) throw failure;
    if (this.radioFaults.has('deaf')) {
      await this.delay(options.timeoutMs);
      throw new BleError('BLE_TIMEOUT', `the device did not answer within ${options.timeoutMs} ms`);
    }
    const peripheral = this.devices.get(normalizeAddress(address));
    if (!peripheral) throw new BleError('BLE_DEVICE_GONE', 'no such device (never seen by the adapter)');
    if (!peripheral.inRange) await this.waitInRange(peripheral, options.timeoutMs);
    if (this.connectLatencyMs > 0) await this.delay(this.connectLatencyMs);
    this.requirePowered();
    if (!peripheral.inRange)
      throw new BleError('BLE_TIMEOUT', 'the device went out of range while connecting');
    if (peripheral.connected)
      throw new BleError('BLE_NO_SLOTS', 'the device already has a link (it takes one)');
    if (this.connections.size >= this.maxConnections) {
      throw new BleError('BLE_NO_SLOTS', `the adapter has no free link (${this.maxConnections} in use)`);
    }
    const connection = new SimConnection(this, peripheral, this.servicesFor(peripheral));
    this.connections.add(connection);
    peripheral.attach(connection.link);
    return connection;
  }

  /** Pages for an out-of-range device until it shows up or the connect times out. */
  private waitInRange(peripheral: VirtualPeripheral, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (error?: BleError) => {
        this.scheduler.clearTimeout(timer);
        offRange();
        this.pendingConnects.delete(done);
        if (error) reject(error);
        else resolve();
      };
      const timer = this.scheduler.setTimeout(
        () => done(new BleError('BLE_TIMEOUT', `the device did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const offRange = peripheral.onRangeChange((inRange) => {
        if (inRange) done();
      });
      this.pendingConnects.add(done);
    });
  }

  /** Resolves after `ms` on the scheduler. */
  delay(ms: number): Promise<void> {
    return new Promise((resolve) => this.scheduler.setTimeout(resolve, ms));
  }

  /** Called by a connection when it closed. */
  forget(connection: SimConnection): void {
    this.connections.delete(connection);
  }

  async pair(peripheral: VirtualPeripheral): Promise<void> {
    if (peripheral.passkey !== undefined) {
      if (!this.passkeyProvider) {
        throw new BleError('BLE_AUTH_FAILED', 'the device asks for a passkey and no passkey provider is set');
      }
      const given = await this.passkeyProvider(peripheral.address);
      if (given !== peripheral.passkey)
        throw new BleError('BLE_AUTH_FAILED', 'pairing failed: wrong passkey');
    }
    peripheral.addBond(this.id);
  }
}

/** One link. Its listeners die with it: a new connection to the same device starts with none. */
export class SimConnection implements Connection {
  readonly address: string;
  readonly link: PeripheralLink;
  private readonly listeners = new Map<string, Set<(value: Uint8Array) => void>>();
  private readonly disconnects = new DisconnectListeners();

  constructor(
    private readonly central: SimCentral,
    private readonly peripheral: VirtualPeripheral,
    /** What this link's discovery found (maybe a stale cached copy): only these can be used, as on BlueZ. */
    private readonly services: readonly ServiceInfo[],
  ) {
    this.address = peripheral.address;
    this.link = {
      isSubscribed: (characteristic) => (this.listeners.get(characteristic)?.size ?? 0) > 0,
      deliver: (characteristic, value) => {
        const set = this.listeners.get(characteristic);
        if (!set || set.size === 0) return false;
        for (const listener of [...set]) listener(value.slice());
        return true;
      },
      drop: (reason) => this.close(reason),
    };
  }

  get bonded(): boolean {
    return this.peripheral.hasBond(this.central.id);
  }

  get closed(): boolean {
    return this.disconnects.endedWith !== undefined;
  }

  discover(): Promise<readonly ServiceInfo[]> {
    return this.op(() => cloneServices(this.services));
  }

  read(service: string, characteristic: string): Promise<Uint8Array> {
    return this.op(() => {
      const c = this.find(service, characteristic);
      if (!c.properties.includes('read')) throw notSupported('read', c.uuid);
      this.checkBond(c);
      return this.peripheral.readValue(c);
    });
  }

  write(
    service: string,
    characteristic: string,
    value: Uint8Array,
    options?: { withResponse?: boolean },
  ): Promise<void> {
    return this.op(() => {
      const c = this.find(service, characteristic);
      if (!c.properties.includes('write') && !c.properties.includes('write-without-response')) {
        throw notSupported('write', c.uuid);
      }
      this.checkBond(c);
      try {
        this.peripheral.acceptWrite(c, value);
      } catch (error) {
        // A Write Command gets no answer on the air: the central never learns the device refused it.
        if (options?.withResponse !== false) throw error;
      }
    });
  }

  subscribe(
    service: string,
    characteristic: string,
    listener: (value: Uint8Array) => void,
  ): Promise<() => Promise<void>> {
    return this.op(() => {
      const c = this.find(service, characteristic);
      if (!c.properties.includes('notify') && !c.properties.includes('indicate')) {
        throw notSupported('subscribe to', c.uuid);
      }
      this.checkBond(c);
      // A wrapper per subscription, so the same function subscribed twice is two independent subscriptions.
      const wrapped = (value: Uint8Array) => listener(value);
      const set = this.listeners.get(c.uuid) ?? new Set();
      this.listeners.set(c.uuid, set);
      set.add(wrapped);
      if (set.size === 1) this.peripheral.subscribed(c.uuid);
      let active = true;
      return async () => {
        if (!active) return;
        active = false;
        if (!set.delete(wrapped) || this.closed) return;
        if (set.size === 0) this.peripheral.unsubscribed(c.uuid);
      };
    });
  }

  bond(): Promise<void> {
    return this.op(() => undefined).then(async () => {
      if (this.bonded) return;
      await this.central.pair(this.peripheral);
      if (this.closed) throw gone();
    });
  }

  async disconnect(): Promise<void> {
    this.close('local');
  }

  onDisconnect(listener: (reason: DisconnectReason) => void): () => void {
    return this.disconnects.add(listener);
  }

  /** Ends the link once; later calls do nothing. */
  close(reason: DisconnectReason): void {
    this.disconnects.fire(reason, () => {
      this.listeners.clear();
      this.central.forget(this);
      this.peripheral.detach(this.link, reason);
    });
  }

  private find(service: string, characteristic: string): CharacteristicDefinition {
    const uuid = normalizeUuid(characteristic);
    const known = this.services
      .find((s) => s.uuid === normalizeUuid(service))
      ?.characteristics.some((c) => c.uuid === uuid);
    // A characteristic the (cached) discovery does not list has no handle on this link; one it lists that the
    // device no longer has answers "attribute not found".
    const c = known ? this.peripheral.characteristic(characteristic, service) : undefined;
    if (!c) {
      throw new BleError('BLE_NOT_FOUND', `no characteristic ${normalizeUuid(characteristic)} in ${service}`);
    }
    return c;
  }

  private checkBond(c: CharacteristicDefinition): void {
    if (c.requiresBond && !this.bonded) {
      throw new BleError('BLE_AUTH_FAILED', `characteristic ${c.uuid} needs an encrypted link: bond first`);
    }
  }

  /**
   * Runs a GATT operation the way a stack does: after the link latency, failing with BLE_DEVICE_GONE when the
   * link is gone and BLE_TIMEOUT when the peripheral does not answer in time.
   */
  private op<T>(fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(gone());
    const central = this.central;
    if (!this.peripheral.responsive) {
      return central.delay(central.gattTimeoutMs).then(() => {
        if (this.closed) throw gone();
        throw new BleError('BLE_TIMEOUT', `the device did not answer within ${central.gattTimeoutMs} ms`);
      });
    }
    const wait = central.latencyMs > 0 ? central.delay(central.latencyMs) : Promise.resolve();
    return wait.then(() => {
      if (this.closed) throw gone();
      return fn();
    });
  }
}

function gone(): BleError {
  return new BleError('BLE_DEVICE_GONE', 'the link to the device is gone');
}

function notSupported(what: string, uuid: string): BleError {
  return new BleError('BLE_NOT_SUPPORTED', `cannot ${what} characteristic ${uuid} (not in its properties)`);
}

function cloneServices(services: readonly ServiceInfo[]): ServiceInfo[] {
  return services.map((s) => ({
    uuid: s.uuid,
    characteristics: s.characteristics.map((c) => ({ uuid: c.uuid, properties: [...c.properties] })),
  }));
}

function matches(
  ad: Advertisement,
  services: readonly string[] | undefined,
  minRssi: number | undefined,
): boolean {
  if (minRssi !== undefined && (ad.rssi ?? -127) < minRssi) return false;
  if (services && services.length > 0 && !ad.services.some((s) => services.includes(s))) return false;
  return true;
}
