import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { makeStore } from '../cli/init.js';
import type { CommandIo } from '../cli/io.js';
import { checkPaths } from '../config/check-paths.js';
import { type LoadedConfig, loadConfig } from '../config/load.js';
import { statePaths } from '../config/paths.js';
import { createDevelopmentPki, type DevelopmentPkiFile } from '../pki/dev-pki.js';
import { storeExists } from '../store/encrypted-database.js';
import { KeyFileProvider } from '../store/keys.js';
import { DemoError } from './errors.js';

/**
 * The demo's data directory, made once and reused by a later `rpm-gateway demo --data-dir` on it:
 *
 *     D/gateway.yaml   a real hub configuration (the demo reads it with the same loader and checks as `start`)
 *     D/pki/           the development PKI: CA, broker ("localhost"), clinic and gateway certificates and keys
 *     D/store.key      the store key (256 random bits, mode 0600), made as `rpm-gateway init` makes it
 *     D/outbox.db      the encrypted store (outbox and device registry), with its WAL
 *     D/audit.log      the audit log (ids and events; no reading values, no addresses)
 *     D/logs/hub.log   the hub's JSON log (redacted: no reading values, codes, addresses or names)
 *
 * A folder that holds anything else is refused (DEMO_DATA_DIR_IN_USE): `--data-dir` pointed at a real hub's
 * data directory must not get a demo's configuration and simulated devices written into it.
 */
export const DEMO_GATEWAY_ID = 'gw-demo-0001';
export const DEMO_CLINIC_NAME = 'clinic-demo';

/** The first line of the demo's gateway.yaml: how a later run knows the folder is a demo's. */
const MARKER = '# rpm-gateway demo data directory';

export interface DemoPki {
  readonly dir: string;
  readonly gatewayId: string;
  readonly files: Readonly<Record<DevelopmentPkiFile, string>>;
  readonly pem: Readonly<Record<DevelopmentPkiFile, string>>;
}

export interface DemoEnvironment {
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly loaded: LoadedConfig;
  readonly pki: DemoPki;
  /** What this run made (false: found from an earlier run). */
  readonly made: { readonly pki: boolean; readonly config: boolean; readonly store: boolean };
}

const PKI_FILES: Readonly<Record<DevelopmentPkiFile, string>> = {
  ca: 'ca.crt',
  broker: 'broker.crt',
  brokerKey: 'broker.key',
  clinic: 'clinic.crt',
  clinicKey: 'clinic.key',
  gateway: 'gateway.crt',
  gatewayKey: 'gateway.key',
};

export async function prepareDemoDir(
  dirGiven: string,
  io: Pick<CommandIo, 'stderr'>,
): Promise<DemoEnvironment> {
  const dir = resolve(dirGiven);
  const configFile = join(dir, 'gateway.yaml');
  checkDemoDir(dir, configFile);
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  const pkiDir = join(dir, 'pki');
  const pkiMade = !existsSync(join(pkiDir, PKI_FILES.ca));
  const pki = pkiMade ? await makePki(pkiDir) : readPki(pkiDir);

  const configMade = !existsSync(configFile);
  if (configMade) writeFileSync(configFile, demoConfig(await freePorts(3)), { mode: 0o600 });

  // The configuration as `start` reads it: the file only (no RPM_* variables of the shell that runs the demo,
  // so the demo cannot be pointed at a real hub's store by a leftover variable), every path checked.
  const loaded = loadConfig({ configFile, env: {} });
  checkPaths(loaded, { creating: true });
  const { config } = loaded;

  const storeMade = !storeExists(statePaths(config.paths.dataDir).store);
  if (storeMade) {
    if (config.store.key.source !== 'file') throw new Error('the demo keeps its store key in a file');
    await makeStore(config, new KeyFileProvider(config.store.key.path, { create: true }), io, 'demo');
  }
  checkPaths(loaded, { creating: false });
  return {
    dir,
    configFile,
    logFile: join(dir, 'logs', 'hub.log'),
    loaded,
    pki,
    made: { pki: pkiMade, config: configMade, store: storeMade },
  };
}

