import { normalizeUuid } from '../../gatt/uuid.js';
import {
  BleError,
  type CharacteristicInfo,
  type Connection,
  type DisconnectReason,
  type ServiceInfo,
} from '../central.js';
import { DisconnectListeners } from '../disconnect-listeners.js';
import { type MessageBus, unwrap } from './dbus.js';
import {
  dropSignalListeners,
  helperOf,
  type NodeBleCharacteristic,
  type NodeBleDevice,
  type NodeBleHelper,
  removeMatchIsBroken,
} from './node-ble-internals.js';

/** What a link needs from its central (BluezCentral). */
export interface LinkContext {
  /** A D-Bus call with a deadline (default: the backend's), its errors classified as BleError. */
  call<T>(
    work: Promise<T>,
    what: string,
    ms?: number,
    missing?: 'BLE_NOT_FOUND' | 'BLE_DEVICE_GONE',
  ): Promise<T>;
  /** node-ble's D-Bus connection, on which the link's leftover match rules are removed. */
  readonly dbus: MessageBus;
  /** Deadline of Device1.Pair. */
  readonly pairingTimeoutMs: number;
}

const GATT_PROPERTIES = new Set<CharacteristicInfo['properties'][number]>([
  'read',
  'write',
  'write-without-response',
  'notify',
  'indicate',
]);

interface CharacteristicEntry {
  readonly service: string;
  readonly uuid: string;
  readonly characteristic: NodeBleCharacteristic;
  flags?: readonly string[];
  readonly listeners: Set<(value: Uint8Array) => void>;
  forward?: (value: Buffer) => void;
}

/**
 * One link to a device through BlueZ: Device1.Connect and service discovery, GATT calls on node-ble's
 * characteristic objects, subscriptions, bonding, and the clean-up of every D-Bus listener when the link ends.
 */
export class BluezConnection implements Connection {
  private readonly characteristics = new Map<string, CharacteristicEntry>();
  private readonly disconnects = new DisconnectListeners();
  private open_ = false;
  private localDisconnect = false;
  private paired = false;
  private readonly onProperties = (changed: Record<string, unknown>) => {
    if ('Connected' in changed && unwrap(changed['Connected']) === false) {
      this.end(this.adapterDown() ? 'adapter' : this.localDisconnect ? 'local' : 'remote');
    }
    if ('Paired' in changed) this.paired = unwrap(changed['Paired']) === true;
  };

  constructor(
    private readonly central: LinkContext,
    private readonly device: NodeBleDevice,
    readonly address: string,
    private readonly adapterDown: () => boolean,
  ) {}

  get bonded(): boolean {
    return this.paired;
  }

  private get ended(): boolean {
    return this.disconnects.endedWith !== undefined;
  }

  /** Device1.Connect, then waits for ServicesResolved (Device.rst) so the GATT objects exist. */
  async open(remaining: () => number, timeoutMs: number): Promise<void> {
    const helper = helperOf(this.device);
    // Reading a property first makes node-ble subscribe to the device's PropertiesChanged before Connect.
    // node-ble types isPaired() as Promise<string>; BlueZ's Paired is a boolean (Device.rst).
    const paired: unknown = await this.central.call(this.device.isPaired(), 'device state', timeoutMs);
    this.paired = paired === true;
    helper.on('PropertiesChanged', this.onProperties);
    let resolved: () => void = () => undefined;
    const servicesResolved = new Promise<void>((resolve) => {
      resolved = resolve;
    });
    const watch = (changed: Record<string, unknown>) => {
      if (unwrap(changed['ServicesResolved']) === true) resolved();
    };
    helper.on('PropertiesChanged', watch);
    try {
      await this.central.call(this.device.connect(), 'connect', remaining(), 'BLE_DEVICE_GONE');
      this.open_ = true;
      const already = await this.central.call(this.servicesResolved(), 'service discovery', remaining());
      if (!already) await this.central.call(servicesResolved, 'service discovery', remaining());
      const gatt = await this.central.call(this.device.gatt(), 'service discovery', remaining());
      for (const serviceUuid of await gatt.services()) {
        const service = await gatt.getPrimaryService(serviceUuid);
        for (const characteristicUuid of await this.central.call(
          service.characteristics(),
          'service discovery',
        )) {
          const characteristic = await service.getCharacteristic(characteristicUuid);
          const entry = {
            service: normalizeUuid(serviceUuid),
            uuid: normalizeUuid(characteristicUuid),
            characteristic,
            listeners: new Set<(value: Uint8Array) => void>(),
          };
          this.characteristics.set(`${entry.service}/${entry.uuid}`, entry);
        }
      }
    } catch (error) {
      if (error instanceof BleError && error.code === 'BLE_TIMEOUT') {
        // Device.rst Disconnect also cancels a pending connection attempt.
        await this.central.call(this.device.disconnect(), 'connect cancel').catch(() => undefined);
      }
      throw error;
    } finally {
      helper.off('PropertiesChanged', watch);
    }
    if (this.ended) throw new BleError('BLE_DEVICE_GONE', 'the link dropped during service discovery');
  }

