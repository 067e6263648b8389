import type { Scheduler } from '../../util/scheduler.js';
import { BleError, type BleErrorCode, type DisconnectReason } from '../central.js';

/**
 * Error classification for the noble backend. noble reports failures in three ways, each mapped here:
 *   1. system errors (errno codes) from its HCI socket, while the module loads or the bindings start;
 *   2. an adapter state ('unauthorized', 'unsupported', 'poweredOff') instead of an error;
 *   3. HCI status codes as text, "<name> (0x<code>)", when a connection fails (lib/hci-socket/bindings.js
 *      onLeConnComplete), and HCI reason codes with 'disconnect'. The codes are those of the Bluetooth Core
 *      Specification, Vol 1, Part F, "Controller Error Codes".
 * noble reports no ATT error responses (lib/hci-socket/gatt.js): a refused read answers with an empty value and a
 * refused write or CCCD write never answers, which the backend's deadlines turn into BLE_TIMEOUT.
 * Messages never quote noble's text where it may carry an address (its warnings name peripherals by id).
 */

/** The command noble's README ("Running without root/sudo") gives for raw HCI access without root. */
export const SETCAP_COMMAND = 'sudo setcap cap_net_raw+eip $(eval readlink -f `which node`)';

const SEE_DOCS = 'see docs/raspberry-pi.md, "The noble backend"';

/** Advice for a process that may not use the HCI socket (EPERM, or noble's 'unauthorized' state). */
export const PERMISSION_ADVICE =
  'the noble backend may not use the Bluetooth adapter (its raw HCI socket needs CAP_NET_RAW; HCI_CHANNEL_USER ' +
  `mode needs CAP_NET_ADMIN): run ${SETCAP_COMMAND} (again after every Node.js upgrade), or under systemd give ` +
  `the service AmbientCapabilities=CAP_NET_RAW; ${SEE_DOCS}`;

const NO_BLUETOOTH_ADVICE =
  'the noble backend cannot open a Bluetooth HCI socket (EAFNOSUPPORT): this system has no Bluetooth support ' +
  '(no adapter driver loaded, a kernel built without Bluetooth, or a container without access to it); ' +
  `use a host with a Bluetooth adapter, or --backend sim to run without a radio; ${SEE_DOCS}`;

const NOT_INSTALLED_ADVICE =
  'the noble backend needs the optional package @abandonware/noble: run `npm install @abandonware/noble` ' +
  '(or choose --backend bluez)';

/** Node's and the HCI socket's errno names, as `code` on system errors. */
function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  if (typeof code === 'string') return code;
  // noble reports an init failure only as the text of a 'warning': "Initialization of USB device failed: ENODEV, ..."
  const match = /\b(E[A-Z]{3,15})\b/.exec(messageOf(error));
  return match?.[1];
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return typeof error === 'string' ? error : String(error);
}

/** The module names in a "Cannot find module 'x'" / "Cannot find package 'x'" message. */
function missingModule(error: unknown): string | undefined {
  return /Cannot find (?:module|package) '([^']+)'/.exec(messageOf(error))?.[1];
}

/** A failure of the HCI socket's system calls (while loading, or when the bindings start). */
function systemFailure(errno: string, error: unknown): BleError | undefined {
  switch (errno) {
    case 'EAFNOSUPPORT':
      return new BleError('BLE_BACKEND_UNAVAILABLE', NO_BLUETOOTH_ADVICE, { cause: error });
    case 'EPERM':
    case 'EACCES':
      return new BleError('BLE_BACKEND_UNAVAILABLE', PERMISSION_ADVICE, { cause: error });
    // bind(2) on hciN: no such adapter (NOBLE_HCI_DEVICE_ID names the adapter, default hci0).
    case 'ENODEV':
      return new BleError(
        'BLE_ADAPTER',
        'no Bluetooth adapter found (hci0, or the one NOBLE_HCI_DEVICE_ID names): is it plugged in and not rfkill-blocked?',
        { cause: error },
      );
    // bind(2) with HCI_CHANNEL_USER on an adapter that is up or held by another program.
    case 'EBUSY':
      return new BleError(
        'BLE_ADAPTER',
        `the Bluetooth adapter is busy (another program holds it; with HCI_CHANNEL_USER it must be down and bluetoothd stopped); ${SEE_DOCS}`,
        { cause: error },
      );
    // "Network is down": the adapter exists but is not up.
    case 'ENETDOWN':
      return new BleError('BLE_ADAPTER', adapterDownAdvice(), { cause: error });
    default:
      return undefined;
  }
}

