import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client, PublishPacket, PubrelPacket } from 'aedes';
import { type FleetGateway, fleetMeasurement } from '../../../scripts/support/gateway-fleet.js';
import { ClinicalBroker } from '../../../src/broker/clinical-broker.js';
import { identifyClient } from '../../../src/broker/identify.js';
import {
  ClinicIntake,
  type ClinicIntakeOptions,
  type IntakeEvent,
} from '../../../src/clinic/intake/index.js';
import type { Measurement } from '../../../src/model/measurement.js';
import {
  type CertificateAuthority,
  CRL_FILE,
  createDevelopmentPki,
  type DevelopmentPki,
  issueGatewayCertificate,
  writePrivateKeyFile,
} from '../../../src/pki/index.js';
import { realScheduler, type Scheduler } from '../../../src/util/scheduler.js';
import { kidForCertificate, signEnvelope } from '../../../src/wire/cose.js';
import { encodeBatch, encodeStatus, type GatewayStatus } from '../../../src/wire/index.js';
import { ControlledStore } from './controlled-store.js';

/**
 * What every intake test needs: a development PKI whose CA folder can revoke (ca.key next to ca.crt), the
 * embedded ClinicalBroker over real TLS on a free port, a folder of issued gateway certificates (the inventory),
 * a record of the PUBACKs the broker received from the intake (aedes emits 'ack'), and signed messages.
 * Test messages are published into the broker in-process (aedes.publish: no ACL, so a test can also send what
 * no gateway could); the intake receives them over its TLS connection like any subscriber.
 */
export interface Harness {
  readonly dir: string;
  readonly pki: DevelopmentPki;
  readonly broker: ClinicalBroker;
  readonly port: number;
  readonly inventoryDir: string;
  readonly crlFile: string;
  /** PUBACKs from each client id, as the broker processed them: the topic and payload they acknowledged. */
  readonly acks: Map<string, PublishPacket[]>;
  /** Called for every PUBACK as the broker processes it (before it is recorded). */
  onAck: ((packet: PublishPacket, clientId: string) => void) | undefined;
  /** Stores opened by startIntake, closed by stopHarness. */
  readonly stores: ControlledStore[];
}

export async function startHarness(dir: string): Promise<Harness> {
  const pki = await createDevelopmentPki(dir);
  await writePrivateKeyFile(join(dir, 'ca.key'), pki.ca.privateKeyPem);
  const broker = new ClinicalBroker({
    ca: pki.pem.ca,
    cert: pki.pem.broker,
    key: pki.pem.brokerKey,
    port: 0,
    identify: identifyClient,
  });
  const port = (await broker.start()).port;
  const inventoryDir = join(dir, 'gateways');
  mkdirSync(inventoryDir, { recursive: true });
  const harness: Harness = {
    dir,
    pki,
    broker,
    port,
    inventoryDir,
    crlFile: join(dir, CRL_FILE),
    acks: new Map(),
    onAck: undefined,
    stores: [],
  };
  broker.mqtt.on('ack', (packet: PublishPacket | PubrelPacket, client: Client) => {
    // aedes passes undefined when the packet id was unknown to it (a PUBACK for nothing)
    if (packet?.cmd !== 'publish') return;
    harness.onAck?.(packet, client.id);
    const list = harness.acks.get(client.id) ?? [];
    list.push(packet);
    harness.acks.set(client.id, list);
  });
  return harness;
}

export async function stopHarness(harness: Harness): Promise<void> {
  await harness.broker.stop();
  for (const store of harness.stores) await store.close();
}

/** A gateway with its own certificate (optionally from another CA or another validity), not yet in the inventory. */
export async function newGateway(
  ca: CertificateAuthority,
  id: string,
  validity: { readonly issuedAt?: number; readonly days?: number } = {},
): Promise<FleetGateway> {
  const issued = await issueGatewayCertificate(ca, {
    gatewayId: id,
    ...(validity.days === undefined ? {} : { validityDays: validity.days }),
    ...(validity.issuedAt === undefined ? {} : { clock: { now: () => validity.issuedAt as number } }),
  });
  return {
    id,
    certificatePem: issued.certificatePem,
    privateKeyPem: issued.privateKeyPem,
    key: createPrivateKey(issued.privateKeyPem),
    kid: kidForCertificate(new X509Certificate(issued.certificatePem).raw),
  };
}

export function enrol(harness: Harness, gateway: FleetGateway): void {
  writeFileSync(join(harness.inventoryDir, `${gateway.id}.crt`), gateway.certificatePem);
}

export function notAfterOf(gateway: FleetGateway): number {
  return Date.parse(new X509Certificate(gateway.certificatePem).validTo);
}

