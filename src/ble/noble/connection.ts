import { normalizeUuid } from '../../gatt/uuid.js';
import type { Scheduler } from '../../util/scheduler.js';
import {
  BleError,
  type CharacteristicInfo,
  type Connection,
  type DisconnectReason,
  type ServiceInfo,
} from '../central.js';
import { DisconnectListeners } from '../disconnect-listeners.js';
import { classify, disconnectReason, withDeadline } from './errors.js';
import { fromNobleUuid, type NobleCharacteristic, type NoblePeripheral } from './noble-api.js';

/** What a link needs from its central. */
export interface LinkContext {
  readonly scheduler: Scheduler;
  /** Deadline of every GATT call and of disconnect. */
  readonly timeoutMs: number;
  /** The central is power-cycling the adapter (or it went away): links that end now end with 'adapter'. */
  readonly adapterDown: boolean;
}

type Property = CharacteristicInfo['properties'][number];

/** noble's property names (lib/hci-socket/gatt.js) to the port's. */
const PROPERTIES: ReadonlyMap<string, Property> = new Map<string, Property>([
  ['read', 'read'],
  ['write', 'write'],
  ['writeWithoutResponse', 'write-without-response'],
  ['notify', 'notify'],
  ['indicate', 'indicate'],
]);

interface CharacteristicEntry {
  readonly service: string;
  readonly uuid: string;
  readonly characteristic: NobleCharacteristic;
  readonly properties: readonly Property[];
  readonly listeners: Set<(value: Uint8Array) => void>;
  forward?: ((data: Buffer, isNotification: boolean) => void) | undefined;
  /** The CCCD write in flight or done, shared by the subscribers of this characteristic. */
  enabling?: Promise<void> | undefined;
}

const NO_BONDING =
  'the noble backend cannot bond: noble has no pairing API and keeps no bond keys; use the bluez backend ' +
  '(its pairing agent asks for the passkey) for devices that need pairing';

function gone(): BleError {
  return new BleError('BLE_DEVICE_GONE', 'the link to the device is gone');
}

/**
 * One link to a peripheral through noble. noble's peripheral object lives as long as the process and keeps every
 * listener ever added to it, so the link adds its own and removes them all when it ends: a reconnect starts clean.
 * Services and characteristics are discovered at connect (noble keeps no GATT cache between links).
 */
export class NobleConnection implements Connection {
  private readonly entries = new Map<string, CharacteristicEntry>();
  private readonly services: string[] = [];
  private readonly disconnects = new DisconnectListeners();
  private connected = false;
  private localDisconnect = false;
  private markGone: (error: BleError) => void = () => undefined;
  private readonly gone: Promise<never>;
  private readonly onLinkEnd = (reason?: number | string) =>
    this.end(disconnectReason(reason, { local: this.localDisconnect, adapter: this.context.adapterDown }));

  constructor(
    private readonly context: LinkContext,
    private readonly peripheral: NoblePeripheral,
    readonly address: string,
  ) {
    this.gone = new Promise<never>((_, reject) => {
      this.markGone = reject;
    });
    this.gone.catch(() => undefined);
  }

  get bonded(): boolean {
    return false;
  }

  get ended(): boolean {
    return this.disconnects.endedWith !== undefined;
  }

