import { normalizeUuid } from '../../gatt/uuid.js';
import { realScheduler, type Scheduler, type TimerHandle } from '../../util/scheduler.js';
import { isBluetoothAddress, normalizeAddress } from '../address.js';
import {
  type Advertisement,
  BleError,
  type CentralPort,
  type Connection,
  type ScanOptions,
} from '../central.js';
import { NobleConnection } from './connection.js';
import { classify, initFailure, loadFailure, notReady, stateFailure, withDeadline } from './errors.js';
import { fromNobleUuid, importNoble, type NobleApi, type NoblePeripheral } from './noble-api.js';

/**
 * The noble backend of the Central port: @abandonware/noble, which drives the controller itself over a raw HCI
 * socket on Linux (CoreBluetooth on macOS), without BlueZ or D-Bus. Optional: the package is imported only in
 * start(), so a hub without it (or without Bluetooth) runs the other backends, and a failed import becomes one
 * clear BLE_BACKEND_UNAVAILABLE. noble has no pairing API: bond() fails with BLE_NOT_SUPPORTED.
 *
 * noble's module is a process-wide singleton owning one HCI socket: use one NobleCentral per process. noble keeps
 * its socket and a once-a-second adapter poll for the life of the process (it has no close), so a short-lived
 * command using this backend must exit the process itself. Its HCI bindings also add a SIGINT handler that calls
 * process.exit(1) when it is the last SIGINT listener (lib/hci-socket/bindings.js, NobleBindings.onSigInt), which
 * would cut the hub's ordered shutdown short (no offline status, appends not committed): start() removes the
 * SIGINT listeners that appeared while noble opened its bindings (see removeNobleSigint). Addresses and names are never logged by this backend; noble itself
 * prints a warning naming a peripheral only for a request on a link it no longer knows, which the backend does
 * not send (calls on an ended link fail before reaching noble).
 */
export interface NobleCentralOptions {
  /** Loads the noble module; tests pass a fake radio. Default: `import('@abandonware/noble')`. */
  readonly loadNoble?: () => Promise<NobleApi>;
  /** Timers: deadlines, scan windows, the adapter wait. Default: real time. */
  readonly scheduler?: Scheduler;
  /** Deadline of every GATT call, of scan start/stop and of disconnect (BLE_TIMEOUT). Default 10 s. */
  readonly timeoutMs?: number;
  /** How long start() and powerCycle() wait for the adapter's 'poweredOn' (BLE_ADAPTER). Default 10 s. */
  readonly readyTimeoutMs?: number;
  /**
   * After an HCI_Reset, how long the controller gets before the backend sends commands again. noble reports no
   * completion of the reset (its state stays 'poweredOn'); controllers finish in well under this. Default 500 ms.
   */
  readonly resetSettleMs?: number;
}

/**
 * The handle the port uses for a peripheral: its address in upper case (as the BlueZ backend gives it) where noble
 * knows it, else noble's id (macOS hides addresses: `address` is '' or 'unknown' there).
 */
function handleOf(peripheral: NoblePeripheral): string {
  const address = normalizeAddress(peripheral.address);
  return isBluetoothAddress(address) ? address : peripheral.id;
}

/** Something waiting on the radio that an adapter event may end early: a scan window or a connect's discovery. */
interface Waiter {
  readonly kind: 'scan' | 'device';
  finish(error?: BleError): void;
}

/** RSSI 127 is "not available" in advertising reports (Core Vol 4 Part E 7.7.65.2). */
const RSSI_UNAVAILABLE = 127;

export class NobleCentral implements CentralPort {
  readonly backend = 'noble' as const;
  readonly scheduler: Scheduler;
  readonly timeoutMs: number;
  private readonly readyTimeoutMs: number;
  private readonly resetSettleMs: number;
  private noble: NobleApi | undefined;
  private starting: Promise<void> | undefined;
  private state = 'unknown';
  private adapterResetting = false;
  private readonly peripherals = new Map<string, NoblePeripheral>();
  private readonly connections = new Map<string, NobleConnection>();
  private readonly advertisementListeners = new Set<(peripheral: NoblePeripheral) => void>();
  private readonly deviceWatchers = new Set<(handle: string) => void>();
  private readonly waiters = new Set<Waiter>();
  private scanUsers = 0;
  private scanRunning = false;
  private scanStopping = false;
  private scanQueue: Promise<void> = Promise.resolve();

