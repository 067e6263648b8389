import { homedir } from 'node:os';
import { join } from 'node:path';
import { clinicClientId } from '../../broker/acl.js';
import { alertClientId, INTAKE_CLIENT_ID_SUFFIX, LANE_TOPICS } from '../../clinic/service/intake-lanes.js';
import type { LayerEntry, RawTree } from '../defaults.js';
import type { DerivedDefaults } from '../definition.js';
import { isLoopback } from '../fields.js';
import { isTree } from '../layers.js';

/**
 * The clinic configuration's defaults, written as a person would write them, in three parts: the ones that
 * always apply; the ones that depend on where the process runs; and the ones that follow from other values
 * (a file in the data directory, a client id from the clinic's name) or apply only to a section that is
 * there (the broker's port only where this machine runs a broker).
 */
export const CLINIC_DEFAULTS: RawTree = {
  database: { kind: 'sqlite' },
  fhir: {
    enabled: false,
    policy: { continuousInterval: '5min' },
    // The hub's uplink backoff (src/uplink/backoff.ts, DEFAULT_BACKOFF): a FHIR server's outage is retried
    // like a broker's.
    backoff: { base: '1s', cap: '5min', stableAfter: '60s' },
  },
  log: { level: 'info', redact: true },
};

/** The port of MQTT over TLS (IANA service name secure-mqtt, 8883/tcp). */
const MQTTS_PORT = 8883;

/** The dashboard's HTTPS port: 8443, the customary alternative to 443 for a service that is not root. */
const DASHBOARD_PORT = 8443;
/** The dashboard's broker connection that sends alarm limits to hubs: clinic-<name>-cmd (apart from the intake's). */
export const HUB_COMMANDS_CLIENT_ID_SUFFIX = 'cmd';

/** Defaults of a section that applies only when the section is given (by the file, a variable or a flag). */
export const SECTION_DEFAULTS = {
  broker: {
    host: '127.0.0.1',
    port: MQTTS_PORT,
    allowNetwork: false,
    // The hub's batches are at most 64 KiB (uplink.backlogBatchBytes' minimum default) plus the envelope;
    // 256 KiB leaves room for a hub configured for larger ones.
    maxPayload: '256KiB',
    persistence: { sync: true },
  },
  intake: {
    protocolVersion: 4,
    // One transaction per 256 messages or 5 ms, whichever comes first: a backlog commits in large
    // transactions, a live reading waits at most 5 ms for its PUBACK.
    groupCommit: { maxMessages: 256, maxDelay: '5ms' },
    // A hub offline for a week may still hold batches signed before its certificate expired.
    signerGrace: '7d',
    rejected: { maxRows: 100_000, maxQuarantineBytes: '64MiB' },
  },
  postgres: { port: 5432, ssl: { mode: 'verify-full' }, poolSize: 10 },
  dashboard: {
    host: '127.0.0.1',
    port: DASHBOARD_PORT,
    allowNetwork: false,
    // OWASP Session Management Cheat Sheet, "Session Expiration": 15 to 30 minutes idle for high-value
    // applications; the absolute limit is one working shift.
    session: { idle: '15min', absolute: '12h' },
    // OWASP Authentication Cheat Sheet, "Account Lockout": a lock after a few failures, for a while (not until
    // an administrator acts, which would let anyone lock out every clinician).
    lockout: { maxFailures: 5, lockFor: '15min' },
    rateLimit: 10,
    staleAfter: '30s',
  },
} as const satisfies Record<string, RawTree>;

/**
 * The data directory: systemd's $STATE_DIRECTORY (StateDirectory=, systemd.exec(5)), else the user's XDG
 * state folder (XDG Base Directory Specification) under rpm-clinic, apart from the hub's rpm-gateway. The
 * time zone: the host's, as ECMA-402 resolves it (the TZ variable, else /etc/localtime).
 */
export function clinicEnvironmentDefaults(env: NodeJS.ProcessEnv): LayerEntry[] {
  const dataDir = env.STATE_DIRECTORY
    ? { dir: env.STATE_DIRECTORY.split(':')[0] as string, note: '$STATE_DIRECTORY' }
    : env.XDG_STATE_HOME
      ? { dir: join(env.XDG_STATE_HOME, 'rpm-clinic'), note: '$XDG_STATE_HOME' }
      : { dir: join(homedir(), '.local', 'state', 'rpm-clinic'), note: undefined };
  const zone = hostTimeZone(env);
  return [
    {
      path: ['paths', 'dataDir'],
      value: dataDir.dir,
      source: dataDir.note ? { kind: 'default', note: dataDir.note } : { kind: 'default' },
    },
    { path: ['clinic', 'timeZone'], value: zone, source: { kind: 'default', note: "the host's time zone" } },
  ];
}