  private async servicesResolved(): Promise<boolean> {
    // node-ble's typings lack ServicesResolved; its BusHelper reads any Device1 property.
    const helper = helperOf(this.device) as NodeBleHelper & { prop(name: string): Promise<unknown> };
    return (await helper.prop('ServicesResolved')) === true;
  }

  /** Cleans up after a connection attempt that failed. */
  abandon(): void {
    this.disconnects.endSilently('local');
    this.release();
  }

  async discover(): Promise<readonly ServiceInfo[]> {
    const services = new Map<string, CharacteristicInfo[]>();
    for (const entry of this.characteristics.values()) {
      const flags = await this.flags(entry);
      const properties = flags.filter((flag): flag is CharacteristicInfo['properties'][number] =>
        GATT_PROPERTIES.has(flag as CharacteristicInfo['properties'][number]),
      );
      const list = services.get(entry.service) ?? [];
      list.push({ uuid: entry.uuid, properties });
      services.set(entry.service, list);
    }
    return [...services].map(([uuid, characteristics]) => ({ uuid, characteristics }));
  }

  async read(service: string, characteristic: string): Promise<Uint8Array> {
    const entry = this.lookup(service, characteristic);
    const value = await this.central.call(
      entry.characteristic.readValue(),
      'read',
      undefined,
      'BLE_DEVICE_GONE',
    );
    return Uint8Array.from(value);
  }

  async write(
    service: string,
    characteristic: string,
    value: Uint8Array,
    options?: { withResponse?: boolean },
  ): Promise<void> {
    const entry = this.lookup(service, characteristic);
    const buffer = Buffer.from(value);
    // GattCharacteristic.rst WriteValue option "type": "request" waits for the ATT response, "command" does not.
    const work =
      options?.withResponse === false
        ? entry.characteristic.writeValueWithoutResponse(buffer)
        : entry.characteristic.writeValueWithResponse(buffer);
    await this.central.call(work, 'write', undefined, 'BLE_DEVICE_GONE');
  }