export interface TestMessage {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly ids: readonly string[];
}

/** A batch of readings `first`.. of `gateway`, signed by `signer` (the gateway itself unless a test forges). */
export function batch(
  gateway: FleetGateway,
  first: number,
  count = 1,
  options: {
    readonly sentAt?: number;
    readonly signer?: FleetGateway;
    readonly edit?: (m: Measurement) => Measurement;
    readonly topic?: string;
  } = {},
): TestMessage {
  const measurements: Measurement[] = [];
  for (let n = first; n < first + count; n++) {
    const m = fleetMeasurement(gateway.id, n);
    measurements.push(options.edit ? options.edit(m) : m);
  }
  const payload = encodeBatch({
    gatewayId: gateway.id,
    seq: first,
    sentAt: options.sentAt ?? Date.now(),
    items: measurements.map((measurement) => ({ type: 'measurement' as const, measurement })),
  });
  const signer = options.signer ?? gateway;
  return {
    topic: options.topic ?? `rpm/v1/${gateway.id}/obs`,
    payload: signEnvelope(payload, signer.key, signer.kid),
    ids: measurements.map((m) => m.id),
  };
}

export function status(gateway: FleetGateway, sentAt = Date.now()): TestMessage {
  const value: GatewayStatus = {
    gatewayId: gateway.id,
    state: 'online',
    version: '1.0.0',
    sentAt,
    backlog: { alert: 0, live: 0, backlog: 3 },
  };
  return {
    topic: `rpm/v1/${gateway.id}/status`,
    payload: signEnvelope(encodeStatus(value), gateway.key, gateway.kid),
    ids: [],
  };
}

/** Publishes into the broker at QoS 1, as a gateway's PUBLISH would arrive. */
export function publish(harness: Harness, message: { topic: string; payload: Uint8Array }): Promise<void> {
  return new Promise((resolve, reject) => {
    harness.broker.mqtt.publish(
      {
        cmd: 'publish',
        topic: message.topic,
        payload: Buffer.from(message.payload),
        qos: 1,
        retain: false,
        dup: false,
      },
      (error) => (error ? reject(error) : resolve()),
    );
  });
}

/**
 * A clock that reads exactly what the test set (so a receipt time can sit on a boundary to the millisecond),
 * while timers stay real: the MQTT connection runs in real time.
 */
export class SetClockScheduler implements Scheduler {
  private at = Date.now();
  now(): number {
    return this.at;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    return realScheduler.setTimeout(fn, ms);
  }
  clearTimeout(handle: unknown): void {
    realScheduler.clearTimeout(handle);
  }
  set(at: number): void {
    this.at = at;
  }
}

export interface RunningIntake {
  readonly intake: ClinicIntake;
  readonly store: ControlledStore;
  readonly clientId: string;
  readonly events: IntakeEvent[];
  /** PUBACKs the broker has received from this intake. */
  acks(): PublishPacket[];
}

let serial = 0;

export async function startIntake(
  harness: Harness,
  options: Partial<ClinicIntakeOptions> & { readonly store?: ControlledStore } = {},
): Promise<RunningIntake> {
  const clientId = `clinic-test-i${++serial}-${process.pid % 10_000}`;
  const store = options.store ?? (await ControlledStore.open(harness.dir));
  harness.stores.push(store);
  const events: IntakeEvent[] = [];
  const intake = new ClinicIntake({
    broker: { host: '127.0.0.1', port: harness.port, servername: 'localhost' },
    tls: { ca: harness.pki.pem.ca, cert: harness.pki.pem.clinic, key: harness.pki.pem.clinicKey },
    clientId,
    gateways: {
      caPem: harness.pki.pem.ca,
      folder: harness.inventoryDir,
      crlFile: harness.crlFile,
      checkIntervalMs: 0,
    },
    defaultTimeZone: 'UTC',
    quarantineCheckMs: 50,
    reconnectPeriodMs: 100,
    group: { retryBaseMs: 20, retryCapMs: 200, ...options.group },
    ...options,
    store,
    onEvent: (event) => {
      events.push(event);
      options.onEvent?.(event);
    },
  });
  await intake.start();
  return { intake, store, clientId, events, acks: () => harness.acks.get(clientId) ?? [] };
}

/** The measurement ids a PUBACKed message carried (from the test's own record of what it published). */
export function idsOf(messages: readonly TestMessage[], packet: PublishPacket): readonly string[] {
  const payload = Buffer.from(packet.payload as Buffer);
  return messages.find((m) => payload.equals(Buffer.from(m.payload)))?.ids ?? [];
}
