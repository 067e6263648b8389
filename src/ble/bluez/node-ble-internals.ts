import nodeBle from 'node-ble';
import { Message, type MessageBus } from './dbus.js';

/**
 * What the BlueZ backend reaches inside node-ble for: the fields and behaviours its typings do not declare, and
 * the clean-up of the D-Bus signal subscriptions node-ble and dbus-next leave behind when a link ends.
 */
export type NodeBleBluetooth = ReturnType<typeof nodeBle.createBluetooth>;
export type NodeBleDevice = nodeBle.Device;
export type NodeBleCharacteristic = nodeBle.GattCharacteristic;

/**
 * node-ble's BusHelper, which its typings do not declare. Needed to remove the D-Bus signal listeners node-ble
 * leaves behind after a link drops (chrvadala/node-ble#12) and to see Device1 PropertiesChanged.
 */
export interface NodeBleHelper {
  on(event: 'PropertiesChanged', listener: (changed: Record<string, unknown>) => void): unknown;
  off(event: 'PropertiesChanged', listener: (changed: Record<string, unknown>) => void): unknown;
  removeListeners(): void;
}

/** dbus-next's client-side view of a signal subscription (lib/client/proxy-interface.js, untyped). */
interface ProxySignals {
  listenerCount(event: string): number;
  _signalMatchRuleString(event: string): string;
}

/**
 * dbus-next 0.10.2 never sends RemoveMatch: `_removeMatch` tests `hasOwnProperty.call(match, this._matchRules)`
 * with the arguments swapped, so it always returns early, while `_addMatch` always sends AddMatch. Each link
 * would leave its PropertiesChanged rules on the daemon until the system bus's per-connection limit
 * (max_match_rules_per_connection) refuses new ones. Detected from the source, so a fixed dbus-next is left alone.
 */
export function removeMatchIsBroken(bus: MessageBus): boolean {
  const removeMatch = (bus as unknown as { _removeMatch?: () => unknown })._removeMatch;
  return (
    typeof removeMatch === 'function' &&
    removeMatch.toString().includes('hasOwnProperty.call(match, this._matchRules)')
  );
}

/**
 * Removes node-ble's signal listeners on one object, and the daemon-side match rule dbus-next leaves behind.
 * node-ble subscribes PropertiesChanged once per BusHelper (src/BusHelper.js `_prepare` with usePropsEvents).
 */
export function dropSignalListeners(
  object: NodeBleDevice | NodeBleCharacteristic,
  bus: MessageBus,
  broken: boolean,
): void {
  const helper = helperOf(object);
  // node-ble keeps its Properties proxy in the untyped `_propsProxy` field (src/BusHelper.js).
  const proxy = (helper as unknown as { _propsProxy: ProxySignals | null })._propsProxy;
  const subscribed = proxy !== null && proxy.listenerCount('PropertiesChanged') > 0;
  const rule = subscribed ? proxy._signalMatchRuleString('PropertiesChanged') : undefined;
  helper.removeListeners();
  if (rule !== undefined && broken) {
    bus
      .call(
        new Message({
          destination: 'org.freedesktop.DBus',
          path: '/org/freedesktop/DBus',
          interface: 'org.freedesktop.DBus',
          member: 'RemoveMatch',
          signature: 's',
          body: [rule],
        }),
      )
      .catch(() => undefined);
  }
}

export function helperOf(object: NodeBleDevice | NodeBleCharacteristic): NodeBleHelper {
  // node-ble keeps its BusHelper in the untyped `helper` field (src/Device.js, src/GattCharacteristic.js).
  return (object as unknown as { helper: NodeBleHelper }).helper;
}

export function busOf(bluetooth: NodeBleBluetooth['bluetooth']): MessageBus {
  // node-ble's Bluetooth keeps the dbus-next MessageBus in the untyped `dbus` field (src/Bluetooth.js); the agent
  // must live on this connection, because BlueZ calls an agent back on the connection that registered it.
  return (bluetooth as unknown as { dbus: MessageBus }).dbus;
}

/** dbus-next's systemBus() reads DBUS_SYSTEM_BUS_ADDRESS synchronously; node-ble has no other way in. */
export function openBluetooth(busAddress: string | undefined): NodeBleBluetooth {
  if (busAddress === undefined) return nodeBle.createBluetooth();
  const saved = process.env.DBUS_SYSTEM_BUS_ADDRESS;
  process.env.DBUS_SYSTEM_BUS_ADDRESS = busAddress;
  try {
    return nodeBle.createBluetooth();
  } finally {
    if (saved === undefined) delete process.env.DBUS_SYSTEM_BUS_ADDRESS;
    else process.env.DBUS_SYSTEM_BUS_ADDRESS = saved;
  }
}
