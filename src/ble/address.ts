/**
 * The one rule by which the gateway stores and compares device addresses, used by every backend, the presence
 * monitor, the enrolment gate and the device registry, so a device enrolled through one path is recognised on
 * every other.
 *
 * - Surrounding whitespace is dropped (a pasted or typed address).
 * - A 48-bit Bluetooth device address (Bluetooth Core Specification, Vol 2, Part B, 1.2), written as six hex
 *   octets separated by colons (BlueZ, noble on Linux) or hyphens (the IEEE 802 canonical form), in any case,
 *   becomes six upper-case octets separated by colons, most significant first: the form BlueZ prints and
 *   uses in its object paths (doc/org.bluez.Device.rst). `aa-bb-cc-dd-ee-0f` -> `AA:BB:CC:DD:EE:0F`.
 * - Anything else is a backend's own handle and is kept exactly as it is: noble on macOS hides addresses and
 *   gives CoreBluetooth peripheral identifiers, which only match in their own spelling.
 *
 * Twelve hex digits without separators are deliberately NOT read as an address: noble's peripheral ids take
 * that shape on Linux and a 12-digit handle of another backend could too; guessing would merge two devices.
 */
const BLUETOOTH_ADDRESS = /^[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$/i;

export function normalizeAddress(address: string): string {
  const value = address.trim();
  return isBluetoothAddress(value) ? value.replaceAll('-', ':').toUpperCase() : value;
}

/** True for a 48-bit address in either separator style (one style throughout), any case, no whitespace. */
export function isBluetoothAddress(value: string): boolean {
  return BLUETOOTH_ADDRESS.test(value);
}