  async subscribe(
    service: string,
    characteristic: string,
    listener: (value: Uint8Array) => void,
  ): Promise<() => Promise<void>> {
    const entry = this.lookup(service, characteristic);
    const flags = await this.flags(entry);
    if (!flags.includes('notify') && !flags.includes('indicate')) {
      throw new BleError('BLE_NOT_SUPPORTED', 'the characteristic neither notifies nor indicates');
    }
    entry.listeners.add(listener);
    if (!entry.forward) {
      // GattCharacteristic.rst StartNotify: values then arrive as PropertiesChanged of Value; node-ble turns them
      // into 'valuechanged'. BlueZ acknowledges indications itself.
      const forward = (value: Buffer) => {
        if (this.ended) return;
        for (const each of [...entry.listeners]) each(Uint8Array.from(value));
      };
      entry.forward = forward;
      entry.characteristic.on('valuechanged', forward);
      try {
        await this.central.call(
          entry.characteristic.startNotifications(),
          'subscribe',
          undefined,
          'BLE_DEVICE_GONE',
        );
      } catch (error) {
        entry.listeners.delete(listener);
        this.stopForwarding(entry);
        throw error;
      }
    }
    let active = true;
    return async () => {
      if (!active) return;
      active = false;
      entry.listeners.delete(listener);
      if (entry.listeners.size > 0 || !entry.forward) return;
      this.stopForwarding(entry);
      if (!this.ended) {
        await this.central.call(
          entry.characteristic.stopNotifications(),
          'unsubscribe',
          undefined,
          'BLE_DEVICE_GONE',
        );
      }
    };
  }

  async bond(): Promise<void> {
    if (this.ended) throw new BleError('BLE_DEVICE_GONE', 'not connected');
    try {
      // Device.rst Pair: BlueZ asks our Agent1 (agent.ts) for the passkey or confirmation as the device needs.
      await this.central.call(
        this.device.pair(),
        'pairing',
        this.central.pairingTimeoutMs,
        'BLE_DEVICE_GONE',
      );
    } catch (error) {
      // Device.rst Pair: AlreadyExists means the device is bonded already.
      const cause = error instanceof BleError ? error.cause : undefined;
      if ((cause as { type?: unknown } | undefined)?.type !== 'org.bluez.Error.AlreadyExists') throw error;
    }
    this.paired = true;
  }

  async disconnect(): Promise<void> {
    if (this.ended) return;
    this.localDisconnect = true;
    try {
      await this.central.call(this.device.disconnect(), 'disconnect', undefined, 'BLE_DEVICE_GONE');
    } finally {
      // node-ble's disconnect() drops the device's signal listeners, so the Connected=false signal may never
      // reach us: end here.
      this.end('local');
    }
  }

  onDisconnect(listener: (reason: DisconnectReason) => void): () => void {
    return this.disconnects.add(listener);
  }

  private end(reason: DisconnectReason): void {
    this.disconnects.fire(reason, () => {
      this.open_ = false;
      this.release();
    });
  }

  /**
   * Removes every D-Bus signal listener node-ble registered for this link. Its characteristic objects keep
   * listening for PropertiesChanged after the link drops, so a reconnect would deliver values to the old
   * subscribers too (chrvadala/node-ble#12).
   */
  private release(): void {
    const bus = this.central.dbus;
    const broken = removeMatchIsBroken(bus);
    for (const entry of this.characteristics.values()) {
      entry.listeners.clear();
      this.stopForwarding(entry);
      entry.characteristic.removeAllListeners('valuechanged');
      dropSignalListeners(entry.characteristic, bus, broken);
    }
    helperOf(this.device).off('PropertiesChanged', this.onProperties);
    dropSignalListeners(this.device, bus, broken);
    this.device.removeAllListeners();
  }

  private stopForwarding(entry: CharacteristicEntry): void {
    if (entry.forward) entry.characteristic.off('valuechanged', entry.forward);
    entry.forward = undefined;
  }

  private lookup(service: string, characteristic: string): CharacteristicEntry {
    if (this.ended || !this.open_) throw new BleError('BLE_DEVICE_GONE', 'not connected');
    const entry = this.characteristics.get(`${normalizeUuid(service)}/${normalizeUuid(characteristic)}`);
    if (!entry) throw new BleError('BLE_NOT_FOUND', 'no such characteristic on the device');
    return entry;
  }

  private async flags(entry: CharacteristicEntry): Promise<readonly string[]> {
    entry.flags ??= await this.central.call(
      entry.characteristic.getFlags(),
      'discover',
      undefined,
      'BLE_DEVICE_GONE',
    );
    return entry.flags;
  }
}