function adapterDownAdvice(): string {
  return (
    'the Bluetooth adapter is down (powered off): bring it up with `sudo hciconfig hci0 up` ' +
    `(or \`sudo btmgmt power on\`), check \`rfkill list\`; ${SEE_DOCS}`
  );
}

/** The error for a failed `import('@abandonware/noble')` (or a failed custom loader). */
export function loadFailure(error: unknown): BleError {
  if (error instanceof BleError) return error;
  const errno = errnoOf(error);
  if (errno === 'ERR_MODULE_NOT_FOUND' || errno === 'MODULE_NOT_FOUND') {
    const missing = missingModule(error);
    if (
      missing === undefined ||
      missing === '@abandonware/noble' ||
      missing.endsWith('/@abandonware/noble')
    ) {
      return new BleError('BLE_BACKEND_UNAVAILABLE', NOT_INSTALLED_ADVICE, { cause: error });
    }
    // The HCI socket is a native module compiled at install (node-gyp): missing when install scripts were off
    // or the build failed.
    const what = missing.endsWith('.node')
      ? 'its native HCI socket module was not built'
      : `${missing} is missing`;
    return new BleError(
      'BLE_BACKEND_UNAVAILABLE',
      `@abandonware/noble is installed but ${what}: run \`npm rebuild @abandonware/bluetooth-hci-socket\` ` +
        '(needs build-essential and python3), or `npm install @abandonware/noble` again',
      { cause: error },
    );
  }
  const system = errno === undefined ? undefined : systemFailure(errno, error);
  if (system) return system;
  const firstLine = messageOf(error).split('\n')[0] ?? '';
  return new BleError(
    'BLE_BACKEND_UNAVAILABLE',
    `@abandonware/noble failed to load (${firstLine.slice(0, 200)}); reinstall it with \`npm install @abandonware/noble\` or choose --backend bluez`,
    { cause: error },
  );
}

/**
 * A noble warning that means the bindings did not start (lib/noble.js: "Initialization of USB device failed: ...",
 * emitted when the HCI socket's bind fails while noble initialises lazily). Other warnings are not failures.
 */
export function initFailure(warning: string): BleError | undefined {
  if (!/initiali[sz]ation .*failed/i.test(warning)) return undefined;
  const errno = errnoOf(warning);
  const system = errno === undefined ? undefined : systemFailure(errno, warning);
  return (
    system ??
    new BleError('BLE_ADAPTER', 'noble could not initialise the Bluetooth adapter', { cause: warning })
  );
}

/**
 * The error for an adapter state that will not become 'poweredOn' by waiting, or undefined for the states that
 * may ('unknown', 'resetting', 'poweredOff' while the adapter comes up).
 */
export function stateFailure(state: string): BleError | undefined {
  switch (state) {
    // lib/hci-socket/hci.js: a write on the HCI socket failed with EPERM.
    case 'unauthorized':
      return new BleError('BLE_BACKEND_UNAVAILABLE', PERMISSION_ADVICE);
    // lib/hci-socket/hci.js: the controller's HCI version is below 4.0 (0x06), so it has no LE.
    case 'unsupported':
      return new BleError(
        'BLE_BACKEND_UNAVAILABLE',
        'the Bluetooth adapter does not support Bluetooth LE (HCI version below 4.0): use a Bluetooth 4.0+ adapter ' +
          '(NOBLE_HCI_DEVICE_ID=<n> picks hci<n>)',
      );
    default:
      return undefined;
  }
}

/** The error when the adapter did not become ready in time, by the last state noble reported. */
export function notReady(state: string, ms: number): BleError {
  if (state === 'poweredOff') return new BleError('BLE_ADAPTER', adapterDownAdvice());
  return new BleError(
    'BLE_ADAPTER',
    `the Bluetooth adapter did not become ready within ${ms} ms (noble state "${state}"); ${SEE_DOCS}`,
  );
}

