import type { BackendName } from '../ble/backends.js';
import { ensureDataDir } from '../config/data-dir.js';
import { inspectConfig } from '../config/load.js';
import { connectControl } from '../control/client.js';
import type { HubControl } from '../control/hub-control.js';
import { RemoteHubControl } from '../control/remote.js';
import { StoreControl } from '../control/store-control.js';
import { StoreError } from '../store/errors.js';
import { storeExists, storeLocation } from './enrolment-store.js';
import type { CommandIo } from './io.js';

/** The option naming the runtime directory, for the commands that talk to a running hub. */
export const RUNTIME_DIR_OPTION = { 'runtime-dir': { type: 'string' } } as const;

export const RUNTIME_DIR_HELP = `  --runtime-dir <dir>    where the running hub's control socket is (default: paths.runtimeDir of the
                         configuration: $RPM_PATHS_RUNTIME_DIR, the file, else /run/rpm-gateway)`;

/**
 * The runtime directory: --runtime-dir, else paths.runtimeDir as the configuration layers it (defaults < file <
 * RPM_*). Only the paths are read: a command that only lists devices must not fail because the file lacks
 * the gateway id or a broker, so the configuration's other problems are not this command's to report.
 */
export function runtimeDirFor(values: { 'runtime-dir'?: string }, io: CommandIo): string {
  if (values['runtime-dir'] !== undefined) return values['runtime-dir'];
  const paths = inspectConfig({ env: io.env }).raw.paths as { runtimeDir?: unknown } | undefined;
  const dir = paths?.runtimeDir;
  return typeof dir === 'string' ? dir : '/run/rpm-gateway';
}

export interface OpenControl {
  readonly control: HubControl;
  /** 'hub': a running hub answered on its socket; 'store': no hub runs, the command opened the store. */
  readonly via: 'hub' | 'store';
  close(): void;
}

/** The options of a command that reaches the hub or the store. */
export interface ControlValues {
  readonly 'runtime-dir'?: string;
  readonly 'data-dir'?: string;
  readonly 'key-file'?: string;
  readonly credential?: string;
}

export interface UseControlOptions {
  /** Open (and create, on first use) a store when no hub runs; false: undefined when there is none yet. */
  readonly create: boolean;
  /** The radio used for an enrolment when no hub runs. */
  readonly backend?: BackendName;
}

/**
 * The running hub through its control socket when one answers; otherwise the store, opened by this command
 * (docs/control-socket.md). Undefined only when no hub runs, no store exists and `create` is false.
 */
export async function useControl(
  values: ControlValues,
  io: CommandIo,
  options: UseControlOptions & { readonly create: true },
): Promise<OpenControl>;
export async function useControl(
  values: ControlValues,
  io: CommandIo,
  options: UseControlOptions,
): Promise<OpenControl | undefined>;
export async function useControl(
  values: ControlValues,
  io: CommandIo,
  options: UseControlOptions,
): Promise<OpenControl | undefined> {
  // The hub first: a user who may not reach it must hear that (CONTROL_NO_ACCESS), not whatever the store's
  // folder, which is the service user's as well, says to them.
  const runtimeDir = runtimeDirFor(values, io);
  const client = await connectControl(runtimeDir);
  if (client) return { control: new RemoteHubControl(client), via: 'hub', close: () => client.close() };
  const location = storeLocation(values, io);
  if (!options.create && !storeExists(location)) return undefined;
  ensureDataDir(location.paths.dataDir);
  let control: StoreControl;
  try {
    control = await StoreControl.open({
      store: location.paths.store,
      keys: location.keys,
      audit: location.audit,
      onEvent: location.onEvent,
      backend: options.backend ?? 'bluez',
    });
  } catch (error) {
    if (error instanceof StoreError && error.code === 'STORE_LOCKED') {
      throw new StoreError(
        'STORE_LOCKED',
        `the store ${location.paths.store} is in use by the running gateway: stop the service first ` +
          `(sudo systemctl stop rpm-gateway) and try again; no hub answered on its control socket in ${runtimeDir} ` +
          '(a key rotation under way, or a hub that uses another --runtime-dir)',
        { cause: error },
      );
    }
    throw error;
  }
  return { control, via: 'store', close: () => control.close() };
}