  /**
   * Connects and discovers every service and characteristic, all within `remaining()`. On failure the link is
   * taken down again and nothing stays registered on the peripheral.
   */
  async open(remaining: () => number): Promise<void> {
    const peripheral = this.peripheral;
    peripheral.on('disconnect', this.onLinkEnd);
    try {
      // noble queues LE Create Connection, which has no timeout of its own (the controller pages until told to
      // stop, Core Vol 4 Part E 7.8.12): on our deadline, LE Create Connection Cancel through cancelConnect().
      await this.call(peripheral.connectAsync(), 'connect', remaining(), () => peripheral.cancelConnect());
      this.connected = true;
      // One service at a time: noble's discoverAllServicesAndCharacteristics never answers for a device with no
      // services and drops per-service errors (lib/peripheral.js).
      for (const service of await this.call(
        peripheral.discoverServicesAsync([]),
        'service discovery',
        remaining(),
      )) {
        const serviceUuid = fromNobleUuid(service.uuid);
        const characteristics = await this.call(
          service.discoverCharacteristicsAsync([]),
          'characteristic discovery',
          remaining(),
        );
        if (serviceUuid === undefined) continue;
        this.services.push(serviceUuid);
        for (const characteristic of characteristics) {
          const uuid = fromNobleUuid(characteristic.uuid);
          if (uuid === undefined) continue;
          this.entries.set(`${serviceUuid}/${uuid}`, {
            service: serviceUuid,
            uuid,
            characteristic,
            properties: characteristic.properties.flatMap((p) => {
              const mapped = PROPERTIES.get(p);
              return mapped === undefined ? [] : [mapped];
            }),
            listeners: new Set(),
          });
        }
      }
    } catch (error) {
      const failure = classify(error, 'connect');
      if (this.connected && !this.ended) {
        this.localDisconnect = true;
        await withDeadline(
          peripheral.disconnectAsync(),
          this.context.timeoutMs,
          'disconnect',
          this.context.scheduler,
          {
            gone: this.gone,
          },
        ).catch(() => undefined);
      }
      this.abandon();
      throw failure;
    }
  }

  /** Ends a link that never opened: cleans up without telling anyone (nobody holds it). */
  private abandon(): void {
    if (!this.disconnects.endSilently('local')) return;
    this.release();
    this.markGone(gone());
  }

  async discover(): Promise<readonly ServiceInfo[]> {
    if (this.ended) throw gone();
    return this.services.map((service) => ({
      uuid: service,
      characteristics: [...this.entries.values()]
        .filter((entry) => entry.service === service)
        .map((entry) => ({ uuid: entry.uuid, properties: [...entry.properties] })),
    }));
  }

  async read(service: string, characteristic: string): Promise<Uint8Array> {
    const entry = this.lookup(service, characteristic);
    // noble sends the Read Request regardless and answers a refusal with an empty value: check first.
    if (!entry.properties.includes('read')) throw notSupported('read', entry.uuid);
    const value = await this.call(entry.characteristic.readAsync(), 'read');
    return Uint8Array.from(value);
  }

  async write(
    service: string,
    characteristic: string,
    value: Uint8Array,
    options?: { withResponse?: boolean },
  ): Promise<void> {
    const entry = this.lookup(service, characteristic);
    const request = entry.properties.includes('write');
    const command = entry.properties.includes('write-without-response');
    if (!request && !command) throw notSupported('write', entry.uuid);
    // A Write Request waits for the ATT Write Response; a Write Command does not (Core Vol 3 Part F 3.4.5).
    // Unless told, use the request where the characteristic allows it.
    const withoutResponse = options?.withResponse === undefined ? !request : !options.withResponse;
    await this.call(entry.characteristic.writeAsync(Buffer.from(value), withoutResponse), 'write');
  }

  async subscribe(
    service: string,
    characteristic: string,
    listener: (value: Uint8Array) => void,
  ): Promise<() => Promise<void>> {
    const entry = this.lookup(service, characteristic);
    if (!entry.properties.includes('notify') && !entry.properties.includes('indicate')) {
      throw notSupported('subscribe to', entry.uuid);
    }
    // A wrapper per subscription, so the same function subscribed twice is two independent subscriptions.
    const wrapped = (value: Uint8Array) => listener(value);
    entry.listeners.add(wrapped);
    if (!entry.forward) {
      // 'data' carries reads too; only notifications and indications (isNotification) go to subscribers. noble's
      // HCI bindings send the Handle Value Confirmation for an indication themselves (lib/hci-socket/gatt.js).
      const forward = (data: Buffer, isNotification: boolean) => {
        if (!isNotification || this.ended) return;
        for (const each of [...entry.listeners]) each(Uint8Array.from(data));
      };
      entry.forward = forward;
      entry.characteristic.on('data', forward);
      entry.enabling = this.call(entry.characteristic.subscribeAsync(), 'subscribe');
    }
    try {
      await entry.enabling;
    } catch (error) {
      entry.listeners.delete(wrapped);
      if (entry.listeners.size === 0) this.stopForwarding(entry);
      throw error;
    }
    let active = true;
    return async () => {
      if (!active) return;
      active = false;
      entry.listeners.delete(wrapped);
      if (entry.listeners.size > 0 || !entry.forward) return;
      this.stopForwarding(entry);
      if (!this.ended) await this.call(entry.characteristic.unsubscribeAsync(), 'unsubscribe');
    };
  }