/**
 * Controller error codes (Core Specification Vol 1, Part F, 1.3) as noble reports them for a failed connection
 * (LE Connection Complete status) or a failed command, by the class a session backs off on.
 */
const HCI_STATUS: ReadonlyMap<number, BleErrorCode> = new Map<number, BleErrorCode>([
  [0x02, 'BLE_DEVICE_GONE'], // Unknown Connection Identifier: the link is already gone
  [0x04, 'BLE_DEVICE_GONE'], // Page Timeout: the device did not answer
  [0x05, 'BLE_AUTH_FAILED'], // Authentication Failure
  [0x06, 'BLE_AUTH_FAILED'], // PIN or Key Missing: the device lost its bond
  [0x07, 'BLE_NO_SLOTS'], // Memory Capacity Exceeded
  [0x08, 'BLE_TIMEOUT'], // Connection Timeout (supervision timeout)
  [0x09, 'BLE_NO_SLOTS'], // Connection Limit Exceeded
  [0x0a, 'BLE_NO_SLOTS'], // Synchronous Connection Limit to a Device Exceeded
  [0x0b, 'BLE_NO_SLOTS'], // Connection Already Exists
  [0x0c, 'BLE_ABORTED'], // Command Disallowed: e.g. a create-connection already pending; transient
  [0x0d, 'BLE_NO_SLOTS'], // Connection Rejected due to Limited Resources
  [0x0e, 'BLE_AUTH_FAILED'], // Connection Rejected due to Security Reasons
  [0x10, 'BLE_TIMEOUT'], // Connection Accept Timeout Exceeded
  [0x11, 'BLE_NOT_SUPPORTED'], // Unsupported Feature or Parameter Value
  [0x12, 'BLE_NOT_SUPPORTED'], // Invalid HCI Command Parameters
  [0x13, 'BLE_DEVICE_GONE'], // Remote User Terminated Connection
  [0x14, 'BLE_DEVICE_GONE'], // Remote Device Terminated Connection due to Low Resources
  [0x15, 'BLE_DEVICE_GONE'], // Remote Device Terminated Connection due to Power Off
  [0x16, 'BLE_ABORTED'], // Connection Terminated by Local Host
  [0x1a, 'BLE_NOT_SUPPORTED'], // Unsupported Remote Feature
  [0x1f, 'BLE_ABORTED'], // Unspecified Error
  [0x22, 'BLE_DEVICE_GONE'], // LMP/LL Response Timeout: the peer stopped answering
  [0x29, 'BLE_AUTH_FAILED'], // Pairing with Unit Key Not Supported
  [0x2f, 'BLE_AUTH_FAILED'], // Insufficient Security
  [0x3a, 'BLE_ABORTED'], // Controller Busy
  [0x3b, 'BLE_ABORTED'], // Unacceptable Connection Parameters
  [0x3c, 'BLE_TIMEOUT'], // Advertising Timeout
  [0x3d, 'BLE_AUTH_FAILED'], // Connection Terminated due to MIC Failure: the keys disagree (bond lost on one side)
  // Connection Failed to be Established / Synchronization Timeout: the classic transient failure of a busy or
  // distant device; Home Assistant's bleak-retry-connector retries it soon, so it is an abort, not an absence.
  [0x3e, 'BLE_ABORTED'],
  [0x43, 'BLE_NO_SLOTS'], // Limit Reached
  [0x44, 'BLE_ABORTED'], // Operation Cancelled by Host
]);

/** noble's own fixed messages (lib/peripheral.js, lib/noble.js, lib/win and lib/mac bindings). */
const NOBLE_MESSAGES: readonly (readonly [RegExp, BleErrorCode])[] = [
  [/peripheral already connected/i, 'BLE_NO_SLOTS'],
  [/connection canceled/i, 'BLE_ABORTED'],
  [/not poweredon|state is (?:poweredOff|unknown|resetting)/i, 'BLE_ADAPTER'],
  [/peripheral not found|device not found|could not find all requested services/i, 'BLE_NOT_FOUND'],
];

/** The HCI status in noble's "<name> (0x<code>)" connection error text. */
export function hciStatusOf(error: unknown): number | undefined {
  const match = /\(0x([0-9a-f]{1,2})\)\s*$/i.exec(messageOf(error));
  return match ? Number.parseInt(match[1] as string, 16) : undefined;
}