/** The host's time zone; `env.TZ` is honoured when given, as the C library would (tzset(3)). */
function hostTimeZone(env: NodeJS.ProcessEnv): string {
  const tz = env.TZ?.replace(/^:/, '');
  if (tz) {
    try {
      return new Intl.DateTimeFormat('en', { timeZone: tz }).resolvedOptions().timeZone;
    } catch {
      // Not a zone name (a POSIX rule such as EST5EDT,M3.2.0,M11.1.0): fall back to the process's.
    }
  }
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** Fills in the section defaults of the sections given, and what follows from other values. */
export function deriveClinicDefaults(tree: DerivedDefaults): void {
  const fill = (path: readonly string[], defaults: RawTree) => {
    for (const [key, value] of Object.entries(defaults)) {
      if (isTree(value)) fill([...path, key], value);
      else tree.setDefault([...path, key], value);
    }
  };
  const dataDir = tree.get(['paths', 'dataDir']);
  const name = tree.get(['clinic', 'name']);
  const given = (section: string) => tree.get([section]) !== undefined;

  if (given('broker')) {
    fill(['broker'], SECTION_DEFAULTS.broker);
    if (typeof dataDir === 'string') {
      tree.setDefault(['broker', 'persistence', 'dir'], join(dataDir, 'broker'), 'in paths.dataDir');
      tree.setDefault(
        ['broker', 'persistence', 'key'],
        { file: join(dataDir, 'broker.key') },
        'in paths.dataDir',
      );
    }
    if (typeof name === 'string') {
      // The intake's two sessions (src/clinic/service/intake-lanes.ts): observations and statuses on one,
      // alerts on their own, so an alert is never queued behind a backlog.
      const intakeId = tree.get(['intake', 'clientId']);
      const main = typeof intakeId === 'string' ? intakeId : clinicClientId(name, INTAKE_CLIENT_ID_SUFFIX);
      tree.setDefault(
        ['broker', 'durableSubscribers'],
        [
          { clientId: main, topics: [...LANE_TOPICS.main] },
          { clientId: alertClientId(main), topics: [...LANE_TOPICS.alert] },
        ],
        typeof intakeId === 'string' ? 'the two sessions of intake.clientId' : 'the intake of clinic.name',
      );
    }
  }
  if (given('intake')) {
    fill(['intake'], SECTION_DEFAULTS.intake);
    if (typeof name === 'string') {
      tree.setDefault(
        ['intake', 'clientId'],
        clinicClientId(name, INTAKE_CLIENT_ID_SUFFIX),
        'from clinic.name',
      );
    }
    const local = localBroker(tree);
    if (local) tree.setDefault(['intake', 'brokers'], [local], 'the broker of this machine');
  }

  if (given('dashboard')) {
    fill(['dashboard'], SECTION_DEFAULTS.dashboard);
    // On loopback the browser is on this machine and reaches it as localhost, the name every server
    // certificate of src/pki/ca.ts carries; any other address needs the name staff really use.
    const host = tree.get(['dashboard', 'host']);
    const port = tree.get(['dashboard', 'port']);
    if (typeof host === 'string' && isLoopback(host) && Number.isInteger(port)) {
      tree.setDefault(
        ['dashboard', 'publicOrigin'],
        `https://localhost${port === 443 ? '' : `:${port}`}`,
        'dashboard.host is loopback',
      );
    }
    if (tree.get(['dashboard', 'hubCommands']) !== undefined) {
      if (typeof name === 'string') {
        tree.setDefault(
          ['dashboard', 'hubCommands', 'clientId'],
          clinicClientId(name, HUB_COMMANDS_CLIENT_ID_SUFFIX),
          'from clinic.name',
        );
      }
      // The intake's brokers (the hubs are on the same broker), else this machine's broker.
      const intakeBrokers = tree.get(['intake', 'brokers']);
      const local = localBroker(tree);
      if (intakeBrokers !== undefined) {
        tree.setDefault(['dashboard', 'hubCommands', 'brokers'], intakeBrokers, 'intake.brokers');
      } else if (local) {
        tree.setDefault(['dashboard', 'hubCommands', 'brokers'], [local], 'the broker of this machine');
      }
    }
  }

  const kind = tree.get(['database', 'kind']);
  if (kind === 'sqlite' || tree.get(['database', 'sqlite']) !== undefined) {
    if (typeof dataDir === 'string') {
      tree.setDefault(['database', 'sqlite', 'path'], join(dataDir, 'clinic.db'), 'in paths.dataDir');
      tree.setDefault(
        ['database', 'sqlite', 'key'],
        { file: join(dataDir, 'clinic.key') },
        'in paths.dataDir',
      );
    }
  }
  if (tree.get(['database', 'postgres']) !== undefined)
    fill(['database', 'postgres'], SECTION_DEFAULTS.postgres);
}

/**
 * The embedded broker as this machine's intake reaches it: over loopback when it listens there or on every
 * address, checked against "localhost", which every broker certificate of src/pki/ca.ts carries.
 */
function localBroker(tree: DerivedDefaults): RawTree | undefined {
  if (tree.get(['broker']) === undefined) return undefined;
  const host = tree.get(['broker', 'host']);
  const port = tree.get(['broker', 'port']);
  // A broker setting that is wrong is reported as such; a default made from it would only repeat it.
  if (
    typeof host !== 'string' ||
    !Number.isInteger(port) ||
    (port as number) < 1 ||
    (port as number) > 65_535
  ) {
    return undefined;
  }
  if (isLoopback(host) || host === '0.0.0.0' || host === '::') {
    const loopback = host === '::1' || host === '::' ? '[::1]' : '127.0.0.1';
    return { url: `mqtts://${loopback}:${port}`, servername: 'localhost' };
  }
  return { url: `mqtts://${host.includes(':') ? `[${host}]` : host}:${port}` };
}