  async bond(): Promise<void> {
    if (this.ended) throw gone();
    throw new BleError('BLE_NOT_SUPPORTED', NO_BONDING);
  }

  async disconnect(): Promise<void> {
    if (this.ended) return;
    this.localDisconnect = true;
    try {
      await withDeadline(
        this.peripheral.disconnectAsync(),
        this.context.timeoutMs,
        'disconnect',
        this.context.scheduler,
      );
    } finally {
      this.end('local');
    }
  }

  onDisconnect(listener: (reason: DisconnectReason) => void): () => void {
    return this.disconnects.add(listener);
  }

  /**
   * For the central: the adapter is being reset or went away. Asks noble to disconnect first when the adapter
   * is still there, because after an HCI_Reset noble hears no Disconnection Complete and would think the
   * peripheral still connected (lib/peripheral.js then refuses every new connect).
   */
  async closeForAdapter(adapterPresent: boolean): Promise<void> {
    if (this.ended) return;
    if (adapterPresent && this.connected) {
      await withDeadline(
        this.peripheral.disconnectAsync(),
        this.context.timeoutMs,
        'disconnect',
        this.context.scheduler,
        { gone: this.gone },
      ).catch(() => undefined);
    }
    this.end('adapter');
  }

  /** Ends the link once; later calls do nothing. */
  private end(reason: DisconnectReason): void {
    this.disconnects.fire(reason, () => {
      this.release();
      this.markGone(gone());
    });
  }

  /**
   * Removes every listener of this link: ours, and those noble's promisified calls leave behind when no answer
   * came (a timed-out read leaves its 'read' listener on the characteristic, a timed-out discovery its
   * 'servicesDiscover' listener on the peripheral). The characteristic objects belong to this link's discovery;
   * the peripheral object is noble's for the whole process, and only this backend listens on it.
   */
  private release(): void {
    for (const entry of this.entries.values()) {
      entry.listeners.clear();
      this.stopForwarding(entry);
      entry.characteristic.removeAllListeners();
    }
    this.peripheral.removeListener('disconnect', this.onLinkEnd);
    this.peripheral.removeAllListeners();
  }

  private stopForwarding(entry: CharacteristicEntry): void {
    if (entry.forward) entry.characteristic.removeListener('data', entry.forward);
    entry.forward = undefined;
    entry.enabling = undefined;
  }

  private lookup(service: string, characteristic: string): CharacteristicEntry {
    if (this.ended || !this.connected) throw gone();
    const entry = this.entries.get(`${normalizeUuid(service)}/${normalizeUuid(characteristic)}`);
    if (!entry) throw new BleError('BLE_NOT_FOUND', 'no such characteristic on the device');
    return entry;
  }

  /** A noble call with the link's deadline, failing at once with BLE_DEVICE_GONE when the link ends. */
  private call<T>(
    work: Promise<T>,
    what: string,
    ms = this.context.timeoutMs,
    onTimeout?: () => void,
  ): Promise<T> {
    if (this.ended) {
      work.catch(() => undefined);
      return Promise.reject(gone());
    }
    return withDeadline(work, ms, what, this.context.scheduler, {
      gone: this.gone,
      ...(onTimeout ? { onTimeout } : {}),
    });
  }
}

function notSupported(what: string, uuid: string): BleError {
  return new BleError('BLE_NOT_SUPPORTED', `cannot ${what} characteristic ${uuid} (not in its properties)`);
}