/**
 * A BleError for a failure of `what` (a short description without addresses). The message carries the HCI status
 * code and name where noble gave one (fixed text from the specification's table, never an address).
 */
export function classify(error: unknown, what: string): BleError {
  if (error instanceof BleError) return error;
  const status = hciStatusOf(error);
  if (status !== undefined) {
    const name = messageOf(error).replace(/\s*\(0x[0-9a-f]{1,2}\)\s*$/i, '');
    const code = HCI_STATUS.get(status) ?? 'BLE_ABORTED';
    const hex = `0x${status.toString(16).padStart(2, '0')}`;
    return new BleError(code, `${what} failed: HCI ${hex} ${safeName(name)}`.trimEnd(), { cause: error });
  }
  const errno = errnoOf(error);
  const system = errno === undefined ? undefined : systemFailure(errno, error);
  if (system) return system;
  const text = messageOf(error);
  for (const [pattern, code] of NOBLE_MESSAGES) {
    if (pattern.test(text)) return new BleError(code, `${what} failed`, { cause: error });
  }
  return new BleError('BLE_ABORTED', `${what} failed`, { cause: error });
}

/** The status names of hci-status.json are fixed English text; anything else is dropped. */
function safeName(name: string): string {
  return /^[A-Za-z0-9 /_.,-]{1,80}$/.test(name) && !/[0-9a-f]{2}:[0-9a-f]{2}/i.test(name) ? name : '';
}

/**
 * Why a link ended, from the HCI reason noble passes with 'disconnect' (Core Specification Vol 1, Part F) and
 * what the backend itself was doing. noble on macOS passes no reason.
 */
export function disconnectReason(
  reason: number | string | undefined,
  context: { readonly local: boolean; readonly adapter: boolean },
): DisconnectReason {
  if (context.adapter) return 'adapter';
  if (context.local) return 'local';
  const code = typeof reason === 'number' ? reason : typeof reason === 'string' ? Number(reason) : Number.NaN;
  switch (code) {
    case 0x13: // Remote User Terminated Connection
    case 0x14: // ... due to Low Resources
    case 0x15: // ... due to Power Off
      return 'remote';
    // Connection Terminated by Local Host when we did not ask: the kernel or another program on the adapter
    // (bluetoothd) ended it.
    case 0x16:
      return 'adapter';
    // Connection Timeout (supervision timeout: out of range), LL Response Timeout, MIC Failure, Failed to be
    // Established, and anything unknown: the link was lost.
    default:
      return 'link-loss';
  }
}

/** What else may end a call early: a cancel action for the timeout, and a promise that rejects when the link ends. */
export interface DeadlineOptions {
  /** Cancels what can be cancelled (a pending connect) when the deadline passes. */
  readonly onTimeout?: () => void;
  /** Rejects (BLE_DEVICE_GONE) when the link ends: noble never answers a request on a dead link. */
  readonly gone?: Promise<never>;
}

/**
 * Runs a noble call with a deadline: noble's calls have none (a request on a dead link, a CCCD the device refused,
 * a connect to a silent device never answer), so every call gets BLE_TIMEOUT after `ms`. The late answer of an
 * abandoned call is ignored.
 */
export async function withDeadline<T>(
  work: Promise<T>,
  ms: number,
  what: string,
  scheduler: Scheduler,
  options: DeadlineOptions = {},
): Promise<T> {
  let timer: unknown;
  const deadline = new Promise<never>((_, reject) => {
    timer = scheduler.setTimeout(() => {
      reject(new BleError('BLE_TIMEOUT', `${what} timed out after ${ms} ms`));
      try {
        options.onTimeout?.();
      } catch {
        // Cancelling is best effort; the timeout is what the caller hears about.
      }
    }, ms);
  });
  // A late rejection of the abandoned call must not surface as an unhandled rejection.
  work.catch(() => undefined);
  try {
    return await Promise.race(options.gone ? [work, deadline, options.gone] : [work, deadline]);
  } catch (error) {
    throw classify(error, what);
  } finally {
    scheduler.clearTimeout(timer);
  }
}
