import type { Scheduler } from '../../util/scheduler.js';
import { BleError, type BleErrorCode } from '../central.js';

/**
 * Error classification for the BlueZ backend. BlueZ answers failed D-Bus calls with `org.bluez.Error.*` names
 * (doc/org.bluez.Adapter.rst, Device.rst, GattCharacteristic.rst list them per method) and, for
 * `org.bluez.Error.Failed`, a reason string (Device.rst, Connect: "le-connection-abort-by-local", ...). Sessions
 * back off per class (after Home Assistant's bleak-retry-connector), so the mapping matters more than the text.
 */

/** What a missing D-Bus object means where the call was made: a lookup (not found) or a live link (gone). */
export type MissingMeans = 'BLE_NOT_FOUND' | 'BLE_DEVICE_GONE';

interface DbusErrorLike {
  readonly type: string;
  readonly text: string;
}

function isDbusError(error: unknown): error is DbusErrorLike {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { type?: unknown }).type === 'string' &&
    typeof (error as { text?: unknown }).text === 'string'
  );
}

/** Reason strings of org.bluez.Error.Failed (Device.rst, Connect) and kernel errno texts, by class. */
const FAILED_REASONS: readonly (readonly [RegExp, BleErrorCode])[] = [
  // The controller ran out of connection slots (BlueZ: "le-connection-concurrent-connection-limit"; proxies
  // and some kernels say "connection slot" / "available connection"; HCI 0x09 "Connection Limit Exceeded").
  [/connection-limit|connection slot|available connection|connection limit/i, 'BLE_NO_SLOTS'],
  // Aborted attempts are transient: the stack gave up on this try (bleak-retry-connector retries soon).
  [
    /abort-by-local|aborted-by-local|software caused connection abort|connection-canceled|le-connection-busy/i,
    'BLE_ABORTED',
  ],
  // The peer went away mid-connect or the link layer failed: the device is out of range or switched off.
  [
    /abort-by-remote|aborted-by-remote|link-layer-protocol-error|page-timeout|host is down|not connected/i,
    'BLE_DEVICE_GONE',
  ],
  [/connection-timeout|timeout was reached|timed out/i, 'BLE_TIMEOUT'],
  [/adapter-not-powered|not powered|resource not ready/i, 'BLE_ADAPTER'],
  [/key-missing|authentication/i, 'BLE_AUTH_FAILED'],
  [/not-supported|not supported/i, 'BLE_NOT_SUPPORTED'],
];

function codeFor(error: DbusErrorLike, missing: MissingMeans): BleErrorCode {
  switch (error.type) {
    // Adapter.rst StartDiscovery / Device.rst Connect: another operation of the same kind is running (a stuck
    // discovery is the classic case): transient.
    case 'org.bluez.Error.InProgress':
    case 'org.bluez.Error.Busy':
      return 'BLE_ABORTED';
    // The adapter is off, missing or rfkill-blocked (Adapter.rst: NotReady; Device.rst: NotAvailable).
    case 'org.bluez.Error.NotReady':
    case 'org.bluez.Error.NotAvailable':
    case 'org.bluez.Error.Blocked':
      return 'BLE_ADAPTER';
    // Device.rst Pair: wrong passkey, peer refused, user or agent cancelled, timed-out pairing; and
    // GattCharacteristic.rst ReadValue/WriteValue: NotAuthorized (insufficient authentication/encryption).
    case 'org.bluez.Error.AuthenticationFailed':
    case 'org.bluez.Error.AuthenticationRejected':
    case 'org.bluez.Error.AuthenticationCanceled':
    case 'org.bluez.Error.AuthenticationTimeout':
    case 'org.bluez.Error.ConnectionAttemptFailed':
    case 'org.bluez.Error.NotAuthorized':
      return 'BLE_AUTH_FAILED';
    // The object vanished (device removed from the cache, link dropped and GATT objects unexported).
    case 'org.bluez.Error.DoesNotExist':
    case 'org.freedesktop.DBus.Error.UnknownObject':
    case 'org.freedesktop.DBus.Error.UnknownInterface':
      return missing;
    case 'org.bluez.Error.NotConnected':
      return 'BLE_DEVICE_GONE';
    case 'org.bluez.Error.NotSupported':
    case 'org.bluez.Error.NotPermitted':
    case 'org.bluez.Error.InvalidValueLength':
    case 'org.bluez.Error.InvalidOffset':
    case 'org.bluez.Error.InvalidArguments':
      return 'BLE_NOT_SUPPORTED';
    // The D-Bus daemon's own timeout (default 25 s) fired before ours.
    case 'org.freedesktop.DBus.Error.NoReply':
    case 'org.freedesktop.DBus.Error.Timeout':
      return 'BLE_TIMEOUT';
    // bluetoothd is not running, or our D-Bus policy (config/dbus) does not let us talk to it.
    case 'org.freedesktop.DBus.Error.ServiceUnknown':
    case 'org.freedesktop.DBus.Error.NameHasNoOwner':
    case 'org.freedesktop.DBus.Error.AccessDenied':
    case 'org.freedesktop.DBus.Error.Disconnected':
      return 'BLE_BACKEND_UNAVAILABLE';
    case 'org.bluez.Error.Failed':
      for (const [pattern, code] of FAILED_REASONS) if (pattern.test(error.text)) return code;
      return 'BLE_ABORTED';
    default:
      return 'BLE_ABORTED';
  }
}

