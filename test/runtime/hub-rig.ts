import { mkdirSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { CentralPort } from '../../src/ble/central.js';
import { ClinicalBroker } from '../../src/broker/clinical-broker.js';
import { identifyClient } from '../../src/broker/identify.js';
import { GatewayDirectory } from '../../src/clinic/gateway-directory.js';
import { ClinicReceiver } from '../../src/clinic/receiver.js';
import { loadConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import type { Measurement } from '../../src/model/measurement.js';
import { createDevelopmentPki, type DevelopmentPki } from '../../src/pki/index.js';
import { Hub, type HubOptions } from '../../src/runtime/hub.js';
import { createLog } from '../../src/runtime/log.js';
import { NOT_REQUIRED } from '../../src/runtime/time-sync.js';
import type { Enrolment } from '../../src/store/device-registry.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Store } from '../../src/store/store.js';
import { realScheduler } from '../../src/util/scheduler.js';
import type { GatewayStatus } from '../../src/wire/index.js';

/**
 * What a hub test needs around the hub: a development PKI, the embedded clinical broker over real mutual TLS, a
 * clinic receiver that verifies every envelope, a real encrypted store with enrolled devices, a configuration
 * loaded through the real loader, and the log captured line by line.
 */
export const STORE_KEY = '6e'.repeat(32);
export const KEY_VARIABLE = 'RPM_TEST_STORE_KEY';

export interface Clinic {
  readonly pki: DevelopmentPki;
  readonly broker: ClinicalBroker;
  readonly port: number;
  readonly receiver: ClinicReceiver;
  readonly received: { gatewayId: string; measurement: Measurement; topic: 'obs' | 'alert' }[];
  readonly statuses: GatewayStatus[];
  stop(): Promise<void>;
}

export async function startClinic(dir: string): Promise<Clinic> {
  const pki = await createDevelopmentPki(join(dir, 'tls'));
  const broker = new ClinicalBroker({
    ca: pki.pem.ca,
    cert: pki.pem.broker,
    key: pki.pem.brokerKey,
    // A free port: the default (8883) is taken by whichever other test runs a broker at the same time.
    port: 0,
    identify: identifyClient,
  });
  const port = (await broker.start()).port;
  const directory = new GatewayDirectory(pki.pem.ca);
  directory.add(pki.pem.gateway);
  const received: Clinic['received'] = [];
  const statuses: GatewayStatus[] = [];
  const receiver = new ClinicReceiver({
    broker: { host: '127.0.0.1', port, servername: 'localhost' },
    tls: { ca: pki.pem.ca, cert: pki.pem.clinic, key: pki.pem.clinicKey },
    clientId: `clinic-test-${Math.random().toString(16).slice(2, 10)}`,
    directory,
    onMeasurement: (gatewayId, measurement, _batch, topic) =>
      received.push({ gatewayId, measurement, topic }),
    onStatus: (status) => statuses.push(status),
  });
  await receiver.start();
  return {
    pki,
    broker,
    port,
    receiver,
    received,
    statuses,
    stop: async () => {
      await receiver.stop();
      await broker.stop();
    },
  };
}

/** Writes the configuration file the hub reads (every path in `dir`); returns its path. */
export function writeConfig(
  dir: string,
  clinic: { pki: DevelopmentPki; port: number },
  extra = '',
  options: {
    requireSync?: boolean;
    backend?: string;
    metricsPort?: number;
    pagePort?: number;
    /** The store key as a file in the data directory (as `init` makes it), rather than a variable. */
    keyFile?: boolean;
    commandSigners?: boolean;
  } = {},
): string {
  // The hub's HTTP windows listen on fixed ports: off unless a test gives it free ones (freePort).
  const listener = (port: number | undefined) =>
    port === undefined ? '{ enabled: false }' : `{ enabled: true, host: 127.0.0.1, port: ${port} }`;
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'gateway.yaml');
  writeFileSync(
    file,
    [
      'gateway:',
      `  id: ${clinic.pki.gatewayId}`,
      'paths:',
      `  dataDir: ${dataDir}`,
      `  runtimeDir: ${join(dir, 'run')}`,
      'store:',
      options.keyFile ? `  key: { file: ${join(dataDir, 'store.key')} }` : `  key: { env: ${KEY_VARIABLE} }`,
      'tls:',
      `  ca: ${clinic.pki.files.ca}`,
      `  cert: ${clinic.pki.files.gateway}`,
      `  key: { file: ${clinic.pki.files.gatewayKey} }`,
      // The development PKI's clinic certificate signs commands (issued by the same CA).
      ...(options.commandSigners
        ? [`  clinicCa: ${clinic.pki.files.ca}`, `  commandSigners: [${clinic.pki.files.clinic}]`]
        : []),
      'uplink:',
      '  brokers:',
      `    - url: mqtts://127.0.0.1:${clinic.port}`,
      '      servername: localhost',
      '  backoff: { base: 100ms, cap: 1s, stableAfter: 60s }',
      'ble:',
      `  backend: ${options.backend ?? 'sim'}`,
      'clock:',
      `  requireSync: ${options.requireSync ?? false}`,
      'shutdown:',
      '  deadline: 10s',
      `metrics: ${listener(options.metricsPort)}`,
      `patientPage: ${listener(options.pagePort)}`,
      extra,
    ].join('\n'),
  );
  return file;
}

/** A TCP port free on the loopback interface now (the kernel's choice for port 0, released again). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function configOf(file: string): GatewayConfig {
  return loadConfig({ configFile: file, env: { [KEY_VARIABLE]: STORE_KEY } }).config;
}

/** Makes the store (as `rpm-gateway init` would) and enrols the devices; returns their ids in order. */
export async function enrol(config: GatewayConfig, devices: readonly Enrolment[]): Promise<string[]> {
  const store = await Store.open({
    path: join(config.paths.dataDir, 'outbox.db'),
    keys: new EnvKeyProvider(KEY_VARIABLE, { [KEY_VARIABLE]: STORE_KEY }),
    existing: 'create',
  });
  try {
    return devices.map((d) => store.devices.enrol(d).device.id);
  } finally {
    store.close();
  }
}

/** Every log line, parsed, and the raw text. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  private partial = '';

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    const text = this.partial + chunk.toString('utf8');
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    this.lines.push(...parts.filter((line) => line.length > 0));
    callback();
  }

  get events(): { event: string; [key: string]: unknown }[] {
    return this.lines.map((line) => JSON.parse(line) as { event: string });
  }

  get text(): string {
    return this.lines.join('\n');
  }
}

export function hubWith(
  config: GatewayConfig,
  central: CentralPort,
  capture: LogCapture,
  overrides: Partial<HubOptions> = {},
): Hub {
  return new Hub({
    config,
    version: '0.1.0-test',
    scheduler: realScheduler,
    log: createLog({ level: 'debug', redact: config.log.redact, destination: capture }),
    env: { [KEY_VARIABLE]: STORE_KEY },
    pid: process.pid,
    createCentral: async () => central,
    timeProbe: NOT_REQUIRED,
    utcOffsetMinutes: () => 0,
    ...overrides,
  });
}