  private readonly onStateChange = (state: string) => this.stateChanged(state);
  private readonly onDiscover = (peripheral: NoblePeripheral) => this.discovered(peripheral);
  private readonly onScanStop = () => this.scanStopped();
  // Listening makes noble stop printing its warnings (lib/noble.js prints only when nobody listens); they can
  // name peripherals, which must not reach the logs. The ones that matter are turned into errors in waitReady.
  private readonly onWarning = () => undefined;

  constructor(private readonly options: NobleCentralOptions = {}) {
    this.scheduler = options.scheduler ?? realScheduler;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
    this.resetSettleMs = options.resetSettleMs ?? 500;
  }

  /** Links that end while the adapter is reset or gone end with 'adapter'. */
  get adapterDown(): boolean {
    return this.adapterResetting || (this.noble !== undefined && this.state !== 'poweredOn');
  }

  start(): Promise<void> {
    if (this.noble) return Promise.resolve();
    this.starting ??= this.open().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async open(): Promise<void> {
    let noble: NobleApi;
    try {
      noble = await (this.options.loadNoble ?? importNoble)();
    } catch (error) {
      throw loadFailure(error);
    }
    this.noble = noble;
    this.state = 'unknown';
    noble.on('warning', this.onWarning);
    const before = new Set(process.listeners('SIGINT'));
    // The first 'stateChange' listener makes noble open its bindings (lib/noble.js, on the next tick).
    noble.on('stateChange', this.onStateChange);
    noble.on('discover', this.onDiscover);
    noble.on('scanStop', this.onScanStop);
    try {
      await this.waitReady('adapter start');
    } catch (error) {
      await this.stop();
      throw error;
    } finally {
      removeNobleSigint(before);
    }
  }

  async stop(): Promise<void> {
    const noble = this.noble;
    if (!noble) return;
    await Promise.all([...this.connections.values()].map((c) => c.disconnect().catch(() => undefined)));
    for (const waiter of [...this.waiters]) {
      waiter.finish(
        waiter.kind === 'device' ? new BleError('BLE_ADAPTER', 'the central was stopped') : undefined,
      );
    }
    await this.serialize(async () => {
      if (this.scanRunning) await this.stopNobleScan(noble);
    });
    noble.removeListener('stateChange', this.onStateChange);
    noble.removeListener('discover', this.onDiscover);
    noble.removeListener('scanStop', this.onScanStop);
    noble.removeListener('warning', this.onWarning);
    this.noble = undefined;
    this.scanUsers = 0;
    this.peripherals.clear();
    this.connections.clear();
  }

  /**
   * Recovery of a wedged controller: disconnects every link, sends HCI_Reset (noble.reset()), waits for the
   * controller, and restarts a scan that was running. Bindings without a reset (macOS, Windows) get the rest.
   */
  async powerCycle(): Promise<void> {
    const noble = this.requireStarted();
    this.adapterResetting = true;
    try {
      const present = this.state === 'poweredOn';
      await Promise.all([...this.connections.values()].map((c) => c.closeForAdapter(present)));
      await this.serialize(async () => {
        if (this.scanRunning) await this.stopNobleScan(noble);
      });
      try {
        noble.reset();
      } catch {
        // lib/mac and lib/win bindings have no reset(): a stopped and restarted scan is what they allow.
      }
      await this.delay(this.resetSettleMs);
      await this.waitReady('adapter reset');
      await this.serialize(async () => {
        if (this.scanUsers > 0 && !this.scanRunning) await this.startNobleScan(noble);
      });
    } finally {
      this.adapterResetting = false;
    }
  }

  async scan(options: ScanOptions, onAdvertisement: (advertisement: Advertisement) => void): Promise<void> {
    this.requireReady();
    if (options.signal?.aborted) return;
    const wanted = options.services?.map(normalizeUuid);
    const listener = (peripheral: NoblePeripheral) => {
      const advertisement = advertisementOf(peripheral);
      if (wanted && wanted.length > 0 && !advertisement.services.some((uuid) => wanted.includes(uuid)))
        return;
      if (
        options.minRssi !== undefined &&
        (advertisement.rssi === undefined || advertisement.rssi < options.minRssi)
      ) {
        return;
      }
      onAdvertisement(advertisement);
    };
    const window = this.waiter('scan');
    this.advertisementListeners.add(listener);
    let timer: TimerHandle | undefined;
    const abort = () => window.finish();
    try {
      await this.acquireScan();
      try {
        timer = this.scheduler.setTimeout(abort, options.durationMs);
        options.signal?.addEventListener('abort', abort, { once: true });
        if (options.signal?.aborted) abort();
        await window.done;
      } finally {
        await this.releaseScan();
      }
    } finally {
      if (timer !== undefined) this.scheduler.clearTimeout(timer);
      options.signal?.removeEventListener('abort', abort);
      this.advertisementListeners.delete(listener);
      window.finish();
    }
  }

  async connect(address: string, options: { readonly timeoutMs: number }): Promise<Connection> {
    this.requireReady();
    const started = this.scheduler.now();
    const remaining = () => Math.max(1, options.timeoutMs - (this.scheduler.now() - started));
    const handle = normalizeAddress(address);
    if (this.connections.has(handle)) {
      throw new BleError('BLE_NO_SLOTS', 'the device already has a link from this gateway');
    }
    const peripheral = await this.findPeripheral(handle, remaining);
    if (this.connections.has(handle)) {
      throw new BleError('BLE_NO_SLOTS', 'the device already has a link from this gateway');
    }
    const connection = new NobleConnection(this, peripheral, handle);
    this.connections.set(handle, connection);
    connection.onDisconnect(() => {
      if (this.connections.get(handle) === connection) this.connections.delete(handle);
    });
    try {
      await connection.open(remaining);
    } catch (error) {
      if (this.connections.get(handle) === connection) this.connections.delete(handle);
      throw error;
    }
    return connection;
  }

  // ---- Adapter --------------------------------------------------------------------------------------------------

  private requireStarted(): NobleApi {
    if (!this.noble) throw new BleError('BLE_ADAPTER', 'the central is not started');
    return this.noble;
  }

  private requireReady(): NobleApi {
    const noble = this.requireStarted();
    if (this.state !== 'poweredOn' || this.adapterResetting) {
      throw new BleError('BLE_ADAPTER', `the Bluetooth adapter is not ready (noble state "${this.state}")`);
    }
    return noble;
  }

  /**
   * Waits until noble reports 'poweredOn'. 'unauthorized' and 'unsupported' fail at once (waiting will not help),
   * and so does a warning that the bindings did not initialise; anything else fails with BLE_ADAPTER after
   * readyTimeoutMs.
   */
  private waitReady(what: string): Promise<void> {
    const noble = this.requireStarted();
    const ms = this.readyTimeoutMs;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const done = (error?: BleError) => {
        if (settled) return;
        settled = true;
        this.scheduler.clearTimeout(timer);
        noble.removeListener('stateChange', onState);
        noble.removeListener('warning', onWarning);
        if (error) reject(error);
        else resolve();
      };
      const onState = (state: string) => {
        const failure = stateFailure(state);
        if (failure) done(failure);
        else if (state === 'poweredOn') done();
      };
      const onWarning = (message: string) => {
        const failure = initFailure(message);
        if (failure) done(failure);
      };
      const timer = this.scheduler.setTimeout(() => done(notReady(this.state, ms)), ms);
      noble.on('stateChange', onState);
      noble.on('warning', onWarning);
      try {
        // Reading `state` initialises the bindings if nothing has yet; that may throw (bind: ENODEV).
        const current = noble.state;
        this.state = current;
        onState(current);
      } catch (error) {
        done(classify(error, what));
      }
    });
  }

  private stateChanged(state: string): void {
    const was = this.state;
    this.state = state;
    if (was !== 'poweredOn' || state === 'poweredOn' || this.adapterResetting) return;
    // The adapter went away (unplugged, `hciconfig hci0 down`, rfkill): its links and its scan are gone with it,
    // and noble tells nobody (no 'disconnect', no 'scanStop').
    this.scanRunning = false;
    for (const connection of [...this.connections.values()]) void connection.closeForAdapter(false);
    const failure = new BleError('BLE_ADAPTER', `the Bluetooth adapter went away (noble state "${state}")`);
    for (const waiter of [...this.waiters]) waiter.finish(failure);
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => this.scheduler.setTimeout(resolve, ms));
  }

  // ---- Scanning -------------------------------------------------------------------------------------------------

  /**
   * noble has one scan per adapter: scans and connects share it by reference count. It always runs without a
   * service filter and with duplicates: the HCI bindings filter in JavaScript anyway (on noble's unpadded UUID
   * text), concurrent scans may want different services, and duplicates keep RSSI current and report a device
   * that was already seen before this scan began.
   */
  private async acquireScan(): Promise<void> {
    this.scanUsers += 1;
    try {
      await this.serialize(async () => {
        const noble = this.requireStarted();
        if (!this.scanRunning && this.scanUsers > 0) await this.startNobleScan(noble);
      });
    } catch (error) {
      this.scanUsers = Math.max(0, this.scanUsers - 1);
      throw error;
    }
  }

  private async releaseScan(): Promise<void> {
    this.scanUsers = Math.max(0, this.scanUsers - 1);
    await this.serialize(async () => {
      const noble = this.noble;
      if (noble && this.scanUsers === 0 && this.scanRunning) await this.stopNobleScan(noble);
    });
  }

  /** Scan starts and stops one after another: noble's scan state machine (lib/hci-socket/gap.js) has no queue. */
  private serialize(work: () => Promise<void>): Promise<void> {
    const run = this.scanQueue.then(work, work);
    this.scanQueue = run.catch(() => undefined);
    return run;
  }

  private async startNobleScan(noble: NobleApi): Promise<void> {
    await withDeadline(noble.startScanningAsync([], true), this.timeoutMs, 'scan start', this.scheduler);
    this.scanRunning = true;
  }

  private async stopNobleScan(noble: NobleApi): Promise<void> {
    this.scanRunning = false;
    this.scanStopping = true;
    try {
      // A scan the controller already ended answers with an error status and noble never emits 'scanStop'.
      await withDeadline(noble.stopScanningAsync(), this.timeoutMs, 'scan stop', this.scheduler).catch(
        () => undefined,
      );
    } finally {
      this.scanStopping = false;
    }
  }

  /**
   * 'scanStop' we did not ask for: another program on the adapter (bluetoothd, hcitool) disabled scanning
   * (lib/hci-socket/gap.js sees its LE Set Scan Enable command). Scans end with an error that says so.
   */
  private scanStopped(): void {
    if (this.scanStopping || !this.scanRunning) return;
    this.scanRunning = false;
    const failure = new BleError(
      'BLE_ABORTED',
      'another program stopped the Bluetooth scan: BlueZ (bluetoothd) must not use the adapter the noble backend ' +
        'uses; see docs/raspberry-pi.md, "The noble backend"',
    );
    for (const waiter of [...this.waiters]) waiter.finish(failure);
  }

  private discovered(peripheral: NoblePeripheral): void {
    const handle = handleOf(peripheral);
    this.peripherals.set(handle, peripheral);
    for (const watcher of [...this.deviceWatchers]) watcher(handle);
    for (const listener of [...this.advertisementListeners]) listener(peripheral);
  }

  /** A device noble has seen; noble can connect only to those (its bindings know the address type from them). */
  private known(handle: string): NoblePeripheral | undefined {
    const direct = this.peripherals.get(handle);
    if (direct) return direct;
    const id = handle.toLowerCase().replaceAll(':', '');
    for (const peripheral of this.peripherals.values()) if (peripheral.id === id) return peripheral;
    return undefined;
  }

  private async findPeripheral(handle: string, remaining: () => number): Promise<NoblePeripheral> {
    const known = this.known(handle);
    if (known) return known;
    const wait = this.waiter('device');
    const watcher = () => {
      if (this.known(handle)) wait.finish();
    };
    this.deviceWatchers.add(watcher);
    const timer = this.scheduler.setTimeout(
      () => wait.finish(new BleError('BLE_NOT_FOUND', 'device not found (not advertising or out of range)')),
      remaining(),
    );
    try {
      await this.acquireScan();
      try {
        await wait.done;
      } finally {
        // Stop the discovery before LE Create Connection: some controllers refuse to connect while scanning.
        await this.releaseScan();
      }
    } finally {
      this.scheduler.clearTimeout(timer);
      this.deviceWatchers.delete(watcher);
      wait.finish();
    }
    const found = this.known(handle);
    if (!found) throw new BleError('BLE_NOT_FOUND', 'device not found (not advertising or out of range)');
    return found;
  }

  private waiter(kind: Waiter['kind']): Waiter & { readonly done: Promise<void> } {
    let settle: (error?: BleError) => void = () => undefined;
    const done = new Promise<void>((resolve, reject) => {
      settle = (error) => (error ? reject(error) : resolve());
    });
    done.catch(() => undefined);
    const waiters = this.waiters;
    const waiter = {
      kind,
      done,
      finish(error?: BleError) {
        if (!waiters.delete(waiter)) return;
        settle(error);
      },
    };
    waiters.add(waiter);
    return waiter;
  }
}

