import dbus from 'dbus-next';
import { normalizeAddress } from '../address.js';

/**
 * The parts of dbus-next the BlueZ backend and its tests use. dbus-next is CommonJS with named exports; the
 * default import is its `module.exports` under NodeNext.
 */
export const { Variant, DBusError, Message, MessageType } = dbus;
export const DbusInterface = dbus.interface.Interface;
export type MessageBus = dbus.MessageBus;
export type DbusMessage = dbus.Message;
export type ProxyObject = dbus.ProxyObject;
export type ClientInterface = dbus.ClientInterface;
export type VariantValue = dbus.Variant;

export const BLUEZ = 'org.bluez';

/** Adapter object path (doc/org.bluez.Adapter.rst: /org/bluez/{hci0,hci1,...}). */
export function adapterPath(adapter: string): string {
  return `/org/bluez/${adapter}`;
}

/** Device object path (doc/org.bluez.Device.rst: [variable prefix]/{hci0,hci1,...}/dev_XX_XX_XX_XX_XX_XX). */
export function devicePath(adapter: string, address: string): string {
  return `${adapterPath(adapter)}/dev_${normalizeAddress(address).replaceAll(':', '_')}`;
}

export function addressFromPath(path: string): string | undefined {
  const match = /\/dev_([0-9A-F]{2}(?:_[0-9A-F]{2}){5})$/i.exec(path);
  return match ? normalizeAddress((match[1] as string).replaceAll('_', ':')) : undefined;
}

/** Calls a method of a proxy interface; dbus-next builds proxy methods at run time from introspection data. */
export function callProxy(iface: ClientInterface, method: string, ...args: unknown[]): Promise<unknown> {
  const fn = iface[method];
  if (typeof fn !== 'function') return Promise.reject(new Error(`no method ${method} on the proxy`));
  return Promise.resolve(fn.apply(iface, args) as unknown);
}

/** The value inside a Variant (dbus-next unmarshals `v` as a Variant object), or the value itself. */
export function unwrap(value: unknown): unknown {
  return value instanceof Variant ? (value.value as unknown) : value;
}