/** node-ble's own errors are plain Errors with fixed messages (src/Bluetooth.js, Adapter.js, GattServer.js). */
function codeForNodeBle(message: string, missing: MissingMeans): BleErrorCode | undefined {
  if (/^(No available adapters found|Adapter not found)$/.test(message)) return 'BLE_ADAPTER';
  if (/^(Device not found|Service not available|Characteristic not available)$/.test(message)) return missing;
  if (/ECONNREFUSED|ENOENT|EACCES/.test(message)) return 'BLE_BACKEND_UNAVAILABLE';
  return undefined;
}

/**
 * A BleError for a failure of `what` (a short description without addresses or names). The message carries
 * only the D-Bus error name, never BlueZ's text, which may quote an address; the original stays as `cause`.
 */
export function classify(error: unknown, what: string, missing: MissingMeans = 'BLE_NOT_FOUND'): BleError {
  if (error instanceof BleError) return error;
  if (isDbusError(error)) {
    const reason = error.type === 'org.bluez.Error.Failed' ? failedReason(error.text) : '';
    return new BleError(codeFor(error, missing), `${what} failed: ${error.type}${reason}`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  const code = codeForNodeBle(message, missing) ?? 'BLE_ABORTED';
  return new BleError(code, `${what} failed`, { cause: error });
}

/** The reason token of a Failed error, if it is one of BlueZ's fixed reason strings (safe to show). */
function failedReason(text: string): string {
  const token = /^(?:le|br)-connection-[a-z-]+$/.exec(text.trim());
  return token ? ` (${token[0]})` : '';
}

/**
 * Runs a D-Bus call with a deadline: BlueZ calls can hang for the D-Bus default of 25 s or forever (a wedged
 * controller), so every call gets BLE_TIMEOUT after `ms`. The call itself cannot be cancelled; its late answer is
 * ignored.
 */
export async function withTimeout<T>(
  work: Promise<T>,
  ms: number,
  what: string,
  scheduler: Scheduler,
  missing: MissingMeans = 'BLE_NOT_FOUND',
): Promise<T> {
  let timer: unknown;
  const deadline = new Promise<never>((_, reject) => {
    timer = scheduler.setTimeout(
      () => reject(new BleError('BLE_TIMEOUT', `${what} timed out after ${ms} ms`)),
      ms,
    );
  });
  // A late rejection of the abandoned call must not surface as an unhandled rejection.
  work.catch(() => undefined);
  try {
    return await Promise.race([work, deadline]);
  } catch (error) {
    throw classify(error, what, missing);
  } finally {
    scheduler.clearTimeout(timer);
  }
}