/** noble's accumulated advertisement of a peripheral, in the port's terms (canonical UUIDs, company ids). */
function advertisementOf(peripheral: NoblePeripheral): Advertisement {
  const ad = peripheral.advertisement;
  // A Service Data AD structure names its service (Core Specification Supplement Part A 1.11), so it counts as
  // advertising that service, as noble's own scan filter counts it.
  const texts = [...(ad.serviceUuids ?? []), ...(ad.serviceData ?? []).map((d) => d.uuid)];
  const services = [...new Set(texts.flatMap((text) => fromNobleUuid(text) ?? []))];
  const manufacturerData = new Map<number, Uint8Array>();
  // Manufacturer Specific Data: a 2-octet company identifier, little-endian, then the data (Supplement Part A 1.4).
  if (ad.manufacturerData && ad.manufacturerData.length >= 2) {
    manufacturerData.set(
      ad.manufacturerData.readUInt16LE(0),
      Uint8Array.from(ad.manufacturerData.subarray(2)),
    );
  }
  const rssi = peripheral.rssi;
  return {
    address: handleOf(peripheral),
    ...(typeof ad.localName === 'string' && ad.localName.length > 0 ? { name: ad.localName } : {}),
    services,
    manufacturerData,
    ...(Number.isFinite(rssi) && rssi !== RSSI_UNAVAILABLE ? { rssi } : {}),
  };
}

/**
 * Removes the SIGINT listeners added since `before` was taken: noble's bindings register theirs while they open
 * (lib/hci-socket/bindings.js, init: `process.on('SIGINT', this.onSigIntBinded)`), and it exits the process.
 * Signals belong to the process's owner (the hub's lifecycle, src/runtime/lifecycle.ts). noble's 'exit'
 * listener (stop scanning, drop links) stays: it is harmless and tidy.
 */
function removeNobleSigint(before: ReadonlySet<unknown>): void {
  for (const listener of process.listeners('SIGINT')) {
    if (!before.has(listener)) process.removeListener('SIGINT', listener);
  }
}