/** Absent, empty, or a demo's: anything else is someone's data and is left alone. */
function checkDemoDir(dir: string, configFile: string): void {
  let entries: string[];
  try {
    if (!statSync(dir).isDirectory()) throw inUse(dir, 'it is not a directory');
    entries = readdirSync(dir);
  } catch (error) {
    if (error instanceof DemoError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (entries.length === 0) return;
  let first = '';
  try {
    first = readFileSync(configFile, 'utf8').split('\n', 1)[0] ?? '';
  } catch {
    // no gateway.yaml: not a demo's folder
  }
  if (first !== MARKER) throw inUse(dir, 'it holds files that are not a demo data directory');
}

function inUse(dir: string, why: string): DemoError {
  return new DemoError(
    'DEMO_DATA_DIR_IN_USE',
    `the demo cannot use ${dir}: ${why}; give --data-dir a new or empty folder, or one an earlier demo made`,
  );
}

async function makePki(dir: string): Promise<DemoPki> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pki = await createDevelopmentPki(dir, { gatewayId: DEMO_GATEWAY_ID, clinicName: DEMO_CLINIC_NAME });
  return { dir, gatewayId: pki.gatewayId, files: pki.files, pem: pki.pem };
}

function readPki(dir: string): DemoPki {
  const files = Object.fromEntries(
    Object.entries(PKI_FILES).map(([name, file]) => [name, join(dir, file)]),
  ) as Record<DevelopmentPkiFile, string>;
  const pem = Object.fromEntries(
    Object.entries(files).map(([name, file]) => [name, readFileSync(file, 'utf8')]),
  ) as Record<DevelopmentPkiFile, string>;
  return { dir, gatewayId: DEMO_GATEWAY_ID, files, pem };
}

/** Ports free on loopback now, from the kernel's ephemeral range (listen on port 0, then let it go). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((done, fail) => {
          const server = createServer();
          server.once('error', fail);
          server.listen(0, '127.0.0.1', () => done(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((done) => s.close(done))));
  return ports;
}

/** The demo's configuration: every value the demo changes from the defaults, each with why. */
function demoConfig([brokerPort, metricsPort, pagePort]: number[]): string {
  return `${MARKER}
# Written once by \`rpm-gateway demo\`; a later \`rpm-gateway demo --data-dir <this folder>\` reads it again.
# It is a real hub configuration (config/gateway.example.yaml documents every key), read with the same loader
# and checks as \`rpm-gateway start\`; relative paths are taken from this file's folder.

gateway:
  # The gateway id in pki/gateway.crt.
  id: ${DEMO_GATEWAY_ID}
  label: Demo hub

paths:
  dataDir: .
  runtimeDir: run

store:
  # Made by the demo as \`rpm-gateway init\` makes it (mode 0600). A hub at a patient's home keeps it in a
  # systemd encrypted credential instead (docs/raspberry-pi.md).
  key:
    file: store.key

tls:
  # The development PKI (rpm-gateway certs init lays it out the same way): never for patients, the CA key
  # sits next to everything it signed.
  ca: pki/ca.crt
  cert: pki/gateway.crt
  key:
    file: pki/gateway.key

uplink:
  # The demo's embedded broker, on a port that was free when this file was written.
  brokers:
    - url: mqtts://127.0.0.1:${brokerPort}
      servername: localhost
  # Reconnect within a few seconds of the broker coming back (--scenario outage), rather than the service's
  # cap of 5 minutes.
  backoff:
    base: 500ms
    cap: 5s
    stableAfter: 60s

ble:
  # Simulated devices: the demo builds its own five (pulse oximeter, BP cuff, thermometer, scale, glucose meter).
  backend: sim

log:
  level: info
  redact: true

# Ports that were free when this file was written, so two demos can run side by side.
metrics:
  enabled: true
  host: 127.0.0.1
  port: ${metricsPort}
  allowLan: false
patientPage:
  enabled: true
  host: 127.0.0.1
  port: ${pagePort}
  allowLan: false

clock:
  # A development machine's clock is taken as set; a Pi waits for NTP (the default, true).
  requireSync: false

shutdown:
  deadline: 10s
`;
}
