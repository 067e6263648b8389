import { join } from 'node:path';
import type { ConfigSource } from './errors.js';
import { defaultDataDir } from './paths.js';

/** A configuration value as written (in the file, or read from a variable or flag), before the schema. */
export type RawValue = string | number | boolean | null | readonly RawValue[] | RawTree;
export interface RawTree {
  readonly [key: string]: RawValue;
}

/** One setting a layer gives: where in the tree, the value as written, and where it came from. */
export interface LayerEntry {
  readonly path: readonly (string | number)[];
  readonly value: RawValue;
  readonly source: ConfigSource;
}

const DEFAULT: ConfigSource = { kind: 'default' };

/**
 * The lowest layer: every default, written as a person would write it in the file (so `config print` shows
 * "60s", not 60000). Store retention and uplink backoff are the values src/store/outbox.ts
 * (DEFAULT_RETENTION) and src/uplink/backoff.ts (DEFAULT_BACKOFF) use when given nothing, which
 * test/config/defaults.test.ts checks; the uplink's batch settings mirror the defaults in
 * src/uplink/uplink.ts.
 *
 * The alert defaults are the examples of issue #10 and common early-warning limits: SpO2 below 90 % for a
 * minute, systolic pressure above 180 mmHg (hypertensive crisis, AHA 2017 guideline), pulse below 40 or above
 * 130 beats per minute. Continuous streams (oximeter, ECG heart rate) must stay past the limit for 60 s;
 * a cuff's reading is a single measurement, so it alerts at once.
 */
export const DEFAULTS: RawTree = {
  store: {
    retention: {
      maxRows: 2_000_000,
      maxBytes: '1GiB',
      maxAge: '30d',
      whenFull: 'evict-oldest-backlog',
      ackedIdRetention: '30d',
    },
  },
  tls: { commandSigners: [] },
  uplink: {
    protocolVersion: 4,
    backoff: { base: '1s', cap: '5min', stableAfter: '60s' },
    window: 8,
    maxBatchRows: 1000,
    liveBatchBytes: '16KiB',
    backlogBatchBytes: '64KiB',
    connectTimeout: '15s',
    keepalive: '30s',
  },
  ble: { backend: 'bluez', adapter: 'hci0' },
  lanes: { backlogAfter: '10min' },
  alerts: {
    rules: [
      { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', below: 90, for: '60s', hysteresis: 1 },
      { code: 'MDC_PRESS_BLD_NONINV_SYS', unit: 'mm[Hg]', above: 180, for: '0s', hysteresis: 5 },
      { code: 'MDC_PULS_OXIM_PULS_RATE', unit: '/min', below: 40, above: 130, for: '60s', hysteresis: 5 },
      { code: 'MDC_PULS_RATE_NON_INV', unit: '/min', below: 40, above: 130, for: '0s', hysteresis: 5 },
      { code: 'MDC_ECG_HEART_RATE', unit: '/min', below: 40, above: 130, for: '60s', hysteresis: 5 },
    ],
  },
  log: { level: 'info', redact: true },
  metrics: { enabled: true, host: '127.0.0.1', port: 9464, allowLan: false },
  patientPage: { enabled: true, host: '127.0.0.1', port: 8088, allowLan: false },
  clock: { requireSync: true, check: 'auto' },
  shutdown: { deadline: '10s' },
};

/**
 * The defaults that depend on where the hub runs. The data directory: systemd's $STATE_DIRECTORY
 * (StateDirectory=, systemd.exec(5)), else the user's XDG state folder. The runtime directory:
 * $RUNTIME_DIRECTORY (RuntimeDirectory=), else the login session's $XDG_RUNTIME_DIR (XDG Base Directory
 * Specification), else /run/rpm-gateway, where the service's RuntimeDirectory= puts it and where `sudo
 * rpm-gateway ...` (sudo clears XDG_RUNTIME_DIR) looks for it.
 */
export function environmentDefaults(env: NodeJS.ProcessEnv): LayerEntry[] {
  // $RPM_GATEWAY_DATA_DIR is read as a setting (the environment layer), not as a default.
  const dataDir = defaultDataDir({ ...env, RPM_GATEWAY_DATA_DIR: undefined });
  const dataNote = env.STATE_DIRECTORY
    ? '$STATE_DIRECTORY'
    : env.XDG_STATE_HOME
      ? '$XDG_STATE_HOME'
      : undefined;
  const runtime = env.RUNTIME_DIRECTORY
    ? { dir: env.RUNTIME_DIRECTORY.split(':')[0] as string, note: '$RUNTIME_DIRECTORY' }
    : env.XDG_RUNTIME_DIR
      ? { dir: join(env.XDG_RUNTIME_DIR, 'rpm-gateway'), note: '$XDG_RUNTIME_DIR' }
      : { dir: '/run/rpm-gateway', note: undefined };
  return [
    {
      path: ['paths', 'dataDir'],
      value: dataDir,
      source: dataNote ? { kind: 'default', note: dataNote } : DEFAULT,
    },
    {
      path: ['paths', 'runtimeDir'],
      value: runtime.dir,
      source: runtime.note ? { kind: 'default', note: runtime.note } : DEFAULT,
    },
  ];
}
