import { createHash, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import type { Measurement } from '../../src/model/measurement.js';
import { type CertificateAuthority, issueGatewayCertificate } from '../../src/pki/index.js';
import { mqttsConnection } from '../../src/pki/tls.js';
import { encodeBatch } from '../../src/wire/batch.js';
import { kidForCertificate, signEnvelope } from '../../src/wire/cose.js';

/**
 * Many simulated gateways for the clinic side's tests and benchmarks: each has its own certificate from the
 * clinic CA and signs its batches with its own key, exactly as a hub's uplink does (docs/wire-format.md), so an
 * intake verifies them for real. Measurement ids are derived from (gateway, n), so a re-sent batch carries the
 * same ids and a test can check "every reading exactly once" by id.
 */
export interface FleetGateway {
  readonly id: string;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  readonly key: KeyObject;
  readonly kid: Uint8Array;
}

export interface SignedMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly ids: readonly string[];
}

/** Issues `count` gateway certificates (`<prefix>-0000` ...). About a millisecond or two each. */
export async function createFleet(
  ca: CertificateAuthority,
  count: number,
  prefix = 'gw-fleet',
): Promise<FleetGateway[]> {
  const fleet: FleetGateway[] = [];
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${i.toString().padStart(4, '0')}`;
    const issued = await issueGatewayCertificate(ca, { gatewayId: id });
    fleet.push({
      id,
      certificatePem: issued.certificatePem,
      privateKeyPem: issued.privateKeyPem,
      key: createPrivateKey(issued.privateKeyPem),
      kid: kidForCertificate(new X509Certificate(issued.certificatePem).raw),
    });
  }
  return fleet;
}

/** Writes each gateway's certificate as `<id>.crt` into `dir`: the clinic's gateway inventory. */
export function writeFleetCertificates(fleet: readonly FleetGateway[], dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const gateway of fleet) writeFileSync(join(dir, `${gateway.id}.crt`), gateway.certificatePem);
}

/**
 * What a fleet gateway measures: `spo2` a pulse oximeter's continuous stream (PLX continuous, 2A5F: SpO2 and
 * pulse rate, thinned by the clinic's FHIR export policy), `weight` a scale's spot readings (Weight
 * Measurement, 2A9D: one body weight each, every one exported), so a test can know exactly how many
 * Observations an export makes.
 */
export type FleetReading = 'spo2' | 'weight';

const READINGS: Record<
  FleetReading,
  (n: number) => Pick<Measurement, 'deviceId' | 'driver' | 'characteristic' | 'observations'>
> = {
  spo2: (n) => ({
    deviceId: 'dev-ox-1',
    driver: 'sig/pulse-oximeter@1.0.0',
    characteristic: '2a5f',
    observations: [
      { code: 'MDC_PULS_OXIM_SAT_O2', value: 90 + (n % 10), unit: '%' },
      { code: 'MDC_PULS_OXIM_PULS_RATE', value: 60 + (n % 40), unit: '/min' },
    ],
  }),
  weight: (n) => ({
    deviceId: 'dev-scale-1',
    driver: 'sig/weight-scale@1.0.0',
    characteristic: '2a9d',
    observations: [{ code: 'MDC_MASS_BODY_ACTUAL', value: 70 + (n % 20) / 10, unit: 'kg' }],
  }),
};

/** The `n`-th reading of a gateway: its id is stable for (gateway, n), its time one second after the last. */
export function fleetMeasurement(
  gatewayId: string,
  n: number,
  start = Date.UTC(2026, 11, 1),
  reading: FleetReading = 'spo2',
): Measurement {
  const digest = createHash('sha256').update(`${gatewayId}\u0000${n}`).digest('hex');
  const at = new Date(start + n * 1000).toISOString();
  return {
    id: `m1-${digest.slice(0, 32)}`,
    ...READINGS[reading](n),
    time: at,
    timeSource: 'gateway',
    deviceTime: null,
    receivedAt: at,
    kind: 'measurement',
    status: [],
    details: {},
  };
}

/** A signed batch of readings `first` .. `first + count - 1` of one gateway, on its `obs` (or `alert`) topic. */
export function signedBatch(
  gateway: FleetGateway,
  options: {
    readonly seq: number;
    readonly first: number;
    readonly count: number;
    readonly sentAt: number;
    readonly lane?: 'obs' | 'alert';
    /** What the readings are (default spo2). */
    readonly reading?: FleetReading;
    /** The measurement time of reading 0 (fleetMeasurement's default otherwise); reading n is n seconds later. */
    readonly start?: number;
  },
): SignedMessage {
  const measurements: Measurement[] = [];
  for (let n = options.first; n < options.first + options.count; n++) {
    measurements.push(fleetMeasurement(gateway.id, n, options.start, options.reading));
  }
  const payload = encodeBatch({
    gatewayId: gateway.id,
    seq: options.seq,
    sentAt: options.sentAt,
    items: measurements.map((measurement) => ({ type: 'measurement' as const, measurement })),
  });
  return {
    topic: `rpm/v1/${gateway.id}/${options.lane ?? 'obs'}`,
    payload: Buffer.from(signEnvelope(payload, gateway.key, gateway.kid)),
    ids: measurements.map((m) => m.id),
  };
}

/** The fleet a benchmark's orchestrator wrote as JSON ({ gateways: [{ id, certificatePem, privateKeyPem }] }). */
export function readFleetFile(path: string): FleetGateway[] {
  const file = JSON.parse(readFileSync(path, 'utf8')) as {
    readonly gateways: readonly { id: string; certificatePem: string; privateKeyPem: string }[];
  };
  return file.gateways.map((g) => ({
    id: g.id,
    certificatePem: g.certificatePem,
    privateKeyPem: g.privateKeyPem,
    key: createPrivateKey(g.privateKeyPem),
    kid: kidForCertificate(new X509Certificate(g.certificatePem).raw),
  }));
}

/**
 * Connects every gateway of the fleet to the broker on 127.0.0.1:`port` as a hub connects (mutual TLS with the
 * gateway's own certificate, MQTT 3.1.1, client id = gateway id), `concurrency` handshakes at a time: all at once
 * time out on a loaded 2-core machine. Each client goes into `clients` at its gateway's index as soon as it is
 * connected, so a caller stopping half-way can end the ones that are.
 */
export async function connectFleet(
  fleet: readonly FleetGateway[],
  broker: { readonly port: number; readonly ca: string | Buffer },
  clients: MqttClient[],
  concurrency: number,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < fleet.length) {
      const i = next++;
      const gateway = fleet[i] as FleetGateway;
      clients[i] = await mqtt.connectAsync({
        ...mqttsConnection(
          { host: '127.0.0.1', port: broker.port, servername: 'localhost' },
          { ca: broker.ca, cert: gateway.certificatePem, key: gateway.privateKeyPem },
        ),
        clientId: gateway.id,
        protocolVersion: 4,
        clean: true,
        reconnectPeriod: 0,
        connectTimeout: 120_000,
        keepalive: 600,
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
